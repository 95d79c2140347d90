//! Run logs in sled: each attempt's meta in `run_logs`, its kept chunks in `run_log_chunks`
//! keyed by their offset in the stream. What is kept is planned by [`runner_core::run_log`].
//!
//! sled's transactions have no range reads, so an append finds the chunks the cap drops by key:
//! the tail chunks are contiguous (each starts where the previous one ended; a chunk larger than
//! the tail, kept only in part, drops every older one), so the meta keeps the offset of the oldest
//! tail chunk and the append walks forward from it, dropping chunks until one is still kept.
//! Reads run outside the writer, on a range of `run_log_chunks`; a chunk dropped between the
//! read of the meta and of the chunks ends the page early (see [`run_log::assemble`]).

use runner_core::ids::ExecutionId;
use runner_core::machine;
use runner_core::run_log::{self, LogCap, LogMeta, LogPage};
use runner_core::store::{LogRead, StoreError};
use serde::{Deserialize, Serialize};

use crate::codec::Encode;
use crate::trees::{Trees, Tx, abort};
use crate::writer::{Applied, Candidates, Write};

/// The key of an attempt's meta in `run_logs`: execution id, attempt.
fn log_key(id: ExecutionId, attempt: u32) -> [u8; 20] {
    let mut key = [0; 20];
    key[..16].copy_from_slice(id.0.as_bytes());
    key[16..].copy_from_slice(&attempt.to_be_bytes());
    key
}

/// The key of a chunk in `run_log_chunks`: the log's key, then the chunk's offset.
fn chunk_key(id: ExecutionId, attempt: u32, offset: u64) -> [u8; 28] {
    let mut key = [0; 28];
    key[..20].copy_from_slice(&log_key(id, attempt));
    key[20..].copy_from_slice(&offset.to_be_bytes());
    key
}

fn offset_at(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(20..28)?.try_into().ok()?))
}

/// The stored meta of one attempt's log.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct StoredLog {
    total: u64,
    head_len: u64,
    cap: u64,
    /// The offset of the oldest tail chunk kept, if any.
    oldest_tail: Option<u64>,
}

impl StoredLog {
    fn meta(&self) -> LogMeta {
        LogMeta {
            total: self.total,
            head_len: self.head_len,
            cap: LogCap::new(self.cap),
        }
    }
}

/// Appends a chunk to the log of run `attempt` of execution `id`, fenced like a worker command.
#[derive(Debug)]
pub(crate) struct AppendLog {
    pub(crate) id: ExecutionId,
    pub(crate) attempt: u32,
    pub(crate) chunk: Vec<u8>,
    pub(crate) cap: LogCap,
}

impl Write for AppendLog {
    /// The log's length after the append.
    type Reply = u64;

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied<u64> {
        let Some(execution) = tx.execution(self.id)? else {
            return Ok(Err(StoreError::NotFound));
        };
        if let Err(refused) = machine::fence(&execution, self.attempt) {
            return Ok(Err(StoreError::Refused(refused)));
        }
        let key = log_key(self.id, self.attempt);
        let stored: StoredLog = match tx.run_logs.get(key)? {
            Some(bytes) => tx.codec.decode("run log", &bytes).or_else(abort)?,
            None => StoredLog::default(),
        };
        let plan = stored.meta().plan_append(self.cap, self.chunk.len());
        let meta = plan.meta;
        // Drop the tail chunks the new window leaves behind, oldest first.
        let mut oldest = stored.oldest_tail;
        while let Some(offset) = oldest {
            let chunk = chunk_key(self.id, self.attempt, offset);
            let Some(bytes) = tx.run_log_chunks.get(chunk)? else {
                oldest = None;
                break;
            };
            if !meta.droppable(offset, bytes.len() as u64) {
                break;
            }
            tx.run_log_chunks.remove(&chunk[..])?;
            oldest = Some(offset + bytes.len() as u64);
        }
        for piece in plan.pieces {
            if piece.offset >= meta.head_len && oldest.is_none() {
                oldest = Some(piece.offset);
            }
            let chunk = chunk_key(self.id, self.attempt, piece.offset);
            tx.run_log_chunks
                .insert(&chunk[..], &self.chunk[piece.range])?;
        }
        let stored = StoredLog {
            total: meta.total,
            head_len: meta.head_len,
            cap: meta.cap.bytes(),
            oldest_tail: oldest,
        };
        tx.run_logs.insert(
            &key[..],
            tx.codec.encode("run log", &stored).or_else(abort)?,
        )?;
        Ok(Ok(meta.total))
    }
}

/// `RunLogStore::read_log` once the execution is known to be the caller's: a page of the
/// attempt's log.
pub(crate) fn read_page(
    trees: &Trees,
    execution: &runner_core::execution::Execution,
    read: LogRead,
) -> Result<LogPage, StoreError> {
    let id = execution.execution_id;
    let attempt = run_log::resolve_attempt(execution, read.attempt).ok_or(StoreError::NotFound)?;
    let ended = run_log::attempt_ended(execution, attempt);
    let stored: StoredLog = match trees
        .run_logs
        .get(log_key(id, attempt))
        .map_err(StoreError::unavailable)?
    {
        Some(bytes) => trees.codec.decode("run log", &bytes)?,
        None => StoredLog::default(),
    };
    let meta = stored.meta();
    let plan = meta.plan_read(read.offset, read.limit);
    let mut chunks = Vec::new();
    // The chunk holding `plan.from`, then the ones starting before `plan.to`.
    let first = trees
        .run_log_chunks
        .range(chunk_key(id, attempt, 0)..=chunk_key(id, attempt, plan.from))
        .next_back();
    let after = plan.from.saturating_add(1);
    let rest = trees
        .run_log_chunks
        .range(chunk_key(id, attempt, after)..chunk_key(id, attempt, plan.to.max(after)));
    for entry in first.into_iter().chain(rest) {
        let (key, bytes) = entry.map_err(StoreError::unavailable)?;
        if let Some(offset) = offset_at(&key) {
            chunks.push((offset, bytes));
        }
    }
    Ok(LogPage::new(
        attempt,
        &meta,
        &plan,
        chunks.iter().map(|(offset, bytes)| (*offset, &bytes[..])),
        ended,
    ))
}
