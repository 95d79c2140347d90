//! The account-inventory operations (create, read, replace, list, delete), and the hosts a
//! `useDynamicInventory` run gets from it.

use super::error::EngineError;
use super::handle::Engine;
use crate::executor::Executor;
use crate::ids::AccountAlias;
use crate::inventory::{self, InventoryHost};
use crate::job::Host;
use crate::notifier::Notifier;
use crate::page::{Page, PageRequest, every_item};
use crate::store::{InventoryStore, Store};
use crate::time::Clock;

impl<S: Store, E: Executor, N: Notifier, C: Clock> Engine<S, E, N, C> {
    /// Adds a host to `alias`'s inventory; 400 for a bad host, 409 if the id is taken, if the
    /// key pair it names does not exist, or if it sends the mask for a secret.
    pub async fn create_inventory_host(
        &self,
        alias: &AccountAlias,
        host: Host,
    ) -> Result<InventoryHost, EngineError> {
        let record = InventoryHost::new(alias.clone(), host, self.inner.clock.now())?;
        self.check_inventory_host(alias, &record).await?;
        self.inner.store.insert_inventory_host(&record).await?;
        Ok(record)
    }

    /// One host of `alias`'s inventory.
    pub async fn get_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> Result<InventoryHost, EngineError> {
        self.inner
            .store
            .get_inventory_host(alias, id)
            .await?
            .ok_or(EngineError::NotFound)
    }

    /// Replaces host `id` of `alias`'s inventory with `host`; a secret sent back as the mask
    /// keeps the stored one. The path names the host: `host.id` is taken from it (a host is
    /// not renamed; delete it and add it under the new id).
    pub async fn replace_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
        mut host: Host,
    ) -> Result<InventoryHost, EngineError> {
        id.clone_into(&mut host.id);
        let stored = self.get_inventory_host(alias, id).await?;
        let record = stored.replaced(host, self.inner.clock.now())?;
        self.check_inventory_host(alias, &record).await?;
        self.inner.store.replace_inventory_host(&record).await?;
        Ok(record)
    }

    /// A page of `alias`'s inventory, by host id.
    pub async fn list_inventory_hosts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<InventoryHost>, EngineError> {
        Ok(self.inner.store.list_inventory_hosts(alias, page).await?)
    }

    /// Removes a host from `alias`'s inventory (runs that already started keep it).
    pub async fn delete_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> Result<(), EngineError> {
        Ok(self.inner.store.delete_inventory_host(alias, id).await?)
    }

    /// 409 for a mask with nothing to keep, or a key pair the account does not have.
    async fn check_inventory_host(
        &self,
        alias: &AccountAlias,
        record: &InventoryHost,
    ) -> Result<(), EngineError> {
        let unkept = record.unkept_masks();
        if !unkept.errors.is_empty() {
            return Err(EngineError::Missing(unkept));
        }
        let key_pair = record.host.ssh_key_pair.as_deref();
        let fields = key_pair.map(|name| ("sshKeyPair".to_owned(), name));
        self.check_key_pairs_of(alias, fields.into_iter().collect(), None)
            .await
    }
}

/// The hosts a `useDynamicInventory` run of `alias` runs on: every host of the account's
/// inventory with the run's `own` hosts merged over them ([`inventory::merge`]).
pub(crate) async fn with_account_inventory(
    store: &impl InventoryStore,
    alias: &AccountAlias,
    own: Vec<Host>,
) -> Result<Vec<Host>, String> {
    let stored = every_item(|page| store.list_inventory_hosts(alias, page))
        .await
        .map_err(|error| format!("could not read the account's inventory: {error}"))?
        .into_iter()
        .map(|record| record.host)
        .collect();
    Ok(inventory::merge(stored, own))
}
