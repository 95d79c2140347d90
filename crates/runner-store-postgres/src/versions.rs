//! The last version this store wrote of each execution it is running: its `xmin` and its
//! record. A transition of such an execution (its worker's BeginRun, heartbeats, Finish) starts
//! from this copy instead of reading the row, and its compare-and-set on `xmin` (see `writes`)
//! proves the copy current: if another writer changed the row meanwhile, the write changes
//! nothing, the copy is dropped, and the transition reads the row and tries again. So a copy
//! that is out of date costs a retry, never a lost update.
//!
//! Only claimed executions are kept (PENDING and ended ones are no worker's), and the map is
//! emptied if it ever holds [`CAPACITY`] of them (executions another node took over are
//! dropped only when next written here).

use runner_core::execution::Execution;
use uuid::Uuid;

use crate::bounded_map::BoundedMap;

/// The most copies kept; far above what a node runs at once.
const CAPACITY: usize = 16_384;

/// The copies, by execution id.
#[derive(Default)]
pub(crate) struct Versions {
    copies: BoundedMap<Uuid, (String, Execution), CAPACITY>,
}

impl Versions {
    /// The copy of `id`: its `xmin` and record.
    pub(crate) fn get(&self, id: Uuid) -> Option<(String, Execution)> {
        self.copies.get(&id)
    }

    /// Notes the version of `execution` just committed with `xmin`.
    pub(crate) fn remember(&self, xmin: String, execution: &Execution) {
        let id = execution.execution_id.0;
        if execution.status.is_claimed() {
            self.copies.insert(id, (xmin, execution.clone()));
        } else {
            self.copies.remove(&id);
        }
    }

    /// Drops the copy of `id` (it is out of date, or may be).
    pub(crate) fn forget(&self, id: Uuid) {
        self.copies.remove(&id);
    }
}
