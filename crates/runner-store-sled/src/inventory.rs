//! [`InventoryStore`] for [`SledStore`]: one tree, `inventory`, keyed by account and host id.
//!
//! As with key pairs (see `key_pairs.rs`), no other record refers to an inventory host inside a
//! transaction, so a write is one atomic operation on the tree: an insert a compare-and-swap
//! from absent, a replace an update of a present value, a delete one remove, each made durable
//! before it answers.

use runner_core::ids::AccountAlias;
use runner_core::inventory::InventoryHost;
use runner_core::page::{Page, PageRequest};
use runner_core::store::{InventoryStore, StoreError};

use crate::codec::Encode;
use crate::key_pairs::make_durable;
use crate::{SledStore, keys};

const RECORD: &str = "inventory host";

impl InventoryStore for SledStore {
    async fn insert_inventory_host(&self, host: &InventoryHost) -> Result<(), StoreError> {
        let key = keys::inventory_host(&host.account_alias, &host.host.id);
        let bytes = self.inner.trees.codec.encode(RECORD, host)?;
        let id = host.host.id.clone();
        self.scan(move |inner| {
            let swapped = inner
                .inventory
                .compare_and_swap(key, None::<&[u8]>, Some(bytes))
                .map_err(StoreError::unavailable)?;
            if swapped.is_err() {
                return Err(StoreError::Conflict(format!(
                    "the inventory has a host {id} already"
                )));
            }
            make_durable(inner, &inner.inventory)
        })
        .await
    }

    async fn get_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> Result<Option<InventoryHost>, StoreError> {
        // A point read of a cached page: inline (see "Blocking" in the crate docs).
        self.inner
            .inventory
            .get(keys::inventory_host(alias, id))
            .map_err(StoreError::unavailable)?
            .map(|bytes| self.inner.trees.codec.decode(RECORD, &bytes))
            .transpose()
    }

    async fn replace_inventory_host(&self, host: &InventoryHost) -> Result<(), StoreError> {
        let key = keys::inventory_host(&host.account_alias, &host.host.id);
        let bytes = self.inner.trees.codec.encode(RECORD, host)?;
        self.scan(move |inner| {
            let replaced = inner
                .inventory
                .update_and_fetch(key, |old| old.map(|_| bytes.clone()))
                .map_err(StoreError::unavailable)?;
            if replaced.is_none() {
                return Err(StoreError::NotFound);
            }
            make_durable(inner, &inner.inventory)
        })
        .await
    }

    async fn list_inventory_hosts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<InventoryHost>, StoreError> {
        let prefix = keys::account_inventory(alias);
        self.scan(move |inner| {
            let total = inner.inventory.scan_prefix(&prefix).count();
            let results = inner
                .inventory
                .scan_prefix(&prefix)
                .values()
                .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
                .take(page.size as usize)
                .map(|bytes| {
                    let bytes = bytes.map_err(StoreError::unavailable)?;
                    inner.trees.codec.decode::<InventoryHost>(RECORD, &bytes)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::new(page, total as u64, results))
        })
        .await
    }

    async fn delete_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> Result<(), StoreError> {
        let key = keys::inventory_host(alias, id);
        self.scan(move |inner| {
            let removed = inner
                .inventory
                .remove(key)
                .map_err(StoreError::unavailable)?;
            if removed.is_none() {
                return Err(StoreError::NotFound);
            }
            make_durable(inner, &inner.inventory)
        })
        .await
    }
}
