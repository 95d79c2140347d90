//! Schedules through the engine on the memory store, with a mock clock: each due time runs the
//! job once, a date schedule once in all, and a stretch of missed due times once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use runner_core::engine::{Engine, EngineError};
use runner_core::execution::Status;
use runner_core::ids::ExecutionId;
use runner_core::launch::LaunchOptions;
use runner_core::notifier::{ChannelNotifier, Notification, NotificationKind};
use runner_core::page::PageRequest;
use runner_core::schedule::{ScheduleSpec, ServiceAccountSpec, Trigger, TriggerKind};
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_core::time::{Clock, MockClock};
use runner_store_memory::MemoryStore;
use tokio::sync::broadcast;

const MINUTE: Duration = Duration::from_secs(60);

async fn next_success(notifications: &mut broadcast::Receiver<Notification>) -> ExecutionId {
    let wait = async {
        loop {
            if let Ok(Notification {
                execution_id,
                kind:
                    NotificationKind::Status {
                        status: Status::Success,
                        ..
                    },
                ..
            }) = notifications.recv().await
            {
                return execution_id;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("a scheduled execution succeeds")
}

fn spec(kind: TriggerKind, expression: &str) -> ScheduleSpec {
    ScheduleSpec {
        description: Some("nightly".into()),
        service_account_alias: Some("svc".into()),
        trigger: Some(Trigger {
            kind,
            expression: expression.into(),
        }),
        type_: None,
        launch_options: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_and_date_schedules_fire_once_per_due_time() {
    // 2026-11-25T00:00:30Z
    let clock = MockClock::at(1_795_564_830_000);
    let notifier = ChannelNotifier::new(1024);
    let mut notifications = notifier.subscribe();
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .executor(ScriptedExecutor::new(Script::Succeed))
        .notifier(notifier)
        .clock(clock.clone())
        .lease(Duration::from_secs(24 * 3600))
        .build();
    let running = engine.clone().start().with_scheduler();
    let acme = alias("ACME");
    let job = engine.create_job(&acme, inline_spec(&["a"])).await.unwrap();

    // A schedule needs an existing service account.
    let refused = engine
        .create_schedule(&acme, job.id, spec(TriggerKind::Cron, "* * * * *"))
        .await;
    match refused {
        Err(EngineError::Missing(errors)) => {
            assert_eq!(errors.errors[0].field, "serviceAccountAlias")
        }
        other => panic!("expected a missing service account, got {other:?}"),
    }
    let account = ServiceAccountSpec {
        alias: Some("svc".into()),
        description: None,
    };
    engine.create_service_account(&acme, account).await.unwrap();

    let every_minute = engine
        .create_schedule(&acme, job.id, spec(TriggerKind::Cron, "* * * * *"))
        .await
        .unwrap();
    assert_eq!(every_minute.next_fire_time, Some(clock.now() + 30_000));
    let mut seen = HashSet::new();
    for _ in 0..5 {
        clock.advance(MINUTE);
        assert!(seen.insert(next_success(&mut notifications).await));
    }
    let listed = engine
        .list_executions(&acme, job.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.total_size, 5, "one execution per due time");

    // Down for ten minutes: one execution for the latest due time, none for the others.
    engine
        .delete_schedule(&acme, job.id, every_minute.id)
        .await
        .unwrap();
    let hourly = engine
        .create_schedule(&acme, job.id, spec(TriggerKind::Cron, "0 * * * *"))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3 * 3600));
    next_success(&mut notifications).await;
    let after_gap = engine.get_schedule(&acme, job.id, hourly.id).await.unwrap();
    let due = after_gap.last_fire_time.unwrap();
    assert_eq!(due % 3_600_000, 0);
    assert!(
        clock.now() - due < 3_600_000,
        "fired for the latest missed hour"
    );
    engine
        .delete_schedule(&acme, job.id, hourly.id)
        .await
        .unwrap();

    // A date schedule: once, then no next fire time.
    let at = iso(clock.now() + 90_000);
    let once = engine
        .create_schedule(&acme, job.id, spec(TriggerKind::Date, &at))
        .await
        .unwrap();
    assert!(once.next_fire_time.is_some());
    clock.advance(2 * MINUTE);
    next_success(&mut notifications).await;
    clock.advance(10 * MINUTE);
    let fired = engine.get_schedule(&acme, job.id, once.id).await.unwrap();
    assert_eq!(fired.next_fire_time, None);
    let total = engine
        .list_executions(&acme, job.id, PageRequest::default())
        .await
        .unwrap()
        .total_size;
    assert_eq!(total, 7);

    // A date in the past is refused; the service account in use cannot be deleted; deleting
    // the job takes its schedules along.
    let past = engine
        .create_schedule(
            &acme,
            job.id,
            spec(TriggerKind::Date, "2001-01-01T00:00:00Z"),
        )
        .await;
    assert!(matches!(past, Err(EngineError::Invalid(_))));
    let in_use = engine.delete_service_account(&acme, "svc").await;
    assert!(
        matches!(in_use, Err(EngineError::Conflict(_))),
        "{in_use:?}"
    );
    engine.delete_job(&acme, job.id).await.unwrap();
    engine.delete_service_account(&acme, "svc").await.unwrap();
    running.shutdown().await;
}

/// Epoch milliseconds as an ISO-8601 UTC date.
fn iso(at: i64) -> String {
    use chrono::{SecondsFormat, TimeZone, Utc};
    Utc.timestamp_millis_opt(at)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A schedule's launch options reach every execution it fires; bad ones are named under
/// `launchOptions`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_with_its_launch_options() {
    let clock = MockClock::at(1_795_564_830_000);
    let notifier = ChannelNotifier::new(1024);
    let mut notifications = notifier.subscribe();
    let executor = ScriptedExecutor::new(Script::Succeed);
    let engine = Engine::builder()
        .store(Arc::new(MemoryStore::new()))
        .executor(executor.clone())
        .notifier(notifier)
        .clock(clock.clone())
        .lease(Duration::from_secs(24 * 3600))
        .build();
    let running = engine.clone().start().with_scheduler();
    let acme = alias("ACME");
    let job = engine.create_job(&acme, inline_spec(&["a"])).await.unwrap();
    let account = ServiceAccountSpec {
        alias: Some("svc".into()),
        description: None,
    };
    engine.create_service_account(&acme, account).await.unwrap();

    let mut bad = spec(TriggerKind::Cron, "* * * * *");
    bad.launch_options = Some(LaunchOptions {
        skip_tags: Some(vec!["two words".into()]),
        ..LaunchOptions::default()
    });
    match engine.create_schedule(&acme, job.id, bad).await {
        Err(EngineError::Invalid(errors)) => {
            assert_eq!(errors.errors[0].field, "launchOptions.skipTags[0]")
        }
        other => panic!("expected 400, got {other:?}"),
    }

    let options = LaunchOptions {
        playbook_tags: Some(vec!["nightly".into()]),
        check: true,
        ..LaunchOptions::default()
    };
    let mut nightly = spec(TriggerKind::Cron, "* * * * *");
    nightly.launch_options = Some(options.clone());
    let schedule = engine
        .create_schedule(&acme, job.id, nightly)
        .await
        .unwrap();
    assert_eq!(schedule.launch_options, options);
    clock.advance(MINUTE);
    let fired = next_success(&mut notifications).await;
    let execution = engine.get_execution(&acme, job.id, fired).await.unwrap();
    assert_eq!(execution.launch, options);
    assert_eq!(executor.runs()[0].launch, options, "the run got them");
    running.shutdown().await;
}
