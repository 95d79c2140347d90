//! [`RetentionStore`]: deleting executions that ended long ago, with everything kept for them.

use std::future::Future;

use super::StoreError;
use crate::time::Timestamp;

/// Purging ended executions: what keeps a store from growing forever. The engine's retention
/// service calls it in bounded batches (see [`EngineConfig::retain`](crate::engine::EngineConfig::retain)).
pub trait RetentionStore: Send + Sync + 'static {
    /// Deletes up to `limit` executions, of every account, that ended before `before`
    /// ([`Execution::ended_time`](crate::execution::Execution::ended_time) `< before`), those
    /// that ended first first, each with everything the store keeps for it: its events, its
    /// webhook deliveries (pending or given up), its run logs and the secrets copied into it.
    /// Executions of deleted jobs go the same way. Returns how many it deleted.
    ///
    /// One call is one short atomic step: an execution is deleted whole or not at all, and
    /// listings and counts (a job's executions, searches) agree with what is left at every
    /// moment. An execution that has not ended (or was restarted and runs again) is never
    /// touched. A store shared by several nodes purges on one node at a time: a call made while
    /// another node's batch runs deletes nothing and answers 0.
    fn purge_ended(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}
