//! Three engines, each with its own PgStore pool, firing the same schedules on one schema: every
//! due time creates one execution, which runs once; none is missed, none doubled.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat};
use runner_core::engine::{Engine, RunningEngine};
use runner_core::execution::Status;
use runner_core::ids::{ExecutionId, ScheduleId};
use runner_core::notifier::NoopNotifier;
use runner_core::schedule::{ScheduleSpec, ServiceAccountSpec, Trigger, TriggerKind};
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_core::time::{Clock, MockClock, SystemClock, Timestamp};
use runner_store_postgres::{PgStore, PgStoreOptions};
use uuid::Uuid;

const MINUTE: Timestamp = 60_000;

/// Three engines on one schema, each `.start().with_scheduler()`.
async fn nodes<C: Clock + Clone>(
    options: &PgStoreOptions,
    executor: &ScriptedExecutor,
    clock: &C,
) -> Vec<(
    Engine<PgStore, ScriptedExecutor, NoopNotifier, C>,
    RunningEngine<PgStore, ScriptedExecutor, NoopNotifier, C>,
)> {
    let mut nodes = Vec::new();
    for n in 0..3 {
        let store = common::connect(options.clone()).await;
        let engine = Engine::builder()
            .store(store)
            .executor(executor.clone())
            .clock(clock.clone())
            .node_id(format!("node-{n}"))
            .concurrency(8)
            .lease(Duration::from_secs(30))
            .poll_interval(Duration::from_millis(100))
            .shutdown_grace(Duration::from_secs(5))
            .build();
        let running = engine.clone().start().with_scheduler();
        nodes.push((engine, running));
    }
    nodes
}

/// Polls `check` until it holds; panics with `what` after `limit`. The bound is a failure
/// deadline, not a timing assumption: the awaited state arrives through the engines' own wake-ups.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The executions the schedules created: (execution, schedule, due time, status).
async fn scheduled_executions(
    store: &PgStore,
    schedules: &[ScheduleId],
) -> Vec<(Uuid, Uuid, i64, String)> {
    let ids: Vec<Uuid> = schedules.iter().map(|id| id.0).collect();
    sqlx::query_as(
        "SELECT id, schedule_id, due_time, status FROM executions WHERE schedule_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(store.pool())
    .await
    .expect("read the scheduled executions")
}

fn assert_each_ran_once(executor: &ScriptedExecutor, expected: &HashSet<ExecutionId>) {
    let runs = executor.runs();
    let ran: HashSet<ExecutionId> = runs.iter().map(|run| run.execution_id).collect();
    assert_eq!(ran.len(), runs.len(), "an execution ran twice");
    assert_eq!(&ran, expected, "every scheduled execution ran");
    assert!(runs.iter().all(|run| run.attempt == 1), "one claim each");
}

async fn drop_schema(store: &PgStore, options: &PgStoreOptions) {
    if let Some(schema) = &options.schema {
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(store.pool())
            .await
            .expect("drop the test schema");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_schedulers_fire_each_due_time_once() {
    const FIRES: i64 = 30;
    let options = common::fresh_options();
    let account = alias("ACME");

    // Part 1: a cron schedule, a mock clock the test moves one minute at a time.
    // 2023-11-14T22:13:00Z, on a minute: the first due time is one minute later.
    let start: Timestamp = 1_699_999_980_000;
    let clock = MockClock::at(start);
    let executor = ScriptedExecutor::new(Script::Succeed);
    let cluster = nodes(&options, &executor, &clock).await;
    let (engine, _) = &cluster[0];
    let store = engine.store().clone();
    let job = engine
        .create_job(&account, inline_spec(&["a"]))
        .await
        .unwrap();
    engine
        .create_service_account(
            &account,
            ServiceAccountSpec {
                alias: Some("svc".into()),
                description: None,
            },
        )
        .await
        .unwrap();
    let cron = engine
        .create_schedule(
            &account,
            job.id,
            ScheduleSpec {
                description: Some("every minute".into()),
                service_account_alias: Some("svc".into()),
                trigger: Some(Trigger {
                    kind: TriggerKind::Cron,
                    expression: "* * * * *".into(),
                }),
                type_: None,
                launch_options: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(cron.next_fire_time, Some(start + MINUTE));

    for minute in 1..=FIRES {
        clock.advance(Duration::from_secs(60));
        let due = start + minute * MINUTE;
        wait_until(
            &format!("the execution due at minute {minute} succeeded"),
            Duration::from_secs(30),
            || async {
                let status: Option<String> = sqlx::query_scalar(
                    "SELECT status FROM executions WHERE schedule_id = $1 AND due_time = $2",
                )
                .bind(cron.id.0)
                .bind(due)
                .fetch_optional(store.pool())
                .await
                .unwrap();
                status.as_deref() == Some(Status::Success.as_str())
            },
        )
        .await;
    }
    let fired = scheduled_executions(&store, &[cron.id]).await;
    assert_eq!(fired.len(), FIRES as usize, "one execution per due time");
    let dues: HashSet<i64> = fired.iter().map(|(_, _, due, _)| *due).collect();
    let expected_dues: HashSet<i64> = (1..=FIRES).map(|m| start + m * MINUTE).collect();
    assert_eq!(dues, expected_dues, "every due time fired, once");
    assert!(
        fired
            .iter()
            .all(|(_, _, _, status)| status == Status::Success.as_str())
    );
    let expected: HashSet<ExecutionId> = fired.iter().map(|(id, ..)| ExecutionId(*id)).collect();
    assert_each_ran_once(&executor, &expected);
    let stored = engine
        .get_schedule(&account, job.id, cron.id)
        .await
        .unwrap();
    assert_eq!(stored.last_fire_time, Some(start + FIRES * MINUTE));
    assert_eq!(stored.next_fire_time, Some(start + (FIRES + 1) * MINUTE));
    // Stop it before the real-time part, whose clock is far past its next due time.
    engine
        .delete_schedule(&account, job.id, cron.id)
        .await
        .unwrap();
    for (_, running) in cluster {
        running.shutdown().await;
    }

    // Part 2: real time, 30 date schedules due a second apart.
    let executor = ScriptedExecutor::new(Script::Succeed);
    let cluster = nodes(&options, &executor, &SystemClock).await;
    let now = SystemClock.now();
    let mut due_of: HashMap<Uuid, Timestamp> = HashMap::new();
    for k in 2..=31 {
        let due = now + k * 1_000;
        let expression = DateTime::from_timestamp_millis(due)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        // Created through all three nodes in turn.
        let (engine, _) = &cluster[k as usize % 3];
        let schedule = engine
            .create_schedule(
                &account,
                job.id,
                ScheduleSpec {
                    description: Some(format!("once, in {k} s")),
                    service_account_alias: Some("svc".into()),
                    trigger: None,
                    type_: Some(Trigger {
                        kind: TriggerKind::Date,
                        expression,
                    }),
                    launch_options: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(schedule.next_fire_time, Some(due));
        due_of.insert(schedule.id.0, due);
    }
    let ids: Vec<ScheduleId> = due_of.keys().map(|id| ScheduleId(*id)).collect();
    wait_until(
        "every date schedule fired and its execution succeeded",
        Duration::from_secs(60),
        || async {
            let fired = scheduled_executions(&store, &ids).await;
            fired.len() >= ids.len()
                && fired
                    .iter()
                    .all(|(_, _, _, status)| status == Status::Success.as_str())
        },
    )
    .await;
    let fired = scheduled_executions(&store, &ids).await;
    assert_eq!(fired.len(), 30, "exactly one execution per date schedule");
    let schedules: HashSet<Uuid> = fired.iter().map(|(_, schedule, ..)| *schedule).collect();
    assert_eq!(schedules.len(), 30, "no schedule fired twice, none missed");
    for (_, schedule, due, _) in &fired {
        assert_eq!(Some(due), due_of.get(schedule), "fired for its date");
    }
    let expected: HashSet<ExecutionId> = fired.iter().map(|(id, ..)| ExecutionId(*id)).collect();
    assert_each_ran_once(&executor, &expected);
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM schedules WHERE id = ANY($1) AND next_fire_time IS NOT NULL",
    )
    .bind(ids.iter().map(|id| id.0).collect::<Vec<_>>())
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(pending, 0, "a fired date schedule has no next fire time");
    // All 30 executions of the job, numbered without gaps.
    let listed = store
        .list_executions(
            &account,
            job.id,
            runner_core::page::PageRequest { page: 0, size: 1 },
        )
        .await
        .unwrap();
    assert_eq!(listed.total_size, 2 * FIRES as u64);
    for (_, running) in cluster {
        running.shutdown().await;
    }
    drop_schema(&store, &options).await;
}
