//! [`KeyPairStore`] for [`PgStore`]: the `key_pairs` table, one row per account and name with
//! the record as JSON (see `named.rs`).

use runner_core::ids::AccountAlias;
use runner_core::key_pair::KeyPair;
use runner_core::page::{Page, PageRequest};
use runner_core::store::{KeyPairStore, StoreError};

use crate::PgStore;
use crate::named::NamedTable;

pub(crate) const KEY_PAIRS: NamedTable = NamedTable {
    table: "key_pairs",
    name: "name",
    record: "key pair",
};

impl KeyPairStore for PgStore {
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
        KEY_PAIRS.get(self, alias, name).await
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
