//! The retention service on the memory store with a mock clock: each pass purges what ended
//! longer ago than the retention, in batches, and nothing younger.

use std::sync::Arc;
use std::time::Duration;

use runner_core::engine::{Engine, EngineConfig, EngineProbe, EngineSignal, StartRequest};
use runner_core::execution::Execution;
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_core::time::{MockClock, Timestamp};
use runner_store_memory::MemoryStore;

const HOUR: Timestamp = 3_600_000;
const DAY: Timestamp = 24 * HOUR;
const T0: Timestamp = 10 * DAY;

/// Waits for the next pass of the retention service and returns it.
async fn next_pass(probe: &mut EngineProbe) -> (Timestamp, u64) {
    let wait = async {
        loop {
            if let EngineSignal::RetentionPass { before, purged } = probe.next().await {
                return (before, purged);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("a retention pass within 60 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pass_purges_what_ended_longer_ago_than_the_retention_in_batches() {
    let store = Arc::new(MemoryStore::new());
    let clock = MockClock::at(T0);
    let executor = ScriptedExecutor::new(Script::Succeed);
    let engine = Engine::builder()
        .config(EngineConfig {
            retention_interval: Duration::from_millis(HOUR as u64),
            retention_batch: 2,
            ..EngineConfig::default()
        })
        .store(Arc::clone(&store))
        .executor(executor)
        .clock(clock.clone())
        .lease(Duration::from_secs(30 * 24 * 3600))
        .retain(Duration::from_millis(DAY as u64))
        .test_signals()
        .build();
    let mut probe = engine.probe();
    let running = engine.clone().start();
    assert_eq!(
        next_pass(&mut probe).await,
        (T0 - DAY, 0),
        "the first pass runs at start"
    );

    let acme = alias("ACME");
    let job = engine.create_job(&acme, inline_spec(&["a"])).await.unwrap();
    let start = async |probe: &mut EngineProbe| -> Execution {
        let execution = engine
            .start_job(&acme, job.id, StartRequest::default())
            .await
            .unwrap();
        tokio::time::timeout(
            Duration::from_secs(60),
            probe.wait_for(EngineSignal::Finished(execution.execution_id)),
        )
        .await
        .expect("the run ends");
        execution
    };
    let first = start(&mut probe).await;

    // An hour later nothing is a day old.
    clock.wait_for_sleep_until(T0 + HOUR).await;
    clock.set(T0 + HOUR);
    assert_eq!(next_pass(&mut probe).await, (T0 + HOUR - DAY, 0));
    let later = [
        start(&mut probe).await,
        start(&mut probe).await,
        start(&mut probe).await,
    ];

    let exists = async |execution: &Execution| {
        store
            .get_execution(&acme, job.id, execution.execution_id)
            .await
            .unwrap()
            .is_some()
    };
    // A day and an hour after the first run ended: it goes; the later ones ended exactly a day
    // ago, which is not longer ago than the retention.
    clock.wait_for_sleep_until(T0 + 2 * HOUR).await;
    clock.set(T0 + DAY + HOUR);
    assert_eq!(next_pass(&mut probe).await, (T0 + HOUR, 1));
    assert!(!exists(&first).await);
    for execution in &later {
        assert!(exists(execution).await, "a run that ended a day ago stays");
    }

    // The next pass takes the three, two to a batch.
    clock.wait_for_sleep_until(T0 + DAY + 2 * HOUR).await;
    clock.set(T0 + DAY + 2 * HOUR);
    assert_eq!(next_pass(&mut probe).await, (T0 + 2 * HOUR, 3));
    for execution in &later {
        assert!(!exists(execution).await);
    }
    let listed = store
        .list_executions(&acme, job.id, Default::default())
        .await
        .unwrap();
    assert_eq!(listed.total_size, 0);
    running.shutdown().await;
}
