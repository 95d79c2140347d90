//! Several engines, each with its own PgStore pool and node id, sharing one database: every
//! execution runs exactly once; a node that dies mid-run is rescued by the others; a PostgreSQL
//! restart loses nothing; runs of a job that queues or skips overlapping runs never overlap.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use runner_core::engine::{Engine, RunningEngine, StartRequest};
use runner_core::execution::{Execution, Status};
use runner_core::ids::ExecutionId;
use runner_core::notifier::NoopNotifier;
use runner_core::store::StoreError;
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Gate, Script, ScriptedExecutor};
use runner_core::time::SystemClock;
use runner_store_postgres::{PgStore, PgStoreOptions};

use common::cluster::Cluster;

type Node = Engine<PgStore, ScriptedExecutor, NoopNotifier, SystemClock>;
type Running = RunningEngine<PgStore, ScriptedExecutor, NoopNotifier, SystemClock>;

async fn node(
    options: PgStoreOptions,
    name: &str,
    executor: &ScriptedExecutor,
    lease: Duration,
) -> (Node, Running) {
    let store = common::connect(options).await;
    let engine = Engine::builder()
        .store(store)
        .executor(executor.clone())
        .node_id(name)
        .concurrency(16)
        .lease(lease)
        .poll_interval(Duration::from_millis(100))
        .shutdown_grace(Duration::from_secs(5))
        .build();
    let running = engine.clone().start();
    (engine, running)
}

/// Counts executions of the schema in `status`, read through a store's pool.
async fn count(store: &PgStore, status: Status) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM executions WHERE status = $1")
        .bind(status.as_str())
        .fetch_one(store.pool())
        .await
        .unwrap_or(-1)
}

/// Polls `check` until it holds; panics with `what` after `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Removes a test's schema once it passed (a failed test leaves it for a look).
async fn drop_schema(store: &PgStore, options: &PgStoreOptions) {
    if let Some(schema) = &options.schema {
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(store.pool())
            .await
            .expect("drop the test schema");
    }
}

fn assert_each_ran_once(executor: &ScriptedExecutor, expected: &HashSet<ExecutionId>) {
    let runs = executor.runs();
    let ran: HashSet<ExecutionId> = runs.iter().map(|run| run.execution_id).collect();
    assert_eq!(ran.len(), runs.len(), "an execution ran twice");
    assert_eq!(&ran, expected, "every execution ran");
    assert!(runs.iter().all(|run| run.attempt == 1), "one claim each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_engines_run_five_thousand_executions_exactly_once() {
    const EXECUTIONS: usize = 5_000;
    let options = common::fresh_options();
    let executor = ScriptedExecutor::new(Script::Succeed);
    let lease = Duration::from_secs(30);
    let mut nodes = Vec::new();
    for n in 0..3 {
        nodes.push(node(options.clone(), &format!("node-{n}"), &executor, lease).await);
    }
    let account = alias("ACME");
    let job = nodes[0]
        .0
        .create_job(&account, inline_spec(&["a"]))
        .await
        .unwrap();

    // Start them through all three nodes at once, while the engines already run.
    let mut starters = tokio::task::JoinSet::new();
    for (n, (engine, _)) in nodes.iter().enumerate() {
        for part in 0..4 {
            let engine = engine.clone();
            let account = account.clone();
            let share = EXECUTIONS / 12 + usize::from(n * 4 + part < EXECUTIONS % 12);
            starters.spawn(async move {
                let mut ids = Vec::with_capacity(share);
                for _ in 0..share {
                    let execution = engine
                        .start_job(&account, job.id, StartRequest::default())
                        .await
                        .expect("start");
                    ids.push(execution.execution_id);
                }
                ids
            });
        }
    }
    let mut expected = HashSet::new();
    while let Some(ids) = starters.join_next().await {
        expected.extend(ids.unwrap());
    }
    assert_eq!(expected.len(), EXECUTIONS);

    let store = nodes[0].0.store().clone();
    wait_until(
        "every execution succeeded",
        Duration::from_secs(180),
        || async { count(&store, Status::Success).await == EXECUTIONS as i64 },
    )
    .await;
    assert_each_ran_once(&executor, &expected);
    let listed = store
        .list_executions(
            &account,
            job.id,
            runner_core::page::PageRequest { page: 0, size: 1 },
        )
        .await
        .unwrap();
    assert_eq!(listed.total_size, EXECUTIONS as u64);
    for (_, running) in nodes {
        running.shutdown().await;
    }
    drop_schema(&store, &options).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executions_of_an_aborted_node_are_rescued_by_the_others() {
    const HELD: usize = 10;
    const MORE: usize = 100;
    let options = common::fresh_options();
    let lease = Duration::from_secs(2);
    let gate = Gate::new();
    let held_executor = ScriptedExecutor::new(Script::Gated(gate));
    let (doomed, doomed_running) = node(options.clone(), "node-a", &held_executor, lease).await;
    let account = alias("ACME");
    let job = doomed
        .create_job(&account, inline_spec(&["a"]))
        .await
        .unwrap();
    let mut held = HashSet::new();
    for _ in 0..HELD {
        let execution = doomed
            .start_job(&account, job.id, StartRequest::default())
            .await
            .unwrap();
        held.insert(execution.execution_id);
    }
    wait_until(
        "node-a runs every execution",
        Duration::from_secs(30),
        || async { held_executor.running() == HELD },
    )
    .await;
    // A crash: no release, no heartbeat, nothing written.
    doomed_running.abort();

    let executor = ScriptedExecutor::new(Script::Succeed);
    let (b, b_running) = node(options.clone(), "node-b", &executor, lease).await;
    let (_c, c_running) = node(options.clone(), "node-c", &executor, lease).await;
    let mut more = HashSet::new();
    for _ in 0..MORE {
        let execution = b
            .start_job(&account, job.id, StartRequest::default())
            .await
            .unwrap();
        more.insert(execution.execution_id);
    }
    let store = b.store().clone();
    wait_until(
        "the held executions failed",
        Duration::from_secs(60),
        || async { count(&store, Status::Failure).await == HELD as i64 },
    )
    .await;
    wait_until("the others succeeded", Duration::from_secs(60), || async {
        count(&store, Status::Success).await == MORE as i64
    })
    .await;
    for id in &held {
        let execution = store
            .get_execution(&account, job.id, *id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(execution.status, Status::Failure);
        assert_eq!(
            execution.message.as_deref(),
            Some("node gone: the node running it (node-a) stopped renewing its lease"),
        );
        assert!(execution.lease.is_none());
    }
    // The rescued executions ended; they did not run again elsewhere.
    assert_each_ran_once(&executor, &more);
    assert_eq!(held_executor.runs().len(), HELD);
    b_running.shutdown().await;
    c_running.shutdown().await;
    drop_schema(&store, &options).await;
}

/// Inserts an execution, retrying while the database restarts; a retry that finds it already
/// stored (its first try landed) counts as done.
async fn insert_retrying(store: &PgStore, execution: &Execution) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.insert_execution(execution).await {
            Ok(()) | Err(StoreError::Conflict(_)) => return,
            Err(error) => {
                assert!(Instant::now() < deadline, "insert kept failing: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engines_ride_out_a_postgres_restart() {
    const EXECUTIONS: usize = 3_000;
    let cluster = Cluster::start();
    let options = PgStoreOptions::new(cluster.url()).retry_for(Duration::from_secs(30));
    let executor = ScriptedExecutor::new(Script::Succeed);
    let lease = Duration::from_secs(30);
    let mut nodes = Vec::new();
    for n in 0..3 {
        nodes.push(node(options.clone(), &format!("node-{n}"), &executor, lease).await);
    }
    let account = alias("ACME");
    let job = nodes[0]
        .0
        .create_job(&account, inline_spec(&["a"]))
        .await
        .unwrap();
    let executions: Vec<Execution> = (0..EXECUTIONS)
        .map(|n| Execution::new(&job, None, None, 1_000 + n as i64))
        .collect();
    let expected: HashSet<ExecutionId> = executions.iter().map(|e| e.execution_id).collect();

    let mut starters = tokio::task::JoinSet::new();
    for (n, part) in executions.chunks(EXECUTIONS / 6).enumerate() {
        let store = nodes[n % 3].0.store().clone();
        let part = part.to_vec();
        starters.spawn(async move {
            for execution in &part {
                insert_retrying(&store, execution).await;
            }
        });
    }

    // Restart the server once a third has run, while work is queued and running.
    wait_until("a third has run", Duration::from_secs(120), || async {
        executor.runs().len() >= EXECUTIONS / 3
    })
    .await;
    let ran_before = executor.runs().len();
    let restart = tokio::task::spawn_blocking(move || {
        cluster.restart();
        cluster
    });
    let cluster = restart.await.unwrap();
    assert!(ran_before < EXECUTIONS, "the restart came mid-run");

    while let Some(done) = starters.join_next().await {
        done.unwrap();
    }
    let store = nodes[0].0.store().clone();
    wait_until(
        "every execution succeeded",
        Duration::from_secs(180),
        || async { count(&store, Status::Success).await == EXECUTIONS as i64 },
    )
    .await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM executions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(total, EXECUTIONS as i64);
    assert_each_ran_once(&executor, &expected);
    for (_, running) in nodes {
        running.shutdown().await;
    }
    drop(cluster);
}

/// Three nodes on `options`' database, running `executor` under a 30 s lease.
async fn three_nodes(
    options: &PgStoreOptions,
    executor: &ScriptedExecutor,
) -> Vec<(Node, Running)> {
    let mut nodes = Vec::new();
    for n in 0..3 {
        let name = format!("node-{n}");
        nodes.push(node(options.clone(), &name, executor, Duration::from_secs(30)).await);
    }
    nodes
}

/// A job under `overlap`, created through `engine`.
async fn job_under(engine: &Node, overlap: runner_core::overlap::Overlap) -> runner_core::job::Job {
    let mut spec = inline_spec(&["a"]);
    spec.overlap = overlap;
    engine.create_job(&alias("ACME"), spec).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_runs_take_turns_across_three_nodes() {
    const QUEUED: usize = 6;
    const BESIDE: usize = 5;
    let options = common::fresh_options();
    let gate = Gate::new();
    let executor = ScriptedExecutor::new(Script::Gated(gate.clone()));
    let nodes = three_nodes(&options, &executor).await;
    let account = alias("ACME");
    let queued = job_under(&nodes[0].0, runner_core::overlap::Overlap::Queue).await;
    let free = job_under(&nodes[0].0, runner_core::overlap::Overlap::Allow).await;
    executor.script(free.id, Script::Succeed);
    let mut order = Vec::new();
    for n in 0..QUEUED {
        let execution = nodes[n % 3]
            .0
            .start_job(&account, queued.id, StartRequest::default())
            .await
            .unwrap();
        order.push(execution.execution_id);
    }
    // Runs of a job that allows overlap go by beside the queue.
    for n in 0..BESIDE {
        nodes[n % 3]
            .0
            .start_job(&account, free.id, StartRequest::default())
            .await
            .unwrap();
    }
    let store = nodes[0].0.store().clone();
    wait_until(
        "the other job's runs ended",
        Duration::from_secs(60),
        || async { count(&store, Status::Success).await == BESIDE as i64 },
    )
    .await;

    for (turn, id) in order.iter().enumerate() {
        wait_until(
            &format!("run {turn} of the queue has its turn"),
            Duration::from_secs(60),
            || async {
                executor
                    .runs()
                    .iter()
                    .filter(|run| run.execution_id == *id)
                    .count()
                    == 1
            },
        )
        .await;
        assert_eq!(executor.running(), 1, "one run of the queue at a time");
        gate.open(1);
    }
    wait_until("the queue ran through", Duration::from_secs(60), || async {
        count(&store, Status::Success).await == (QUEUED + BESIDE) as i64
    })
    .await;
    let ran: Vec<ExecutionId> = executor
        .runs()
        .iter()
        .map(|run| run.execution_id)
        .filter(|id| order.contains(id))
        .collect();
    assert_eq!(ran, order, "in start order");
    for (_, running) in nodes {
        running.shutdown().await;
    }
    drop_schema(&store, &options).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_skipping_job_starts_once_when_three_nodes_race() {
    let options = common::fresh_options();
    let gate = Gate::new();
    let executor = ScriptedExecutor::new(Script::Gated(gate.clone()));
    let nodes = three_nodes(&options, &executor).await;
    let account = alias("ACME");
    let job = job_under(&nodes[0].0, runner_core::overlap::Overlap::Skip).await;
    let starts = nodes.iter().flat_map(|(engine, _)| {
        (0..4).map(|_| engine.start_job(&account, job.id, StartRequest::default()))
    });
    let answers = futures_util::future::join_all(starts).await;
    let started: Vec<&Execution> = answers
        .iter()
        .filter_map(|answer| answer.as_ref().ok())
        .collect();
    assert_eq!(started.len(), 1, "exactly one start of twelve goes through");
    let winner = started[0].execution_id;
    for answer in &answers {
        if let Err(error) = answer {
            assert!(
                matches!(error, runner_core::engine::EngineError::Conflict(message)
                    if message.contains(&winner.to_string())),
                "refused naming the one that runs: {error}"
            );
        }
    }
    wait_until("it runs", Duration::from_secs(60), || async {
        executor.running() == 1
    })
    .await;
    let refused = nodes[2]
        .0
        .start_job(&account, job.id, StartRequest::default())
        .await;
    assert!(refused.is_err(), "still refused while it runs");
    gate.open(1);
    let store = nodes[0].0.store().clone();
    wait_until("it ended", Duration::from_secs(60), || async {
        count(&store, Status::Success).await == 1
    })
    .await;
    nodes[1]
        .0
        .start_job(&account, job.id, StartRequest::default())
        .await
        .expect("it ended: a start goes through");
    gate.open(1);
    for (_, running) in nodes {
        running.shutdown().await;
    }
    drop_schema(&store, &options).await;
}
