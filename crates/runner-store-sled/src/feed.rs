//! The live feed on sled: events, the webhook outbox, and the holds of claimed deliveries.
//!
//! Events and deliveries are written by the writer thread, in the transaction of the change that
//! recorded them ([`record`]: `executions.rs` applies every command through [`feed::transition`],
//! appends go through [`AppendEvents`] here). Reads and claims run on tokio's blocking pool.
//!
//! # Claiming without scanning every event
//!
//! A delivery leaves the `outbox` tree when it is delivered, and moves to `outbox_failed` when
//! it is given up; so `outbox` holds exactly the pending deliveries, and stays small while
//! receivers answer. Its keys are (execution, callback, sequence), so each (execution,
//! callback) queue is one contiguous range and its head (lowest pending sequence) is the first
//! key of the range. A claim visits heads only: it reads the first key at or after a queue's
//! start, then seeks straight to the start of the next queue ([`keys::next_queue`]), skipping
//! the rest of the queue however long it is. So a claim costs one seek per queue with pending
//! deliveries, never one read per event or per pending delivery. A separate index of queue heads
//! ordered by due time would make it one read per *due* queue, but would have to be kept in step
//! in every transaction, and finding a queue's next head after a settle needs a range read,
//! which sled's transactions do not offer; the number of queues with pending deliveries (recent
//! executions with callbacks, plus those whose receiver is down) does not warrant it.
//!
//! Claims start where the previous one stopped and wrap around (round robin over queues), so
//! when more queues are due than a claim takes, the queues at the end of the key order are not
//! starved by busy ones at the start.
//!
//! # Holds
//!
//! A claimed delivery is held in memory ([`Holds`]): only one process can open a data directory
//! (the directory lock), so this store is the only one that can hand out its deliveries. After a
//! restart nothing is held and every pending delivery is claimed again: at least once, as the
//! delivery contract says (receivers drop repeats by the `Idempotency-Key`).
//!
//! A claim reads the outbox without the holds' lock, then takes its candidates under the lock,
//! reading each one again. A settle commits first and releases the hold after (under the same
//! lock). So a claim that finds a delivery unheld reads it after its settle committed: a
//! delivered one is gone, a retried one shows its new attempt time. No delivery is handed out
//! twice while its hold lasts. Concurrent claims often pick the same candidates; one that loses
//! some to another scans again, so a claim returns fewer than its limit only when no more are
//! due.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::{Mutex, MutexGuard, PoisonError};

use runner_core::executor::ExecutorEvent;
use runner_core::feed::{self, Delivery, DeliveryKey, Event, Recorded, Settlement};
use runner_core::ids::ExecutionId;
use runner_core::store::StoreError;
use runner_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::codec::{Codec, Encode};
use crate::keys;
use crate::trees::{Trees, Tx, TxResult, abort};
use crate::writer::{Applied, Candidates, Write};

/// A value of the `outbox` (pending) and `outbox_failed` (given up) trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OutboxRecord {
    /// What to deliver, with the failed attempts so far and the time of the next one.
    pub(crate) delivery: Delivery,
    /// Pending (in `outbox`) or failed (in `outbox_failed`).
    pub(crate) state: DeliveryState,
    /// What went wrong the last time, for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
}

/// Whether a delivery will be attempted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeliveryState {
    /// Waiting for its attempt (or its next one).
    Pending,
    /// Given up: kept for operators, never claimed again.
    Failed,
}

impl OutboxRecord {
    /// A new delivery, not attempted yet.
    pub(crate) fn pending(delivery: Delivery) -> Self {
        Self {
            delivery,
            state: DeliveryState::Pending,
            last_error: None,
        }
    }
}

/// Stores recorded feed events and their deliveries (pending, in the outbox), in the
/// transaction of the execution's change that produced them.
pub(crate) fn record(tx: &Tx<'_>, recorded: &[Recorded]) -> TxResult<()> {
    for Recorded { event, deliveries } in recorded {
        let bytes = tx.codec.encode("event", event).or_else(abort)?;
        tx.events
            .insert(&keys::event(event.execution_id, event.sequence)[..], bytes)?;
        for delivery in deliveries {
            let record = OutboxRecord::pending(delivery.clone());
            let bytes = tx.codec.encode("delivery", &record).or_else(abort)?;
            tx.outbox
                .insert(&keys::delivery(&delivery.key)[..], bytes)?;
        }
    }
    Ok(())
}

/// Records executor `events` for run `attempt` of execution `id`, fenced by [`feed::append`],
/// with the execution's new event count.
#[derive(Debug)]
pub(crate) struct AppendEvents {
    pub(crate) id: ExecutionId,
    pub(crate) attempt: u32,
    pub(crate) events: Vec<ExecutorEvent>,
    pub(crate) now: Timestamp,
}

/// What an [`AppendEvents`] did.
#[derive(Debug)]
pub(crate) struct Appended {
    /// The execution's latest sequence number.
    pub(crate) latest: u64,
    /// Whether the append recorded any event.
    pub(crate) recorded: bool,
}

impl Write for AppendEvents {
    type Reply = Appended;

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied<Appended> {
        let Some(old) = tx.execution(self.id)? else {
            return Ok(Err(StoreError::NotFound));
        };
        let mut execution = old.clone();
        let recorded = match feed::append(&mut execution, self.attempt, &self.events, self.now) {
            Ok(recorded) => recorded,
            Err(refused) => return Ok(Err(StoreError::Refused(refused))),
        };
        if !recorded.is_empty() {
            tx.put_execution(Some(&old), &execution)?;
            record(tx, &recorded)?;
        }
        Ok(Ok(Appended {
            latest: execution.events,
            recorded: !recorded.is_empty(),
        }))
    }
}

/// Records how an attempt of a pending delivery ended; a key that is not pending is ignored.
#[derive(Debug)]
pub(crate) struct SettleDelivery {
    pub(crate) key: DeliveryKey,
    pub(crate) settlement: Settlement,
}

impl Write for SettleDelivery {
    type Reply = ();

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied {
        let (key, settlement) = (&self.key, &self.settlement);
        let outbox_key = keys::delivery(key);
        let Some(bytes) = tx.outbox.get(&outbox_key[..])? else {
            return Ok(Ok(()));
        };
        let mut record: OutboxRecord = tx.codec.decode("delivery", &bytes).or_else(abort)?;
        match settlement {
            Settlement::Delivered => {
                tx.outbox.remove(&outbox_key[..])?;
            }
            Settlement::Retry { at, error } => {
                record.delivery.attempts = record.delivery.attempts.saturating_add(1);
                record.delivery.next_attempt_at = *at;
                record.last_error = Some(error.clone());
                let bytes = tx.codec.encode("delivery", &record).or_else(abort)?;
                tx.outbox.insert(&outbox_key[..], bytes)?;
            }
            Settlement::GiveUp { error } => {
                record.delivery.attempts = record.delivery.attempts.saturating_add(1);
                record.state = DeliveryState::Failed;
                record.last_error = Some(error.clone());
                let bytes = tx.codec.encode("delivery", &record).or_else(abort)?;
                // Out of `outbox`: its queue moves on to the next sequence; claims never read it.
                tx.outbox.remove(&outbox_key[..])?;
                tx.outbox_failed.insert(&outbox_key[..], bytes)?;
            }
            other => {
                return Ok(Err(StoreError::Conflict(format!(
                    "the sled store cannot record the settlement {other:?}"
                ))));
            }
        }
        Ok(Ok(()))
    }
}

/// The deliveries handed out and not settled yet, each until the end of its hold.
#[derive(Debug, Default)]
pub(crate) struct Holds {
    held: Mutex<HashMap<DeliveryKey, Timestamp>>,
    /// The queue where the next claim starts reading (round robin); empty: the start.
    cursor: Mutex<Vec<u8>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent whatever panicked while holding them: every change is one insert,
    // remove or retain.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Calls `visit` with the key and value of the head of every delivery queue of `outbox`, from
/// the queue at or after `from` to the last one, then from the first queue up to `from`: each
/// queue once. Stops when `visit` breaks.
fn visit_heads(
    outbox: &sled::Tree,
    from: &[u8],
    mut visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let passes: [(&[u8], Option<&[u8]>); 2] = [(from, None), (&[], Some(from))];
    for (start, end) in passes {
        let mut at = start.to_vec();
        loop {
            if end.is_some_and(|end| at.as_slice() >= end) {
                break;
            }
            let Some(entry) = outbox.range(at.as_slice()..).next() else {
                break;
            };
            let (key, value) = entry.map_err(StoreError::unavailable)?;
            if end.is_some_and(|end| &key[..] >= end) {
                break;
            }
            if visit(&key, &value).is_break() {
                return Ok(());
            }
            // The rest of this queue is not claimable before its head: skip it in one seek.
            match keys::next_queue(&key) {
                Some(next) => at = next,
                None => break,
            }
        }
        if from.is_empty() {
            // The first pass started at the beginning: it saw every queue.
            break;
        }
    }
    Ok(())
}

/// A pending delivery read from `outbox`; a record that cannot be read is logged and skipped, so
/// one bad record does not stop every webhook.
fn readable(codec: &Codec, key: &[u8], value: &[u8]) -> Option<OutboxRecord> {
    match codec.decode::<OutboxRecord>("delivery", value) {
        Ok(record) => Some(record),
        Err(error) => {
            tracing::error!(%error, key = ?keys::delivery_key_at(key), "skipping an unreadable delivery");
            None
        }
    }
}

/// Up to `limit` events of execution `id` after sequence `after`, in order.
pub(crate) fn events_after(
    trees: &Trees,
    id: ExecutionId,
    after: u64,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let Some(first) = after.checked_add(1) else {
        return Ok(Vec::new());
    };
    trees
        .events
        .range(keys::event(id, first)..=keys::event(id, u64::MAX))
        .values()
        .take(limit)
        .map(|value| {
            trees
                .codec
                .decode("event", &value.map_err(StoreError::unavailable)?)
        })
        .collect()
}

impl Holds {
    /// Claims up to `limit` deliveries of `outbox` due at `now`, each held until `hold_until`:
    /// see [`OutboxStore::claim_deliveries`](runner_core::store::OutboxStore::claim_deliveries)
    /// and the module docs.
    pub(crate) fn claim(
        &self,
        trees: &Trees,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut claimed: Vec<Delivery> = Vec::new();
        // Concurrent claims may pick the same candidates; those that lose some scan again, so
        // a claim comes back short only when there is nothing more to take. Each round either
        // fills the claim or lost candidates to other claims or settles, so it ends.
        while claimed.len() < limit {
            let candidates = self.candidates(trees, now, limit - claimed.len(), &claimed)?;
            if candidates.is_empty() {
                break;
            }
            let wanted = candidates.len();
            let taken = self.take(trees, candidates, now, hold_until)?;
            let lost = taken.len() < wanted;
            claimed.extend(taken);
            if !lost {
                break;
            }
        }
        if let Some(last) = claimed.last() {
            *locked(&self.cursor) =
                keys::next_queue(&keys::delivery(&last.key)).unwrap_or_default();
        }
        Ok(claimed)
    }

    /// Releases the hold of `key`, after its settle committed.
    pub(crate) fn release(&self, key: &DeliveryKey) {
        locked(&self.held).remove(key);
    }

    /// Up to `limit` keys of queue heads due at `now` that nobody holds (and not in `mine`),
    /// starting at the cursor; read without the holds' lock.
    fn candidates(
        &self,
        trees: &Trees,
        now: Timestamp,
        limit: usize,
        mine: &[Delivery],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut skip: HashSet<DeliveryKey> = locked(&self.held)
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(key, _)| *key)
            .collect();
        skip.extend(mine.iter().map(|delivery| delivery.key));
        let from = locked(&self.cursor).clone();
        let mut candidates = Vec::new();
        visit_heads(&trees.outbox, &from, |key, value| {
            let due = keys::delivery_key_at(key).is_some_and(|key| !skip.contains(&key))
                && readable(&trees.codec, key, value)
                    .is_some_and(|record| record.delivery.next_attempt_at <= now);
            if due {
                candidates.push(key.to_vec());
            }
            if candidates.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(candidates)
    }

    /// Holds the `candidates` that are still unheld, pending and due, under the holds' lock,
    /// each read again: a settle may have committed since the scan (see "Holds" in the module
    /// docs).
    fn take(
        &self,
        trees: &Trees,
        candidates: Vec<Vec<u8>>,
        now: Timestamp,
        hold_until: Timestamp,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut held = locked(&self.held);
        held.retain(|_, until| *until > now);
        let mut taken = Vec::with_capacity(candidates.len());
        for key in candidates {
            let Some(delivery_key) = keys::delivery_key_at(&key) else {
                continue;
            };
            if held.contains_key(&delivery_key) {
                continue;
            }
            let Some(value) = trees.outbox.get(&key).map_err(StoreError::unavailable)? else {
                continue;
            };
            let Some(record) = readable(&trees.codec, &key, &value) else {
                continue;
            };
            if record.delivery.next_attempt_at > now {
                continue;
            }
            held.insert(delivery_key, hold_until);
            taken.push(record.delivery);
        }
        Ok(taken)
    }

    /// The earliest time a claim of `outbox` could take something: see
    /// [`OutboxStore::next_delivery_at`](runner_core::store::OutboxStore::next_delivery_at). Only
    /// queue heads count: a delivery behind its queue's head waits for the head whatever its own
    /// time.
    pub(crate) fn next_delivery_at(&self, trees: &Trees) -> Result<Option<Timestamp>, StoreError> {
        let held = locked(&self.held).clone();
        let mut earliest: Option<Timestamp> = None;
        visit_heads(&trees.outbox, &[], |key, value| {
            let at = match keys::delivery_key_at(key).and_then(|key| held.get(&key)) {
                Some(until) => Some(*until),
                None => {
                    readable(&trees.codec, key, value).map(|record| record.delivery.next_attempt_at)
                }
            };
            if let Some(at) = at {
                earliest = Some(earliest.map_or(at, |earliest| earliest.min(at)));
            }
            ControlFlow::Continue(())
        })?;
        Ok(earliest)
    }
}

#[cfg(test)]
mod tests {
    use runner_core::execution::Execution;
    use runner_core::job::CallbackLevel;
    use runner_core::store::prelude::*;
    use runner_core::testkit::fixtures::job_with_callbacks;

    use super::*;
    use crate::SledStore;

    /// A store with `count` new executions, each with one RESULT callback: `count` queues whose
    /// head (the creation event, sequence 1) is due at 10.
    async fn store_with_queues(dir: &std::path::Path, count: usize) -> (SledStore, Vec<Execution>) {
        let store = SledStore::open(dir).unwrap();
        let mut executions = Vec::new();
        for _ in 0..count {
            let job = job_with_callbacks("ACME", 10, &[CallbackLevel::Result]);
            store.insert_job(&job).await.unwrap();
            let execution = Execution::new(&job, None, None, 10);
            store.insert_execution(&execution).await.unwrap();
            executions.push(execution);
        }
        (store, executions)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn given_up_deliveries_leave_the_outbox_and_are_kept_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_queues(dir.path(), 1).await;
        let taken = store.claim_deliveries(10, 100, 10).await.unwrap();
        assert_eq!(taken.len(), 1);
        let key = taken[0].key;
        let error = "connection refused".to_owned();
        store
            .settle_delivery(
                &key,
                &Settlement::GiveUp {
                    error: error.clone(),
                },
            )
            .await
            .unwrap();

        let trees = &store.inner.trees;
        assert!(
            trees.outbox.is_empty(),
            "claims never read a given-up delivery"
        );
        let kept = trees
            .outbox_failed
            .get(keys::delivery(&key))
            .unwrap()
            .unwrap();
        let kept: OutboxRecord = trees.codec.decode("delivery", &kept).unwrap();
        assert_eq!(kept.state, DeliveryState::Failed);
        assert_eq!(kept.delivery.attempts, 1);
        assert_eq!(kept.last_error, Some(error));
        assert_eq!(store.next_delivery_at().await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_take_turns_between_queues() {
        let dir = tempfile::tempdir().unwrap();
        let (store, executions) = store_with_queues(dir.path(), 3).await;
        let mut served = HashSet::new();
        for _ in 0..3 {
            // One at a time, and each retried as due at once: without turns, the first queue in
            // key order would be taken every time.
            let taken = store.claim_deliveries(10, 100, 1).await.unwrap();
            assert_eq!(taken.len(), 1);
            served.insert(taken[0].key.execution_id);
            let retry = Settlement::Retry {
                at: 10,
                error: "500".into(),
            };
            store.settle_delivery(&taken[0].key, &retry).await.unwrap();
        }
        let all: HashSet<ExecutionId> = executions.iter().map(|e| e.execution_id).collect();
        assert_eq!(served, all, "every queue had its turn");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn holds_end_with_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_queues(dir.path(), 1).await;
        let taken = store.claim_deliveries(10, i64::MAX, 10).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert!(
            store
                .claim_deliveries(20, i64::MAX, 10)
                .await
                .unwrap()
                .is_empty()
        );
        drop(store);

        // The holder is gone, and with it the hold: the delivery is handed out again.
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.claim_deliveries(20, 30, 10).await.unwrap(), taken);
    }

    /// A claim reads one entry per queue, however long the queues are, and each queue once from
    /// wherever it starts.
    #[test]
    fn heads_are_read_one_per_queue() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .temporary(true)
            .path(dir.path().join("db"))
            .open()
            .unwrap();
        let outbox = db.open_tree("outbox").unwrap();
        let queues: Vec<(ExecutionId, u32)> = (0..4)
            .flat_map(|_| {
                let id = ExecutionId::new();
                [(id, 0), (id, 1)]
            })
            .collect();
        for (execution_id, callback) in &queues {
            for sequence in 3..50 {
                let key = DeliveryKey {
                    execution_id: *execution_id,
                    callback: *callback,
                    sequence,
                };
                outbox.insert(keys::delivery(&key), &[][..]).unwrap();
            }
        }
        let heads = |from: &[u8]| {
            let mut seen = Vec::new();
            visit_heads(&outbox, from, |key, _| {
                seen.push(keys::delivery_key_at(key).unwrap());
                ControlFlow::Continue(())
            })
            .unwrap();
            seen
        };
        let mut sorted = queues.clone();
        sorted.sort();
        let from_start = heads(&[]);
        assert_eq!(
            from_start
                .iter()
                .map(|key| (key.execution_id, key.callback))
                .collect::<Vec<_>>(),
            sorted
        );
        assert!(from_start.iter().all(|key| key.sequence == 3), "only heads");

        // From the third queue: the rest, then the first two.
        let third = keys::delivery(&from_start[2]);
        let cursor = &third[..keys::QUEUE_LEN];
        let wrapped: Vec<_> = heads(cursor)
            .into_iter()
            .map(|key| (key.execution_id, key.callback))
            .collect();
        let expected: Vec<_> = sorted[2..].iter().chain(&sorted[..2]).copied().collect();
        assert_eq!(wrapped, expected);
    }
}
