//! The jobs a claim read along with the executions it took, kept until their workers ask for
//! them ([`Store::job_to_run`](runner_core::store::ClaimStore::job_to_run)): every run needs its job,
//! and reading it in the claim's statement costs no round trip of its own. Each copy is handed
//! out once; the map is emptied if it ever holds [`CAPACITY`] of them (an execution whose worker
//! never asked, because its engine stopped first, leaves its copy behind until then).

use std::sync::Arc;

use runner_core::execution::Execution;
use runner_core::job::Job;
use uuid::Uuid;

use crate::bounded_map::BoundedMap;

/// The most copies kept; far above what a node claims ahead of its workers.
const CAPACITY: usize = 16_384;

/// The jobs of claimed executions, by execution id.
#[derive(Default)]
pub(crate) struct ClaimedJobs {
    jobs: BoundedMap<Uuid, Arc<Job>, CAPACITY>,
}

impl ClaimedJobs {
    /// Keeps `job` for `execution`, which was just claimed.
    pub(crate) fn keep(&self, execution: &Execution, job: Arc<Job>) {
        self.jobs.insert(execution.execution_id.0, job);
    }

    /// The job kept for `execution`, once.
    pub(crate) fn take(&self, execution: &Execution) -> Option<Job> {
        let job = self.jobs.remove(&execution.execution_id.0)?;
        // Only a job of the execution's own account answers for it.
        (job.id == execution.job_id && job.account_alias == execution.account_alias)
            .then(|| Arc::unwrap_or_clone(job))
    }
}
