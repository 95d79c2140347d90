//! The writer thread: every write of a store goes through it, in batches, with one transaction
//! and one flush per batch (group commit).
//!
//! Callers send an [`Op`] with a reply channel and await the reply. The thread takes every op
//! that is waiting (up to [`MAX_BATCH`]), applies them in order in **one** sled transaction,
//! flushes sled's log once, and only then replies to each caller. So no caller is acknowledged
//! before its write is durable, and while one batch is being flushed the next one gathers: the
//! busier the store, the more writes share a flush.
//!
//! Each op inside the batch is checked before it writes anything, so a refused op (a transition
//! the state machine refuses, a job that is gone) writes nothing and does not disturb the other
//! ops. If the batch's transaction aborts as a whole (a record that cannot be read back, a
//! storage error), its ops are retried one per transaction, so a bad record only fails the ops
//! that touch it.
//!
//! Feed writes are ops like the others: a transition or claim stores the status event it recorded
//! ([`feed::transition`]) with the execution, an insert its creation event, an append
//! (`AppendEvents`) the executor's events, a settle (`SettleDelivery`) the delivery's new state;
//! each in the batch's transaction, acknowledged after the batch's flush.
//!
//! Being the only writer also keeps claims simple: the claim queue read before the transaction
//! cannot change under it, except by earlier ops of the same batch, which the transaction sees.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use runner_core::execution::Execution;
use runner_core::executor::ExecutorEvent;
use runner_core::feed::{self, DeliveryKey, Settlement};
use runner_core::ids::{AccountAlias, ExecutionId, JobId, ScheduleId};
use runner_core::job::Job;
use runner_core::machine::Command;
use runner_core::schedule::{Schedule, ServiceAccount};
use runner_core::store::StoreError;
use runner_core::time::Timestamp;
use tokio::sync::oneshot;

use crate::codec::{decode, encode};
use crate::durability::Durability;
use crate::keys;
use crate::schedules::{self, FireCandidate};
use crate::trees::{Trees, Tx, TxResult};

/// The most ops in one transaction. A transaction holds sled's process-wide write lock, which
/// readers wait for; this bounds that wait to well under a millisecond.
pub(crate) const MAX_BATCH: usize = 64;

/// A write.
#[derive(Debug)]
pub(crate) enum Op {
    InsertJob(Job),
    UpdateJob(Job),
    DeleteJob(AccountAlias, JobId),
    InsertExecution(Execution),
    Transition(ExecutionId, Command, Timestamp),
    Claim {
        command: Command,
        limit: usize,
        now: Timestamp,
    },
    InsertServiceAccount(ServiceAccount),
    DeleteServiceAccount(AccountAlias, String),
    InsertSchedule(Schedule),
    UpdateSchedule(Schedule),
    DeleteSchedule(AccountAlias, JobId, ScheduleId),
    FireDue {
        now: Timestamp,
        limit: usize,
    },
    AppendEvents {
        id: ExecutionId,
        attempt: u32,
        events: Vec<ExecutorEvent>,
        now: Timestamp,
    },
    SettleDelivery(DeliveryKey, Settlement),
}

/// What a write returns.
#[derive(Debug)]
pub(crate) enum Done {
    Unit,
    /// The execution after a transition, and whether the transition recorded a feed event.
    Execution(Box<Execution>, bool),
    /// The execution's latest sequence number after an append, and whether it recorded any.
    Appended(u64, bool),
    Claimed(Vec<Execution>),
    Fired(Vec<Execution>),
}

/// The outcome of one op, for its caller.
pub(crate) type Reply = Result<Done, StoreError>;

/// An op and where to send its outcome.
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// What the writer thread owns.
pub(crate) struct Writer {
    pub(crate) db: sled::Db,
    pub(crate) trees: Trees,
    pub(crate) durability: Durability,
    /// The log file, opened again for `fdatasync` ([`Durability::Sync`]).
    pub(crate) log: Option<std::fs::File>,
    pub(crate) flushes: Arc<AtomicU64>,
}

impl Writer {
    /// Serves requests until every sender is gone.
    pub(crate) fn run(self, requests: mpsc::Receiver<Request>) {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            batch.extend(requests.try_iter().take(MAX_BATCH - 1));
            let (ops, replies): (Vec<Op>, Vec<_>) =
                batch.into_iter().map(|req| (req.op, req.reply)).unzip();
            let mut outcomes = self.apply(&ops);
            if outcomes.iter().any(Result::is_ok) {
                if let Err(error) = self.make_durable() {
                    tracing::error!(%error, "flushing the sled log failed");
                    // Committed but not known durable: the callers must not take it as done.
                    let message = error.to_string();
                    for outcome in outcomes.iter_mut().filter(|outcome| outcome.is_ok()) {
                        *outcome = Err(StoreError::unavailable(std::io::Error::other(format!(
                            "the write may not be durable: {message}"
                        ))));
                    }
                }
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A caller that went away (its future dropped) needs no answer.
                let _ = reply.send(outcome);
            }
        }
    }

    fn make_durable(&self) -> Result<(), StoreError> {
        match self.durability {
            Durability::Deferred => return Ok(()),
            Durability::Flush => {}
            Durability::Sync => {}
        }
        self.db.flush().map_err(StoreError::unavailable)?;
        if let Some(log) = &self.log {
            log.sync_data().map_err(StoreError::unavailable)?;
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Applies `ops` in one transaction; if it aborts, one transaction per op.
    fn apply(&self, ops: &[Op]) -> Vec<Reply> {
        match self.transact(ops) {
            Ok(outcomes) => outcomes,
            Err(error) if ops.len() == 1 => vec![Err(error)],
            Err(_) => ops
                .iter()
                .map(|op| match self.transact(std::slice::from_ref(op)) {
                    Ok(mut outcomes) => outcomes.pop().unwrap_or(Ok(Done::Unit)),
                    Err(error) => Err(error),
                })
                .collect(),
        }
    }

    fn transact(&self, ops: &[Op]) -> Result<Vec<Reply>, StoreError> {
        // Claim candidates come from the queue as committed; the transaction skips those that
        // earlier ops of the batch took. Read enough for every claim of the batch. Likewise for
        // the schedules due for the fires of the batch.
        let mut wanted = 0usize;
        let mut to_fire = 0usize;
        let mut latest_now = None;
        for op in ops {
            match op {
                Op::Claim { limit, .. } => wanted = wanted.saturating_add(*limit),
                Op::FireDue { now, limit } => {
                    to_fire = to_fire.saturating_add(*limit);
                    latest_now = latest_now.max(Some(*now));
                }
                _ => {}
            }
        }
        let candidates = Candidates {
            claim: if wanted > 0 {
                self.queue_head(wanted)?
            } else {
                Vec::new()
            },
            fire: match latest_now {
                Some(now) if to_fire > 0 => self.due_schedules(now, to_fire)?,
                _ => Vec::new(),
            },
        };
        self.trees.transact(|tx| {
            let mut outcomes = Vec::with_capacity(ops.len());
            for op in ops {
                outcomes.push(apply_op(tx, op, &candidates)?);
            }
            Ok(outcomes)
        })
    }

    /// The first `limit` entries of the fire-time index due at `now`, earliest first.
    fn due_schedules(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<FireCandidate>, StoreError> {
        let mut due = Vec::new();
        for entry in self.trees.fire_times.iter().keys() {
            if due.len() >= limit {
                break;
            }
            let key = entry.map_err(StoreError::unavailable)?;
            let (Some(at), Some(id)) = (keys::fire_time_at(&key), keys::schedule_id_at(&key))
            else {
                return Err(StoreError::Corrupt("a fire-time key is malformed".into()));
            };
            if at > now {
                break;
            }
            due.push((key, at, id));
        }
        Ok(due)
    }

    /// The first `limit` entries of the claim queue: (queue position, execution id).
    fn queue_head(&self, limit: usize) -> Result<Vec<(sled::IVec, ExecutionId)>, StoreError> {
        self.trees
            .pending
            .iter()
            .take(limit)
            .map(|entry| {
                let (position, id) = entry.map_err(StoreError::unavailable)?;
                let id = keys::execution_id_at(&id)
                    .ok_or_else(|| StoreError::Corrupt("a claim queue entry has no id".into()))?;
                Ok((position, id))
            })
            .collect()
    }
}

/// What the ops of a batch pick from, read before its transaction.
struct Candidates {
    /// The head of the claim queue: (queue position, execution id).
    claim: Vec<(sled::IVec, ExecutionId)>,
    /// The schedules due, earliest first.
    fire: Vec<FireCandidate>,
}

/// Applies one op inside the batch's transaction. The outer error aborts the transaction; the
/// inner one refuses this op only, and is returned before the op writes anything.
fn apply_op(tx: &Tx<'_>, op: &Op, candidates: &Candidates) -> TxResult<Reply> {
    match op {
        Op::InsertServiceAccount(account) => schedules::insert_service_account(tx, account),
        Op::DeleteServiceAccount(alias, name) => schedules::delete_service_account(tx, alias, name),
        Op::InsertSchedule(schedule) => schedules::insert_schedule(tx, schedule),
        Op::UpdateSchedule(schedule) => schedules::update_schedule(tx, schedule),
        Op::DeleteSchedule(alias, job_id, id) => {
            schedules::delete_schedule(tx, alias, *job_id, *id)
        }
        Op::FireDue { now, limit } => schedules::fire_due(tx, *now, *limit, &candidates.fire),
        Op::InsertJob(job) => insert_job(tx, job),
        Op::UpdateJob(job) => update_job(tx, job),
        Op::DeleteJob(alias, id) => delete_job(tx, alias, *id),
        Op::InsertExecution(execution) => insert_execution(tx, execution),
        Op::Transition(id, command, now) => {
            let Some(old) = tx.execution(*id)? else {
                return Ok(Err(StoreError::NotFound));
            };
            let mut execution = old.clone();
            let recorded = match feed::transition(&mut execution, command, *now) {
                Ok(recorded) => recorded,
                Err(refused) => return Ok(Err(StoreError::Refused(refused))),
            };
            tx.put_execution(Some(&old), &execution)?;
            tx.record(&recorded)?;
            Ok(Ok(Done::Execution(
                Box::new(execution),
                !recorded.is_empty(),
            )))
        }
        Op::AppendEvents {
            id,
            attempt,
            events,
            now,
        } => crate::feed::append(tx, *id, *attempt, events, *now),
        Op::SettleDelivery(key, settlement) => crate::feed::settle(tx, key, settlement),
        Op::Claim {
            command,
            limit,
            now,
        } => {
            let mut claimed = Vec::new();
            for (position, id) in &candidates.claim {
                if claimed.len() >= *limit {
                    break;
                }
                // Taken by an earlier op of this batch (a claim, a stop, a kill): skip it.
                if tx.queue_position(*id)?.as_ref() != Some(position) {
                    continue;
                }
                let Some(old) = tx.execution(*id)? else {
                    continue;
                };
                let mut execution = old.clone();
                // Only PENDING executions are queued, so the claim is not refused.
                if let Ok(recorded) = feed::transition(&mut execution, command, *now) {
                    tx.put_execution(Some(&old), &execution)?;
                    tx.record(&recorded)?;
                    claimed.push(execution);
                }
            }
            Ok(Ok(Done::Claimed(claimed)))
        }
    }
}

/// The stored job `id`, as the transaction sees it.
pub(crate) fn stored_job(tx: &Tx<'_>, id: JobId) -> TxResult<Option<Job>> {
    match tx.jobs.get(keys::job(id))? {
        None => Ok(None),
        Some(bytes) => decode("job", &bytes).map(Some).or_else(crate::trees::abort),
    }
}

fn insert_job(tx: &Tx<'_>, job: &Job) -> TxResult<Reply> {
    if tx.jobs.get(keys::job(job.id))?.is_some() {
        return Ok(Err(StoreError::Conflict(format!(
            "job {} exists already",
            job.id
        ))));
    }
    let bytes = encode("job", job).or_else(crate::trees::abort)?;
    tx.jobs.insert(&keys::job(job.id)[..], bytes)?;
    let index = keys::account_job(&job.account_alias, job.created_time, job.id);
    tx.jobs_by_account.insert(index, &[][..])?;
    tx.add(&keys::job_count(&job.account_alias), 1)?;
    Ok(Ok(Done::Unit))
}

fn update_job(tx: &Tx<'_>, job: &Job) -> TxResult<Reply> {
    let Some(stored) = stored_job(tx, job.id)? else {
        return Ok(Err(StoreError::NotFound));
    };
    if stored.account_alias != job.account_alias {
        return Ok(Err(StoreError::NotFound));
    }
    let bytes = encode("job", job).or_else(crate::trees::abort)?;
    if stored.created_time != job.created_time {
        // The listing is ordered by creation time; keep the index on the record's.
        let alias = &job.account_alias;
        tx.jobs_by_account
            .remove(keys::account_job(alias, stored.created_time, job.id))?;
        tx.jobs_by_account
            .insert(keys::account_job(alias, job.created_time, job.id), &[][..])?;
    }
    tx.jobs.insert(&keys::job(job.id)[..], bytes)?;
    Ok(Ok(Done::Unit))
}

/// Refused with an empty [`StoreError::Conflict`] while an execution of the job has not ended;
/// the caller words the message (it needs a scan, which has no place in a transaction).
/// Deletes the job's schedules with it.
fn delete_job(tx: &Tx<'_>, alias: &AccountAlias, id: JobId) -> TxResult<Reply> {
    let Some(stored) = stored_job(tx, id)? else {
        return Ok(Err(StoreError::NotFound));
    };
    if &stored.account_alias != alias {
        return Ok(Err(StoreError::NotFound));
    }
    // Checked in the transaction that deletes: no start or restart slips in between.
    if tx.counter(&keys::active_count(id))? > 0 {
        return Ok(Err(StoreError::Conflict(String::new())));
    }
    tx.jobs.remove(&keys::job(id)[..])?;
    schedules::delete_job_schedules(tx, alias, id)?;
    tx.jobs_by_account
        .remove(keys::account_job(alias, stored.created_time, id))?;
    tx.add(&keys::job_count(alias), -1)?;
    Ok(Ok(Done::Unit))
}

/// Inserts a new execution with its creation event ([`feed::created`]) and that event's
/// deliveries: the one path of `insert_execution` and of firing schedules.
pub(crate) fn insert_execution(tx: &Tx<'_>, execution: &Execution) -> TxResult<Reply> {
    let job_known = stored_job(tx, execution.job_id)?
        .is_some_and(|job| job.account_alias == execution.account_alias);
    if !job_known {
        return Ok(Err(StoreError::NotFound));
    }
    if tx.execution(execution.execution_id)?.is_some() {
        return Ok(Err(StoreError::Conflict(format!(
            "execution {} exists already",
            execution.execution_id
        ))));
    }
    tx.put_execution(None, execution)?;
    tx.record(&[feed::created(execution)])?;
    let alias = &execution.account_alias;
    let index = keys::job_execution(
        alias,
        execution.job_id,
        execution.created_time,
        execution.execution_id,
    );
    tx.executions_by_job.insert(index, &[][..])?;
    tx.add(&keys::execution_count(alias, execution.job_id), 1)?;
    Ok(Ok(Done::Unit))
}
