//! The engine end to end on the memory store with the scripted executor: stop, kill, TTL,
//! restart, the concurrency limit, lease rescue and shutdown, as DECISIONS.md gives them.
//!
//! Time is a MockClock; tests wait for notifications and the engine's test signals, never for
//! wall-clock sleeps.

use std::sync::Arc;
use std::time::Duration;

use runner_core::engine::{Engine, EngineProbe, EngineSignal, RunningEngine, StartRequest};
use runner_core::execution::{Execution, Status};
use runner_core::executor::EventKind as Reported;
use runner_core::feed::EventKind;
use runner_core::ids::{AccountAlias, ExecutionId};
use runner_core::job::{Host, Job};
use runner_core::machine::Command;
use runner_core::notifier::{ChannelNotifier, Notification, NotificationKind};
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Gate, Script, ScriptedExecutor};
use runner_core::time::{Clock, MockClock};
use runner_store_memory::MemoryStore;
use tokio::sync::broadcast;

type TestEngine = Engine<Arc<MemoryStore>, ScriptedExecutor, ChannelNotifier, MockClock>;

struct Harness {
    engine: TestEngine,
    running: Option<RunningEngine<Arc<MemoryStore>, ScriptedExecutor, ChannelNotifier, MockClock>>,
    store: Arc<MemoryStore>,
    executor: ScriptedExecutor,
    clock: MockClock,
    notifications: broadcast::Receiver<Notification>,
    probe: EngineProbe,
    alias: AccountAlias,
}

impl Harness {
    fn new(concurrency: usize) -> Self {
        Self::with_store(
            Arc::new(MemoryStore::new()),
            concurrency,
            "node-1",
            MockClock::at(1_000_000),
        )
    }

    fn with_store(
        store: Arc<MemoryStore>,
        concurrency: usize,
        node: &str,
        clock: MockClock,
    ) -> Self {
        let executor = ScriptedExecutor::new(Script::Succeed);
        let notifier = ChannelNotifier::new(4096);
        let notifications = notifier.subscribe();
        let engine = Engine::builder()
            .store(Arc::clone(&store))
            .executor(executor.clone())
            .notifier(notifier)
            .clock(clock.clone())
            .node_id(node)
            .concurrency(concurrency)
            // Long enough that heartbeats never race a time jump in these tests; the lease test
            // sets its own.
            .lease(Duration::from_secs(24 * 3600))
            .shutdown_grace(Duration::from_secs(60))
            .test_signals()
            .build();
        let probe = engine.probe();
        let running = Some(engine.clone().start());
        Self {
            engine,
            running,
            store,
            executor,
            clock,
            notifications,
            probe,
            alias: alias("ACME"),
        }
    }

    async fn job(&self, script: Script) -> Job {
        let job = self
            .engine
            .create_job(&self.alias, inline_spec(&["a", "b", "c"]))
            .await
            .unwrap();
        self.executor.script(job.id, script);
        job
    }

    async fn start(&self, job: &Job) -> Execution {
        self.engine
            .start_job(&self.alias, job.id, StartRequest::default())
            .await
            .unwrap()
    }

    /// Waits until the engine reports `status` for `id`.
    async fn reached(&mut self, id: ExecutionId, status: Status) {
        wait_for(&mut self.notifications, id, status).await;
    }

    /// Waits until the engine reported `status` for every one of `ids`, in any order.
    async fn all_reached(&mut self, ids: &[ExecutionId], status: Status) {
        let mut waiting: std::collections::HashSet<ExecutionId> = ids.iter().copied().collect();
        let wait = async {
            while !waiting.is_empty() {
                match self.notifications.recv().await {
                    Ok(Notification {
                        execution_id,
                        kind: NotificationKind::Status { status: seen, .. },
                        ..
                    }) if seen == status => {
                        waiting.remove(&execution_id);
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(error) => panic!("notifications ended: {error}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("not every execution reached {status}"));
    }

    async fn read(&self, execution: &Execution) -> Execution {
        self.engine
            .get_execution(&self.alias, execution.job_id, execution.execution_id)
            .await
            .unwrap()
    }
}

/// Waits until the engine sends `signal`.
async fn signalled(probe: &mut EngineProbe, signal: EngineSignal) {
    // A bound so a broken engine fails the test instead of hanging CI; not a timing assertion.
    tokio::time::timeout(Duration::from_secs(60), probe.wait_for(signal))
        .await
        .unwrap_or_else(|_| panic!("the engine never signalled {signal:?}"));
}

async fn wait_for(
    notifications: &mut broadcast::Receiver<Notification>,
    id: ExecutionId,
    status: Status,
) {
    let wait = async {
        loop {
            match notifications.recv().await {
                Ok(Notification {
                    execution_id,
                    kind: NotificationKind::Status { status: seen, .. },
                    ..
                }) if execution_id == id && seen == status => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(error) => panic!("notifications ended: {error}"),
            }
        }
    };
    // A generous bound so a broken engine fails the test instead of hanging CI; not a timing assertion.
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("{id} never reached {status}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_runs_to_success_with_one_timer() {
    let mut h = Harness::new(2);
    let job = h.job(Script::Succeed).await;
    let execution = h.start(&job).await;
    assert_eq!(execution.status, Status::Pending);
    h.reached(execution.execution_id, Status::Running).await;
    h.reached(execution.execution_id, Status::Success).await;
    let done = h.read(&execution).await;
    assert_eq!(done.timers.len(), 1);
    assert!(done.timers[0].end.is_some());
    assert!(done.lease.is_none());
    assert_eq!(h.executor.runs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_lets_the_run_end_gracefully() {
    let mut h = Harness::new(2);
    let job = h.job(Script::UntilCancelled).await;
    let execution = h.start(&job).await;
    h.reached(execution.execution_id, Status::Running).await;
    let stopping = h
        .engine
        .stop(&h.alias, job.id, execution.execution_id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(stopping.status, Status::Stopping);
    h.reached(execution.execution_id, Status::Stopped).await;
    // Idempotent once stopped: answers with the final status.
    let again = h
        .engine
        .stop(&h.alias, job.id, execution.execution_id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.status, Status::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_escalates_to_kill_after_expiry_duration() {
    let mut h = Harness::new(2);
    let job = h.job(Script::IgnoreStop).await;
    let execution = h.start(&job).await;
    h.reached(execution.execution_id, Status::Running).await;
    let id = execution.execution_id;
    h.engine
        .stop(&h.alias, job.id, id, Duration::from_secs(5))
        .await
        .unwrap();
    h.reached(id, Status::Stopping).await;
    // Before the expiry nothing escalates: the run ignores graceful stops.
    h.clock.advance(Duration::from_secs(4));
    assert_eq!(h.read(&execution).await.status, Status::Stopping);
    h.clock.advance(Duration::from_secs(1));
    // KILLING comes first, but its notification may trail the worker's KILLED: wait for the end.
    h.reached(id, Status::Killed).await;
    let message = h.read(&execution).await.message.unwrap_or_default();
    assert!(
        message.contains("expiryDuration") || message.contains("kill"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_a_run_at_once_and_is_idempotent() {
    let mut h = Harness::new(2);
    let job = h.job(Script::IgnoreStop).await;
    let execution = h.start(&job).await;
    h.reached(execution.execution_id, Status::Running).await;
    let killing = h
        .engine
        .kill(&h.alias, job.id, execution.execution_id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(killing.status, Status::Killing);
    h.reached(execution.execution_id, Status::Killed).await;
    let again = h
        .engine
        .kill(&h.alias, job.id, execution.execution_id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.status, Status::Killed);
    let refused = h
        .engine
        .stop(&h.alias, job.id, execution.execution_id, Duration::ZERO)
        .await;
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("KILLED"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_stops_the_execution() {
    let mut h = Harness::new(2);
    let mut spec = inline_spec(&["a"]);
    spec.execution_ttl = Some(1);
    let job = h.engine.create_job(&h.alias, spec).await.unwrap();
    h.executor.script(job.id, Script::UntilCancelled);
    let execution = h.start(&job).await;
    h.reached(execution.execution_id, Status::Running).await;
    h.clock.advance(Duration::from_secs(59));
    assert_eq!(h.read(&execution).await.status, Status::Running);
    h.clock.advance(Duration::from_secs(1));
    // STOPPING comes first, but its notification may trail the worker's STOPPED.
    h.reached(execution.execution_id, Status::Stopped).await;
    let message = h.read(&execution).await.message.unwrap();
    assert!(message.contains("executionTtl"), "{message}");
}

/// A start's launch options are recorded on the execution, shown by its view, given to every
/// run of it (restarts too); a restart takes none of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_options_are_recorded_and_reused_by_a_restart() {
    let mut h = Harness::new(2);
    let job = h.job(Script::Fail(vec!["b".into()])).await;
    let request: StartRequest = serde_json::from_value(serde_json::json!({
        "properties": {"release": "1.2"},
        "playbookTags": ["deploy"],
        "skipTags": ["slow"],
        "limit": ["a", "b"],
        "check": true,
    }))
    .unwrap();
    let options = request.launch_options();
    let execution = h.engine.start_job(&h.alias, job.id, request).await.unwrap();
    let id = execution.execution_id;
    assert_eq!(execution.launch, options);
    let view = serde_json::to_value(h.read(&execution).await.view()).unwrap();
    assert_eq!(
        view["launch_options"]["playbookTags"],
        serde_json::json!(["deploy"])
    );
    assert_eq!(view["launch_options"]["check"], true);
    h.reached(id, Status::Failure).await;

    let with_options: StartRequest =
        serde_json::from_value(serde_json::json!({"check": false, "limit": ["a"]})).unwrap();
    let refused = h.engine.restart(&h.alias, job.id, id, with_options).await;
    let Err(runner_core::engine::EngineError::Invalid(errors)) = refused else {
        panic!("a restart with options must be refused: {refused:?}");
    };
    let fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["limit", "check"]);

    h.executor.script(job.id, Script::Succeed);
    h.engine
        .restart(&h.alias, job.id, id, StartRequest::default())
        .await
        .unwrap();
    h.reached(id, Status::Success).await;
    let runs = h.executor.runs();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|run| run.launch == options), "{runs:?}");
    let plain = h.start(&job).await;
    assert!(plain.launch.is_default());
    let view = serde_json::to_value(plain.view()).unwrap();
    assert!(
        view.get("launch_options").is_none(),
        "left out when nothing was varied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_runs_only_the_failed_hosts_and_appends_a_timer() {
    let mut h = Harness::new(2);
    let job = h.job(Script::Fail(vec!["b".into()])).await;
    let execution = h.start(&job).await;
    let id = execution.execution_id;
    h.reached(id, Status::Failure).await;
    assert_eq!(h.read(&execution).await.failed_hosts, ["b"]);
    h.executor.script(job.id, Script::Succeed);
    let restarted = h
        .engine
        .restart(&h.alias, job.id, id, StartRequest::default())
        .await
        .unwrap();
    assert_eq!(restarted.status, Status::Pending);
    assert!(restarted.failed_hosts.is_empty());
    assert_eq!(restarted.timers.len(), 2);
    h.reached(id, Status::Success).await;
    let runs = h.executor.runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].limit, None);
    assert_eq!(runs[1].limit, Some(vec!["b".to_owned()]));
    assert_eq!(runs[1].attempt, 2);
    let done = h.read(&execution).await;
    assert_eq!(done.timers.len(), 2);
    assert!(done.timers.iter().all(|timer| timer.end.is_some()));
    // Only a FAILURE can be restarted.
    let refused = h
        .engine
        .restart(&h.alias, job.id, id, StartRequest::default())
        .await;
    assert!(refused.unwrap_err().to_string().contains("SUCCESS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_given_hosts_runs_on_them() {
    let mut h = Harness::new(2);
    let job = h.job(Script::Fail(vec!["a".into()])).await;
    let execution = h.start(&job).await;
    h.reached(execution.execution_id, Status::Failure).await;
    let request = StartRequest {
        hosts: Some(vec![Host::named("c")]),
        ..StartRequest::default()
    };
    h.engine
        .restart(&h.alias, job.id, execution.execution_id, request)
        .await
        .unwrap();
    h.reached(execution.execution_id, Status::Failure).await;
    assert_eq!(h.executor.runs()[1].limit, Some(vec!["c".to_owned()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_hosts_replace_the_job_hosts_keeping_host_vars() {
    let mut h = Harness::new(2);
    let mut spec = inline_spec(&["a", "b"]);
    spec.hosts.as_mut().unwrap()[0]
        .host_vars
        .insert("role".into(), "web".into());
    let job = h.engine.create_job(&h.alias, spec).await.unwrap();
    let request = StartRequest {
        hosts: Some(vec![Host::named("a"), Host::named("z")]),
        ..StartRequest::default()
    };
    let execution = h.engine.start_job(&h.alias, job.id, request).await.unwrap();
    assert_eq!(execution.hosts.len(), 2);
    assert_eq!(execution.hosts[0].host_vars["role"], "web");
    h.reached(execution.execution_id, Status::Success).await;
    assert_eq!(h.executor.runs()[0].hosts, ["a", "z"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_is_never_exceeded() {
    let mut h = Harness::new(3);
    let gate = Gate::new();
    let job = h.job(Script::Gated(gate.clone())).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(h.start(&job).await.execution_id);
    }
    // Wait until the pool is full, then let the runs through one by one.
    let mut started = 0;
    while started < 3 {
        if let Ok(Notification {
            kind:
                NotificationKind::Status {
                    status: Status::Running,
                    ..
                },
            ..
        }) = h.notifications.recv().await
        {
            started += 1;
        }
    }
    assert_eq!(h.executor.running(), 3);
    gate.open(10);
    h.all_reached(&ids, Status::Success).await;
    assert_eq!(
        h.executor.most_running(),
        3,
        "the pool ran more than its concurrency"
    );
    assert_eq!(h.executor.runs().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_is_rescued_to_failure_and_can_be_restarted() {
    let store = Arc::new(MemoryStore::new());
    let clock = MockClock::at(1_000_000);
    // Node 1 claims the execution and then dies without a word.
    let executor = ScriptedExecutor::new(Script::UntilCancelled);
    let doomed = Engine::builder()
        .store(Arc::clone(&store))
        .executor(executor.clone())
        .clock(clock.clone())
        .node_id("node-doomed")
        .lease(Duration::from_secs(30))
        .test_signals()
        .build();
    let mut doomed_probe = doomed.probe();
    let job = doomed
        .create_job(&alias("ACME"), inline_spec(&["a"]))
        .await
        .unwrap();
    let execution = doomed
        .start_job(&alias("ACME"), job.id, StartRequest::default())
        .await
        .unwrap();
    let running = doomed.clone().start();
    signalled(
        &mut doomed_probe,
        EngineSignal::Started(execution.execution_id),
    )
    .await;
    running.abort();

    let mut survivor = Harness::with_store(Arc::clone(&store), 2, "node-2", clock.clone());
    survivor.executor.script(job.id, Script::Succeed);
    clock.advance(Duration::from_secs(31));
    survivor
        .reached(execution.execution_id, Status::Failure)
        .await;
    let failed = survivor.read(&execution).await;
    assert!(
        failed.message.as_deref().unwrap().contains("node-doomed"),
        "{failed:?}"
    );
    // The doomed node's late outcome is fenced off.
    let late = store
        .transition(
            execution.execution_id,
            &Command::Finish {
                attempt: 1,
                report: runner_core::execution::RunReport::new(
                    runner_core::execution::Outcome::Succeeded,
                ),
            },
            clock.now(),
        )
        .await;
    assert!(late.is_err());
    survivor
        .engine
        .restart(
            &survivor.alias,
            job.id,
            execution.execution_id,
            StartRequest::default(),
        )
        .await
        .unwrap();
    survivor
        .reached(execution.execution_id, Status::Success)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_runs_then_hands_back_the_rest() {
    let mut h = Harness::new(2);
    let quick_gate = Gate::new();
    let quick = h.job(Script::Gated(quick_gate.clone())).await;
    let stuck = h.job(Script::IgnoreStop).await;
    let finishing = h.start(&quick).await;
    let handed_back = h.start(&stuck).await;
    h.all_reached(
        &[finishing.execution_id, handed_back.execution_id],
        Status::Running,
    )
    .await;

    let running = h.running.take().unwrap();
    // The harness's grace is 60 s, and the clock stands still until the test moves it.
    let grace_end = h.clock.now() + 60_000;
    let shutdown = tokio::spawn(running.shutdown());
    // During the grace a run may finish normally.
    quick_gate.open(1);
    h.reached(finishing.execution_id, Status::Success).await;
    assert!(!shutdown.is_finished());
    // The grace passes: the stuck run is cancelled and handed back to PENDING for another node.
    // Move time only once shutdown has fixed the end of its grace, or the grace would be counted
    // from after the jump and never end.
    signalled(
        &mut h.probe,
        EngineSignal::ShutdownGrace { until: grace_end },
    )
    .await;
    h.clock.advance(Duration::from_secs(60));
    shutdown.await.unwrap();
    let back = h.read(&handed_back).await;
    assert_eq!(back.status, Status::Pending);
    assert!(back.lease.is_none());
    assert_eq!(h.engine.running_count(), 0);
    // Another node picks it up under a new attempt.
    let mut next = Harness::with_store(Arc::clone(&h.store), 1, "node-2", h.clock.clone());
    next.executor.script(stuck.id, Script::Succeed);
    next.reached(handed_back.execution_id, Status::Success)
        .await;
    let done = next.read(&handed_back).await;
    assert_eq!(done.attempt, 2);
    assert_eq!(done.timers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_kill_of_pending_end_it_without_a_run() {
    let mut h = Harness::new(1);
    let gate = Gate::new();
    let blocker_job = h.job(Script::Gated(gate.clone())).await;
    let blocker = h.start(&blocker_job).await;
    let job = h.job(Script::Succeed).await;
    let first = h.start(&job).await;
    let second = h.start(&job).await;
    // With one slot taken by the blocker, both wait in PENDING.
    let stopped = h
        .engine
        .stop(&h.alias, job.id, first.execution_id, Duration::ZERO)
        .await
        .unwrap();
    let killed = h
        .engine
        .kill(&h.alias, job.id, second.execution_id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        (stopped.status, killed.status),
        (Status::Stopped, Status::Killed)
    );
    gate.open(1);
    h.reached(blocker.execution_id, Status::Success).await;
    assert!(
        h.executor
            .runs()
            .iter()
            .all(|run| run.execution_id == blocker.execution_id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_job_is_refused() {
    let mut h = Harness::new(1);
    let job = h.job(Script::UntilCancelled).await;
    let execution = h.start(&job).await;
    h.reached(execution.execution_id, Status::Running).await;
    let refused = h.engine.delete_job(&h.alias, job.id).await.unwrap_err();
    assert!(refused.to_string().contains("RUNNING"), "{refused}");
    h.engine
        .kill(&h.alias, job.id, execution.execution_id, Duration::ZERO)
        .await
        .unwrap();
    h.reached(execution.execution_id, Status::Killed).await;
    h.engine.delete_job(&h.alias, job.id).await.unwrap();
    // Its executions stay readable.
    assert_eq!(h.read(&execution).await.status, Status::Killed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_records_executor_events_between_running_and_the_outcome() {
    let mut h = Harness::new(2);
    let job = h.job(Script::Fail(vec!["b".into(), "c".into()])).await;
    let execution = h.start(&job).await;
    h.reached(execution.execution_id, Status::Failure).await;
    let feed = h
        .store
        .list_events(&h.alias, job.id, execution.execution_id, 0, 100)
        .await
        .unwrap();
    let seen: Vec<(u64, EventKind, Option<Status>, Option<&str>)> = feed
        .iter()
        .map(|event| {
            (
                event.sequence,
                event.kind,
                event.status,
                event.host.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, EventKind::Status, Some(Status::Pending), None),
            (2, EventKind::Status, Some(Status::Initializing), None),
            (3, EventKind::Status, Some(Status::Running), None),
            (
                4,
                EventKind::Executor(Reported::HostFailed),
                None,
                Some("b")
            ),
            (
                5,
                EventKind::Executor(Reported::HostFailed),
                None,
                Some("c")
            ),
            (6, EventKind::Status, Some(Status::Failure), None),
        ]
    );
}
