//! The key-pair part of the conformance suite: what every [`KeyPairStore`] must do.
//!
//! Run by [`store_conformance_tests!`](crate::store_conformance_tests).

use super::fixtures::alias;
use crate::key_pair::{KeyPair, KeyType};
use crate::page::PageRequest;
use crate::secret::Secret;
use crate::store::{KeyPairStore, StoreError};

/// A key pair of `account` named `name` (its key material is made up: stores do not read it).
pub fn key_pair(account: &str, name: &str) -> KeyPair {
    KeyPair {
        name: name.into(),
        account_alias: alias(account),
        key_type: KeyType::Ed25519,
        description: Some(format!("{name} for tests")),
        public_key: format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{name} {name}@{account}"),
        fingerprint: format!("SHA256:{name}"),
        private_key: Secret::new(format!("cHJpdmF0ZS1{name}")),
        created_time: 7,
    }
}

fn page(page: u32, size: u32) -> PageRequest {
    PageRequest { page, size }
}

conformance_suite! {
    $ list __key_pair_conformance_cases in key_pair_conformance;

    /// Key pairs read back whole (the private key too), are unique per account, list by name
    /// in pages, and are isolated by account.
    pub async fn key_pairs_round_trip(store: &impl KeyPairStore) {
        for name in ["b", "a", "c"] {
            store.insert_key_pair(&key_pair("ACME", name)).await.unwrap();
        }
        store.insert_key_pair(&key_pair("OTHER", "a")).await.unwrap();

        let read = store.get_key_pair(&alias("ACME"), "a").await.unwrap().unwrap();
        assert_eq!(read, key_pair("ACME", "a"));
        assert_eq!(read.private_key.expose(), key_pair("ACME", "a").private_key.expose());
        let other = store.get_key_pair(&alias("OTHER"), "a").await.unwrap().unwrap();
        assert_eq!(other.account_alias, alias("OTHER"));
        assert!(store.get_key_pair(&alias("OTHER"), "b").await.unwrap().is_none());

        let taken = store.insert_key_pair(&key_pair("ACME", "a")).await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");

        let first = store.list_key_pairs(&alias("ACME"), page(0, 2)).await.unwrap();
        assert_eq!(first.total_size, 3);
        let names: Vec<_> = first.results.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let second = store.list_key_pairs(&alias("ACME"), page(1, 2)).await.unwrap();
        let names: Vec<_> = second.results.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["c"]);
        let none = store.list_key_pairs(&alias("NOBODY"), page(0, 2)).await.unwrap();
        assert_eq!(none.total_size, 0);
        assert!(none.results.is_empty());
    }

    /// Deleting removes one key pair of one account; deleting a missing one is NotFound.
    pub async fn key_pairs_delete(store: &impl KeyPairStore) {
        store.insert_key_pair(&key_pair("ACME", "a")).await.unwrap();
        store.insert_key_pair(&key_pair("OTHER", "a")).await.unwrap();
        store.delete_key_pair(&alias("ACME"), "a").await.unwrap();
        assert!(store.get_key_pair(&alias("ACME"), "a").await.unwrap().is_none());
        assert!(store.get_key_pair(&alias("OTHER"), "a").await.unwrap().is_some());
        let again = store.delete_key_pair(&alias("ACME"), "a").await;
        assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
        assert_eq!(
            store.list_key_pairs(&alias("ACME"), page(0, 10)).await.unwrap().total_size,
            0
        );
        // The name is free again.
        store.insert_key_pair(&key_pair("ACME", "a")).await.unwrap();
    }
}
