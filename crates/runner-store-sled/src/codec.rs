//! Records as JSON bytes. Serialization runs inside [`reveal`], so secrets are persisted (the
//! store is their only home); they are masked everywhere else.

use runner_core::secret::reveal;
use runner_core::store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The stored bytes of a record, secrets in clear.
pub(crate) fn encode<T: Serialize>(what: &str, record: &T) -> Result<Vec<u8>, StoreError> {
    // Jobs and executions are plain data with string keys, so this does not fail in practice;
    // if it ever did, the write is refused rather than stored half-written.
    reveal(|| serde_json::to_vec(record))
        .map_err(|error| StoreError::Corrupt(format!("{what} cannot be serialized: {error}")))
}

/// A record read back; [`StoreError::Corrupt`] names what could not be read.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|error| StoreError::Corrupt(format!("stored {what} cannot be read: {error}")))
}

/// A counter of the `meta` tree.
pub(crate) fn count(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map_or(0, u64::from_be_bytes)
}
