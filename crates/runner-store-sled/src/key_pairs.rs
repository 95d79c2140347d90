//! [`KeyPairStore`] for [`SledStore`]: one tree, `key_pairs`, keyed by account and name (see
//! `named.rs`). The engine checks which jobs and inventory hosts name a pair before it deletes
//! it; the store only keeps the pairs.

use runner_core::ids::AccountAlias;
use runner_core::key_pair::KeyPair;
use runner_core::page::{Page, PageRequest};
use runner_core::store::{KeyPairStore, StoreError};

use crate::SledStore;
use crate::named::NamedTree;

pub(crate) const KEY_PAIRS: NamedTree = NamedTree {
    tree: |inner| &inner.key_pairs,
    record: "key pair",
};

impl KeyPairStore for SledStore {
    async fn insert_key_pair(&self, pair: &KeyPair) -> Result<(), StoreError> {
        KEY_PAIRS
            .insert(self, &pair.account_alias, &pair.name, pair)
            .await
    }

    async fn get_key_pair(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<KeyPair>, StoreError> {
        KEY_PAIRS.get(self, alias, name)
    }

    async fn list_key_pairs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<KeyPair>, StoreError> {
        KEY_PAIRS.list(self, alias, page).await
    }

    async fn delete_key_pair(&self, alias: &AccountAlias, name: &str) -> Result<(), StoreError> {
        KEY_PAIRS.delete(self, alias, name).await
    }
}
