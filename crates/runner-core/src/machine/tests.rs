use super::*;
use crate::testkit::fixtures::job;

fn pending() -> Execution {
    Execution::new(&job("ACME", 0), None, None, 0)
}

fn claimed(now: Timestamp) -> Execution {
    let mut execution = pending();
    apply(
        &mut execution,
        &Command::Claim {
            node: "n".into(),
            lease_until: now + 30_000,
        },
        now,
    )
    .unwrap();
    execution
}

#[test]
fn happy_path() {
    let mut execution = claimed(10);
    assert_eq!(execution.status, Status::Initializing);
    assert_eq!(execution.attempt, 1);
    apply(&mut execution, &Command::BeginRun { attempt: 1 }, 11).unwrap();
    let finish = Command::Finish {
        attempt: 1,
        report: RunReport::new(Outcome::Succeeded),
    };
    apply(&mut execution, &finish, 20).unwrap();
    assert_eq!(execution.status, Status::Success);
    assert_eq!(
        execution.timers,
        [Timer {
            start: 10,
            end: Some(20)
        }]
    );
    assert_eq!(execution.view().start, Some(10));
    assert_eq!(execution.view().end, Some(20));
    assert!(execution.lease.is_none());
}

#[test]
fn stop_of_pending_ends_it_at_once() {
    let mut execution = pending();
    apply(
        &mut execution,
        &Command::Stop {
            escalate_at: Some(5),
        },
        1,
    )
    .unwrap();
    assert_eq!(execution.status, Status::Stopped);
    // Idempotent: stopping a STOPPED execution answers with it unchanged.
    let before = execution.clone();
    apply(&mut execution, &Command::Stop { escalate_at: None }, 2).unwrap();
    assert_eq!(execution, before);
}

#[test]
fn stop_escalates_to_kill_only_when_due() {
    let mut execution = claimed(0);
    apply(
        &mut execution,
        &Command::Stop {
            escalate_at: Some(5_000),
        },
        1,
    )
    .unwrap();
    assert_eq!(execution.status, Status::Stopping);
    assert_eq!(execution.next_deadline(), Some(5_000));
    assert_eq!(due_command(&execution, 4_999), None);
    assert_eq!(
        apply(&mut execution, &Command::EscalateStop, 4_999),
        Err(TransitionError::NotDue {
            command: CommandKind::EscalateStop
        })
    );
    assert_eq!(due_command(&execution, 5_000), Some(Command::EscalateStop));
    apply(&mut execution, &Command::EscalateStop, 5_000).unwrap();
    assert_eq!(execution.status, Status::Killing);
    let finish = Command::Finish {
        attempt: 1,
        report: RunReport::new(Outcome::Killed),
    };
    apply(&mut execution, &finish, 5_001).unwrap();
    assert_eq!(execution.status, Status::Killed);
}

#[test]
fn refusal_names_the_status() {
    let mut execution = pending();
    let error = apply(
        &mut execution,
        &Command::Restart {
            hosts: None,
            ssh_private_key: None,
            ssh_key_pair: None,
        },
        1,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot restart an execution that is PENDING"
    );
}

#[test]
fn kill_of_stopping_and_lost_lease_of_killing() {
    let mut execution = claimed(0);
    apply(&mut execution, &Command::Stop { escalate_at: None }, 1).unwrap();
    apply(&mut execution, &Command::Kill { force_at: None }, 2).unwrap();
    assert_eq!(execution.status, Status::Killing);
    assert_eq!(
        due_command(&execution, 30_000),
        Some(Command::LoseLease {
            cause: LeaseLoss::NodeGone
        })
    );
    apply(
        &mut execution,
        &Command::LoseLease {
            cause: LeaseLoss::NodeGone,
        },
        30_000,
    )
    .unwrap();
    assert_eq!(execution.status, Status::Killed);
}

#[test]
fn lost_lease_fails_a_run_with_a_reason() {
    let mut execution = claimed(0);
    apply(
        &mut execution,
        &Command::LoseLease {
            cause: LeaseLoss::NodeGone,
        },
        30_000,
    )
    .unwrap();
    assert_eq!(execution.status, Status::Failure);
    assert!(execution.message.as_deref().unwrap().contains("lease"));
}

#[test]
fn ttl_stops_gracefully() {
    let mut execution = claimed(0);
    let deadline = execution.ttl_deadline.unwrap();
    assert_eq!(deadline, 180 * 60_000);
    // Keep the lease alive past the TTL, as a healthy node would.
    apply(
        &mut execution,
        &Command::Heartbeat {
            attempt: 1,
            lease_until: deadline + 30_000,
        },
        20_000,
    )
    .unwrap();
    assert_eq!(due_command(&execution, deadline), Some(Command::ExpireTtl));
    apply(&mut execution, &Command::ExpireTtl, deadline).unwrap();
    assert_eq!(execution.status, Status::Stopping);
    assert_eq!(due_command(&execution, deadline + 1), None);
}

#[test]
fn restart_runs_failed_hosts_or_given_ones() {
    let mut execution = claimed(0);
    let report = RunReport {
        failed_hosts: vec!["b".into()],
        ..RunReport::new(Outcome::Failed)
    };
    apply(&mut execution, &Command::Finish { attempt: 1, report }, 5).unwrap();
    apply(
        &mut execution,
        &Command::Restart {
            hosts: None,
            ssh_private_key: None,
            ssh_key_pair: None,
        },
        6,
    )
    .unwrap();
    assert_eq!(execution.limit, Some(vec!["b".to_owned()]));
    assert!(execution.failed_hosts.is_empty());
    assert_eq!(execution.timers.len(), 2);
    apply(
        &mut execution,
        &Command::Claim {
            node: "n".into(),
            lease_until: 40_000,
        },
        10,
    )
    .unwrap();
    assert_eq!(
        execution.timers.len(),
        2,
        "a claim after restart reuses the restart's timer"
    );
    assert_eq!(execution.attempt, 2);
    let report = RunReport {
        failed_hosts: vec!["a".into()],
        ..RunReport::new(Outcome::Failed)
    };
    apply(&mut execution, &Command::Finish { attempt: 2, report }, 11).unwrap();
    let hosts = Some(vec![Host::named("c")]);
    apply(
        &mut execution,
        &Command::Restart {
            hosts,
            ssh_private_key: None,
            ssh_key_pair: None,
        },
        12,
    )
    .unwrap();
    assert_eq!(execution.limit, Some(vec!["c".to_owned()]));
    assert!(execution.hosts.iter().any(|host| host.id == "c"));
}

#[test]
fn release_hands_back_to_pending_keeping_the_timer() {
    let mut execution = claimed(0);
    apply(&mut execution, &Command::Release { attempt: 1 }, 5).unwrap();
    assert_eq!(execution.status, Status::Pending);
    assert!(execution.lease.is_none());
    apply(
        &mut execution,
        &Command::Claim {
            node: "m".into(),
            lease_until: 40_000,
        },
        10,
    )
    .unwrap();
    assert_eq!(execution.timers.len(), 1);
    assert_eq!(execution.attempt, 2);
}
