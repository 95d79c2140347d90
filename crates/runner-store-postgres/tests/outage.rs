//! A PostgreSQL outage of twice the lease, with three live nodes running executions: no
//! execution fails. Every lease lapses during the outage; the nodes hold off their rescues until
//! the store has been back for a whole lease, the live holders renew their leases or record
//! their outcomes in that time, and runs that ended during the outage record them once the
//! store answers. A node that died just before the outage is still found out: its execution is
//! rescued a lease after the store came back, with a message that says so.
//!
//! Time is a [`MockClock`] shared by the nodes: the outage lasts two leases because the test
//! moves the clock two leases while the server is down, not because it sleeps.

mod common;

use std::time::{Duration, Instant};

use runner_core::engine::{Engine, EngineProbe, EngineSignal, RunningEngine, StartRequest};
use runner_core::execution::Status;
use runner_core::notifier::NoopNotifier;
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Gate, Script, ScriptedExecutor};
use runner_core::time::MockClock;
use runner_store_postgres::{PgStore, PgStoreOptions};

use common::cluster::Cluster;

type Node = Engine<PgStore, ScriptedExecutor, NoopNotifier, MockClock>;
type Running = RunningEngine<PgStore, ScriptedExecutor, NoopNotifier, MockClock>;

const LEASE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_secs(1);
/// How long a signal may take to come (real time): generous, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

async fn node(
    options: PgStoreOptions,
    name: &str,
    executor: &ScriptedExecutor,
    clock: &MockClock,
    concurrency: usize,
) -> (Node, EngineProbe, Running) {
    let store = common::connect(options).await;
    let engine = Engine::builder()
        .store(store)
        .executor(executor.clone())
        .clock(clock.clone())
        .node_id(name)
        .concurrency(concurrency)
        .prefetch(0)
        .lease(LEASE)
        .poll_interval(POLL)
        .test_signals()
        .build();
    let probe = engine.probe();
    let running = engine.clone().start();
    (engine, probe, running)
}

async fn signal(probe: &mut EngineProbe, signal: EngineSignal, node: usize) {
    tokio::time::timeout(PATIENCE, probe.wait_for(signal))
        .await
        .unwrap_or_else(|_| panic!("node-{node} never sent {signal:?}"));
}

/// Counts executions in `status`, through a store's pool.
async fn count(store: &PgStore, status: Status) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM executions WHERE status = $1")
        .bind(status.as_str())
        .fetch_one(store.pool())
        .await
        .unwrap_or(-1)
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_of_two_leases_fails_no_execution_of_a_live_node() {
    const EXECUTIONS: usize = 6;
    let cluster = Cluster::start();
    // Calls give up quickly while the server is down; the engine retries on its own.
    let options = PgStoreOptions::new(cluster.url()).retry_for(Duration::from_millis(300));
    let gate = Gate::new();
    let executor = ScriptedExecutor::new(Script::Gated(gate.clone()));
    let clock = MockClock::at(1_000_000);
    let account = alias("ACME");

    // First a node that will die during the outage, holding one execution.
    let doomed_executor = ScriptedExecutor::new(Script::Gated(Gate::new()));
    let (doomed, _, doomed_running) =
        node(options.clone(), "node-doomed", &doomed_executor, &clock, 1).await;
    let job = doomed
        .create_job(&account, inline_spec(&["a"]))
        .await
        .unwrap();
    let held = doomed
        .start_job(&account, job.id, StartRequest::default())
        .await
        .unwrap();
    wait_until("the doomed node runs its execution", || async {
        doomed_executor.runs().len() == 1
    })
    .await;
    // It dies just before the outage, so no heartbeat of it is still on its way.
    doomed_running.abort();

    let mut nodes = Vec::new();
    for n in 0..3 {
        nodes.push(node(options.clone(), &format!("node-{n}"), &executor, &clock, 4).await);
    }
    for n in 0..EXECUTIONS {
        nodes[n % 3]
            .0
            .start_job(&account, job.id, StartRequest::default())
            .await
            .unwrap();
    }
    wait_until("every execution runs", || async {
        executor.runs().len() == EXECUTIONS
    })
    .await;

    let outage = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    });
    let cluster = outage.await.unwrap();
    // Heartbeats and polls come due, and fail: every node sees the outage.
    clock.advance(LEASE / 3 + POLL);
    for (n, (_, probe, _)) in nodes.iter_mut().enumerate() {
        signal(probe, EngineSignal::StoreLost, n).await;
    }
    // Two leases without a store: every lease lapses.
    clock.advance(LEASE);
    clock.advance(LEASE);
    // Half the runs end during the outage; their outcomes wait for the store.
    gate.open(EXECUTIONS / 2);

    let back = tokio::task::spawn_blocking(move || {
        cluster.resume();
        cluster
    });
    let cluster = back.await.unwrap();
    // The next polls find the store, and the lapsed leases: not rescued yet, the store was not
    // back for a whole lease.
    clock.advance(POLL);
    for (n, (_, probe, _)) in nodes.iter_mut().enumerate() {
        signal(probe, EngineSignal::StoreBack, n).await;
    }
    let store = nodes[0].0.store().clone();
    wait_until(
        "the runs that ended in the outage recorded SUCCESS",
        || async { count(&store, Status::Success).await == (EXECUTIONS / 2) as i64 },
    )
    .await;
    // Heartbeats renew the lapsed leases of the runs still going; then they end too.
    clock.advance(LEASE / 3);
    clock.advance(POLL);
    gate.open(EXECUTIONS / 2);
    wait_until("every execution succeeded", || async {
        count(&store, Status::Success).await == EXECUTIONS as i64
    })
    .await;
    assert_eq!(count(&store, Status::Failure).await, 0);
    assert_eq!(executor.runs().len(), EXECUTIONS, "no execution ran twice");

    // A whole lease after the store came back, the dead node's execution is rescued.
    clock.advance(LEASE);
    wait_until("the dead node's execution is rescued", || async {
        count(&store, Status::Failure).await == 1
    })
    .await;
    let rescued = store
        .get_execution(&account, job.id, held.execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rescued.status, Status::Failure);
    assert_eq!(
        rescued.message.as_deref(),
        Some(
            "node gone: the store was unreachable, and once it was back the node running it \
             (node-doomed) did not renew its lease for a whole lease"
        )
    );
    assert_eq!(count(&store, Status::Success).await, EXECUTIONS as i64);
    for (_, _, running) in nodes {
        running.shutdown().await;
    }
    drop(cluster);
}
