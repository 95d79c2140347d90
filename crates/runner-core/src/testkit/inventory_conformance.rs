//! The inventory part of the conformance suite: what every [`InventoryStore`] must do.
//!
//! Run by [`store_conformance_tests!`](crate::store_conformance_tests).

use base64::Engine as _;

use super::fixtures::alias;
use crate::inventory::InventoryHost;
use crate::job::Host;
use crate::page::PageRequest;
use crate::secret::Secret;
use crate::store::{InventoryStore, StoreError};

/// A host `id` of `account`'s inventory in group `web`, with a key and a password.
pub fn inventory_host(account: &str, id: &str) -> InventoryHost {
    let mut host = Host::named(id);
    host.host_vars.insert("ansible_port".into(), 2222.into());
    host.groups = vec!["web".into()];
    let key = base64::engine::general_purpose::STANDARD.encode(format!("key of {id}"));
    host.ssh_private_key = Some(Secret::new(key));
    host.ssh_password = Some(Secret::new(format!("password-{id}")));
    InventoryHost::new(alias(account), host, 7).expect("a valid host")
}

fn page(page: u32, size: u32) -> PageRequest {
    PageRequest { page, size }
}

conformance_suite! {
    $ list __inventory_conformance_cases in inventory_conformance;

    /// Hosts read back whole (secrets too), are unique per account, list by id in pages, and
    /// are isolated by account.
    pub async fn inventory_hosts_round_trip(store: &impl InventoryStore) {
        for id in ["web-2", "db-1", "web-1"] {
            store.insert_inventory_host(&inventory_host("ACME", id)).await.unwrap();
        }
        store.insert_inventory_host(&inventory_host("OTHER", "db-1")).await.unwrap();

        let read = store.get_inventory_host(&alias("ACME"), "db-1").await.unwrap().unwrap();
        let expected = inventory_host("ACME", "db-1");
        assert_eq!(read, expected);
        let secrets = |host: &InventoryHost| {
            let key = host.host.ssh_private_key.as_ref().map(|key| key.expose().to_owned());
            let password = host.host.ssh_password.as_ref().map(|p| p.expose().to_owned());
            (key, password)
        };
        assert_eq!(secrets(&read), secrets(&expected), "secrets are kept whole");
        assert!(store.get_inventory_host(&alias("OTHER"), "web-1").await.unwrap().is_none());

        let taken = store.insert_inventory_host(&inventory_host("ACME", "db-1")).await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");

        let first = store.list_inventory_hosts(&alias("ACME"), page(0, 2)).await.unwrap();
        assert_eq!(first.total_size, 3);
        let ids: Vec<_> = first.results.iter().map(|h| h.host.id.as_str()).collect();
        assert_eq!(ids, ["db-1", "web-1"]);
        let second = store.list_inventory_hosts(&alias("ACME"), page(1, 2)).await.unwrap();
        let ids: Vec<_> = second.results.iter().map(|h| h.host.id.as_str()).collect();
        assert_eq!(ids, ["web-2"]);
        let none = store.list_inventory_hosts(&alias("NOBODY"), page(0, 2)).await.unwrap();
        assert_eq!(none.total_size, 0);
    }

    /// A replace changes one host of one account; a replace or delete of a missing host is
    /// NotFound; a deleted id is free again.
    pub async fn inventory_hosts_replace_and_delete(store: &impl InventoryStore) {
        store.insert_inventory_host(&inventory_host("ACME", "a")).await.unwrap();
        store.insert_inventory_host(&inventory_host("OTHER", "a")).await.unwrap();
        let mut changed = inventory_host("ACME", "a");
        changed.host.groups = vec!["db".into(), "eu".into()];
        changed.host.ssh_password = None;
        changed.last_updated_time = 9;
        store.replace_inventory_host(&changed).await.unwrap();
        let read = store.get_inventory_host(&alias("ACME"), "a").await.unwrap().unwrap();
        assert_eq!(read, changed);
        assert!(read.host.ssh_password.is_none());
        let other = store.get_inventory_host(&alias("OTHER"), "a").await.unwrap().unwrap();
        assert_eq!(other.host.groups, ["web"], "another account's host is untouched");

        let missing = store.replace_inventory_host(&inventory_host("ACME", "b")).await;
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
        assert!(store.get_inventory_host(&alias("ACME"), "b").await.unwrap().is_none());

        store.delete_inventory_host(&alias("ACME"), "a").await.unwrap();
        assert!(store.get_inventory_host(&alias("ACME"), "a").await.unwrap().is_none());
        assert!(store.get_inventory_host(&alias("OTHER"), "a").await.unwrap().is_some());
        let again = store.delete_inventory_host(&alias("ACME"), "a").await;
        assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
        store.insert_inventory_host(&inventory_host("ACME", "a")).await.unwrap();
    }
}
