//! Records named uniquely within their account, each in a tree of its own outside the writer's
//! transactions (key pairs, inventory hosts), keyed by account and name.
//!
//! No other record refers to one of them inside a transaction, so they need none of the writer
//! thread's batching: an insert is one compare-and-swap (absent to present, so two inserts of
//! one name cannot both win), a replace one update of a present value, a delete one remove,
//! each made durable as the store's [`Durability`] says before it answers. Writes and listings
//! run on the blocking pool, as scans do; a point read is inline.

use runner_core::ids::AccountAlias;
use runner_core::page::{Page, PageRequest};
use runner_core::store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Encode;
use crate::{Durability, Inner, SledStore, keys};

/// One such tree.
pub(crate) struct NamedTree {
    /// The tree, in the store.
    pub(crate) tree: fn(&Inner) -> &sled::Tree,
    /// What a record is called in messages (`key pair`).
    pub(crate) record: &'static str,
}

impl NamedTree {
    /// Inserts a record; [`StoreError::Conflict`] if the account has one of that name.
    pub(crate) async fn insert<T: Serialize>(
        &self,
        store: &SledStore,
        alias: &AccountAlias,
        name: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        let key = keys::named(alias, name);
        let bytes = store.inner.trees.codec.encode(self.record, record)?;
        let (tree, conflict) = (self.tree, format!("{} {name} exists already", self.record));
        store
            .scan(move |inner| {
                let swapped = tree(inner)
                    .compare_and_swap(key, None::<&[u8]>, Some(bytes))
                    .map_err(StoreError::unavailable)?;
                if swapped.is_err() {
                    return Err(StoreError::Conflict(conflict));
                }
                make_durable(inner, tree(inner))
            })
            .await
    }

    /// One record of `alias` (a point read of a cached page: inline, see "Blocking" in the
    /// crate docs).
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        store: &SledStore,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        (self.tree)(&store.inner)
            .get(keys::named(alias, name))
            .map_err(StoreError::unavailable)?
            .map(|bytes| store.inner.trees.codec.decode(self.record, &bytes))
            .transpose()
    }

    /// Replaces a record; [`StoreError::NotFound`] if there is none of that name.
    pub(crate) async fn replace<T: Serialize>(
        &self,
        store: &SledStore,
        alias: &AccountAlias,
        name: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        let key = keys::named(alias, name);
        let bytes = store.inner.trees.codec.encode(self.record, record)?;
        let tree = self.tree;
        store
            .scan(move |inner| {
                let replaced = tree(inner)
                    .update_and_fetch(key, |old| old.map(|_| bytes.clone()))
                    .map_err(StoreError::unavailable)?;
                if replaced.is_none() {
                    return Err(StoreError::NotFound);
                }
                make_durable(inner, tree(inner))
            })
            .await
    }

    /// A page of the account's records, by name.
    pub(crate) async fn list<T: DeserializeOwned + Send + 'static>(
        &self,
        store: &SledStore,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let prefix = keys::account_named(alias);
        let (tree, record) = (self.tree, self.record);
        store
            .scan(move |inner| {
                let total = tree(inner).scan_prefix(&prefix).count();
                let results = tree(inner)
                    .scan_prefix(&prefix)
                    .values()
                    .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
                    .take(page.size as usize)
                    .map(|bytes| {
                        let bytes = bytes.map_err(StoreError::unavailable)?;
                        inner.trees.codec.decode::<T>(record, &bytes)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::new(page, total as u64, results))
            })
            .await
    }

    /// Deletes a record; [`StoreError::NotFound`] if there is none of that name.
    pub(crate) async fn delete(
        &self,
        store: &SledStore,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<(), StoreError> {
        let key = keys::named(alias, name);
        let tree = self.tree;
        store
            .scan(move |inner| {
                let removed = tree(inner).remove(key).map_err(StoreError::unavailable)?;
                if removed.is_none() {
                    return Err(StoreError::NotFound);
                }
                make_durable(inner, tree(inner))
            })
            .await
    }
}

/// Makes the last change of `tree` durable, as the writer does for every other write.
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
