//! [`InventoryStore`]: the hosts of each account's inventory.

use std::future::Future;

use super::StoreError;
use crate::ids::AccountAlias;
use crate::inventory::InventoryHost;
use crate::page::{Page, PageRequest};

/// The hosts of each account's inventory (see [`crate::inventory`]), each named by its `id`
/// in its account. The stores keep a host's secrets whole (serialize them revealed); the API
/// masks them.
pub trait InventoryStore: Send + Sync + 'static {
    /// Stores a new host; [`StoreError::Conflict`] if the account has a host of that id.
    fn insert_inventory_host(
        &self,
        host: &InventoryHost,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One host of `alias`'s inventory.
    fn get_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> impl Future<Output = Result<Option<InventoryHost>, StoreError>> + Send;

    /// Replaces a host (same account and id); [`StoreError::NotFound`] if there is none.
    fn replace_inventory_host(
        &self,
        host: &InventoryHost,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A page of the account's hosts, by id.
    fn list_inventory_hosts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<InventoryHost>, StoreError>> + Send;

    /// Deletes a host; [`StoreError::NotFound`] if there is none of that id.
    fn delete_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
