//! Property tests: random command sequences against the transition table's invariants.

use proptest::prelude::*;

use super::*;
use crate::testkit::fixtures::job;

/// A command template; the attempt is filled in from the execution (or made stale).
#[derive(Debug, Clone)]
enum Step {
    Claim {
        lease: i64,
    },
    BeginRun {
        stale: bool,
    },
    Heartbeat {
        stale: bool,
        lease: i64,
    },
    Finish {
        stale: bool,
        outcome: Outcome,
        failed: Vec<String>,
    },
    Release {
        stale: bool,
    },
    Stop {
        expiry: Option<i64>,
    },
    Kill {
        expiry: Option<i64>,
    },
    EscalateStop,
    ForceKill,
    ExpireTtl,
    LoseLease,
    Restart {
        hosts: Option<Vec<String>>,
    },
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Succeeded),
        Just(Outcome::Failed),
        Just(Outcome::Stopped),
        Just(Outcome::Killed)
    ]
}

fn host_ids() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("c".to_owned())
        ],
        0..3,
    )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1i64..100_000).prop_map(|lease| Step::Claim { lease }),
        any::<bool>().prop_map(|stale| Step::BeginRun { stale }),
        (any::<bool>(), 1i64..100_000).prop_map(|(stale, lease)| Step::Heartbeat { stale, lease }),
        (any::<bool>(), outcome(), host_ids()).prop_map(|(stale, outcome, failed)| Step::Finish {
            stale,
            outcome,
            failed
        }),
        any::<bool>().prop_map(|stale| Step::Release { stale }),
        proptest::option::of(1i64..50_000).prop_map(|expiry| Step::Stop { expiry }),
        proptest::option::of(1i64..50_000).prop_map(|expiry| Step::Kill { expiry }),
        Just(Step::EscalateStop),
        Just(Step::ForceKill),
        Just(Step::ExpireTtl),
        Just(Step::LoseLease),
        proptest::option::of(host_ids()).prop_map(|hosts| Step::Restart { hosts }),
    ]
}

fn command(step: &Step, execution: &Execution, now: Timestamp) -> Command {
    let attempt = |stale: bool| {
        if stale {
            execution.attempt.wrapping_add(1)
        } else {
            execution.attempt
        }
    };
    match step.clone() {
        Step::Claim { lease } => Command::Claim {
            node: "n".into(),
            lease_until: now + lease,
        },
        Step::BeginRun { stale } => Command::BeginRun {
            attempt: attempt(stale),
        },
        Step::Heartbeat { stale, lease } => Command::Heartbeat {
            attempt: attempt(stale),
            lease_until: now + lease,
        },
        Step::Finish {
            stale,
            outcome,
            failed,
        } => Command::Finish {
            attempt: attempt(stale),
            report: RunReport {
                failed_hosts: failed,
                ..RunReport::new(outcome)
            },
        },
        Step::Release { stale } => Command::Release {
            attempt: attempt(stale),
        },
        Step::Stop { expiry } => Command::Stop {
            escalate_at: expiry.map(|e| now + e),
        },
        Step::Kill { expiry } => Command::Kill {
            force_at: expiry.map(|e| now + e),
        },
        Step::EscalateStop => Command::EscalateStop,
        Step::ForceKill => Command::ForceKill,
        Step::ExpireTtl => Command::ExpireTtl,
        Step::LoseLease => Command::LoseLease {
            cause: LeaseLoss::NodeGone,
        },
        Step::Restart { hosts } => Command::Restart {
            hosts: hosts.map(|ids| ids.into_iter().map(Host::named).collect()),
            ssh_private_key: None,
            ssh_key_pair: None,
        },
    }
}

fn check_invariants(execution: &Execution) -> Result<(), TestCaseError> {
    prop_assert!(
        execution.failed_hosts.is_empty() || execution.status == Status::Failure,
        "failed_hosts outside FAILURE: {:?}",
        execution
    );
    prop_assert_eq!(
        execution.lease.is_some(),
        execution.status.is_claimed(),
        "lease iff claimed: {:?}",
        execution
    );
    for pair in execution.timers.windows(2) {
        prop_assert!(
            pair[0].start <= pair[1].start,
            "timers out of order: {:?}",
            execution.timers
        );
        prop_assert!(
            pair[0].end.is_some(),
            "only the last timer may be open: {:?}",
            execution.timers
        );
    }
    for timer in &execution.timers {
        prop_assert!(
            timer.end.is_none_or(|end| end >= timer.start),
            "timer ends before it starts"
        );
    }
    if execution.status.is_terminal() {
        prop_assert!(
            execution.timers.last().is_none_or(|t| t.end.is_some()),
            "open timer after the end"
        );
        prop_assert!(
            execution.next_deadline().is_none(),
            "deadline after the end"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_commands(steps in proptest::collection::vec((step(), 0i64..40_000), 1..40)) {
        let mut execution = Execution::new(&job("ACME", 0), None, None, 0);
        let mut now = 0;
        for (step, pause) in steps {
            now += pause;
            let command = command(&step, &execution, now);
            let before = execution.clone();
            let result = apply(&mut execution, &command, now);

            match &result {
                Err(_) => prop_assert_eq!(&execution, &before, "a refused command changed the execution"),
                Ok(()) => prop_assert_eq!(Some(execution.status), next_status(before.status, &command)),
            }
            // Terminal statuses refuse everything but a restart of a FAILURE, or answer with the
            // execution unchanged (stop of STOPPED, kill of KILLED).
            if before.status.is_terminal() && result.is_ok() {
                let restart = before.status == Status::Failure && command.kind() == CommandKind::Restart;
                prop_assert!(restart || execution == before, "{:?} changed a {} execution", command.kind(), before.status);
            }
            if result.is_ok() && command.kind() == CommandKind::Restart {
                prop_assert_eq!(execution.timers.len(), before.timers.len() + 1, "a restart appends exactly one timer");
            } else if result.is_ok() && command.kind() != CommandKind::Claim {
                prop_assert_eq!(execution.timers.len(), before.timers.len(), "only claim and restart add timers");
            }
            prop_assert!(execution.attempt >= before.attempt, "attempts never go back");
            if result.is_ok() && execution.status != before.status {
                prop_assert!(execution.revision > before.revision, "a status change bumps the revision");
            }
            // Stop and kill are idempotent: a second identical request changes the status no further.
            if result.is_ok() && matches!(command.kind(), CommandKind::Stop | CommandKind::Kill) {
                let mut again = execution.clone();
                let repeated = apply(&mut again, &command, now);
                prop_assert!(repeated.is_ok(), "repeating {:?} was refused: {:?}", command.kind(), repeated);
                prop_assert_eq!(again.status, execution.status);
            }
            check_invariants(&execution)?;
        }
    }

    #[test]
    fn worker_commands_from_stale_attempts_never_apply(steps in proptest::collection::vec((step(), 0i64..40_000), 1..30)) {
        let mut execution = Execution::new(&job("ACME", 0), None, None, 0);
        let mut now = 0;
        for (step, pause) in steps {
            now += pause;
            let stale = matches!(step,
                Step::BeginRun { stale: true } | Step::Heartbeat { stale: true, .. }
                | Step::Finish { stale: true, .. } | Step::Release { stale: true });
            let command = command(&step, &execution, now);
            let result = apply(&mut execution, &command, now);
            if stale {
                let is_stale_refusal = matches!(result, Err(TransitionError::StaleAttempt { .. }));
                prop_assert!(is_stale_refusal, "a stale {:?} was not fenced: {:?}", command.kind(), result);
            }
        }
    }
}
