//! [`InventoryStore`] for [`SledStore`]: one tree, `inventory`, keyed by account and host id
//! (see `named.rs`).

use runner_core::ids::AccountAlias;
use runner_core::inventory::InventoryHost;
use runner_core::page::{Page, PageRequest};
use runner_core::store::{InventoryStore, StoreError};

use crate::SledStore;
use crate::named::NamedTree;

const INVENTORY: NamedTree = NamedTree {
    tree: |inner| &inner.inventory,
    record: "inventory host",
};

impl InventoryStore for SledStore {
    async fn insert_inventory_host(&self, host: &InventoryHost) -> Result<(), StoreError> {
        INVENTORY
            .insert(self, &host.account_alias, &host.host.id, host)
            .await
    }

    async fn get_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> Result<Option<InventoryHost>, StoreError> {
        INVENTORY.get(self, alias, id)
    }

    async fn replace_inventory_host(&self, host: &InventoryHost) -> Result<(), StoreError> {
        INVENTORY
            .replace(self, &host.account_alias, &host.host.id, host)
            .await
    }

    async fn list_inventory_hosts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<InventoryHost>, StoreError> {
        INVENTORY.list(self, alias, page).await
    }

    async fn delete_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> Result<(), StoreError> {
        INVENTORY.delete(self, alias, id).await
    }
}
