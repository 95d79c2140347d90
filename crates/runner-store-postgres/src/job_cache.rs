//! Copies of the jobs this store read, each with its revision (`jobs.revision`, which every
//! update bumps), so that a start ([`ExecutionStore::start_execution`](runner_core::store::ExecutionStore::start_execution)) makes its execution without
//! reading the job. A copy is only trusted as far as the insert checks it: the insert of an
//! execution made from a copy writes nothing unless the job's stored revision is still the
//! copy's, and then the store reads the job and makes the execution again (see
//! `PgStore::start_execution`). So a copy that another node's update made stale costs a retry,
//! never an execution made from an old job.
//!
//! Copies come from every [`JobStore::get_job`](runner_core::store::JobStore::get_job) and every claim; the map is emptied if it ever
//! holds [`CAPACITY`] of them.
//!
//! [`ExecutionStore::start_execution`](runner_core::store::ExecutionStore::start_execution): runner_core::store::Store::start_execution
//! [`JobStore::get_job`](runner_core::store::JobStore::get_job): runner_core::store::Store::get_job

use std::sync::Arc;

use runner_core::ids::{AccountAlias, JobId};
use runner_core::job::Job;

use crate::bounded_map::BoundedMap;

/// The most copies kept. Jobs carry their playbooks, so fewer than of executions.
const CAPACITY: usize = 1_024;

/// A job as read, and the revision it was read at.
#[derive(Clone)]
pub(crate) struct JobCopy {
    pub(crate) revision: i64,
    pub(crate) job: Arc<Job>,
}

/// The copies, by job id.
#[derive(Default)]
pub(crate) struct JobCache {
    copies: BoundedMap<JobId, JobCopy, CAPACITY>,
}

impl JobCache {
    /// Notes `job` as read at `revision`; a copy of a later revision is kept instead.
    pub(crate) fn keep(&self, job: Arc<Job>, revision: i64) {
        let id = job.id;
        self.copies
            .insert_unless(id, JobCopy { revision, job }, |kept| {
                kept.revision > revision
            });
    }

    /// The copy of job `id`, if it is one of `alias`'s.
    pub(crate) fn get(&self, alias: &AccountAlias, id: JobId) -> Option<JobCopy> {
        self.copies
            .get(&id)
            .filter(|copy| copy.job.account_alias == *alias)
    }

    /// Drops the copy of job `id` (it is stale, or may be).
    pub(crate) fn forget(&self, id: JobId) {
        self.copies.remove(&id);
    }
}
