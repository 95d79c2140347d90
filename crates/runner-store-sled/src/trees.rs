//! The trees of a store, the reads of their records, and the transactions over them.
//!
//! Every write is one sled transaction over all the trees it touches ([`Trees::transact`]), so a
//! record and its indexes change together or not at all, also across a crash: sled seals the
//! transaction's writes as one batch in its log, and recovery replays whole batches only.

use std::cell::RefCell;

use runner_core::execution::{Execution, Status};
use runner_core::ids::{AccountAlias, ExecutionId, JobId, ScheduleId};
use runner_core::job::Job;
use runner_core::overlap;
use runner_core::page::PageRequest;
use runner_core::schedule::{Schedule, ServiceAccount};
use runner_core::store::StoreError;
use runner_core::time::Timestamp;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError, Transactional,
    TransactionalTree,
};

use crate::codec::{Codec, Encode, count};
use crate::keys;

/// The result of a step inside a transaction: a [`StoreError`] aborts it.
pub(crate) type TxResult<T> = ConflictableTransactionResult<T, StoreError>;

/// Aborts the transaction with `error`.
pub(crate) fn abort<T>(error: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(error))
}

/// The trees of one store (see the crate docs for their layout).
#[derive(Debug, Clone)]
pub(crate) struct Trees {
    pub(crate) jobs: sled::Tree,
    pub(crate) executions: sled::Tree,
    pub(crate) jobs_by_account: sled::Tree,
    pub(crate) executions_by_job: sled::Tree,
    pub(crate) pending: sled::Tree,
    pub(crate) pending_position: sled::Tree,
    pub(crate) deadlines: sled::Tree,
    pub(crate) ended: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) service_accounts: sled::Tree,
    pub(crate) service_accounts_by_account: sled::Tree,
    pub(crate) schedules: sled::Tree,
    pub(crate) schedules_by_job: sled::Tree,
    pub(crate) job_schedules: sled::Tree,
    pub(crate) fire_times: sled::Tree,
    pub(crate) fired: sled::Tree,
    pub(crate) events: sled::Tree,
    pub(crate) outbox: sled::Tree,
    pub(crate) outbox_failed: sled::Tree,
    pub(crate) run_logs: sled::Tree,
    pub(crate) run_log_chunks: sled::Tree,
    /// How records become bytes (and their secrets sealed).
    pub(crate) codec: Codec,
}

impl Trees {
    /// Opens (creating) every tree of `db`.
    pub(crate) fn open(db: &sled::Db, codec: Codec) -> sled::Result<Self> {
        Ok(Self {
            jobs: db.open_tree("jobs")?,
            executions: db.open_tree("executions")?,
            jobs_by_account: db.open_tree("jobs_by_account")?,
            executions_by_job: db.open_tree("executions_by_job")?,
            pending: db.open_tree("pending")?,
            pending_position: db.open_tree("pending_position")?,
            deadlines: db.open_tree("deadlines")?,
            ended: db.open_tree("ended")?,
            meta: db.open_tree("meta")?,
            service_accounts: db.open_tree("service_accounts")?,
            service_accounts_by_account: db.open_tree("service_accounts_by_account")?,
            schedules: db.open_tree("schedules")?,
            schedules_by_job: db.open_tree("schedules_by_job")?,
            job_schedules: db.open_tree("job_schedules")?,
            fire_times: db.open_tree("fire_times")?,
            fired: db.open_tree("fired")?,
            events: db.open_tree("events")?,
            outbox: db.open_tree("outbox")?,
            outbox_failed: db.open_tree("outbox_failed")?,
            run_logs: db.open_tree("run_logs")?,
            run_log_chunks: db.open_tree("run_log_chunks")?,
            codec,
        })
    }

    /// The job `id` if it belongs to `alias`.
    pub(crate) fn job(&self, alias: &AccountAlias, id: JobId) -> Result<Option<Job>, StoreError> {
        let Some(bytes) = self
            .jobs
            .get(keys::job(id))
            .map_err(StoreError::unavailable)?
        else {
            return Ok(None);
        };
        let job: Job = self.codec.decode("job", &bytes)?;
        Ok((&job.account_alias == alias).then_some(job))
    }

    /// The execution `id`.
    pub(crate) fn execution(&self, id: ExecutionId) -> Result<Option<Execution>, StoreError> {
        match self
            .executions
            .get(keys::execution(id))
            .map_err(StoreError::unavailable)?
        {
            Some(bytes) => self.codec.decode("execution", &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The service account `name` of `alias`.
    pub(crate) fn service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        self.service_accounts
            .get(keys::service_account(alias, name))
            .map_err(StoreError::unavailable)?
            .map(|bytes| self.codec.decode("service account", &bytes))
            .transpose()
    }

    /// The schedule `id` if it belongs to job `job_id` of `alias`.
    pub(crate) fn schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<Option<Schedule>, StoreError> {
        let Some(bytes) = self
            .schedules
            .get(keys::schedule(id))
            .map_err(StoreError::unavailable)?
        else {
            return Ok(None);
        };
        let schedule: Schedule = self.codec.decode("schedule", &bytes)?;
        Ok((&schedule.account_alias == alias && schedule.job_id == job_id).then_some(schedule))
    }

    /// Whether an execution of job `id` holds its turn, as committed (see
    /// `runner_core::overlap`).
    pub(crate) fn job_holds_a_turn(&self, id: JobId) -> Result<bool, StoreError> {
        let value = self
            .meta
            .get(keys::one_at_a_time(id))
            .map_err(StoreError::unavailable)?;
        for id in value
            .as_deref()
            .map(keys::execution_ids)
            .into_iter()
            .flatten()
        {
            if self
                .execution(id)?
                .is_some_and(|execution| overlap::holds_the_turn(&execution))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A counter of the `meta` tree.
    pub(crate) fn count(&self, key: &[u8]) -> Result<u64, StoreError> {
        let bytes = self.meta.get(key).map_err(StoreError::unavailable)?;
        Ok(count(bytes.as_deref()))
    }

    /// Runs `body` as one serializable transaction over every tree. sled may run `body` more than
    /// once (on a conflict), so it must only read and write through the [`Tx`] it is given, and
    /// whatever it keeps from a run must be replaced by the next: the last run is the one that
    /// commits.
    pub(crate) fn transact<A>(
        &self,
        body: impl FnMut(&Tx<'_>) -> TxResult<A>,
    ) -> Result<A, StoreError> {
        // sled takes an `Fn`; it runs the body once at a time, so the borrow below never overlaps.
        let body = RefCell::new(body);
        // sled's tuple form stops at 14 trees; its slice form has no such limit. The order here
        // is the order of the views below.
        let trees: [&sled::Tree; 21] = [
            &self.jobs,
            &self.executions,
            &self.jobs_by_account,
            &self.executions_by_job,
            &self.pending,
            &self.pending_position,
            &self.deadlines,
            &self.ended,
            &self.meta,
            &self.service_accounts,
            &self.service_accounts_by_account,
            &self.schedules,
            &self.schedules_by_job,
            &self.job_schedules,
            &self.fire_times,
            &self.fired,
            &self.events,
            &self.outbox,
            &self.outbox_failed,
            &self.run_logs,
            &self.run_log_chunks,
        ];
        let result = trees[..].transaction(|views: &Vec<TransactionalTree>| {
            let [
                jobs,
                executions,
                jobs_by_account,
                executions_by_job,
                pending,
                pending_position,
                deadlines,
                ended,
                meta,
                service_accounts,
                service_accounts_by_account,
                schedules,
                schedules_by_job,
                job_schedules,
                fire_times,
                fired,
                events,
                outbox,
                outbox_failed,
                run_logs,
                run_log_chunks,
            ] = &views[..]
            else {
                return abort(StoreError::Corrupt(format!(
                    "sled gave {} transaction views for 21 trees",
                    views.len()
                )));
            };
            (body.borrow_mut())(&Tx {
                jobs,
                executions,
                jobs_by_account,
                executions_by_job,
                pending,
                pending_position,
                deadlines,
                ended,
                meta,
                service_accounts,
                service_accounts_by_account,
                schedules,
                schedules_by_job,
                job_schedules,
                fire_times,
                fired,
                events,
                outbox,
                outbox_failed,
                run_logs,
                run_log_chunks,
                codec: &self.codec,
            })
        });
        match result {
            Ok(value) => Ok(value),
            Err(TransactionError::Abort(error)) => Err(error),
            Err(TransactionError::Storage(error)) => Err(StoreError::unavailable(error)),
        }
    }
}

/// The trees as one transaction sees them.
pub(crate) struct Tx<'a> {
    pub(crate) jobs: &'a TransactionalTree,
    pub(crate) executions: &'a TransactionalTree,
    pub(crate) jobs_by_account: &'a TransactionalTree,
    pub(crate) executions_by_job: &'a TransactionalTree,
    pending: &'a TransactionalTree,
    pending_position: &'a TransactionalTree,
    deadlines: &'a TransactionalTree,
    ended: &'a TransactionalTree,
    pub(crate) meta: &'a TransactionalTree,
    pub(crate) service_accounts: &'a TransactionalTree,
    pub(crate) service_accounts_by_account: &'a TransactionalTree,
    pub(crate) schedules: &'a TransactionalTree,
    pub(crate) schedules_by_job: &'a TransactionalTree,
    pub(crate) job_schedules: &'a TransactionalTree,
    pub(crate) fire_times: &'a TransactionalTree,
    pub(crate) fired: &'a TransactionalTree,
    pub(crate) events: &'a TransactionalTree,
    pub(crate) outbox: &'a TransactionalTree,
    pub(crate) outbox_failed: &'a TransactionalTree,
    pub(crate) run_logs: &'a TransactionalTree,
    pub(crate) run_log_chunks: &'a TransactionalTree,
    pub(crate) codec: &'a Codec,
}

impl Tx<'_> {
    /// The execution `id`, as this transaction sees it.
    pub(crate) fn execution(&self, id: ExecutionId) -> TxResult<Option<Execution>> {
        match self.executions.get(keys::execution(id))? {
            None => Ok(None),
            Some(bytes) => self
                .codec
                .decode("execution", &bytes)
                .map(Some)
                .or_else(abort),
        }
    }

    /// The stored job `id`, whatever its account, as this transaction sees it.
    pub(crate) fn job(&self, id: JobId) -> TxResult<Option<Job>> {
        match self.jobs.get(keys::job(id))? {
            None => Ok(None),
            Some(bytes) => self.codec.decode("job", &bytes).map(Some).or_else(abort),
        }
    }

    /// The one-at-a-time executions of job `id` that have not ended, as this transaction sees
    /// them (see `runner_core::overlap`).
    pub(crate) fn one_at_a_time(&self, id: JobId) -> TxResult<Vec<ExecutionId>> {
        let value = self.meta.get(keys::one_at_a_time(id))?;
        Ok(value
            .as_deref()
            .map(keys::execution_ids)
            .into_iter()
            .flatten()
            .collect())
    }

    /// The records of [`Tx::one_at_a_time`].
    pub(crate) fn one_at_a_time_executions(&self, id: JobId) -> TxResult<Vec<Execution>> {
        let mut executions = Vec::new();
        for id in self.one_at_a_time(id)? {
            executions.extend(self.execution(id)?);
        }
        Ok(executions)
    }

    /// Where `id` is in the claim queue, if it is queued.
    pub(crate) fn queue_position(&self, id: ExecutionId) -> TxResult<Option<sled::IVec>> {
        Ok(self.pending_position.get(keys::execution(id))?)
    }

    /// Adds `delta` to a counter of the `meta` tree.
    pub(crate) fn add(&self, key: &[u8], delta: i64) -> TxResult<u64> {
        let now = count(self.meta.get(key)?.as_deref()).saturating_add_signed(delta);
        if now == 0 {
            self.meta.remove(key)?;
        } else {
            self.meta.insert(key, &now.to_be_bytes()[..])?;
        }
        Ok(now)
    }

    /// A counter of the `meta` tree.
    pub(crate) fn counter(&self, key: &[u8]) -> TxResult<u64> {
        Ok(count(self.meta.get(key)?.as_deref()))
    }

    /// Stores `new` (which was `old` before this transaction, or is new) and keeps the claim
    /// queue, the deadline index and the job's count of unfinished executions in step with it.
    /// The listing index and counts are the caller's: they change on insert only.
    pub(crate) fn put_execution(&self, old: Option<&Execution>, new: &Execution) -> TxResult<()> {
        // Serialized first: a record that cannot be written aborts before any index changes.
        let bytes = self.codec.encode("execution", new).or_else(abort)?;
        let id = new.execution_id;
        let id_key = keys::execution(id);

        let was_pending = old.is_some_and(|old| old.status == Status::Pending);
        let is_pending = new.status == Status::Pending;
        if was_pending && !is_pending {
            if let Some(position) = self.pending_position.remove(&id_key[..])? {
                self.pending.remove(position)?;
            }
        } else if is_pending && !was_pending {
            // Claim order is the order executions became PENDING (a restart queues at the end).
            let position = self.add(keys::QUEUE_TAIL, 1)?.to_be_bytes();
            let entry = keys::pending_entry(id, new.overlap.one_at_a_time());
            self.pending.insert(&position[..], entry)?;
            self.pending_position.insert(&id_key[..], &position[..])?;
        }

        reindex(
            self.deadlines,
            keys::deadline,
            id,
            old.and_then(Execution::next_deadline),
            new.next_deadline(),
        )?;
        reindex(
            self.ended,
            keys::ended,
            id,
            old.and_then(Execution::ended_time),
            new.ended_time(),
        )?;

        let was_active = old.is_some_and(|old| !old.status.is_terminal());
        let is_active = !new.status.is_terminal();
        if was_active != is_active {
            self.add(
                &keys::active_count(new.job_id),
                if is_active { 1 } else { -1 },
            )?;
            if new.overlap.one_at_a_time() {
                let key = keys::one_at_a_time(new.job_id);
                let mut ids: Vec<ExecutionId> = self.one_at_a_time(new.job_id)?;
                ids.retain(|other| *other != id);
                if is_active {
                    ids.push(id);
                }
                if ids.is_empty() {
                    self.meta.remove(key)?;
                } else {
                    let value: Vec<u8> = ids.iter().flat_map(|id| keys::execution(*id)).collect();
                    self.meta.insert(key, value)?;
                }
            }
        }

        self.executions.insert(&id_key[..], bytes)?;
        Ok(())
    }
}

/// Moves execution `id`'s entry in a time index (`deadlines`, `ended`), keyed by `key`, from
/// the time `old` to the time `new` (`None`: no entry).
fn reindex(
    index: &TransactionalTree,
    key: fn(Timestamp, ExecutionId) -> [u8; 24],
    id: ExecutionId,
    old: Option<Timestamp>,
    new: Option<Timestamp>,
) -> TxResult<()> {
    if old != new {
        if let Some(at) = old {
            index.remove(&key(at, id)[..])?;
        }
        if let Some(at) = new {
            index.insert(&key(at, id)[..], &[][..])?;
        }
    }
    Ok(())
}

impl Tx<'_> {
    /// Deletes the ended execution `old` (as this transaction read it) and its index entries:
    /// the record, its `ended` entry, its listing entry and its job's execution count. Its feed,
    /// deliveries and run logs are the caller's (they are found by range, which a transaction
    /// cannot read).
    pub(crate) fn delete_ended_execution(&self, old: &Execution) -> TxResult<()> {
        let id = old.execution_id;
        reindex(self.ended, keys::ended, id, old.ended_time(), None)?;
        reindex(
            self.deadlines,
            keys::deadline,
            id,
            old.next_deadline(),
            None,
        )?;
        if let Some(position) = self.pending_position.remove(&keys::execution(id)[..])? {
            self.pending.remove(position)?;
        }
        self.executions_by_job.remove(keys::job_execution(
            &old.account_alias,
            old.job_id,
            old.created_time,
            id,
        ))?;
        self.add(&keys::execution_count(&old.account_alias, old.job_id), -1)?;
        self.executions.remove(&keys::execution(id)[..])?;
        Ok(())
    }

    /// Removes a stale `ended` entry (one whose execution is gone or ended at another time).
    pub(crate) fn drop_ended_entry(&self, key: &[u8]) -> TxResult<()> {
        self.ended.remove(key)?;
        Ok(())
    }
}

/// Keys of `index` under `prefix`, newest first (the index is read backwards), one page.
pub(crate) fn page_keys(
    index: &sled::Tree,
    prefix: &[u8],
    page: PageRequest,
) -> Result<Vec<sled::IVec>, StoreError> {
    index
        .scan_prefix(prefix)
        .keys()
        .rev()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(page.size as usize)
        .collect::<Result<_, _>>()
        .map_err(StoreError::unavailable)
}
