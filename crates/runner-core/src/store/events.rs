//! [`FeedStore`]: the numbered events of each execution.

use std::future::Future;

use super::StoreError;
use crate::executor::ExecutorEvent;
use crate::feed::Event;
use crate::ids::{AccountAlias, ExecutionId, JobId};
use crate::time::Timestamp;

/// Each execution's feed. Status events are recorded by the transitions themselves
/// ([`crate::feed::transition`]); this role appends what executors report and reads the feed.
pub trait FeedStore: Send + Sync + 'static {
    /// Records events an executor reported for run `attempt`, through [`crate::feed::append`]
    /// (fenced like a worker command), with their deliveries, in one atomic write. Returns the
    /// execution's latest sequence number. Sends [`Signal::Feed`](super::Signal::Feed) when it
    /// recorded any.
    fn append_events(
        &self,
        id: ExecutionId,
        attempt: u32,
        events: &[ExecutorEvent],
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `limit` events of an execution of a job of `alias` with a sequence number above
    /// `after`, in order. [`StoreError::NotFound`] if there is no such execution.
    fn list_events(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;
}
