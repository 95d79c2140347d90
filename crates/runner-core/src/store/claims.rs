//! [`ClaimStore`]: handing PENDING work to nodes, and the deadline index.

use std::future::Future;

use super::{JobStore, StoreError};
use crate::execution::Execution;
use crate::ids::NodeId;
use crate::job::Job;
use crate::time::Timestamp;

/// Claims of PENDING executions by nodes, and the deadlines that timed commands wait for.
pub trait ClaimStore: JobStore {
    /// Claims up to `limit` PENDING executions, oldest first, for `node` with a lease until
    /// `lease_until` (each through [`crate::machine::apply`] with
    /// [`Command::Claim`](crate::machine::Command::Claim)). An execution is claimed by one caller
    /// only, however many nodes claim at once.
    fn claim(
        &self,
        node: &NodeId,
        limit: usize,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send;

    /// The job to run for `execution`, which this store's [`ClaimStore::claim`] handed out;
    /// `None` if the job is gone. A store that read the jobs along with the claim may answer with
    /// that copy (the job as it was at the claim), which saves a read per run; the default reads
    /// it with [`JobStore::get_job`]. A job cannot be deleted while an execution of it is
    /// claimed, and an update of the job while the execution waits for a worker may or may not
    /// be seen.
    fn job_to_run(
        &self,
        execution: &Execution,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send {
        self.get_job(&execution.account_alias, execution.job_id)
    }

    /// Up to `limit` executions whose [`Execution::next_deadline`] is at or before `now`.
    fn due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send;

    /// The earliest [`Execution::next_deadline`] of any execution, so that the engine can sleep
    /// until then.
    fn next_deadline(&self) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send;
}
