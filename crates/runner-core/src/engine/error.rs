//! The one error type of the engine's operations.

use crate::store::StoreError;
use crate::validation::ValidationErrors;

/// Why an engine operation failed; the HTTP layer maps each variant to one status code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The request is invalid (400).
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The request is well formed but names something the account does not have, such as a key
    /// pair or a service account (409: create it, then retry); each such field is named.
    #[error("{0}")]
    Missing(ValidationErrors),
    /// No such job or execution under that account (404).
    #[error("not found")]
    NotFound,
    /// The request conflicts with the current state (409); the message names the status.
    #[error("{0}")]
    Conflict(String),
    /// The store failed (503).
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => EngineError::NotFound,
            StoreError::Refused(refused) => EngineError::Conflict(refused.to_string()),
            StoreError::Conflict(message) => EngineError::Conflict(message),
            overlapping @ StoreError::Overlapping(_) => {
                EngineError::Conflict(overlapping.to_string())
            }
            other => EngineError::Store(other),
        }
    }
}
