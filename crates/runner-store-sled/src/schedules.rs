//! The writer-side of service accounts and schedules: each function runs inside the batch's
//! transaction (see `writer.rs`), checks before it writes anything, and keeps a record and all its
//! indexes and counts in step.
//!
//! sled's transactions read and write single keys only, so everything a transaction must find
//! without a scan has a key of its own: a job's schedule ids (`job_schedules`, for deleting a job),
//! the number of schedules using a service account (`meta`, for refusing its delete). The fire-time
//! index is scanned before the transaction, like the claim queue (the writer thread is the only
//! writer), and every entry is checked again inside it.

use runner_core::execution::{Execution, ScheduledFire};
use runner_core::ids::{AccountAlias, JobId, ScheduleId};
use runner_core::schedule::{Schedule, ServiceAccount, SkippedFire};
use runner_core::store::StoreError;
use runner_core::time::Timestamp;

use crate::codec::Encode;
use crate::executions::insert_execution;
use crate::keys;
use crate::trees::{Tx, TxResult, abort};
use crate::writer::{Applied, Candidates, Wants, Write};

/// Inserts a new service account.
#[derive(Debug)]
pub(crate) struct InsertServiceAccount(pub(crate) ServiceAccount);

impl Write for InsertServiceAccount {
    type Reply = ();

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied {
        let account = &self.0;
        let key = keys::service_account(&account.account_alias, &account.alias);
        if tx.service_accounts.get(&key[..])?.is_some() {
            return Ok(Err(StoreError::Conflict(format!(
                "service account {} exists already",
                account.alias
            ))));
        }
        let bytes = tx.codec.encode("service account", account).or_else(abort)?;
        tx.service_accounts.insert(key, bytes)?;
        tx.service_accounts_by_account.insert(
            keys::account_service_account(
                &account.account_alias,
                account.created_time,
                &account.alias,
            ),
            &[][..],
        )?;
        tx.add(&keys::service_account_count(&account.account_alias), 1)?;
        Ok(Ok(()))
    }
}

/// Deletes service account `name` of `alias`.
///
/// Refused while a schedule runs under the account: the usage count is read in the transaction
/// that deletes, so no schedule can start using it in between.
#[derive(Debug)]
pub(crate) struct DeleteServiceAccount {
    pub(crate) alias: AccountAlias,
    pub(crate) name: String,
}

impl Write for DeleteServiceAccount {
    type Reply = ();

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied {
        let (alias, name) = (&self.alias, self.name.as_str());
        let key = keys::service_account(alias, name);
        let Some(bytes) = tx.service_accounts.get(&key[..])? else {
            return Ok(Err(StoreError::NotFound));
        };
        let users = tx.counter(&keys::service_account_users(alias, name))?;
        if users > 0 {
            return Ok(Err(StoreError::Conflict(format!(
                "service account {name} is used by {users} schedule(s); delete or change them first"
            ))));
        }
        let account: ServiceAccount = tx.codec.decode("service account", &bytes).or_else(abort)?;
        tx.service_accounts.remove(key)?;
        tx.service_accounts_by_account
            .remove(keys::account_service_account(
                alias,
                account.created_time,
                name,
            ))?;
        tx.add(&keys::service_account_count(alias), -1)?;
        Ok(Ok(()))
    }
}

/// The stored schedule `id`, as the transaction sees it.
fn stored_schedule(tx: &Tx<'_>, id: ScheduleId) -> TxResult<Option<Schedule>> {
    match tx.schedules.get(keys::schedule(id))? {
        None => Ok(None),
        Some(bytes) => tx.codec.decode("schedule", &bytes).map(Some).or_else(abort),
    }
}

/// What a schedule needs to be stored: its job under the same account ([`StoreError::NotFound`]),
/// and its service account ([`StoreError::Conflict`]).
fn check_references(tx: &Tx<'_>, schedule: &Schedule) -> Applied {
    let job_known = tx
        .job(schedule.job_id)?
        .is_some_and(|job| job.account_alias == schedule.account_alias);
    if !job_known {
        return Ok(Err(StoreError::NotFound));
    }
    let account = keys::service_account(&schedule.account_alias, &schedule.service_account_alias);
    if tx.service_accounts.get(account)?.is_none() {
        return Ok(Err(StoreError::Conflict(format!(
            "service account {} does not exist",
            schedule.service_account_alias
        ))));
    }
    Ok(Ok(()))
}

/// Stores `new` (which was `old` before this transaction, or is new) and keeps the fire-time
/// index, the listing index and the service account's usage count in step with it. The job's
/// list of schedules is the caller's: it changes on insert and delete only.
fn put_schedule(tx: &Tx<'_>, old: Option<&Schedule>, new: &Schedule) -> TxResult<()> {
    // Serialized first: a record that cannot be written aborts before any index changes.
    let bytes = tx.codec.encode("schedule", new).or_else(abort)?;
    let id = new.id;
    let alias = &new.account_alias;

    let old_next = old.and_then(|old| old.next_fire_time);
    if old_next != new.next_fire_time {
        if let Some(at) = old_next {
            tx.fire_times.remove(&keys::fire_time(at, id)[..])?;
        }
        if let Some(at) = new.next_fire_time {
            tx.fire_times
                .insert(&keys::fire_time(at, id)[..], &[][..])?;
        }
    }

    let old_created = old.map(|old| old.created_time);
    if old_created != Some(new.created_time) {
        // The listing is ordered by creation time; keep the index on the record's.
        if let Some(created) = old_created {
            tx.schedules_by_job
                .remove(keys::job_schedule(alias, new.job_id, created, id))?;
        }
        tx.schedules_by_job.insert(
            keys::job_schedule(alias, new.job_id, new.created_time, id),
            &[][..],
        )?;
    }

    let old_user = old.map(|old| old.service_account_alias.as_str());
    if old_user != Some(new.service_account_alias.as_str()) {
        if let Some(name) = old_user {
            tx.add(&keys::service_account_users(alias, name), -1)?;
        }
        tx.add(
            &keys::service_account_users(alias, &new.service_account_alias),
            1,
        )?;
    }

    tx.schedules.insert(&keys::schedule(id)[..], bytes)?;
    Ok(())
}

/// Removes a stored schedule, its indexes and its use of the service account; the job's list of
/// schedules is the caller's.
fn remove_schedule(tx: &Tx<'_>, schedule: &Schedule) -> TxResult<()> {
    let (id, alias) = (schedule.id, &schedule.account_alias);
    if let Some(at) = schedule.next_fire_time {
        tx.fire_times.remove(&keys::fire_time(at, id)[..])?;
    }
    tx.schedules_by_job.remove(keys::job_schedule(
        alias,
        schedule.job_id,
        schedule.created_time,
        id,
    ))?;
    tx.add(
        &keys::service_account_users(alias, &schedule.service_account_alias),
        -1,
    )?;
    tx.schedules.remove(&keys::schedule(id)[..])?;
    if let Some(last) = schedule.last_fire_time {
        tx.fired.remove(&keys::fired(id, last)[..])?;
    }
    Ok(())
}

/// Inserts a new schedule of a stored job, under a stored service account.
#[derive(Debug)]
pub(crate) struct InsertSchedule(pub(crate) Schedule);

impl Write for InsertSchedule {
    type Reply = ();

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied {
        let schedule = &self.0;
        if let Err(refused) = check_references(tx, schedule)? {
            return Ok(Err(refused));
        }
        if tx.schedules.get(keys::schedule(schedule.id))?.is_some() {
            return Ok(Err(StoreError::Conflict(format!(
                "schedule {} exists already",
                schedule.id
            ))));
        }
        put_schedule(tx, None, schedule)?;
        let list = keys::job_schedules(&schedule.account_alias, schedule.job_id);
        let mut ids = tx
            .job_schedules
            .get(&list[..])?
            .map(|ids| ids.to_vec())
            .unwrap_or_default();
        ids.extend_from_slice(&keys::schedule(schedule.id));
        tx.job_schedules.insert(list, ids)?;
        Ok(Ok(()))
    }
}

/// The stored schedule `id` if it belongs to `job_id` of `alias`.
fn owned_schedule(
    tx: &Tx<'_>,
    alias: &AccountAlias,
    job_id: JobId,
    id: ScheduleId,
) -> TxResult<Option<Schedule>> {
    Ok(stored_schedule(tx, id)?
        .filter(|stored| &stored.account_alias == alias && stored.job_id == job_id))
}

/// Replaces a stored schedule of the same job and account.
#[derive(Debug)]
pub(crate) struct UpdateSchedule(pub(crate) Schedule);

impl Write for UpdateSchedule {
    type Reply = ();

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied {
        let schedule = &self.0;
        let Some(old) = owned_schedule(tx, &schedule.account_alias, schedule.job_id, schedule.id)?
        else {
            return Ok(Err(StoreError::NotFound));
        };
        if let Err(refused) = check_references(tx, schedule)? {
            return Ok(Err(refused));
        }
        put_schedule(tx, Some(&old), schedule)?;
        Ok(Ok(()))
    }
}

/// Deletes schedule `id` of job `job_id` of `alias`.
#[derive(Debug)]
pub(crate) struct DeleteSchedule {
    pub(crate) alias: AccountAlias,
    pub(crate) job_id: JobId,
    pub(crate) id: ScheduleId,
}

impl Write for DeleteSchedule {
    type Reply = ();

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied {
        let (alias, job_id, id) = (&self.alias, self.job_id, self.id);
        let Some(schedule) = owned_schedule(tx, alias, job_id, id)? else {
            return Ok(Err(StoreError::NotFound));
        };
        remove_schedule(tx, &schedule)?;
        let list = keys::job_schedules(alias, job_id);
        let rest: Vec<u8> = tx
            .job_schedules
            .get(&list[..])?
            .map(|ids| {
                keys::schedule_ids(&ids)
                    .filter(|other| *other != id)
                    .flat_map(keys::schedule)
                    .collect()
            })
            .unwrap_or_default();
        if rest.is_empty() {
            tx.job_schedules.remove(list)?;
        } else {
            tx.job_schedules.insert(list, rest)?;
        }
        Ok(Ok(()))
    }
}

/// Deletes every schedule of a job, in the transaction that deletes the job.
pub(crate) fn delete_job_schedules(
    tx: &Tx<'_>,
    alias: &AccountAlias,
    job_id: JobId,
) -> TxResult<()> {
    let list = keys::job_schedules(alias, job_id);
    let Some(ids) = tx.job_schedules.remove(list)? else {
        return Ok(());
    };
    for id in keys::schedule_ids(&ids) {
        if let Some(schedule) = stored_schedule(tx, id)? {
            remove_schedule(tx, &schedule)?;
        }
    }
    Ok(())
}

/// Fires up to `limit` schedules due at `now`: each through [`Schedule::fire`], with one new
/// execution per (schedule, due time) inserted the way every execution is, and the advanced
/// schedule stored with its index entry. Replies with the new executions.
#[derive(Debug)]
pub(crate) struct FireDue {
    pub(crate) now: Timestamp,
    pub(crate) limit: usize,
}

impl Write for FireDue {
    type Reply = Vec<Execution>;

    fn wants(&self) -> Wants {
        Wants::Fires {
            now: self.now,
            limit: self.limit,
        }
    }

    fn apply(&self, tx: &Tx<'_>, candidates: &Candidates) -> Applied<Vec<Execution>> {
        let (now, limit) = (self.now, self.limit);
        let mut fired_schedules = 0;
        let mut created = Vec::new();
        for (key, at, id) in &candidates.fire {
            if fired_schedules >= limit || *at > now {
                break;
            }
            // Moved on by an earlier write of this batch (a fire, an update, a delete): skip it.
            if tx.fire_times.get(key)?.is_none() {
                continue;
            }
            let Some(old) = stored_schedule(tx, *id)? else {
                continue;
            };
            let mut schedule = old.clone();
            let Some(due_time) = schedule.fire(now) else {
                continue;
            };
            fired_schedules += 1;
            let fired = keys::fired(*id, due_time);
            let job = tx
                .job(schedule.job_id)?
                .filter(|job| job.account_alias == schedule.account_alias);
            // A job without its schedules cannot exist (deleting a job deletes them), but should
            // one be read, the schedule still advances: it must not stay due forever.
            if let Some(job) = job {
                if tx.fired.get(&fired[..])?.is_none() {
                    let fire = ScheduledFire {
                        schedule_id: *id,
                        due_time,
                    };
                    let execution = Execution::scheduled(&job, fire, &schedule.launch_options, now);
                    // The job was just read and the execution id is new, so this is refused only
                    // by the start rule of a job that skips overlapping runs (recorded on the
                    // schedule); otherwise the whole batch aborts rather than advance a schedule
                    // that did not fire.
                    let inserted = match insert_execution(tx, &execution)? {
                        Ok(()) => true,
                        Err(StoreError::Overlapping(active)) => {
                            schedule.last_skipped_fire = Some(SkippedFire {
                                due_time,
                                active_execution_id: active,
                            });
                            false
                        }
                        Err(refused) => return abort(refused),
                    };
                    tx.fired.insert(&fired[..], &[][..])?;
                    // Fires only move forward (`Schedule::fire` returns due times after the last
                    // one), so the previous due time can never fire again: its key is dead weight.
                    if let Some(previous) = old.last_fire_time.filter(|at| *at != due_time) {
                        tx.fired.remove(&keys::fired(*id, previous)[..])?;
                    }
                    if inserted {
                        created.push(execution);
                    }
                }
            }
            put_schedule(tx, Some(&old), &schedule)?;
        }
        Ok(Ok(created))
    }
}

#[cfg(test)]
mod tests {
    use runner_core::store::prelude::*;
    use runner_core::testkit::fixtures::{alias, job};

    use super::*;
    use crate::SledStore;

    /// The `fired` set keeps only each schedule's latest due time, and loses it with the
    /// schedule, while every due time still fires once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fired_set_keeps_one_key_per_schedule() {
        use runner_core::schedule::{Schedule, ServiceAccount, Trigger, TriggerKind};
        use runner_core::store::ScheduleStore;

        const MINUTE: Timestamp = 60_000;
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let account = ServiceAccount {
            alias: "svc".into(),
            account_alias: alias("ACME"),
            description: None,
            created_time: 1,
        };
        store.insert_service_account(&account).await.unwrap();
        let every_minute = Trigger {
            kind: TriggerKind::Cron,
            expression: "* * * * *".into(),
        };
        let schedules: Vec<Schedule> = (0..2)
            .map(|_| {
                Schedule::new(
                    alias("ACME"),
                    job.id,
                    "tests".into(),
                    "svc".into(),
                    every_minute.clone(),
                    0,
                )
            })
            .collect();
        for schedule in &schedules {
            store.insert_schedule(schedule).await.unwrap();
        }
        for minute in 1..=3 {
            let fired = store.fire_due_schedules(minute * MINUTE, 10).await.unwrap();
            assert_eq!(
                fired.len(),
                2,
                "each schedule fires once at minute {minute}"
            );
            assert!(
                store
                    .fire_due_schedules(minute * MINUTE, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        let fired_keys = |store: &SledStore| store.inner.trees.fired.len();
        assert_eq!(fired_keys(&store), 2);
        store
            .delete_schedule(&alias("ACME"), job.id, schedules[0].id)
            .await
            .unwrap();
        assert_eq!(fired_keys(&store), 1);
        let listed = store
            .list_executions(
                &alias("ACME"),
                job.id,
                runner_core::page::PageRequest::default(),
            )
            .await
            .unwrap();
        assert_eq!(listed.total_size, 6);
    }
}
