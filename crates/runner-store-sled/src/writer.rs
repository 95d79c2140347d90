//! The writer thread: every write of a store goes through it, in batches, with one transaction
//! and one flush per batch (group commit).
//!
//! A write is a value of a type that implements [`Write`], which names what its caller gets back
//! ([`Write::Reply`]). Callers wrap it in a [`Request`] with a reply channel of exactly that type
//! and await the reply. The thread takes every request that is waiting (up to [`MAX_BATCH`]),
//! applies their writes in order in **one** sled transaction, flushes sled's log once, and only
//! then replies to each caller. So no caller is acknowledged before its write is durable, and
//! while one batch is being flushed the next one gathers: the busier the store, the more writes
//! share a flush.
//!
//! Each write inside the batch is checked before it writes anything, so a refused write (a
//! transition the state machine refuses, a job that is gone) writes nothing and does not disturb
//! the others. If the batch's transaction aborts as a whole (a record that cannot be read back, a
//! storage error), its writes are retried one per transaction, so a bad record only fails the
//! writes that touch it.
//!
//! The writes live with the records they change: `jobs.rs`, `executions.rs`, `schedules.rs`
//! (service accounts and schedules) and `feed.rs` (appends and settles); this module knows none
//! of them.
//! Feed writes are writes like the others: a transition or claim stores the status event it
//! recorded ([`runner_core::feed::transition`]) with the execution, an insert its creation event,
//! an append the executor's events, a settle the delivery's new state; each in the batch's
//! transaction, acknowledged after the batch's flush.
//!
//! Being the only writer also keeps claims simple: the claim queue read before the transaction
//! cannot change under it, except by earlier writes of the same batch, which the transaction sees.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use runner_core::ids::{ExecutionId, ScheduleId};
use runner_core::overlap::ClaimGate;
use runner_core::store::StoreError;
use runner_core::time::Timestamp;
use tokio::sync::oneshot;

use crate::durability::Durability;
use crate::keys;
use crate::trees::{Trees, Tx, TxResult};

/// The most writes in one transaction. A transaction holds sled's process-wide write lock, which
/// readers wait for; this bounds that wait to well under a millisecond.
pub(crate) const MAX_BATCH: usize = 64;

/// A write the writer thread applies inside a batch's transaction.
pub(crate) trait Write: Send + 'static {
    /// What the caller gets once the write is durable.
    type Reply: Send + 'static;

    /// What the write picks from the candidates read before the transaction.
    fn wants(&self) -> Wants {
        Wants::Nothing
    }

    /// Applies the write inside the batch's transaction. The outer error aborts the transaction;
    /// the inner one refuses this write only, and is returned before the write changes anything.
    /// sled may run a transaction more than once, so this reads and writes through `tx` only.
    fn apply(&self, tx: &Tx<'_>, candidates: &Candidates) -> Applied<Self::Reply>;
}

/// What applying a write gives: the outer error aborts the transaction, the inner one refuses
/// this write only.
pub(crate) type Applied<T = ()> = TxResult<Result<T, StoreError>>;

/// What a write picks from, read before its batch's transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wants {
    /// Nothing: it finds what it changes by key.
    Nothing,
    /// Up to `limit` entries of the head of the claim queue.
    Claims {
        /// The most executions the write claims.
        limit: usize,
    },
    /// Up to `limit` entries of the fire-time index due at `now`.
    Fires {
        /// The time the schedules are due at.
        now: Timestamp,
        /// The most schedules the write fires.
        limit: usize,
    },
}

/// A fire-time index entry read before the transaction: its key, due time and schedule.
pub(crate) type FireCandidate = (sled::IVec, Timestamp, ScheduleId);

/// What the writes of a batch pick from, read before its transaction.
#[derive(Debug)]
pub(crate) struct Candidates {
    /// The head of the claim queue: (queue position, execution id).
    pub(crate) claim: Vec<(sled::IVec, ExecutionId)>,
    /// The schedules due, earliest first.
    pub(crate) fire: Vec<FireCandidate>,
}

/// A write and where its caller awaits the outcome, as the writer thread receives it.
pub(crate) struct Request(Box<dyn Pending>);

impl Request {
    /// `write` as a request, and the receiver of its outcome.
    pub(crate) fn new<W: Write>(
        write: W,
    ) -> (Self, oneshot::Receiver<Result<W::Reply, StoreError>>) {
        let (reply, outcome) = oneshot::channel();
        let pending = Queued {
            write,
            outcome: None,
            reply,
        };
        (Self(Box::new(pending)), outcome)
    }
}

/// A write of a batch with its outcome so far, whatever the type of its reply.
trait Pending: Send {
    fn wants(&self) -> Wants;
    /// Applies the write in `tx` and keeps its outcome (replacing one of an earlier run).
    fn apply(&mut self, tx: &Tx<'_>, candidates: &Candidates) -> TxResult<()>;
    /// Replaces the outcome with `error`.
    fn fail(&mut self, error: StoreError);
    fn succeeded(&self) -> bool;
    /// Sends the outcome to the caller.
    fn answer(self: Box<Self>);
}

/// A [`Write`] with its caller's reply channel and, once applied, its outcome.
struct Queued<W: Write> {
    write: W,
    outcome: Option<Result<W::Reply, StoreError>>,
    reply: oneshot::Sender<Result<W::Reply, StoreError>>,
}

impl<W: Write> Pending for Queued<W> {
    fn wants(&self) -> Wants {
        self.write.wants()
    }

    fn apply(&mut self, tx: &Tx<'_>, candidates: &Candidates) -> TxResult<()> {
        self.outcome = Some(self.write.apply(tx, candidates)?);
        Ok(())
    }

    fn fail(&mut self, error: StoreError) {
        self.outcome = Some(Err(error));
    }

    fn succeeded(&self) -> bool {
        matches!(self.outcome, Some(Ok(_)))
    }

    fn answer(self: Box<Self>) {
        // `Writer::apply` leaves every write of a batch with an outcome. A caller that went away
        // (its future dropped) needs no answer.
        if let Some(outcome) = self.outcome {
            let _ = self.reply.send(outcome);
        }
    }
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
            let mut batch = vec![first.0];
            batch.extend(
                requests
                    .try_iter()
                    .take(MAX_BATCH - 1)
                    .map(|request| request.0),
            );
            self.apply(&mut batch);
            if batch.iter().any(|write| write.succeeded()) {
                if let Err(error) = self.make_durable() {
                    tracing::error!(%error, "flushing the sled log failed");
                    // Committed but not known durable: the callers must not take it as done.
                    let message = error.to_string();
                    for write in batch.iter_mut().filter(|write| write.succeeded()) {
                        write.fail(StoreError::unavailable(std::io::Error::other(format!(
                            "the write may not be durable: {message}"
                        ))));
                    }
                }
            }
            for write in batch {
                write.answer();
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

    /// Applies `batch` in one transaction; if it aborts, one transaction per write. Every write
    /// has an outcome afterwards.
    fn apply(&self, batch: &mut [Box<dyn Pending>]) {
        match self.transact(batch) {
            Ok(()) => {}
            Err(error) if batch.len() == 1 => batch[0].fail(error),
            Err(_) => {
                for write in batch.iter_mut() {
                    if let Err(error) = self.transact(std::slice::from_mut(write)) {
                        write.fail(error);
                    }
                }
            }
        }
    }

    fn transact(&self, batch: &mut [Box<dyn Pending>]) -> Result<(), StoreError> {
        // Claim candidates come from the queue as committed; the transaction skips those that
        // earlier writes of the batch took. Read enough for every claim of the batch. Likewise
        // for the schedules due for the fires of the batch.
        let mut wanted = 0usize;
        let mut to_fire = 0usize;
        let mut latest_now = None;
        for write in batch.iter() {
            match write.wants() {
                Wants::Nothing => {}
                Wants::Claims { limit } => wanted = wanted.saturating_add(limit),
                Wants::Fires { now, limit } => {
                    to_fire = to_fire.saturating_add(limit);
                    latest_now = latest_now.max(Some(now));
                }
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
            for write in batch.iter_mut() {
                write.apply(tx, &candidates)?;
            }
            Ok(())
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

    /// The first `limit` entries of the claim queue that the claim rule admits as committed
    /// (see `runner_core::overlap`): (queue position, execution id). One-at-a-time executions
    /// that must wait are passed over, so that they never hold up the queue behind them; the
    /// claim's transaction applies the rule again.
    fn queue_head(&self, limit: usize) -> Result<Vec<(sled::IVec, ExecutionId)>, StoreError> {
        let mut gate = ClaimGate::new();
        let mut head = Vec::new();
        for entry in self.trees.pending.iter() {
            if head.len() >= limit {
                break;
            }
            let (position, value) = entry.map_err(StoreError::unavailable)?;
            let id = keys::execution_id_at(&value)
                .ok_or_else(|| StoreError::Corrupt("a claim queue entry has no id".into()))?;
            if keys::pending_is_one_at_a_time(&value) {
                let Some(execution) = self.trees.execution(id)? else {
                    continue;
                };
                let mut running = Ok(false);
                let admitted = gate.admits(&execution, || {
                    running = self.trees.job_holds_a_turn(execution.job_id);
                    *running.as_ref().unwrap_or(&true)
                });
                running?;
                if !admitted {
                    continue;
                }
            }
            head.push((position, id));
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use runner_core::execution::Execution;
    use runner_core::machine::Command;
    use runner_core::store::prelude::*;
    use runner_core::testkit::fixtures::{alias, job};

    use super::*;
    use crate::SledStore;

    /// A record that cannot be read back fails the writes that touch it, and no others, even
    /// when they share a batch with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupt_record_fails_only_its_own_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let broken = Execution::new(&job, None, None, 2);
        store.insert_execution(&broken).await.unwrap();
        store
            .inner
            .trees
            .executions
            .insert(keys::execution(broken.execution_id), &b"{not json"[..])
            .unwrap();

        let kill = Command::Kill { force_at: None };
        let healthy: Vec<Execution> = (0..20)
            .map(|n| Execution::new(&job, None, None, 10 + n))
            .collect();
        let (broken_result, healthy_results) = tokio::join!(
            store.transition(broken.execution_id, &kill, 3),
            futures_util::future::join_all(healthy.iter().map(|e| store.insert_execution(e)))
        );
        assert!(
            matches!(broken_result, Err(StoreError::Corrupt(_))),
            "{broken_result:?}"
        );
        assert!(
            healthy_results.iter().all(Result::is_ok),
            "{healthy_results:?}"
        );
        for execution in &healthy {
            let stored = store
                .get_execution(&alias("ACME"), job.id, execution.execution_id)
                .await
                .unwrap();
            assert_eq!(stored.as_ref(), Some(execution));
        }
    }
}
