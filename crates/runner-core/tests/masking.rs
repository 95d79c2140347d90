//! Whatever an executor reports, the run's secrets never reach the feed, the notifier or the
//! execution's message, and event texts are capped after masking (so a cut cannot leave part of
//! a secret).

use std::time::Duration;

use base64::Engine as _;
use runner_core::engine::{Engine, EngineSignal, StartRequest};
use runner_core::execution::{RunReport, Status};
use runner_core::executor::{
    Cancellation, EventKind, EventSink, Executor, ExecutorEvent, Run, TRUNCATION_MARKER, TaskResult,
};
use runner_core::notifier::{ChannelNotifier, NotificationKind};
use runner_core::secret::{MASK, Secret};
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::time::MockClock;
use runner_store_memory::MemoryStore;

const KEY: &str = "KEYMATERIAL-0123456789";
const LIMIT: usize = 64;

/// Prints the job's key (decoded, as a task that reads the key file would) everywhere it can.
struct Leaky;

impl Executor for Leaky {
    async fn run(&self, run: Run, events: EventSink, _cancel: Cancellation) -> RunReport {
        let encoded = run.job.spec.ssh_private_key.as_ref().unwrap().expose();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let key = String::from_utf8(decoded).unwrap().trim().to_owned();
        events.workspace_ready();
        events.emit(ExecutorEvent {
            host: Some("h1".into()),
            task: Some("leak".into()),
            message: Some(format!("the key is {key}")),
            result: Some(Box::new(TaskResult {
                // The key straddles the cut: capping first would leave its first bytes.
                stdout: Some(format!("{}{key}", "a".repeat(LIMIT - 4))),
                stderr: Some(format!("{} {key}", "b".repeat(3 * LIMIT))),
                msg: Some(key.clone()),
                ..TaskResult::default()
            })),
            ..ExecutorEvent::new(EventKind::HostFailed)
        });
        RunReport::failed(format!("h1: leak: failed with {key}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_masked_before_events_are_capped_and_recorded() {
    let notifier = ChannelNotifier::new(64);
    let mut notifications = notifier.subscribe();
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .executor(Leaky)
        .notifier(notifier)
        .clock(MockClock::at(1_000_000))
        .lease(Duration::from_secs(3600))
        .event_field_bytes(LIMIT)
        .test_signals()
        .build();
    let mut probe = engine.probe();
    let running = engine.clone().start();
    let account = alias("ACME");
    let mut spec = inline_spec(&[]);
    spec.ssh_private_key = Some(Secret::new(
        base64::engine::general_purpose::STANDARD.encode(format!("{KEY}\n")),
    ));
    let job = engine.create_job(&account, spec).await.unwrap();
    let started = engine
        .start_job(&account, job.id, StartRequest::default())
        .await
        .unwrap();
    let id = started.execution_id;
    tokio::time::timeout(
        Duration::from_secs(30),
        probe.wait_for(EngineSignal::Finished(id)),
    )
    .await
    .expect("the run ends");

    let ended = engine.get_execution(&account, job.id, id).await.unwrap();
    assert_eq!(ended.status, Status::Failure);
    assert_eq!(
        ended.message.as_deref(),
        Some(format!("h1: leak: failed with {MASK}").as_str())
    );

    let events = engine
        .list_events(&account, job.id, id, 0, 100)
        .await
        .unwrap();
    let feed = serde_json::to_string(&events).unwrap();
    assert!(!feed.contains("KEYM"), "no secret, not even a part: {feed}");
    let leak = events
        .iter()
        .find(|event| event.task.as_deref() == Some("leak"))
        .unwrap();
    assert_eq!(
        leak.message.as_deref(),
        Some(format!("the key is {MASK}").as_str())
    );
    let result = leak.result.as_deref().unwrap();
    assert_eq!(result.msg.as_deref(), Some(MASK));
    assert!(result.truncated);
    let stdout = result.stdout.as_deref().unwrap();
    assert!(stdout.starts_with(&"a".repeat(LIMIT - 4)), "{stdout}");
    assert!(stdout.contains(TRUNCATION_MARKER), "{stdout}");
    let stderr = result.stderr.as_deref().unwrap();
    let (kept, total) = stderr.split_once(TRUNCATION_MARKER).unwrap();
    assert_eq!(kept, "b".repeat(LIMIT));
    assert_eq!(
        total,
        format!("{} bytes in all]", 3 * LIMIT + 1 + MASK.len())
    );

    // The notifier (the server log) sees the same masked event and message.
    let mut seen = Vec::new();
    while let Ok(notification) = notifications.try_recv() {
        seen.push(match notification.kind {
            NotificationKind::Event(event) => serde_json::to_string(&event).unwrap(),
            NotificationKind::Status { message, .. } => message.unwrap_or_default(),
        });
    }
    assert!(seen.iter().any(|text| text.contains("leak")), "{seen:?}");
    assert!(!seen.iter().any(|text| text.contains("KEYM")), "{seen:?}");
    running.shutdown().await;
}

const INVENTORY_PASSWORD: &str = "inventory-PASSWORD-4242";

/// Prints the password of every host it was given (the account's inventory merged in).
struct PrintsPasswords;

impl Executor for PrintsPasswords {
    async fn run(&self, run: Run, events: EventSink, _cancel: Cancellation) -> RunReport {
        events.workspace_ready();
        let passwords: Vec<String> = run
            .execution
            .hosts
            .iter()
            .filter_map(|host| host.ssh_password.as_ref())
            .map(|password| password.expose().to_owned())
            .collect();
        events.emit(ExecutorEvent {
            host: Some("db-1".into()),
            task: Some("leak".into()),
            message: Some(format!("passwords: {}", passwords.join(","))),
            ..ExecutorEvent::new(EventKind::HostOk)
        });
        RunReport::failed(format!("given {}", passwords.join(",")))
    }
}

/// An inventory host's secret reaches the run (merged in by the engine) and is masked like a
/// job's own wherever the run would print it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_hosts_secret_reaches_the_run_and_is_masked() {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .executor(PrintsPasswords)
        .clock(MockClock::at(1_000_000))
        .lease(Duration::from_secs(3600))
        .test_signals()
        .build();
    let mut probe = engine.probe();
    let running = engine.clone().start();
    let account = alias("ACME");
    let mut host = runner_core::job::Host::named("db-1");
    host.ssh_password = Some(Secret::new(INVENTORY_PASSWORD));
    engine.create_inventory_host(&account, host).await.unwrap();
    let mut spec = inline_spec(&[]);
    spec.use_dynamic_inventory = true;
    let job = engine.create_job(&account, spec).await.unwrap();
    let started = engine
        .start_job(&account, job.id, StartRequest::default())
        .await
        .unwrap();
    let id = started.execution_id;
    tokio::time::timeout(
        Duration::from_secs(30),
        probe.wait_for(EngineSignal::Finished(id)),
    )
    .await
    .expect("the run ends");

    let ended = engine.get_execution(&account, job.id, id).await.unwrap();
    assert_eq!(
        ended.message.as_deref(),
        Some(format!("given {MASK}").as_str())
    );
    assert!(
        ended.hosts.is_empty(),
        "the execution keeps its own hosts only"
    );
    let events = engine
        .list_events(&account, job.id, id, 0, 100)
        .await
        .unwrap();
    let feed = serde_json::to_string(&events).unwrap();
    assert!(feed.contains(&format!("passwords: {MASK}")), "{feed}");
    assert!(!feed.contains("PASSWORD-4242"), "{feed}");
    running.shutdown().await;
}
