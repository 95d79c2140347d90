//! [`KeyPairStore`]: the key pairs of each account.

use std::future::Future;

use super::StoreError;
use crate::ids::AccountAlias;
use crate::key_pair::KeyPair;
use crate::page::{Page, PageRequest};

/// Key pairs, each under its account and named uniquely there. The stores keep the private
/// key whole (it is a [`crate::secret::Secret`]: serialize it revealed); the API never shows it.
///
/// Whether a job still names a key pair is checked by the engine before it deletes one
/// ([`crate::engine::Engine::delete_key_pair`]); the store only keeps the pairs.
pub trait KeyPairStore: Send + Sync + 'static {
    /// Stores a new key pair; [`StoreError::Conflict`] if the name is taken in the account.
    fn insert_key_pair(
        &self,
        pair: &KeyPair,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One key pair of `alias`.
    fn get_key_pair(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> impl Future<Output = Result<Option<KeyPair>, StoreError>> + Send;

    /// A page of the account's key pairs, by name.
    fn list_key_pairs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<KeyPair>, StoreError>> + Send;

    /// Deletes a key pair; [`StoreError::NotFound`] if there is none of that name.
    fn delete_key_pair(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
