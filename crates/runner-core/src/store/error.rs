//! [`StoreError`]: what can go wrong in any store role.

use crate::ids::ExecutionId;
use crate::machine::TransitionError;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such job or execution (under that account).
    #[error("not found")]
    NotFound,
    /// The state machine refused the command.
    #[error(transparent)]
    Refused(#[from] TransitionError),
    /// The change conflicts with the current state, e.g. deleting a job that still runs.
    #[error("{0}")]
    Conflict(String),
    /// The job skips overlapping runs ([`Overlap::Skip`](crate::overlap::Overlap::Skip)) and
    /// this execution of it has not ended.
    #[error(
        "the job skips overlapping runs, and its execution {0} has not ended: wait for it, or stop it"
    )]
    Overlapping(ExecutionId),
    /// The backend failed (connection lost, I/O error). The caller may retry.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored record could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(error))
    }
}
