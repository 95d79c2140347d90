//! The schedule half of the conformance suite: what every [`ScheduleStore`] must do.
//!
//! Run it with [`schedule_store_conformance_tests!`](crate::schedule_store_conformance_tests).

use std::collections::HashSet;

use futures_util::future::join_all;

use super::fixtures::{alias, job};
use crate::execution::Status;
use crate::ids::{JobId, ScheduleId};
use crate::job::Job;
use crate::page::PageRequest;
use crate::schedule::{Schedule, ServiceAccount, Trigger, TriggerKind};
use crate::store::{ScheduleStore, Signal, StoreError};
use crate::time::Timestamp;

const MINUTE: Timestamp = 60_000;

fn account(account: &str, name: &str, now: Timestamp) -> ServiceAccount {
    ServiceAccount {
        alias: name.into(),
        account_alias: alias(account),
        description: Some(format!("{name} for tests")),
        created_time: now,
    }
}

fn every_minute() -> Trigger {
    Trigger {
        kind: TriggerKind::Cron,
        expression: "* * * * *".into(),
    }
}

fn schedule(job: &Job, service_account: &str, trigger: Trigger, now: Timestamp) -> Schedule {
    Schedule::new(
        job.account_alias.clone(),
        job.id,
        "tests".into(),
        service_account.into(),
        trigger,
        now,
    )
}

/// A job of ACME with a service account `svc`, both stored.
async fn job_with_account(store: &impl ScheduleStore) -> Job {
    let job = job("ACME", 1);
    store.insert_job(&job).await.unwrap();
    store
        .insert_service_account(&account("ACME", "svc", 1))
        .await
        .unwrap();
    job
}

conformance_suite! {
    $ list __schedule_conformance_cases in schedule_conformance;

    /// Service accounts read back, list newest first, are unique per account and isolated by
    /// account.
    pub async fn service_accounts_round_trip(store: &impl ScheduleStore) {
        for (n, name) in ["a", "b", "c"].into_iter().enumerate() {
            store
                .insert_service_account(&account("ACME", name, n as Timestamp))
                .await
                .unwrap();
        }
        store
            .insert_service_account(&account("OTHER", "a", 9))
            .await
            .unwrap();
        let duplicate = store
            .insert_service_account(&account("ACME", "a", 10))
            .await;
        assert!(
            matches!(duplicate, Err(StoreError::Conflict(_))),
            "{duplicate:?}"
        );
        assert_eq!(
            store
                .get_service_account(&alias("ACME"), "b")
                .await
                .unwrap(),
            Some(account("ACME", "b", 1))
        );
        assert!(
            store
                .get_service_account(&alias("ACME"), "zzz")
                .await
                .unwrap()
                .is_none()
        );
        let page = store
            .list_service_accounts(&alias("ACME"), PageRequest { page: 0, size: 2 })
            .await
            .unwrap();
        assert_eq!(page.total_size, 3);
        let names: Vec<&str> = page.results.iter().map(|a| a.alias.as_str()).collect();
        assert_eq!(names, ["c", "b"]);
        store
            .delete_service_account(&alias("ACME"), "a")
            .await
            .unwrap();
        assert!(
            store
                .get_service_account(&alias("ACME"), "a")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get_service_account(&alias("OTHER"), "a")
                .await
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            store.delete_service_account(&alias("ACME"), "a").await,
            Err(StoreError::NotFound)
        ));
    }

    /// A schedule needs its job (404) and an existing service account (409).
    pub async fn schedule_needs_job_and_service_account(store: &impl ScheduleStore) {
        let stored = job_with_account(store).await;
        let missing_job = job("ACME", 2);
        let orphan = schedule(&missing_job, "svc", every_minute(), 0);
        assert!(matches!(
            store.insert_schedule(&orphan).await,
            Err(StoreError::NotFound)
        ));
        let unknown_account = schedule(&stored, "nobody", every_minute(), 0);
        assert!(matches!(
            store.insert_schedule(&unknown_account).await,
            Err(StoreError::Conflict(_))
        ));
    }

    /// Schedules read back, update, list newest first within their job and account, and delete.
    pub async fn schedules_round_trip(store: &impl ScheduleStore) {
        let job = job_with_account(store).await;
        let mut ids = Vec::new();
        for n in 0..3 {
            let schedule = schedule(&job, "svc", every_minute(), n);
            store.insert_schedule(&schedule).await.unwrap();
            ids.push(schedule.id);
        }
        ids.reverse();
        let page = store
            .list_schedules(&alias("ACME"), job.id, PageRequest { page: 0, size: 2 })
            .await
            .unwrap();
        assert_eq!(page.total_size, 3);
        assert_eq!(
            page.results.iter().map(|s| s.id).collect::<Vec<_>>(),
            ids[..2]
        );
        let mut first = store
            .get_schedule(&alias("ACME"), job.id, ids[0])
            .await
            .unwrap()
            .unwrap();
        first.update(
            "changed".into(),
            "svc".into(),
            Trigger {
                kind: TriggerKind::Cron,
                expression: "0 * * * *".into(),
            },
            5,
        );
        store.update_schedule(&first).await.unwrap();
        assert_eq!(
            store
                .get_schedule(&alias("ACME"), job.id, ids[0])
                .await
                .unwrap(),
            Some(first.clone())
        );
        assert!(
            store
                .get_schedule(&alias("OTHER"), job.id, ids[0])
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get_schedule(&alias("ACME"), JobId::new(), ids[0])
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            store.delete_schedule(&alias("OTHER"), job.id, ids[0]).await,
            Err(StoreError::NotFound)
        ));
        store
            .delete_schedule(&alias("ACME"), job.id, ids[0])
            .await
            .unwrap();
        assert!(
            store
                .get_schedule(&alias("ACME"), job.id, ids[0])
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            store.update_schedule(&first).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store
                .delete_schedule(&alias("ACME"), job.id, ScheduleId::new())
                .await,
            Err(StoreError::NotFound)
        ));
    }

    /// A service account in use by a schedule cannot be deleted.
    pub async fn service_account_in_use_is_kept(store: &impl ScheduleStore) {
        let job = job_with_account(store).await;
        let schedule = schedule(&job, "svc", every_minute(), 0);
        store.insert_schedule(&schedule).await.unwrap();
        let refused = store.delete_service_account(&alias("ACME"), "svc").await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
        store
            .delete_schedule(&alias("ACME"), job.id, schedule.id)
            .await
            .unwrap();
        store
            .delete_service_account(&alias("ACME"), "svc")
            .await
            .unwrap();
    }

    /// Deleting a job deletes its schedules; they fire no more.
    pub async fn deleting_a_job_deletes_its_schedules(store: &impl ScheduleStore) {
        let job = job_with_account(store).await;
        let schedule = schedule(&job, "svc", every_minute(), 0);
        store.insert_schedule(&schedule).await.unwrap();
        store.delete_job(&alias("ACME"), job.id).await.unwrap();
        assert!(
            store
                .get_schedule(&alias("ACME"), job.id, schedule.id)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.next_fire_time().await.unwrap(), None);
        assert!(
            store
                .fire_due_schedules(10 * MINUTE, 10)
                .await
                .unwrap()
                .is_empty()
        );
        store
            .delete_service_account(&alias("ACME"), "svc")
            .await
            .unwrap();
    }

    /// A due schedule fires once per due time, creating a PENDING execution that names it.
    pub async fn due_schedules_fire_once(store: &impl ScheduleStore) {
        let job = job_with_account(store).await;
        let schedule = schedule(&job, "svc", every_minute(), 0);
        store.insert_schedule(&schedule).await.unwrap();
        let mut signals = store.subscribe();
        assert_eq!(store.next_fire_time().await.unwrap(), Some(MINUTE));
        assert!(
            store
                .fire_due_schedules(MINUTE - 1, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let fired = store.fire_due_schedules(MINUTE, 10).await.unwrap();
        assert_eq!(fired.len(), 1);
        let fire = fired[0]
            .scheduled
            .expect("a scheduled execution names its schedule");
        assert_eq!((fire.schedule_id, fire.due_time), (schedule.id, MINUTE));
        assert_eq!(fired[0].status, Status::Pending);
        assert!(
            store
                .fire_due_schedules(MINUTE, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let stored = store
            .get_schedule(&alias("ACME"), job.id, schedule.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.next_fire_time, Some(2 * MINUTE));
        assert_eq!(stored.last_fire_time, Some(MINUTE));
        let listed = store
            .list_executions(&alias("ACME"), job.id, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(listed.total_size, 1);
        let feed = store
            .list_events(&alias("ACME"), job.id, fired[0].execution_id, 0, 10)
            .await
            .unwrap();
        assert_eq!(
            feed.iter()
                .map(|event| (event.sequence, event.status))
                .collect::<Vec<_>>(),
            [(1, Some(Status::Pending))],
            "a fired execution starts its feed like any other"
        );
        let signal = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                if let Ok(Signal::Pending) = signals.recv().await {
                    return;
                }
            }
        })
        .await;
        assert!(signal.is_ok(), "firing sends a Pending signal");
        // Down for a while: one execution for the latest missed due time.
        let late = store
            .fire_due_schedules(10 * MINUTE + 30_000, 10)
            .await
            .unwrap();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].scheduled.unwrap().due_time, 10 * MINUTE);
    }

    /// A date schedule fires once, then has no next fire time.
    pub async fn date_schedules_fire_once(store: &impl ScheduleStore) {
        let job = job_with_account(store).await;
        let trigger = Trigger {
            kind: TriggerKind::Date,
            expression: "2030-01-01T00:00:00Z".into(),
        };
        let due = crate::schedule::parse_date(&trigger.expression).unwrap();
        let schedule = schedule(&job, "svc", trigger, due - MINUTE);
        store.insert_schedule(&schedule).await.unwrap();
        assert_eq!(
            store.fire_due_schedules(due + 1, 10).await.unwrap().len(),
            1
        );
        assert!(
            store
                .fire_due_schedules(due + 10 * MINUTE, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let stored = store
            .get_schedule(&alias("ACME"), job.id, schedule.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.next_fire_time, None);
        assert_eq!(store.next_fire_time().await.unwrap(), None);
    }

    /// Many nodes firing at once: one execution per schedule and due time.
    pub async fn concurrent_firing_creates_each_execution_once(store: &impl ScheduleStore) {
        let job = job_with_account(store).await;
        let mut ids = HashSet::new();
        for _ in 0..20 {
            let schedule = schedule(&job, "svc", every_minute(), 0);
            store.insert_schedule(&schedule).await.unwrap();
            ids.insert(schedule.id);
        }
        for minute in 1..=3 {
            let now = minute * MINUTE;
            let results = join_all((0..6).map(|_| store.fire_due_schedules(now, 7))).await;
            let mut fired: Vec<(ScheduleId, Timestamp)> = Vec::new();
            for result in results {
                fired.extend(result.unwrap().into_iter().map(|e| {
                    let fire = e.scheduled.unwrap();
                    (fire.schedule_id, fire.due_time)
                }));
            }
            // Whatever the callers missed (each takes at most 7), a last call picks up.
            loop {
                let rest = store.fire_due_schedules(now, 100).await.unwrap();
                if rest.is_empty() {
                    break;
                }
                fired.extend(rest.into_iter().map(|e| {
                    (
                        e.scheduled.unwrap().schedule_id,
                        e.scheduled.unwrap().due_time,
                    )
                }));
            }
            let unique: HashSet<_> = fired.iter().copied().collect();
            assert_eq!(
                unique.len(),
                fired.len(),
                "a due time fired twice at minute {minute}"
            );
            assert_eq!(unique.len(), 20, "every schedule fired at minute {minute}");
            assert!(
                unique
                    .iter()
                    .all(|(id, due)| ids.contains(id) && *due == now)
            );
        }
    }

    /// A fire of a job that skips overlapping runs, while an execution of it has not ended,
    /// starts nothing and is recorded on the schedule; the next fire after it ended starts one.
    pub async fn a_skipping_job_records_the_fire_it_skips(store: &impl ScheduleStore) {
        let mut spec = super::fixtures::inline_spec(&["a"]);
        spec.overlap = crate::overlap::Overlap::Skip;
        let job = Job::new(alias("ACME"), spec, 1);
        store.insert_job(&job).await.unwrap();
        store
            .insert_service_account(&account("ACME", "svc", 1))
            .await
            .unwrap();
        let schedule = schedule(&job, "svc", every_minute(), 0);
        store.insert_schedule(&schedule).await.unwrap();
        let first = store.fire_due_schedules(MINUTE, 10).await.unwrap();
        assert_eq!(first.len(), 1, "nothing runs yet: it fires");
        let active = first[0].execution_id;

        assert!(store.fire_due_schedules(2 * MINUTE, 10).await.unwrap().is_empty());
        let stored = store
            .get_schedule(&alias("ACME"), job.id, schedule.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.last_skipped_fire,
            Some(crate::schedule::SkippedFire {
                due_time: 2 * MINUTE,
                active_execution_id: active,
            })
        );
        assert_eq!(stored.last_fire_time, Some(2 * MINUTE), "a skipped fire is a fire");
        assert_eq!(stored.next_fire_time, Some(3 * MINUTE));
        let listed = store
            .list_executions(&alias("ACME"), job.id, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(listed.total_size, 1, "the skipped fire started nothing");

        store
            .transition(active, &crate::machine::Command::Kill { force_at: None }, 3 * MINUTE - 1)
            .await
            .unwrap();
        let next = store.fire_due_schedules(3 * MINUTE, 10).await.unwrap();
        assert_eq!(next.len(), 1, "it ended: the next fire starts one");
        assert_eq!(
            store
                .get_schedule(&alias("ACME"), job.id, schedule.id)
                .await
                .unwrap()
                .unwrap()
                .last_skipped_fire
                .map(|skipped| skipped.due_time),
            Some(2 * MINUTE),
            "the record of the skip stays"
        );
    }
}
