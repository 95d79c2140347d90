//! Retention: [`PurgeEnded`], the write that deletes ended executions whole, and the read that
//! picks them ([`purge_candidates`]).
//!
//! A transaction cannot read a range, so the keys of each execution's feed, deliveries and run
//! logs are read just before the write, on the blocking pool. The writer thread is the only
//! writer, so between that read and the transaction only earlier writes can change an
//! execution; the transaction skips any whose end time or event count is no longer what was
//! read (a restart, an append), and deletes every delivery key from both outbox trees (a settle
//! may have moved one). Nothing is added to an ended execution's run logs (appends are fenced).

use runner_core::execution::Execution;
use runner_core::ids::ExecutionId;
use runner_core::store::StoreError;
use runner_core::time::Timestamp;

use crate::keys;
use crate::trees::{Trees, Tx};
use crate::writer::{Applied, Candidates, Write};

/// An ended execution to purge, with the keys of what it has, as read before the write.
#[derive(Debug)]
pub(crate) struct Victim {
    /// Its key in `ended`.
    ended_key: Vec<u8>,
    id: ExecutionId,
    /// Its end and event count when read: the write skips it if either changed.
    ended_time: Option<Timestamp>,
    events: u64,
    event_keys: Vec<sled::IVec>,
    delivery_keys: Vec<sled::IVec>,
    log_keys: Vec<sled::IVec>,
    chunk_keys: Vec<sled::IVec>,
}

/// Up to `limit` executions that ended before `before`, those that ended first first.
pub(crate) fn purge_candidates(
    trees: &Trees,
    before: Timestamp,
    limit: usize,
) -> Result<Vec<Victim>, StoreError> {
    let keys_of = |tree: &sled::Tree, id: ExecutionId| -> Result<Vec<sled::IVec>, StoreError> {
        tree.scan_prefix(keys::execution(id))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(StoreError::unavailable)
    };
    let mut victims = Vec::new();
    for key in trees.ended.iter().keys() {
        if victims.len() == limit {
            break;
        }
        let key = key.map_err(StoreError::unavailable)?;
        let (Some(at), Some(id)) = (keys::deadline_time(&key), keys::execution_id_at(&key)) else {
            continue;
        };
        if at >= before {
            break;
        }
        let execution = trees.execution(id)?;
        let mut delivery_keys = keys_of(&trees.outbox, id)?;
        delivery_keys.extend(keys_of(&trees.outbox_failed, id)?);
        victims.push(Victim {
            ended_key: key.to_vec(),
            id,
            ended_time: execution.as_ref().and_then(Execution::ended_time),
            events: execution.as_ref().map_or(0, |execution| execution.events),
            event_keys: keys_of(&trees.events, id)?,
            delivery_keys,
            log_keys: keys_of(&trees.run_logs, id)?,
            chunk_keys: keys_of(&trees.run_log_chunks, id)?,
        });
    }
    Ok(victims)
}

/// Deletes the [`Victim`]s that are still as they were read; replies how many it deleted.
#[derive(Debug)]
pub(crate) struct PurgeEnded {
    pub(crate) victims: Vec<Victim>,
}

impl Write for PurgeEnded {
    type Reply = usize;

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied<usize> {
        let mut purged = 0;
        for victim in &self.victims {
            let current = tx.execution(victim.id)?;
            let end = current.as_ref().and_then(Execution::ended_time);
            let unchanged = current.as_ref().is_some_and(|execution| {
                end.is_some() && end == victim.ended_time && execution.events == victim.events
            });
            let Some(execution) = current.filter(|_| unchanged) else {
                // Gone, restarted or changed since it was read. An entry that no longer names
                // the execution's end must not take a place in every later batch.
                let still_indexed =
                    end.is_some_and(|at| keys::ended(at, victim.id)[..] == victim.ended_key[..]);
                if !still_indexed {
                    tx.drop_ended_entry(&victim.ended_key)?;
                }
                continue;
            };
            for key in &victim.event_keys {
                tx.events.remove(key)?;
            }
            for key in &victim.delivery_keys {
                tx.outbox.remove(key)?;
                tx.outbox_failed.remove(key)?;
            }
            for key in &victim.log_keys {
                tx.run_logs.remove(key)?;
            }
            for key in &victim.chunk_keys {
                tx.run_log_chunks.remove(key)?;
            }
            tx.delete_ended_execution(&execution)?;
            purged += 1;
        }
        Ok(Ok(purged))
    }
}
