//! [`KeyPairStore`] for [`SledStore`]: one tree, `key_pairs`, keyed by account and name.
//!
//! No other record refers to a key pair inside a transaction (the engine checks which jobs name
//! one before it deletes it), so key pairs need none of the writer thread's batching: an insert
//! is one compare-and-swap (absent to present, so two inserts of one name cannot both win), a
//! delete one remove, each made durable as the store's [`Durability`] says before it answers.
//! Both run on the blocking pool, as scans do.

use runner_core::ids::AccountAlias;
use runner_core::key_pair::KeyPair;
use runner_core::page::{Page, PageRequest};
use runner_core::store::{KeyPairStore, StoreError};

use crate::codec::Encode;
use crate::{Durability, Inner, SledStore, keys};

/// Makes the last change of `tree` (outside the writer's transactions: key pairs, the
/// inventory) durable, as the writer does for every other write.
pub(crate) fn make_durable(inner: &Inner, tree: &sled::Tree) -> Result<(), StoreError> {
    match inner.durability {
        Durability::Deferred => Ok(()),
        Durability::Flush => tree.flush().map(drop).map_err(StoreError::unavailable),
        Durability::Sync => {
            tree.flush().map_err(StoreError::unavailable)?;
            std::fs::File::open(inner.path.join("db"))
                .and_then(|log| log.sync_data())
                .map_err(StoreError::unavailable)
        }
    }
}

impl KeyPairStore for SledStore {
    async fn insert_key_pair(&self, pair: &KeyPair) -> Result<(), StoreError> {
        let key = keys::key_pair(&pair.account_alias, &pair.name);
        let bytes = self.inner.trees.codec.encode("key pair", pair)?;
        let name = pair.name.clone();
        self.scan(move |inner| {
            let swapped = inner
                .key_pairs
                .compare_and_swap(key, None::<&[u8]>, Some(bytes))
                .map_err(StoreError::unavailable)?;
            if swapped.is_err() {
                return Err(StoreError::Conflict(format!(
                    "key pair {name} exists already"
                )));
            }
            make_durable(inner, &inner.key_pairs)
        })
        .await
    }

    async fn get_key_pair(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<KeyPair>, StoreError> {
        // A point read of a cached page: inline (see "Blocking" in the crate docs).
        self.inner
            .key_pairs
            .get(keys::key_pair(alias, name))
            .map_err(StoreError::unavailable)?
            .map(|bytes| self.inner.trees.codec.decode("key pair", &bytes))
            .transpose()
    }

    async fn list_key_pairs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<KeyPair>, StoreError> {
        let prefix = keys::account_key_pairs(alias);
        self.scan(move |inner| {
            // An account has few key pairs: the page is cut from the whole listing.
            let all = inner
                .key_pairs
                .scan_prefix(prefix)
                .values()
                .map(|bytes| {
                    let bytes = bytes.map_err(StoreError::unavailable)?;
                    inner.trees.codec.decode::<KeyPair>("key pair", &bytes)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(page.slice(&all))
        })
        .await
    }

    async fn delete_key_pair(&self, alias: &AccountAlias, name: &str) -> Result<(), StoreError> {
        let key = keys::key_pair(alias, name);
        self.scan(move |inner| {
            let removed = inner
                .key_pairs
                .remove(key)
                .map_err(StoreError::unavailable)?;
            if removed.is_none() {
                return Err(StoreError::NotFound);
            }
            make_durable(inner, &inner.key_pairs)
        })
        .await
    }
}
