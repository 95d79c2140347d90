use super::*;
use crate::execution::{Outcome, RunReport};
use crate::executor::{self, ExecutorEvent};
use crate::job::{Callback, Job, JobSpec};

/// A job with one callback per level, at https://hooks.example.com/<index>.
fn job_with_callbacks(levels: &[CallbackLevel]) -> Job {
    let spec = JobSpec {
        callbacks: levels
            .iter()
            .enumerate()
            .map(|(index, level)| Callback {
                url: format!("https://hooks.example.com/{index}"),
                level: *level,
            })
            .collect(),
        ..JobSpec::default()
    };
    Job::new("ACME".parse().unwrap(), spec, 0)
}

fn claimed(levels: &[CallbackLevel]) -> Execution {
    let job = job_with_callbacks(levels);
    let mut execution = Execution::new(&job, None, None, 0);
    let claim = Command::Claim {
        node: "node-1".into(),
        lease_until: 30_000,
    };
    transition(&mut execution, &claim, 1).unwrap();
    execution
}

fn reported(kind: executor::EventKind) -> ExecutorEvent {
    ExecutorEvent {
        host: Some("web-1".into()),
        task: Some("ping".into()),
        ..ExecutorEvent::new(kind)
    }
}

#[test]
fn sequences_count_up_without_gaps_across_status_and_executor_events() {
    let mut execution = claimed(&[]);
    let events = [
        reported(executor::EventKind::TaskStart),
        reported(executor::EventKind::HostOk),
    ];
    let appended = append(&mut execution, 1, &events, 2).unwrap();
    assert_eq!(
        appended
            .iter()
            .map(|r| r.event.sequence)
            .collect::<Vec<_>>(),
        [3, 4],
        "creation is 1, the claim 2"
    );
    assert_eq!(appended[1].event.host.as_deref(), Some("web-1"));
    let finish = Command::Finish {
        attempt: 1,
        report: RunReport::new(Outcome::Succeeded),
    };
    let done = transition(&mut execution, &finish, 3).unwrap();
    assert_eq!(done[0].event.sequence, 5);
    assert_eq!(done[0].event.status, Some(Status::Success));
    assert_eq!(execution.events, 5);
}

#[test]
fn an_unchanged_status_records_nothing() {
    let mut execution = claimed(&[CallbackLevel::Debug]);
    let heartbeat = Command::Heartbeat {
        attempt: 1,
        lease_until: 40_000,
    };
    assert!(
        transition(&mut execution, &heartbeat, 2)
            .unwrap()
            .is_empty()
    );
    assert_eq!(execution.events, 2);
}

#[test]
fn a_refused_command_records_nothing() {
    let mut execution = claimed(&[CallbackLevel::Debug]);
    let restart = Command::Restart {
        hosts: None,
        ssh_private_key: None,
        ssh_key_pair: None,
    };
    assert!(transition(&mut execution, &restart, 2).is_err());
    assert_eq!(execution.events, 2);
}

#[test]
fn appends_are_fenced_like_worker_commands() {
    let mut execution = claimed(&[]);
    let events = [reported(executor::EventKind::HostOk)];
    assert!(matches!(
        append(&mut execution, 2, &events, 2),
        Err(TransitionError::StaleAttempt { .. })
    ));
    assert_eq!(execution.events, 2, "refused appends count nothing");
    // A lapsed lease nobody rescued still holds: the run went on through a store outage.
    assert!(append(&mut execution, 1, &events, 40_000).is_ok());
    assert_eq!(execution.events, 3);
}

#[test]
fn each_callback_gets_the_events_at_or_above_its_level() {
    let mut execution = claimed(&[
        CallbackLevel::Debug,
        CallbackLevel::Error,
        CallbackLevel::Result,
    ]);
    let events = [
        reported(executor::EventKind::TaskStart),
        reported(executor::EventKind::HostFailed),
        reported(executor::EventKind::HostUnreachable),
        reported(executor::EventKind::PlaybookEnd),
    ];
    let appended = append(&mut execution, 1, &events, 2).unwrap();
    let callbacks = |recorded: &Recorded| {
        recorded
            .deliveries
            .iter()
            .map(|delivery| delivery.key.callback)
            .collect::<Vec<_>>()
    };
    assert_eq!(callbacks(&appended[0]), [0]);
    assert_eq!(callbacks(&appended[1]), [0, 1]);
    assert_eq!(callbacks(&appended[2]), [0, 1]);
    assert_eq!(callbacks(&appended[3]), [0, 1, 2]);
    let delivery = &appended[1].deliveries[1];
    assert_eq!(delivery.url, "https://hooks.example.com/1");
    assert_eq!(delivery.key.sequence, appended[1].event.sequence);
    assert_eq!((delivery.attempts, delivery.next_attempt_at), (0, 2));
}

#[test]
fn the_creation_event_goes_to_every_callback() {
    let job = job_with_callbacks(&[CallbackLevel::Debug, CallbackLevel::Result]);
    let execution = Execution::new(&job, None, None, 7);
    let created = created(&execution);
    assert_eq!(created.event.time, 7);
    assert_eq!(created.deliveries.len(), 2);
}

#[test]
fn the_event_schema_is_stable() {
    let mut execution = claimed(&[]);
    let appended = append(
        &mut execution,
        1,
        &[reported(executor::EventKind::HostFailed)],
        2,
    )
    .unwrap();
    let json = serde_json::to_value(&appended[0].event).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "account_alias",
            "execution_id",
            "host",
            "job_id",
            "kind",
            "level",
            "sequence",
            "task",
            "time"
        ],
        "absent fields (status, message) are left out"
    );
    assert_eq!(json["level"], "ERROR");
    assert_eq!(json["kind"], "host_failed");
}

#[test]
fn every_kind_is_one_snake_case_string() {
    let kinds = [
        (EventKind::Status, "status"),
        (
            EventKind::Executor(executor::EventKind::PlaybookStart),
            "playbook_start",
        ),
        (EventKind::Executor(executor::EventKind::HostOk), "host_ok"),
        (
            EventKind::Executor(executor::EventKind::HostUnreachable),
            "host_unreachable",
        ),
        (EventKind::Executor(executor::EventKind::Log), "log"),
    ];
    for (kind, name) in kinds {
        assert_eq!(serde_json::to_value(kind).unwrap(), name);
        let back: EventKind = serde_json::from_value(name.into()).unwrap();
        assert_eq!(back, kind);
    }
    assert!(serde_json::from_str::<EventKind>("\"workspace_ready\"").is_err());
}
