//! The feed cases of the store conformance suite: events recorded with the changes they report,
//! and the webhook outbox. Each case asks only for the roles it uses. Run by
//! [`store_conformance_tests!`](crate::store_conformance_tests).

use std::collections::HashSet;

use futures_util::future::join_all;

use super::fixtures::{alias, job_with_callbacks};
use crate::execution::{Execution, Outcome, RunReport, Status};
use crate::executor::{EventKind as Reported, ExecutorEvent, TaskResult};
use crate::feed::{Delivery, DeliveryKey, EventKind, Settlement};
use crate::ids::{ExecutionId, JobId};
use crate::job::CallbackLevel;
use crate::machine::Command;
use crate::store::{
    ClaimStore, ExecutionStore, FeedStore, OutboxStore, Signal, SignalSource, StoreError,
};
use crate::time::Timestamp;

const LEASE: Timestamp = 30_000;
const HOLD: Timestamp = 1_000;

/// A claimed execution (attempt 1, claimed at `now`) of a new job with callbacks of `levels`.
async fn claimed(
    store: &(impl ExecutionStore + ClaimStore),
    levels: &[CallbackLevel],
    now: Timestamp,
) -> Execution {
    let job = job_with_callbacks("ACME", now, levels);
    store.insert_job(&job).await.expect("insert job");
    let execution = Execution::new(&job, None, None, now);
    store
        .insert_execution(&execution)
        .await
        .expect("insert execution");
    let claimed = store
        .claim(&"node-a".to_owned(), 1, now + LEASE, now)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "the new execution should be claimable");
    claimed.into_iter().next().expect("one claimed")
}

fn reported(kind: Reported, host: &str) -> ExecutorEvent {
    ExecutorEvent {
        host: Some(host.into()),
        task: Some("ping".into()),
        ..ExecutorEvent::new(kind)
    }
}

fn finish(outcome: Outcome) -> Command {
    Command::Finish {
        attempt: 1,
        report: RunReport::new(outcome),
    }
}

fn keys(deliveries: &[Delivery]) -> Vec<(u32, u64)> {
    let mut keys: Vec<(u32, u64)> = deliveries
        .iter()
        .map(|delivery| (delivery.key.callback, delivery.key.sequence))
        .collect();
    keys.sort_unstable();
    keys
}

async fn settle_all(store: &impl OutboxStore, deliveries: &[Delivery]) {
    for delivery in deliveries {
        store
            .settle_delivery(&delivery.key, &Settlement::Delivered)
            .await
            .expect("settle");
    }
}

async fn wait_for(signals: &mut tokio::sync::broadcast::Receiver<Signal>, wanted: Signal) {
    let wait = async {
        loop {
            match signals.recv().await {
                Ok(signal) if signal == wanted => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    panic!("signal channel closed")
                }
            }
        }
    };
    // Signals may travel through a database.
    tokio::time::timeout(std::time::Duration::from_secs(30), wait)
        .await
        .expect("the signal within 30 s");
}

conformance_suite! {
    $ list __feed_conformance_cases in feed_conformance;

    /// Creation and every status change are numbered events, in order; a command that changes no
    /// status records none.
    pub async fn feed_records_creation_and_status_changes(
        store: &(impl ExecutionStore + ClaimStore + FeedStore),
    ) {
        let execution = claimed(store, &[], 10).await;
        let id = execution.execution_id;
        for (command, now) in [
            (
                Command::Heartbeat {
                    attempt: 1,
                    lease_until: 40_000,
                },
                11,
            ),
            (Command::BeginRun { attempt: 1 }, 12),
            (finish(Outcome::Succeeded), 13),
        ] {
            store.transition(id, &command, now).await.unwrap();
        }
        let events = store
            .list_events(&alias("ACME"), execution.job_id, id, 0, 100)
            .await
            .unwrap();
        let seen: Vec<(u64, EventKind, Option<Status>, Timestamp)> = events
            .iter()
            .map(|event| (event.sequence, event.kind, event.status, event.time))
            .collect();
        assert_eq!(
            seen,
            [
                (1, EventKind::Status, Some(Status::Pending), 10),
                (2, EventKind::Status, Some(Status::Initializing), 10),
                (3, EventKind::Status, Some(Status::Running), 12),
                (4, EventKind::Status, Some(Status::Success), 13),
            ]
        );
        assert!(events.iter().all(|event| event.execution_id == id
            && event.job_id == execution.job_id
            && event.account_alias == alias("ACME")
            && event.level == CallbackLevel::Result));
        let stored = store
            .get_execution(&alias("ACME"), execution.job_id, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.events, 4);
    }

    /// Events page by sequence number; another account or job does not see them.
    pub async fn feed_pages_by_sequence(store: &(impl ExecutionStore + ClaimStore + FeedStore)) {
        let execution = claimed(store, &[], 10).await;
        let id = execution.execution_id;
        let events: Vec<ExecutorEvent> = (0..5)
            .map(|n| reported(Reported::HostOk, &format!("host-{n}")))
            .collect();
        assert_eq!(store.append_events(id, 1, &events, 11).await.unwrap(), 7);
        let page = store
            .list_events(&alias("ACME"), execution.job_id, id, 3, 2)
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|event| event.sequence).collect::<Vec<_>>(),
            [4, 5]
        );
        assert_eq!(page[0].host.as_deref(), Some("host-1"));
        let rest = store
            .list_events(&alias("ACME"), execution.job_id, id, 5, 100)
            .await
            .unwrap();
        assert_eq!(
            rest.iter().map(|event| event.sequence).collect::<Vec<_>>(),
            [6, 7]
        );
        for (account, job) in [("OTHER", execution.job_id), ("ACME", JobId::new())] {
            assert!(matches!(
                store.list_events(&alias(account), job, id, 0, 10).await,
                Err(StoreError::NotFound)
            ));
        }
        assert!(matches!(
            store
                .list_events(&alias("ACME"), execution.job_id, ExecutionId::new(), 0, 10)
                .await,
            Err(StoreError::NotFound)
        ));
    }

    /// Executor events are fenced like worker commands: a stale attempt or an ended run adds
    /// nothing; a lapsed lease that nobody rescued still holds (the run went on through a store
    /// outage).
    pub async fn feed_appends_are_fenced(store: &(impl ExecutionStore + ClaimStore + FeedStore)) {
        let execution = claimed(store, &[], 10).await;
        let id = execution.execution_id;
        let events = [
            reported(Reported::TaskStart, "a"),
            reported(Reported::HostFailed, "a"),
        ];
        assert_eq!(store.append_events(id, 1, &events, 11).await.unwrap(), 4);
        assert!(matches!(
            store.append_events(id, 2, &events, 12).await,
            Err(StoreError::Refused(_))
        ));
        let lapsed = 10 + LEASE;
        assert_eq!(
            store.append_events(id, 1, &events, lapsed).await.unwrap(),
            6
        );
        store
            .transition(id, &finish(Outcome::Failed), lapsed + 1)
            .await
            .unwrap();
        assert!(matches!(
            store.append_events(id, 1, &events, lapsed + 2).await,
            Err(StoreError::Refused(_))
        ));
        let feed = store
            .list_events(&alias("ACME"), execution.job_id, id, 0, 100)
            .await
            .unwrap();
        let kinds: Vec<EventKind> = feed.iter().map(|event| event.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Status,
                EventKind::Status,
                EventKind::Executor(Reported::TaskStart),
                EventKind::Executor(Reported::HostFailed),
                EventKind::Executor(Reported::TaskStart),
                EventKind::Executor(Reported::HostFailed),
                EventKind::Status
            ]
        );
        assert_eq!(feed[3].level, CallbackLevel::Error);
        assert_eq!(feed[6].status, Some(Status::Failure));
        assert!(matches!(
            store
                .append_events(ExecutionId::new(), 1, &events, 15)
                .await,
            Err(StoreError::NotFound)
        ));
    }

    /// Each callback's queue holds the events at or above its level, and only a queue's head is
    /// handed out.
    pub async fn feed_deliveries_follow_levels_and_queue_order(
        store: &(impl ExecutionStore + ClaimStore + FeedStore + OutboxStore),
    ) {
        let levels = [
            CallbackLevel::Debug,
            CallbackLevel::Error,
            CallbackLevel::Result,
        ];
        let execution = claimed(store, &levels, 10).await;
        let id = execution.execution_id;
        store
            .append_events(
                id,
                1,
                &[
                    reported(Reported::TaskStart, "a"),
                    reported(Reported::HostUnreachable, "b"),
                ],
                11,
            )
            .await
            .unwrap();
        let mut rounds = Vec::new();
        for _ in 0..4 {
            let taken = store.claim_deliveries(20, 20 + HOLD, 100).await.unwrap();
            rounds.push(keys(&taken));
            settle_all(store, &taken).await;
        }
        assert_eq!(
            rounds,
            [
                vec![(0, 1), (1, 1), (2, 1)],
                vec![(0, 2), (1, 2), (2, 2)],
                vec![(0, 3), (1, 4)],
                vec![(0, 4)],
            ],
            "DEBUG gets all, ERROR errors and results, RESULT status changes; one head per queue"
        );
        assert_eq!(store.next_delivery_at().await.unwrap(), None);
    }

    /// A delivery carries its event, URL and attempt count.
    pub async fn feed_deliveries_carry_the_event(
        store: &(impl ExecutionStore + ClaimStore + OutboxStore),
    ) {
        let execution = claimed(store, &[CallbackLevel::Result], 10).await;
        let taken = store.claim_deliveries(20, 20 + HOLD, 10).await.unwrap();
        assert_eq!(taken.len(), 1);
        let delivery = &taken[0];
        assert_eq!(
            delivery.key,
            DeliveryKey {
                execution_id: execution.execution_id,
                callback: 0,
                sequence: 1,
            }
        );
        assert_eq!(delivery.url, "https://hooks.example.com/0");
        assert_eq!(delivery.attempts, 0);
        assert_eq!(delivery.event.sequence, 1);
        assert_eq!(delivery.event.status, Some(Status::Pending));
        assert_eq!(delivery.event.execution_id, execution.execution_id);
    }

    /// What a task returned is stored with its event and read back whole.
    pub async fn feed_keeps_task_results(store: &(impl ExecutionStore + ClaimStore + FeedStore)) {
        let execution = claimed(store, &[], 10).await;
        let result = TaskResult {
            changed: true,
            msg: Some("hello".into()),
            stdout: Some("line one\nline two \u{fc}".into()),
            stderr: Some("warned".into()),
            rc: Some(3),
            item: Some("a".into()),
            attempts: Some(2),
            retries: Some(4),
            rescued: true,
            handler: true,
            truncated: true,
            ..TaskResult::default()
        };
        let reported = ExecutorEvent {
            host: Some("h1".into()),
            task: Some("t".into()),
            result: Some(Box::new(result.clone())),
            ..ExecutorEvent::new(Reported::HostOk)
        };
        store
            .append_events(execution.execution_id, 1, &[reported], 20)
            .await
            .expect("append");
        let events = store
            .list_events(
                &execution.account_alias,
                execution.job_id,
                execution.execution_id,
                0,
                100,
            )
            .await
            .expect("list");
        let last = events.last().expect("events");
        assert_eq!(last.kind, EventKind::Executor(Reported::HostOk));
        assert_eq!(last.result.as_deref(), Some(&result));
    }

    /// A taken delivery is hidden until its hold passes (then it is handed out again: at least
    /// once), and a retry waits for its time without letting later events of the queue overtake it.
    pub async fn feed_holds_and_retries_keep_order(
        store: &(impl ExecutionStore + ClaimStore + OutboxStore),
    ) {
        let execution = claimed(store, &[CallbackLevel::Result], 10).await;
        let first = store.claim_deliveries(20, 100, 10).await.unwrap();
        assert_eq!(keys(&first), [(0, 1)]);
        assert!(
            store
                .claim_deliveries(50, 150, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.next_delivery_at().await.unwrap(), Some(100));
        let again = store.claim_deliveries(100, 200, 10).await.unwrap();
        assert_eq!(
            keys(&again),
            [(0, 1)],
            "a lapsed hold hands the delivery out again"
        );

        store
            .settle_delivery(
                &again[0].key,
                &Settlement::Retry {
                    at: 500,
                    error: "503 Service Unavailable".into(),
                },
            )
            .await
            .unwrap();
        assert!(
            store
                .claim_deliveries(400, 1_400, 10)
                .await
                .unwrap()
                .is_empty(),
            "the head waits for its retry and sequence 2 must not overtake it"
        );
        assert_eq!(store.next_delivery_at().await.unwrap(), Some(500));
        let retried = store.claim_deliveries(500, 1_500, 10).await.unwrap();
        assert_eq!(keys(&retried), [(0, 1)]);
        assert_eq!(retried[0].attempts, 1);

        store
            .settle_delivery(
                &retried[0].key,
                &Settlement::GiveUp {
                    error: "503 Service Unavailable".into(),
                },
            )
            .await
            .unwrap();
        let next = store.claim_deliveries(600, 1_600, 10).await.unwrap();
        assert_eq!(keys(&next), [(0, 2)], "after giving up, the queue moves on");
        assert_eq!(next[0].key.execution_id, execution.execution_id);
        settle_all(store, &next).await;
        // Settling what is gone is harmless (another node settled it after a hold lapsed).
        store
            .settle_delivery(&next[0].key, &Settlement::Delivered)
            .await
            .unwrap();
        assert!(
            store
                .claim_deliveries(700, 1_700, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// The backlog counts the deliveries still to deliver, held or not; delivered and given-up
    /// ones leave it.
    pub async fn feed_backlog_counts_waiting_deliveries(
        store: &(impl ExecutionStore + ClaimStore + OutboxStore),
    ) {
        assert_eq!(store.backlog().await.unwrap(), 0);
        // Creation and INITIALIZING: two deliveries in one queue.
        claimed(store, &[CallbackLevel::Result], 10).await;
        assert_eq!(store.backlog().await.unwrap(), 2);
        let first = store.claim_deliveries(20, 100, 10).await.unwrap();
        assert_eq!(store.backlog().await.unwrap(), 2, "a held delivery still waits");
        store
            .settle_delivery(&first[0].key, &Settlement::GiveUp { error: "gone".into() })
            .await
            .unwrap();
        assert_eq!(store.backlog().await.unwrap(), 1, "a given-up delivery left it");
        let next = store.claim_deliveries(30, 130, 10).await.unwrap();
        settle_all(store, &next).await;
        assert_eq!(store.backlog().await.unwrap(), 0);
    }

    /// Concurrent callers never get the same delivery while it is held.
    pub async fn feed_concurrent_delivery_claims_never_double(
        store: &(impl ExecutionStore + ClaimStore + OutboxStore),
    ) {
        let mut executions = Vec::new();
        for n in 0..12 {
            executions
                .push(claimed(store, &[CallbackLevel::Result, CallbackLevel::Debug], n).await);
        }
        let takers = (0..6).map(|_| store.claim_deliveries(100, 100 + HOLD, 5));
        let taken: Vec<Delivery> = join_all(takers)
            .await
            .into_iter()
            .flat_map(|result| result.expect("claim deliveries"))
            .collect();
        let unique: HashSet<DeliveryKey> = taken.iter().map(|delivery| delivery.key).collect();
        assert_eq!(unique.len(), taken.len(), "a delivery was handed out twice");
        assert_eq!(taken.len(), 24, "one head per (execution, callback) queue");
        assert!(taken.iter().all(|delivery| delivery.key.sequence == 1));
    }

    /// Recording events wakes live feeds and the delivery service.
    pub async fn feed_signals_announce_events(
        store: &(impl ExecutionStore + ClaimStore + FeedStore + SignalSource),
    ) {
        let mut signals = store.subscribe();
        let execution = claimed(store, &[], 10).await;
        let id = execution.execution_id;
        wait_for(&mut signals, Signal::Feed(id)).await;
        store
            .append_events(id, 1, &[reported(Reported::HostOk, "a")], 11)
            .await
            .unwrap();
        wait_for(&mut signals, Signal::Feed(id)).await;
    }

    /// A restart continues the feed where the failed run left it.
    pub async fn feed_restart_continues_the_sequence(
        store: &(impl ExecutionStore + ClaimStore + FeedStore),
    ) {
        let execution = claimed(store, &[], 10).await;
        let id = execution.execution_id;
        store
            .transition(id, &finish(Outcome::Failed), 11)
            .await
            .unwrap();
        store
            .transition(
                id,
                &Command::Restart {
                    hosts: None,
                    ssh_private_key: None, ssh_key_pair: None,
                },
                12,
            )
            .await
            .unwrap();
        let again = store
            .claim(&"node-b".to_owned(), 1, 13 + LEASE, 13)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        store
            .append_events(id, 2, &[reported(Reported::HostOk, "a")], 14)
            .await
            .unwrap();
        let feed = store
            .list_events(&alias("ACME"), execution.job_id, id, 0, 100)
            .await
            .unwrap();
        let seen: Vec<(u64, Option<Status>)> = feed
            .iter()
            .map(|event| (event.sequence, event.status))
            .collect();
        assert_eq!(
            seen,
            [
                (1, Some(Status::Pending)),
                (2, Some(Status::Initializing)),
                (3, Some(Status::Failure)),
                (4, Some(Status::Pending)),
                (5, Some(Status::Initializing)),
                (6, None),
            ]
        );
    }
}
