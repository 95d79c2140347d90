//! Records as JSON bytes, through the store's [`RecordCodec`]: secrets are persisted (the store
//! is their only home), sealed under the store's keyring when it has one, and masked everywhere
//! else.

pub(crate) use runner_core::seal::RecordCodec as Codec;
use runner_core::store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Records to bytes and back, with the errors this store reports.
pub(crate) trait Encode {
    /// The stored bytes of a record, its secrets sealed.
    fn encode<T: Serialize>(&self, what: &str, record: &T) -> Result<Vec<u8>, StoreError>;
    /// A record read back; [`StoreError::Corrupt`] names what could not be read (a secret that
    /// does not open with the keyring among them).
    fn decode<T: DeserializeOwned>(&self, what: &str, bytes: &[u8]) -> Result<T, StoreError>;
}

impl Encode for Codec {
    fn encode<T: Serialize>(&self, what: &str, record: &T) -> Result<Vec<u8>, StoreError> {
        // Jobs and executions are plain data with string keys, so this does not fail in practice;
        // if it ever did, the write is refused rather than stored half-written.
        self.to_vec(record)
            .map_err(|error| StoreError::Corrupt(format!("{what} cannot be serialized: {error}")))
    }

    fn decode<T: DeserializeOwned>(&self, what: &str, bytes: &[u8]) -> Result<T, StoreError> {
        self.from_slice(bytes)
            .map_err(|error| StoreError::Corrupt(format!("stored {what} cannot be read: {error}")))
    }
}

/// A counter of the `meta` tree.
pub(crate) fn count(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map_or(0, u64::from_be_bytes)
}
