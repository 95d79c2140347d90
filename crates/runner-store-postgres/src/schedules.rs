//! [`ScheduleStore`] for [`PgStore`]: service accounts, schedules, and the firing transaction.
//!
//! Row locks are always taken in one order, so that no two of these transactions wait on each
//! other in a circle: a schedule before its job (firing, deleting a job), a job before a service
//! account (inserting a schedule), a schedule before a service account (updating a schedule).
//! Deleting a service account locks only its own row and then reads.

use std::collections::HashMap;

use runner_core::execution::{Execution, ScheduledFire};
use runner_core::ids::{AccountAlias, JobId, ScheduleId};
use runner_core::job::Job;
use runner_core::overlap::Overlap;
use runner_core::page::{Page, PageRequest};
use runner_core::schedule::{Schedule, ServiceAccount, SkippedFire};
use runner_core::store::{ScheduleStore, Signal, StoreError};
use runner_core::time::Timestamp;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::codec::{Codec, Encode};
use crate::error::{is_unique_violation, unavailable};
use crate::overlap;
use crate::transaction::TxError;
use crate::writes::NewExecutions;
use crate::{PgStore, decode_all, to_i64};

fn service_account_missing(schedule: &Schedule) -> StoreError {
    StoreError::Conflict(format!(
        "service account {} does not exist",
        schedule.service_account_alias
    ))
}

/// Locks the schedule's service account (KEY SHARE: a concurrent delete waits for our commit, and
/// then sees our schedule), or says it does not exist.
async fn hold_service_account(
    tx: &mut Transaction<'static, Postgres>,
    schedule: &Schedule,
) -> Result<(), TxError> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM service_accounts WHERE account_alias = $1 AND alias = $2 FOR KEY SHARE",
    )
    .bind(schedule.account_alias.as_str())
    .bind(&schedule.service_account_alias)
    .fetch_optional(&mut **tx)
    .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(service_account_missing(schedule).into()),
    }
}

type ServiceAccountRow = (String, Option<String>, i64);

fn service_account_of(alias: &AccountAlias, row: ServiceAccountRow) -> ServiceAccount {
    let (name, description, created_time) = row;
    ServiceAccount {
        alias: name,
        account_alias: alias.clone(),
        description,
        created_time,
    }
}

impl ScheduleStore for PgStore {
    async fn insert_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO service_accounts (account_alias, alias, description, created_time)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(account.account_alias.as_str())
        .bind(&account.alias)
        .bind(&account.description)
        .bind(account.created_time)
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict(format!(
                "service account {} exists already",
                account.alias
            ))),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn get_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        let row: Option<ServiceAccountRow> = self
            .read(|| {
                sqlx::query_as(
                    "SELECT alias, description, created_time FROM service_accounts
                      WHERE account_alias = $1 AND alias = $2",
                )
                .bind(alias.as_str())
                .bind(name)
                .fetch_optional(self.pool())
            })
            .await?;
        Ok(row.map(|row| service_account_of(alias, row)))
    }

    async fn list_service_accounts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<ServiceAccount>, StoreError> {
        let (total, rows): (i64, Vec<ServiceAccountRow>) = self
            .read(|| async {
                let total: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM service_accounts WHERE account_alias = $1",
                )
                .bind(alias.as_str())
                .fetch_one(self.pool())
                .await?;
                let rows = sqlx::query_as(
                    "SELECT alias, description, created_time FROM service_accounts
                      WHERE account_alias = $1
                      ORDER BY created_time DESC, position DESC LIMIT $2 OFFSET $3",
                )
                .bind(alias.as_str())
                .bind(i64::from(page.size))
                .bind(to_i64(page.offset()))
                .fetch_all(self.pool())
                .await?;
                Ok((total, rows))
            })
            .await?;
        let accounts = rows
            .into_iter()
            .map(|row| service_account_of(alias, row))
            .collect();
        Ok(Page::new(page, u64::try_from(total).unwrap_or(0), accounts))
    }

    async fn delete_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<(), StoreError> {
        transaction!(self, |tx| async {
            // FOR UPDATE waits for every schedule insert or update holding it (KEY SHARE); the
            // check below then sees their schedules, and later ones find the account gone.
            let found: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM service_accounts WHERE account_alias = $1 AND alias = $2 FOR UPDATE",
            )
            .bind(alias.as_str())
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
            if found.is_none() {
                return Err(StoreError::NotFound.into());
            }
            let user: Option<(Uuid, Uuid)> = sqlx::query_as(
                "SELECT id, job_id FROM schedules
                  WHERE account_alias = $1 AND service_account_alias = $2 LIMIT 1",
            )
            .bind(alias.as_str())
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some((schedule, job)) = user {
                return Err(StoreError::Conflict(format!(
                    "service account {name} is used by schedule {} of job {}",
                    ScheduleId(schedule),
                    JobId(job)
                ))
                .into());
            }
            sqlx::query("DELETE FROM service_accounts WHERE account_alias = $1 AND alias = $2")
                .bind(alias.as_str())
                .bind(name)
                .execute(&mut **tx)
                .await?;
            Ok(())
        })
    }

    async fn insert_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        let body = self.shared().codec.encode("schedule", schedule)?;
        transaction!(self, |tx| async {
            // KEY SHARE on the job: a concurrent delete_job (FOR UPDATE) waits for us and then
            // deletes this schedule too, or went first and we see no job.
            let job: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM jobs WHERE id = $1 AND account_alias = $2 FOR KEY SHARE",
            )
            .bind(schedule.job_id.0)
            .bind(schedule.account_alias.as_str())
            .fetch_optional(&mut **tx)
            .await?;
            if job.is_none() {
                return Err(StoreError::NotFound.into());
            }
            hold_service_account(tx, schedule).await?;
            let inserted = sqlx::query(
                "INSERT INTO schedules (id, job_id, account_alias, service_account_alias,
                                        next_fire_time, created_time, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::json)",
            )
            .bind(schedule.id.0)
            .bind(schedule.job_id.0)
            .bind(schedule.account_alias.as_str())
            .bind(&schedule.service_account_alias)
            .bind(schedule.next_fire_time)
            .bind(schedule.created_time)
            .bind(&body)
            .execute(&mut **tx)
            .await;
            match inserted {
                Ok(_) => Ok(()),
                Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict(format!(
                    "schedule {} exists already",
                    schedule.id
                ))
                .into()),
                Err(error) => Err(error.into()),
            }
        })
    }

    async fn get_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<Option<Schedule>, StoreError> {
        self.read_job_record(
            "schedule",
            "SELECT body::text FROM schedules
              WHERE id = $1 AND job_id = $2 AND account_alias = $3",
            id.0,
            job_id,
            alias,
        )
        .await
    }

    async fn update_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        let body = self.shared().codec.encode("schedule", schedule)?;
        transaction!(self, |tx| async {
            // The UPDATE locks the schedule row first (the order firing uses), then the service
            // account is held as on insert. A schedule exists only while its job does.
            let updated = sqlx::query(
                "UPDATE schedules
                    SET service_account_alias = $4, next_fire_time = $5, body = $6::json
                  WHERE id = $1 AND job_id = $2 AND account_alias = $3",
            )
            .bind(schedule.id.0)
            .bind(schedule.job_id.0)
            .bind(schedule.account_alias.as_str())
            .bind(&schedule.service_account_alias)
            .bind(schedule.next_fire_time)
            .bind(&body)
            .execute(&mut **tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound.into());
            }
            hold_service_account(tx, schedule).await
        })
    }

    async fn delete_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<(), StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM schedules WHERE id = $1 AND job_id = $2 AND account_alias = $3",
        )
        .bind(id.0)
        .bind(job_id.0)
        .bind(alias.as_str())
        .execute(self.pool())
        .await
        .map_err(unavailable)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn list_schedules(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Schedule>, StoreError> {
        let (total, rows): (i64, Vec<(Uuid, String)>) = self
            .read(|| async {
                let total: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM schedules WHERE job_id = $1 AND account_alias = $2",
                )
                .bind(job_id.0)
                .bind(alias.as_str())
                .fetch_one(self.pool())
                .await?;
                let rows = sqlx::query_as(
                    "SELECT id, body::text FROM schedules
                      WHERE job_id = $1 AND account_alias = $2
                      ORDER BY created_time DESC, id DESC LIMIT $3 OFFSET $4",
                )
                .bind(job_id.0)
                .bind(alias.as_str())
                .bind(i64::from(page.size))
                .bind(to_i64(page.offset()))
                .fetch_all(self.pool())
                .await?;
                Ok((total, rows))
            })
            .await?;
        let schedules = decode_all(&self.shared().codec, "schedule", rows)?;
        Ok(Page::new(
            page,
            u64::try_from(total).unwrap_or(0),
            schedules,
        ))
    }

    async fn fire_due_schedules(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let shared = self.shared();
        let codec = &self.shared().codec;
        let created = transaction!(self, |tx| fire(codec, tx, now, limit))?;
        if !created.is_empty() {
            // This store's own subscribers, and the other nodes through the notifier. The insert
            // statement also recorded each execution's creation event.
            shared
                .unannounced
                .pending(created.iter().map(|execution| execution.execution_id.0));
            let mut signals = vec![Signal::Pending];
            signals.extend(
                created
                    .iter()
                    .map(|execution| Signal::Feed(execution.execution_id)),
            );
            shared.committed(signals);
        }
        Ok(created)
    }

    async fn next_fire_time(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|| {
            sqlx::query_scalar("SELECT min(next_fire_time) FROM schedules").fetch_one(self.pool())
        })
        .await
    }
}

/// The firing transaction (see the crate docs): lock the due schedules no other node holds,
/// apply [`Schedule::fire`] to each, lock their jobs, insert one execution per due time through
/// the store's insert statement (which skips a due time that has one), write the schedules back.
async fn fire(
    codec: &Codec,
    tx: &mut Transaction<'static, Postgres>,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Execution>, TxError> {
    // SKIP LOCKED: schedules another node is firing now are its to fire. A row it committed
    // meanwhile is re-checked against `next_fire_time <= now` after the lock, so it drops out.
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, body::text FROM schedules
          WHERE next_fire_time <= $1
          ORDER BY next_fire_time
          LIMIT $2
          FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut **tx)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut fired: Vec<(Schedule, Option<ScheduledFire>)> = Vec::with_capacity(rows.len());
    for (id, body) in rows {
        match codec.decode::<Schedule>("schedule", id, &body) {
            Ok(mut schedule) => {
                let due = schedule.fire(now).map(|due_time| ScheduledFire {
                    schedule_id: schedule.id,
                    due_time,
                });
                fired.push((schedule, due));
            }
            // Left as it is: one unreadable row must not stop every other schedule.
            Err(error) => tracing::error!(%error, "skipping an unreadable schedule"),
        }
    }

    // The jobs, locked as the insert statement locks them, in id order so that two firing
    // transactions never wait on each other in a circle.
    let mut job_ids: Vec<Uuid> = fired
        .iter()
        .filter(|(_, due)| due.is_some())
        .map(|(schedule, _)| schedule.job_id.0)
        .collect();
    job_ids.sort_unstable();
    job_ids.dedup();
    let mut jobs: HashMap<Uuid, Job> = HashMap::new();
    if !job_ids.is_empty() {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, body::text FROM jobs WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        )
        .bind(&job_ids)
        .fetch_all(&mut **tx)
        .await?;
        for (id, body) in rows {
            match codec.decode::<Job>("job", id, &body) {
                Ok(job) => {
                    jobs.insert(id, job);
                }
                Err(error) => tracing::error!(%error, "a scheduled job is unreadable; not firing"),
            }
        }
    }

    // The start rule for jobs that skip overlapping runs, under the job locks just taken.
    let skipping: Vec<Uuid> = jobs
        .iter()
        .filter(|(_, job)| job.spec.overlap == Overlap::Skip)
        .map(|(id, _)| *id)
        .collect();
    let mut blocking = if skipping.is_empty() {
        HashMap::new()
    } else {
        overlap::blocking(tx, &skipping).await?
    };

    let mut candidates = Vec::new();
    let mut new = NewExecutions::default();
    for (schedule, due) in &mut fired {
        let Some(fire) = due else { continue };
        let job = jobs
            .get(&schedule.job_id.0)
            .filter(|job| job.account_alias == schedule.account_alias);
        // No job: it was deleted with its schedules after we read them; the due time lapses.
        if let Some(job) = job {
            let execution = Execution::scheduled(job, *fire, &schedule.launch_options, now);
            if execution.overlap == Overlap::Skip {
                if let Some(active) = blocking.get(&job.id.0) {
                    schedule.last_skipped_fire = Some(SkippedFire {
                        due_time: fire.due_time,
                        active_execution_id: *active,
                    });
                    continue;
                }
                // A second schedule of the job in this batch waits for this one.
                blocking.insert(job.id.0, execution.execution_id);
            }
            new.push(codec, &execution, None)?;
            candidates.push(execution);
        }
    }
    let created = if candidates.is_empty() {
        Vec::new()
    } else {
        let inserted = new.insert(&mut **tx).await?;
        candidates
            .into_iter()
            .filter(|execution| inserted.contains(&execution.execution_id.0))
            .collect()
    };

    let mut ids = Vec::with_capacity(fired.len());
    let mut next = Vec::with_capacity(fired.len());
    let mut bodies = Vec::with_capacity(fired.len());
    for (schedule, _) in &fired {
        ids.push(schedule.id.0);
        next.push(schedule.next_fire_time);
        bodies.push(codec.encode("schedule", schedule)?);
    }
    sqlx::query(
        "UPDATE schedules AS s SET next_fire_time = v.next_fire_time, body = v.body::json
           FROM unnest($1::uuid[], $2::int8[], $3::text[]) AS v(id, next_fire_time, body)
          WHERE s.id = v.id",
    )
    .bind(&ids)
    .bind(&next)
    .bind(&bodies)
    .execute(&mut **tx)
    .await?;
    Ok(created)
}
