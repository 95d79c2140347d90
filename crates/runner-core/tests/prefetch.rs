//! Prefetch: executions claimed ahead of free places (`EngineConfig::prefetch`), on the memory
//! store with the scripted executor and a MockClock. Tests wait for notifications and the
//! engine's test signals, never for wall-clock sleeps.

use std::sync::Arc;
use std::time::Duration;

use runner_core::engine::{Engine, EngineProbe, EngineSignal, RunningEngine, StartRequest};
use runner_core::execution::{Execution, Status};
use runner_core::ids::{AccountAlias, ExecutionId};
use runner_core::job::Job;
use runner_core::notifier::{ChannelNotifier, Notification, NotificationKind};
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Gate, Script, ScriptedExecutor};
use runner_core::time::{Clock, MockClock};
use runner_store_memory::MemoryStore;
use tokio::sync::broadcast;

type TestEngine = Engine<Arc<MemoryStore>, ScriptedExecutor, ChannelNotifier, MockClock>;

const LEASE: Duration = Duration::from_secs(60);
const PREFETCH_WAIT: Duration = Duration::from_secs(10);

struct Node {
    engine: TestEngine,
    running: Option<RunningEngine<Arc<MemoryStore>, ScriptedExecutor, ChannelNotifier, MockClock>>,
    executor: ScriptedExecutor,
    notifications: broadcast::Receiver<Notification>,
    probe: EngineProbe,
}

impl Node {
    /// A started engine on `store`: concurrency 1, prefetch 2.
    fn start(store: &Arc<MemoryStore>, name: &str, clock: &MockClock) -> Self {
        let executor = ScriptedExecutor::new(Script::Succeed);
        let notifier = ChannelNotifier::new(4096);
        let notifications = notifier.subscribe();
        let engine = Engine::builder()
            .store(Arc::clone(store))
            .executor(executor.clone())
            .notifier(notifier)
            .clock(clock.clone())
            .node_id(name)
            .concurrency(1)
            .prefetch(2)
            .prefetch_wait(PREFETCH_WAIT)
            .lease(LEASE)
            .shutdown_grace(Duration::from_secs(3600))
            .test_signals()
            .build();
        let probe = engine.probe();
        let running = Some(engine.clone().start());
        Self {
            engine,
            running,
            executor,
            notifications,
            probe,
        }
    }

    async fn job(&self, script: Script) -> Job {
        let job = self
            .engine
            .create_job(&account(), inline_spec(&["a"]))
            .await
            .unwrap();
        self.executor.script(job.id, script);
        job
    }

    async fn start_job(&self, job: &Job) -> ExecutionId {
        self.engine
            .start_job(&account(), job.id, StartRequest::default())
            .await
            .unwrap()
            .execution_id
    }

    /// Waits until this node reports `status` for `id`.
    async fn reached(&mut self, id: ExecutionId, status: Status) {
        self.all_reached(&[(id, status)]).await;
    }

    /// Waits until this node reported each (execution, status) of `expected`, in any order: a
    /// place is given back before the outcome is recorded, so the next execution's notifications
    /// may come before the previous one's last.
    async fn all_reached(&mut self, expected: &[(ExecutionId, Status)]) {
        let mut missing: Vec<(ExecutionId, Status)> = expected.to_vec();
        let wait = async {
            while !missing.is_empty() {
                match self.notifications.recv().await {
                    Ok(Notification {
                        execution_id,
                        kind: NotificationKind::Status { status: seen, .. },
                        ..
                    }) => missing.retain(|&(id, status)| (id, status) != (execution_id, seen)),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(error) => panic!("notifications ended: {error}"),
                }
            }
        };
        // A bound so that a broken engine fails the test instead of hanging; not a timing assertion.
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("not all of {expected:?} were reached"));
    }

    /// Waits until this node claimed each of `ids` and left it waiting for a place.
    async fn prefetched(&mut self, ids: &[ExecutionId]) {
        let signals = ids.iter().map(|id| EngineSignal::Prefetched(*id));
        // A bound so that a broken engine fails the test instead of hanging; not a timing assertion.
        tokio::time::timeout(Duration::from_secs(60), self.probe.wait_for_all(signals))
            .await
            .unwrap_or_else(|_| panic!("{ids:?} were never prefetched"));
    }

    /// Drops the notifications received so far (those of `start_job`, say).
    fn forget_notifications(&mut self) {
        loop {
            match self.notifications.try_recv() {
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    }

    /// Runs one quick execution to its end: a short run turns prefetching on.
    /// Starts a run that holds its place until `gate` opens; returns once it is RUNNING.
    async fn occupy(&mut self, gate: &Gate) -> ExecutionId {
        let gated = self.job(Script::Gated(gate.clone())).await;
        let busy = self.start_job(&gated).await;
        self.reached(busy, Status::Running).await;
        busy
    }

    async fn warm_up(&mut self) {
        let quick = self.job(Script::Succeed).await;
        let id = self.start_job(&quick).await;
        self.reached(id, Status::Success).await;
    }
}

fn account() -> AccountAlias {
    alias("ACME")
}

async fn read(store: &MemoryStore, job: &Job, id: ExecutionId) -> Execution {
    store
        .get_execution(&account(), job.id, id)
        .await
        .unwrap()
        .expect("stored")
}

/// Checks that every one of `ids` (of `job`) is INITIALIZING under a claim of `node`.
async fn assert_claimed_by(store: &MemoryStore, job: &Job, ids: &[ExecutionId], node: &str) {
    for id in ids {
        let execution = read(store, job, *id).await;
        assert_eq!(execution.status, Status::Initializing, "{id}");
        assert!(
            execution.lease.as_ref().is_some_and(|l| l.node == node),
            "{id} is not claimed by {node}: {:?}",
            execution.lease
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetched_executions_wait_under_a_full_lease_and_start_when_a_place_frees() {
    let store = Arc::new(MemoryStore::new());
    let clock = MockClock::at(1_000_000);
    let mut node = Node::start(&store, "node-1", &clock);
    node.warm_up().await;

    let gate = Gate::new();
    let busy = node.occupy(&gate).await;

    // The only place is taken: the next two are claimed ahead, and wait.
    let waits = node.job(Script::UntilCancelled).await;
    let quick = node.job(Script::Succeed).await;
    let first = node.start_job(&waits).await;
    let second = node.start_job(&quick).await;
    node.prefetched(&[first, second]).await;
    assert_claimed_by(&store, &waits, &[first], "node-1").await;
    assert_claimed_by(&store, &quick, &[second], "node-1").await;
    assert_eq!(node.executor.running(), 1, "a prefetched execution ran");
    // Claimed with the whole lease; the wait is bounded well inside it.
    let waiting = read(&store, &waits, first).await;
    assert_eq!(
        waiting.lease.unwrap().expires_at,
        clock.now() + i64::try_from(LEASE.as_millis()).unwrap()
    );
    assert!(PREFETCH_WAIT <= LEASE / 3);

    // A stop that comes while it waits reaches its worker once it starts: without it, the run of
    // `first` would never end.
    node.engine
        .stop(&account(), waits.id, first, Duration::ZERO)
        .await
        .unwrap();
    gate.open(1);
    node.all_reached(&[
        (busy, Status::Success),
        (first, Status::Stopped),
        (second, Status::Success),
    ])
    .await;
    for (job, id) in [(&waits, first), (&quick, second)] {
        assert_eq!(
            read(&store, job, id).await.attempt,
            1,
            "handed back meanwhile"
        );
    }
    assert_eq!(node.executor.most_running(), 1, "ran past its concurrency");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_node_hands_its_prefetch_back_to_an_idle_node() {
    let store = Arc::new(MemoryStore::new());
    let clock = MockClock::at(1_000_000);
    let mut busy_node = Node::start(&store, "node-1", &clock);
    busy_node.warm_up().await;
    let gate = Gate::new();
    let busy = busy_node.occupy(&gate).await;
    let quick = busy_node.job(Script::Succeed).await;
    let first = busy_node.start_job(&quick).await;
    let second = busy_node.start_job(&quick).await;
    busy_node.prefetched(&[first, second]).await;
    assert_claimed_by(&store, &quick, &[first, second], "node-1").await;

    // An idle node finds nothing to claim until the busy one gives up waiting for a place.
    let mut idle_node = Node::start(&store, "node-2", &clock);
    clock.advance(PREFETCH_WAIT);
    idle_node
        .all_reached(&[(first, Status::Success), (second, Status::Success)])
        .await;
    for id in [first, second] {
        assert_eq!(read(&store, &quick, id).await.attempt, 2);
    }
    let ran_on_idle: Vec<ExecutionId> = idle_node
        .executor
        .runs()
        .iter()
        .map(|run| run.execution_id)
        .collect();
    assert_eq!(ran_on_idle.len(), 2);
    assert!(ran_on_idle.contains(&first) && ran_on_idle.contains(&second));
    assert_eq!(busy_node.executor.running(), 1);
    gate.open(1);
    busy_node.reached(busy, Status::Success).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_long_runs_does_not_prefetch() {
    let store = Arc::new(MemoryStore::new());
    let clock = MockClock::at(1_000_000);
    let mut busy_node = Node::start(&store, "node-1", &clock);
    busy_node.warm_up().await;
    // A run longer than the prefetch wait turns prefetching off.
    let long_gate = Gate::new();
    let long = busy_node.job(Script::Gated(long_gate.clone())).await;
    let long_run = busy_node.start_job(&long).await;
    busy_node.reached(long_run, Status::Running).await;
    clock.advance(PREFETCH_WAIT);
    long_gate.open(1);
    busy_node.reached(long_run, Status::Success).await;

    let gate = Gate::new();
    let busy = busy_node.occupy(&gate).await;
    let quick = busy_node.job(Script::Succeed).await;
    let waiting = busy_node.start_job(&quick).await;
    // The clock stands still from here: had the busy node claimed it, it would keep it.
    let mut idle_node = Node::start(&store, "node-2", &clock);
    idle_node.reached(waiting, Status::Success).await;
    assert_eq!(read(&store, &quick, waiting).await.attempt, 1);
    gate.open(1);
    busy_node.reached(busy, Status::Success).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hands_prefetched_executions_back_at_once() {
    let store = Arc::new(MemoryStore::new());
    let clock = MockClock::at(1_000_000);
    let mut node = Node::start(&store, "node-1", &clock);
    node.warm_up().await;
    let gate = Gate::new();
    let busy = node.occupy(&gate).await;
    let quick = node.job(Script::Succeed).await;
    let first = node.start_job(&quick).await;
    let second = node.start_job(&quick).await;
    node.prefetched(&[first, second]).await;
    assert_claimed_by(&store, &quick, &[first, second], "node-1").await;

    // The PENDING notifications of start_job are not the hand-back's.
    node.forget_notifications();
    let shutdown = tokio::spawn(node.running.take().unwrap().shutdown());
    node.all_reached(&[(first, Status::Pending), (second, Status::Pending)])
        .await;
    // The running execution may still finish within the grace.
    gate.open(1);
    node.reached(busy, Status::Success).await;
    shutdown.await.unwrap();
    for id in [first, second] {
        let back = read(&store, &quick, id).await;
        assert_eq!(back.status, Status::Pending);
        assert!(back.lease.is_none());
    }
    assert_eq!(
        node.executor.runs().len(),
        2,
        "only the warm-up and the busy run"
    );
}

/// A program that ends without a shutdown drops its runtime with workers alive and executions
/// waiting: each dropped worker gives its place back, which must not wait on itself.
#[test]
fn dropping_the_runtime_with_executions_waiting_ends() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    runtime.block_on(async {
        let clock = MockClock::at(1_000_000);
        let mut node = Node::start(&store, "node-1", &clock);
        node.warm_up().await;
        let gate = Gate::new();
        node.occupy(&gate).await;
        let quick = node.job(Script::Succeed).await;
        let first = node.start_job(&quick).await;
        let second = node.start_job(&quick).await;
        node.prefetched(&[first, second]).await;
    });
    let (dropped, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(runtime);
        let _ = dropped.send(());
    });
    // A bound so that a hang fails the test instead of CI; not a timing assertion.
    ended
        .recv_timeout(Duration::from_secs(60))
        .expect("dropping the runtime hung");
}
