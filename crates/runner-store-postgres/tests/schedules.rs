//! What the schedule conformance suite cannot see on PostgreSQL: firing from two stores while the
//! job is deleted, and service accounts deleted while schedules are written.

mod common;

use runner_core::page::PageRequest;
use runner_core::schedule::{Schedule, ServiceAccount, Trigger, TriggerKind};
use runner_core::store::prelude::*;
use runner_core::store::{ScheduleStore, StoreError};
use runner_core::testkit::fixtures::{alias, job};

const MINUTE: i64 = 60_000;

fn every_minute() -> Trigger {
    Trigger {
        kind: TriggerKind::Cron,
        expression: "* * * * *".into(),
    }
}

fn service_account(name: &str) -> ServiceAccount {
    ServiceAccount {
        alias: name.into(),
        account_alias: alias("ACME"),
        description: None,
        created_time: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_job_while_two_nodes_fire_it_neither_deadlocks_nor_leaves_a_trace() {
    let options = common::fresh_options();
    let a = common::connect(options.clone()).await;
    let b = common::connect(options).await;
    let account = alias("ACME");
    a.insert_service_account(&service_account("svc"))
        .await
        .unwrap();
    for round in 0..30 {
        let job = job("ACME", round);
        a.insert_job(&job).await.unwrap();
        for _ in 0..5 {
            let schedule = Schedule::new(
                account.clone(),
                job.id,
                "race".into(),
                "svc".into(),
                every_minute(),
                0,
            );
            a.insert_schedule(&schedule).await.unwrap();
        }
        let now = (round + 1) * MINUTE;
        let (fired_a, fired_b, deleted) = tokio::join!(
            a.fire_due_schedules(now, 3),
            b.fire_due_schedules(now, 3),
            b.delete_job(&account, job.id),
        );
        // Schedules of earlier rounds' jobs (kept by a refused delete) fire too: count this job's.
        let fired = fired_a
            .unwrap()
            .into_iter()
            .chain(fired_b.unwrap())
            .filter(|execution| execution.job_id == job.id)
            .count();
        let schedules = a
            .list_schedules(&account, job.id, PageRequest::default())
            .await
            .unwrap();
        let executions = a
            .list_executions(&account, job.id, PageRequest::default())
            .await
            .unwrap();
        match deleted {
            // The delete went first: no schedule left, nothing fired.
            Ok(()) => {
                assert_eq!(schedules.total_size, 0, "round {round}");
                assert_eq!((fired, executions.total_size), (0, 0), "round {round}");
            }
            // A fire went first: its PENDING executions keep the job and its schedules.
            Err(StoreError::Conflict(_)) => {
                assert!(fired > 0, "round {round}: refused without a fire");
                assert_eq!(schedules.total_size, 5, "round {round}");
                assert_eq!(executions.total_size, fired as u64, "round {round}");
            }
            Err(other) => panic!("round {round}: delete failed: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_never_refers_to_a_deleted_service_account() {
    let store = common::fresh_store().await;
    let account = alias("ACME");
    let job = job("ACME", 1);
    store.insert_job(&job).await.unwrap();
    for round in 0..40 {
        let name = format!("svc-{round}");
        store
            .insert_service_account(&service_account(&name))
            .await
            .unwrap();
        let schedule = Schedule::new(
            account.clone(),
            job.id,
            "race".into(),
            name.clone(),
            every_minute(),
            0,
        );
        let (inserted, deleted) = tokio::join!(
            store.insert_schedule(&schedule),
            store.delete_service_account(&account, &name),
        );
        match (&inserted, &deleted) {
            (Ok(()), Err(StoreError::Conflict(message))) => {
                assert!(message.contains("used by schedule"), "{message}")
            }
            (Err(StoreError::Conflict(message)), Ok(())) => {
                assert!(message.contains("service account"), "{message}")
            }
            other => panic!("round {round}: insert and delete crossed: {other:?}"),
        }
    }
}
