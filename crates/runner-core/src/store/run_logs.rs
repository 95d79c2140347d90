//! [`RunLogStore`]: each attempt's run log (ansible's human-readable output), kept with the
//! execution.

use std::future::Future;

use super::StoreError;
use crate::ids::{AccountAlias, ExecutionId, JobId};
use crate::run_log::{LogCap, LogPage};
use crate::time::Timestamp;

/// The run logs of executions: one byte stream per attempt, appended by the worker that runs it,
/// read by anyone with access to the execution. What is kept of a long log is the rule of
/// [`crate::run_log`] (head and tail within a [`LogCap`]); the store only keeps the chunks and
/// the [`LogMeta`](crate::run_log::LogMeta) that rule plans with.
pub trait RunLogStore: Send + Sync + 'static {
    /// Appends `chunk` to the log of run `attempt`, keeping what `cap` allows. Fenced like the
    /// worker's other writes ([`crate::machine::fence`]): [`StoreError::Refused`] if the attempt
    /// is not the current one or was rescued or ended, [`StoreError::NotFound`] for no
    /// execution. `now` is the time of the append (for a store that keeps it; none needs it to
    /// fence). Returns the log's length (the offset after the chunk). Sends
    /// [`Signal::Log`](super::Signal::Log).
    fn append_log(
        &self,
        id: ExecutionId,
        attempt: u32,
        chunk: &[u8],
        cap: LogCap,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `limit` bytes of the log of attempt `attempt` (the latest if `None`) of an
    /// execution of a job of `alias`, from byte `offset` of the stream. [`StoreError::NotFound`]
    /// if there is no such execution, or no such attempt (0, or above the latest). An attempt
    /// that has no output yet reads as empty; [`LogPage::complete`] tells whether more may come
    /// ([`crate::run_log::attempt_ended`]).
    fn read_log(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        read: LogRead,
    ) -> impl Future<Output = Result<LogPage, StoreError>> + Send;
}

/// What [`RunLogStore::read_log`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRead {
    /// Which attempt; `None` for the latest.
    pub attempt: Option<u32>,
    /// The byte offset in the attempt's stream to read from.
    pub offset: u64,
    /// How many bytes at most (the omitted marker aside).
    pub limit: u64,
}
