//! Overlapping runs of one job: the job's [`Overlap`] policy and the rules that apply it.
//!
//! A job that is started while an execution of it has not ended either runs both at once
//! ([`Overlap::Allow`], the default), waits for the one before ([`Overlap::Queue`]), or does not
//! start at all ([`Overlap::Skip`]). Each execution keeps the policy its job had when it was
//! created ([`Execution::overlap`]), so a store decides from the executions alone, inside its
//! atomic section:
//!
//! The rules concern one-at-a-time executions only (those under queue or skip): an execution
//! made under `allow` neither waits nor is waited for, even after its job's policy changed.
//!
//! - **The claim rule** ([`ClaimGate`]): a PENDING one-at-a-time execution is claimed only when
//!   no other one-at-a-time execution of its job is claimed (INITIALIZING, RUNNING, STOPPING,
//!   KILLING) and no older one is PENDING. So two such runs of a job never overlap, on any number
//!   of nodes, whatever made them PENDING (a start, a schedule, a restart, a run handed back by a
//!   node that went down), and they run in the order they became PENDING.
//! - **The start rule** ([`blocking_execution`]): an execution under skip is not stored while
//!   another one-at-a-time execution of its job has not ended; the store answers
//!   [`StoreError::Overlapping`](crate::store::StoreError::Overlapping) naming that execution,
//!   and a schedule's fire records the skip on the schedule
//!   ([`Schedule::last_skipped_fire`](crate::schedule::Schedule::last_skipped_fire)).
//!
//! PostgreSQL states both rules in SQL (its claim and insert statements), which must stay the
//! rules written here.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::execution::{Execution, Status};
use crate::ids::{ExecutionId, JobId};

/// What happens to a start of a job while an execution of it has not ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Runs at once, beside the others (AWX's `allow_simultaneous`).
    #[default]
    Allow,
    /// Waits, PENDING, until the job's executions before it have ended; one run at a time, in
    /// start order, across every node.
    Queue,
    /// Is refused (a start answers 409 naming the execution that has not ended; a schedule's fire
    /// is skipped and recorded on the schedule).
    Skip,
}

impl Overlap {
    /// True for the default, [`Overlap::Allow`] (stored records leave it out).
    pub fn is_allow(&self) -> bool {
        *self == Overlap::Allow
    }

    /// Queue and skip: runs of the job wait for each other at the claim.
    pub fn one_at_a_time(self) -> bool {
        !self.is_allow()
    }
}

/// The claim rule, for one pass of a store over its PENDING executions in queue order: which of
/// them may be claimed now.
#[derive(Debug, Default)]
pub struct ClaimGate {
    /// The one-at-a-time jobs this pass has seen a PENDING execution of: their later ones wait.
    seen: HashSet<JobId>,
}

impl ClaimGate {
    /// A gate for a new pass.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether PENDING `candidate`, the next in queue order, may be claimed now. `job_is_running`
    /// answers whether an execution of its job [holds the turn](holds_the_turn) (asked only when
    /// it matters).
    /// Call it for every PENDING execution the pass looks at, in queue order, claimed or not.
    pub fn admits(&mut self, candidate: &Execution, job_is_running: impl FnOnce() -> bool) -> bool {
        if !candidate.overlap.one_at_a_time() {
            return true;
        }
        // Only the oldest PENDING one-at-a-time execution of a job is a candidate.
        self.seen.insert(candidate.job_id) && !job_is_running()
    }
}

/// The start rule: for a new execution under [`Overlap::Skip`], the execution of the same job
/// (among `others`, the job's executions) that has not ended, if any, which refuses it.
pub fn blocking_execution<'a>(
    new: &Execution,
    others: impl IntoIterator<Item = &'a Execution>,
) -> Option<ExecutionId> {
    if new.overlap != Overlap::Skip {
        return None;
    }
    others
        .into_iter()
        .find(|other| {
            other.job_id == new.job_id
                && other.execution_id != new.execution_id
                && other.overlap.one_at_a_time()
                && !other.status.is_terminal()
        })
        .map(|other| other.execution_id)
}

/// Whether `execution` holds its job's turn: one-at-a-time and claimed (a node runs or is
/// ending it). What [`ClaimGate::admits`] asks about the job's other executions.
pub fn holds_the_turn(execution: &Execution) -> bool {
    execution.overlap.one_at_a_time() && execution.status.is_claimed()
}

/// The statuses in which an execution holds its job's turn, as stores name them in queries.
pub const TURN_STATUSES: [Status; 4] = [
    Status::Initializing,
    Status::Running,
    Status::Stopping,
    Status::Killing,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::fixtures::job;

    fn execution_of(job: &crate::job::Job, overlap: Overlap) -> Execution {
        let mut execution = Execution::new(job, None, None, 1);
        execution.overlap = overlap;
        execution
    }

    #[test]
    fn turn_statuses_are_the_claimed_ones() {
        for status in Status::ALL {
            assert_eq!(
                TURN_STATUSES.contains(&status),
                status.is_claimed(),
                "{status}"
            );
        }
    }

    #[test]
    fn a_gate_admits_the_oldest_of_a_job_that_is_not_running() {
        let one = job("ACME", 1);
        let other = job("ACME", 2);
        let (a, b) = (
            execution_of(&one, Overlap::Queue),
            execution_of(&one, Overlap::Skip),
        );
        let free = execution_of(&other, Overlap::Allow);
        let mut gate = ClaimGate::new();
        assert!(gate.admits(&a, || false));
        assert!(!gate.admits(&b, || panic!("not asked: an older one is first")));
        assert!(gate.admits(&free, || panic!("not asked under allow")));
        assert!(gate.admits(&free, || true));

        let mut gate = ClaimGate::new();
        assert!(!gate.admits(&a, || true), "waits for the running one");
        assert!(!gate.admits(&b, || false), "and so does the next");
    }

    #[test]
    fn skip_is_blocked_by_a_live_execution_of_its_job_only() {
        let one = job("ACME", 1);
        let mut live = execution_of(&one, Overlap::Queue);
        live.status = Status::Running;
        let mut allowed = execution_of(&one, Overlap::Allow);
        allowed.status = Status::Running;
        let mut ended = execution_of(&one, Overlap::Skip);
        ended.status = Status::Success;
        let elsewhere = execution_of(&job("ACME", 2), Overlap::Skip);
        let new = execution_of(&one, Overlap::Skip);
        assert_eq!(
            blocking_execution(&new, [&ended, &elsewhere, &new, &allowed]),
            None,
            "nothing of its job runs"
        );
        assert_eq!(
            blocking_execution(&new, [&ended, &live]),
            Some(live.execution_id)
        );
        let queued = execution_of(&one, Overlap::Queue);
        assert_eq!(
            blocking_execution(&queued, [&live]),
            None,
            "queue waits instead"
        );
    }
}
