//! What the schedule conformance suite does not reach in this store: the per-service-account
//! usage count across updates, a job deleted right behind a new schedule of it (often in the same
//! writer batch), schedules read back after a reopen, and the creation event of a fired
//! execution.

mod common;

use runner_core::execution::Status;
use runner_core::feed::EventKind;
use runner_core::job::CallbackLevel;
use runner_core::page::PageRequest;
use runner_core::schedule::{Schedule, ServiceAccount, Trigger, TriggerKind};
use runner_core::store::prelude::*;
use runner_core::store::{ScheduleStore, Signal, StoreError};
use runner_core::testkit::fixtures::{alias, job, job_with_callbacks};
use runner_store_sled::SledStore;

fn account(name: &str) -> ServiceAccount {
    ServiceAccount {
        alias: name.into(),
        account_alias: alias("ACME"),
        description: None,
        created_time: 1,
    }
}

fn every_minute() -> Trigger {
    Trigger {
        kind: TriggerKind::Cron,
        expression: "* * * * *".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_service_account_moves_its_use() {
    let store = common::TempStore::new();
    let job = job("ACME", 1);
    store.insert_job(&job).await.unwrap();
    store.insert_service_account(&account("old")).await.unwrap();
    store.insert_service_account(&account("new")).await.unwrap();
    let mut schedule = Schedule::new(
        alias("ACME"),
        job.id,
        "d".into(),
        "old".into(),
        every_minute(),
        0,
    );
    store.insert_schedule(&schedule).await.unwrap();
    schedule.update("d".into(), "new".into(), every_minute(), 5);
    store.update_schedule(&schedule).await.unwrap();

    let refused = store.delete_service_account(&alias("ACME"), "new").await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    store
        .delete_service_account(&alias("ACME"), "old")
        .await
        .unwrap();
    // An update naming a missing account is refused and changes nothing.
    let mut orphan = schedule.clone();
    orphan.service_account_alias = "old".into();
    let refused = store.update_schedule(&orphan).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let listed = store
        .list_schedules(&alias("ACME"), job.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.total_size, 1);
    assert_eq!(listed.results, [schedule]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deleted_right_behind_a_new_schedule_takes_it_along() {
    let store = common::TempStore::new();
    store.insert_service_account(&account("svc")).await.unwrap();
    for n in 0..20 {
        let job = job("ACME", n);
        store.insert_job(&job).await.unwrap();
        let schedule = Schedule::new(
            alias("ACME"),
            job.id,
            "d".into(),
            "svc".into(),
            every_minute(),
            0,
        );
        // Both requests reach the writer back to back, in this order.
        let acme = alias("ACME");
        let (inserted, deleted) = tokio::join!(
            store.insert_schedule(&schedule),
            store.delete_job(&acme, job.id)
        );
        inserted.unwrap();
        deleted.unwrap();
        assert!(
            store
                .get_schedule(&alias("ACME"), job.id, schedule.id)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(store.next_fire_time().await.unwrap(), None);
    store
        .delete_service_account(&alias("ACME"), "svc")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_and_fires_read_back_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let job = job("ACME", 1);
    let schedule = Schedule::new(
        alias("ACME"),
        job.id,
        "d".into(),
        "svc".into(),
        every_minute(),
        0,
    );
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.insert_job(&job).await.unwrap();
        store.insert_service_account(&account("svc")).await.unwrap();
        store.insert_schedule(&schedule).await.unwrap();
        assert_eq!(store.fire_due_schedules(60_000, 10).await.unwrap().len(), 1);
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        store
            .get_service_account(&alias("ACME"), "svc")
            .await
            .unwrap(),
        Some(account("svc"))
    );
    let stored = store
        .get_schedule(&alias("ACME"), job.id, schedule.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_fire_time, Some(60_000));
    assert_eq!(store.next_fire_time().await.unwrap(), Some(120_000));
    assert!(
        store
            .fire_due_schedules(60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let executions = store
        .list_executions(&alias("ACME"), job.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(executions.total_size, 1);
    assert_eq!(executions.results[0].status, Status::Pending);
}

/// A fired execution is stored with its creation event and that event's delivery, in the same
/// write, and announced on the feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fired_execution_starts_its_feed() {
    let store = common::TempStore::new();
    let job = job_with_callbacks("ACME", 1, &[CallbackLevel::Result]);
    store.insert_job(&job).await.unwrap();
    store.insert_service_account(&account("svc")).await.unwrap();
    let schedule = Schedule::new(
        alias("ACME"),
        job.id,
        "d".into(),
        "svc".into(),
        every_minute(),
        0,
    );
    store.insert_schedule(&schedule).await.unwrap();
    let mut signals = store.subscribe();
    let fired = store.fire_due_schedules(120_000, 10).await.unwrap();
    assert_eq!(fired.len(), 1);
    let id = fired[0].execution_id;
    let mut seen = Vec::new();
    while let Ok(signal) = signals.try_recv() {
        seen.push(signal);
    }
    assert!(seen.contains(&Signal::Feed(id)), "{seen:?}");

    let events = store
        .list_events(&alias("ACME"), job.id, id, 0, 10)
        .await
        .unwrap();
    let events: Vec<_> = events
        .iter()
        .map(|e| (e.sequence, e.kind, e.status))
        .collect();
    assert_eq!(events, [(1, EventKind::Status, Some(Status::Pending))]);
    let deliveries = store.claim_deliveries(120_000, 130_000, 10).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (deliveries[0].key.execution_id, deliveries[0].key.sequence),
        (id, 1)
    );
    assert_eq!(deliveries[0].url, job.spec.callbacks[0].url);
}
