//! [`ExecutionStore`]: executions, and the atomic transitions on them.

use std::future::Future;

use super::{JobStore, StoreError};
use crate::execution::{Execution, Status};
use crate::ids::{AccountAlias, ExecutionId, JobId};
use crate::job::Job;
use crate::machine::Command;
use crate::page::{Page, PageRequest};
use crate::search::ExecutionFilter;
use crate::time::Timestamp;

/// Executions of jobs, and the commands of the state machine applied to them.
pub trait ExecutionStore: JobStore {
    /// Stores a new PENDING execution; [`StoreError::NotFound`] if its job is gone.
    /// Sends [`Signal::Pending`](super::Signal::Pending).
    fn insert_execution(
        &self,
        execution: &Execution,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new PENDING execution of job `job_id` of `alias`, made by `make` from the job
    /// (as [`ExecutionStore::insert_execution`] does), and returns it; [`StoreError::NotFound`]
    /// if there is no such job. The execution reflects the job as it is now: an update of the job
    /// that was acknowledged before this call is seen. The default reads the job with
    /// [`JobStore::get_job`]; a store may instead make the execution from a copy of the job it
    /// keeps and have the insert check that the copy is current, calling `make` again on the
    /// job as stored if it is not.
    ///
    /// ```
    /// # use runner_core::store::{Store, StoreError};
    /// # use runner_core::execution::Execution;
    /// # use runner_core::testkit::fixtures::{alias, job};
    /// # async fn demo(store: impl Store) -> Result<(), StoreError> {
    /// let job = job("ACME", 0);
    /// store.insert_job(&job).await?;
    /// let execution = store
    ///     .start_execution(&alias("ACME"), job.id, |job| Execution::new(job, None, None, 1))
    ///     .await?;
    /// assert_eq!(execution.job_id, job.id);
    /// # Ok(()) }
    /// ```
    fn start_execution<F>(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        mut make: F,
    ) -> impl Future<Output = Result<Execution, StoreError>> + Send
    where
        F: FnMut(&Job) -> Execution + Send,
    {
        async move {
            let job = self
                .get_job(alias, job_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            let execution = make(&job);
            self.insert_execution(&execution).await?;
            Ok(execution)
        }
    }

    /// One execution of a job of `alias`.
    fn get_execution(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
    ) -> impl Future<Output = Result<Option<Execution>, StoreError>> + Send;

    /// A page of a job's executions, newest first.
    fn list_executions(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Execution>, StoreError>> + Send;

    /// A page of the executions of `alias`, across its jobs (deleted ones too), that pass
    /// `filter` ([`ExecutionFilter::matches`]), newest first: by creation time, then by id, both
    /// descending. `total_size` counts every execution that passes. With `filter.job_id` set this
    /// is a job's executions list with filters.
    fn find_executions(
        &self,
        alias: &AccountAlias,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Execution>, StoreError>> + Send;

    /// How many executions, of every account, are in each of [`Status::LIVE`] now (every one
    /// listed, zeros included, in that order): what `runner_executions{status}` shows. Ended
    /// executions are not counted (the ended counters count them), so the answer stays cheap
    /// however many executions a store keeps.
    fn count_live(&self) -> impl Future<Output = Result<Vec<(Status, u64)>, StoreError>> + Send;

    /// Applies `command` to the execution atomically through [`crate::machine::apply`] and
    /// returns it as it is afterwards. Sends the signal [`signal_after`](super::signal_after)
    /// names.
    fn transition(
        &self,
        id: ExecutionId,
        command: &Command,
        now: Timestamp,
    ) -> impl Future<Output = Result<Execution, StoreError>> + Send;
}

/// Adds `counts` up per status of [`Status::LIVE`], zeros included, in that order; ended
/// statuses are left out. For the stores' [`ExecutionStore::count_live`].
pub fn tally_live(counts: impl IntoIterator<Item = (Status, u64)>) -> Vec<(Status, u64)> {
    let mut tally: Vec<(Status, u64)> = Status::LIVE.iter().map(|status| (*status, 0)).collect();
    for (status, count) in counts {
        if let Some((_, total)) = tally.iter_mut().find(|(live, _)| *live == status) {
            *total += count;
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_lists_every_live_status_and_drops_ended_ones() {
        let tally = tally_live([
            (Status::Running, 2),
            (Status::Success, 9),
            (Status::Pending, 1),
            (Status::Running, 1),
        ]);
        assert_eq!(
            tally,
            [
                (Status::Pending, 1),
                (Status::Initializing, 0),
                (Status::Running, 3),
                (Status::Stopping, 0),
                (Status::Killing, 0),
            ]
        );
    }
}
