//! The engine of runner-core on a sled store: many executions end to end, and a crashed node's
//! executions rescued by the next one.

use std::time::Duration;

use runner_core::engine::{Engine, StartRequest};
use runner_core::execution::Status;
use runner_core::ids::{ExecutionId, JobId};
use runner_core::notifier::{ChannelNotifier, Notification, NotificationKind};
use runner_core::page::PageRequest;
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_core::time::MockClock;
use runner_store_sled::SledStore;
use tokio::sync::broadcast;

const T0: i64 = 1_700_000_000_000;
const LEASE: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits for `count` status notifications that `wanted` accepts; returns them. The timeout only
/// turns a hang into a failure.
async fn wait_for(
    notifications: &mut broadcast::Receiver<Notification>,
    count: usize,
    wanted: impl Fn(Status) -> bool,
) -> Vec<Notification> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let notification = tokio::time::timeout(Duration::from_secs(60), notifications.recv())
            .await
            .expect("no notification for 60 s")
            .expect("notifications keep up");
        if let NotificationKind::Status { status, .. } = notification.kind {
            if wanted(status) {
                seen.push(notification);
            }
        }
    }
    seen
}

#[test]
fn hundreds_of_executions_succeed_and_stay_succeeded() {
    const JOBS: usize = 3;
    const PER_JOB: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<JobId> = {
        let runtime = runtime();
        runtime.block_on(async {
            let store = SledStore::open(dir.path()).unwrap();
            let notifier = ChannelNotifier::new(16 * JOBS * PER_JOB);
            let mut notifications = notifier.subscribe();
            let engine = Engine::builder()
                .store(store)
                .executor(ScriptedExecutor::new(Script::Succeed))
                .notifier(notifier)
                .clock(MockClock::at(T0))
                .concurrency(8)
                .build();
            let running = engine.clone().start();
            let acme = alias("ACME");
            let mut jobs = Vec::new();
            for _ in 0..JOBS {
                jobs.push(
                    engine
                        .create_job(&acme, inline_spec(&["a", "b"]))
                        .await
                        .unwrap()
                        .id,
                );
            }
            for job in &jobs {
                for _ in 0..PER_JOB {
                    engine
                        .start_job(&acme, *job, StartRequest::default())
                        .await
                        .unwrap();
                }
            }
            let ended = wait_for(&mut notifications, JOBS * PER_JOB, Status::is_terminal).await;
            assert!(ended.iter().all(|n| matches!(
                n.kind,
                NotificationKind::Status {
                    status: Status::Success,
                    ..
                }
            )));
            assert_eq!(
                engine.executor().runs().len(),
                JOBS * PER_JOB,
                "each ran once"
            );
            running.shutdown().await;
            jobs
        })
        // Dropping the runtime ends every task, so the store's last handle closes here.
    };

    // Reopened: every execution is still there and SUCCESS.
    runtime().block_on(async {
        let store = SledStore::open(dir.path()).unwrap();
        let acme = alias("ACME");
        for job in jobs {
            let page = store
                .list_executions(&acme, job, PageRequest::default())
                .await
                .unwrap();
            assert_eq!(page.total_size as usize, PER_JOB);
            assert!(
                page.results.iter().all(|e| e.status == Status::Success),
                "all SUCCESS"
            );
            assert!(
                page.results
                    .iter()
                    .all(|e| e.timers.len() == 1 && e.timers[0].end.is_some())
            );
        }
        assert_eq!(
            store.next_deadline().await.unwrap(),
            None,
            "no lease is left behind"
        );
    });
}

#[test]
fn a_crashed_nodes_executions_end_in_failure_and_can_be_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let acme = alias("ACME");

    // A node runs three executions (RUNNING), a ghost node holds one (INITIALIZING), one waits
    // (PENDING); then the process "crashes": its runtime and store go away without a shutdown.
    let (job, running_ids, ghost_id) = {
        let runtime = runtime();
        runtime.block_on(async {
            let store = SledStore::open(dir.path()).unwrap();
            let notifier = ChannelNotifier::new(1024);
            let mut notifications = notifier.subscribe();
            let engine = Engine::builder()
                .store(store.clone())
                .executor(ScriptedExecutor::new(Script::UntilCancelled))
                .notifier(notifier)
                .clock(MockClock::at(T0))
                .node_id("node-crashed")
                .lease(LEASE)
                .concurrency(3)
                .build();
            let job = engine
                .create_job(&acme, inline_spec(&["a"]))
                .await
                .unwrap()
                .id;
            for _ in 0..5 {
                engine
                    .start_job(&acme, job, StartRequest::default())
                    .await
                    .unwrap();
            }
            let ghost = store
                .claim(&"node-ghost".to_owned(), 1, T0 + 30_000, T0)
                .await
                .unwrap();
            let running_engine = engine.clone().start();
            let running = wait_for(&mut notifications, 3, |s| s == Status::Running).await;
            let running_ids: Vec<ExecutionId> = running.iter().map(|n| n.execution_id).collect();
            // No shutdown: the engine is abandoned, and dropping the runtime drops every worker
            // mid-run, writing nothing more and claiming nothing more.
            running_engine.abort();
            (job, running_ids, ghost[0].execution_id)
        })
    };

    runtime().block_on(async {
        let store = SledStore::open(dir.path()).expect("reopen after the crash");
        let before = store
            .list_executions(&acme, job, PageRequest::default())
            .await
            .unwrap();
        let count = |status| before.results.iter().filter(|e| e.status == status).count();
        assert_eq!(
            (
                count(Status::Running),
                count(Status::Initializing),
                count(Status::Pending)
            ),
            (3, 1, 1)
        );

        let clock = MockClock::at(T0);
        let notifier = ChannelNotifier::new(1024);
        let mut notifications = notifier.subscribe();
        let engine = Engine::builder()
            .store(store.clone())
            .executor(ScriptedExecutor::new(Script::Succeed))
            .notifier(notifier)
            .clock(clock.clone())
            .node_id("node-rescuer")
            .lease(LEASE)
            .concurrency(4)
            .build();
        let running = engine.clone().start();
        // The waiting one runs on the new node.
        wait_for(&mut notifications, 1, |s| s == Status::Success).await;
        let held = store
            .list_executions(&acme, job, PageRequest::default())
            .await
            .unwrap();
        let held = |status| held.results.iter().filter(|e| e.status == status).count();
        assert_eq!(
            (held(Status::Running), held(Status::Initializing)),
            (3, 1),
            "leases still hold"
        );

        // Before the leases lapse nothing is rescued; once they lapse, all four end in FAILURE.
        clock.advance(LEASE + Duration::from_secs(1));
        let failed = wait_for(&mut notifications, 4, |s| s == Status::Failure).await;
        let mut failed_ids: Vec<ExecutionId> = failed.iter().map(|n| n.execution_id).collect();
        failed_ids.sort();
        let mut expected = running_ids.clone();
        expected.push(ghost_id);
        expected.sort();
        assert_eq!(failed_ids, expected);
        for id in &running_ids {
            let execution = store.get_execution(&acme, job, *id).await.unwrap().unwrap();
            assert_eq!(execution.status, Status::Failure);
            let message = execution.message.unwrap_or_default();
            assert!(
                message.contains("node-crashed") && message.contains("lease"),
                "{message}"
            );
        }
        let ghost = store
            .get_execution(&acme, job, ghost_id)
            .await
            .unwrap()
            .unwrap();
        assert!(ghost.message.unwrap_or_default().contains("node-ghost"));

        // DECISIONS.md: it can be restarted; it runs again on the live node.
        let restarted = engine
            .restart(&acme, job, running_ids[0], StartRequest::default())
            .await
            .unwrap();
        assert_eq!(restarted.status, Status::Pending);
        let again = wait_for(&mut notifications, 1, |s| s == Status::Success).await;
        assert_eq!(again[0].execution_id, running_ids[0]);
        let rerun = store
            .get_execution(&acme, job, running_ids[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (rerun.status, rerun.attempt, rerun.timers.len()),
            (Status::Success, 2, 2)
        );
        running.shutdown().await;
    });
}
