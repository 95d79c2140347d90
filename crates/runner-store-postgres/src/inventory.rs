//! [`InventoryStore`] for [`PgStore`]: the `inventory_hosts` table, one row per account and
//! host id with the record as JSON (see `named.rs`).

use runner_core::ids::AccountAlias;
use runner_core::inventory::InventoryHost;
use runner_core::page::{Page, PageRequest};
use runner_core::store::{InventoryStore, StoreError};

use crate::PgStore;
use crate::named::NamedTable;

pub(crate) const INVENTORY_HOSTS: NamedTable = NamedTable {
    table: "inventory_hosts",
    name: "id",
    record: "inventory host",
};

impl InventoryStore for PgStore {
    async fn insert_inventory_host(&self, host: &InventoryHost) -> Result<(), StoreError> {
        INVENTORY_HOSTS
            .insert(self, &host.account_alias, &host.host.id, host)
            .await
    }

    async fn get_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> Result<Option<InventoryHost>, StoreError> {
        INVENTORY_HOSTS.get(self, alias, id).await
    }

    async fn replace_inventory_host(&self, host: &InventoryHost) -> Result<(), StoreError> {
        INVENTORY_HOSTS
            .replace(self, &host.account_alias, &host.host.id, host)
            .await
    }

    async fn list_inventory_hosts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<InventoryHost>, StoreError> {
        INVENTORY_HOSTS.list(self, alias, page).await
    }

    async fn delete_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> Result<(), StoreError> {
        INVENTORY_HOSTS.delete(self, alias, id).await
    }
}
