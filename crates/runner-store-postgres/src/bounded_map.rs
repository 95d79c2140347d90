//! The map behind the store's in-memory copies (`versions`, `claimed_jobs`, `job_cache`): shared
//! between tasks, and emptied whenever a new key would take it past its capacity. A copy is only
//! ever a shortcut (its owner falls back to reading the database), so forgetting them all at
//! once is safe, and it bounds the memory of copies nobody came back for without bookkeeping on
//! every access.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A map of at most `CAPACITY` entries, shared between tasks.
pub(crate) struct BoundedMap<K, V, const CAPACITY: usize> {
    entries: Mutex<HashMap<K, V>>,
}

impl<K, V, const CAPACITY: usize> Default for BoundedMap<K, V, CAPACITY> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V, const CAPACITY: usize> BoundedMap<K, V, CAPACITY> {
    /// A copy of the value of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        self.lock().get(key).cloned()
    }

    /// Sets the value of `key`, emptying the map first if it is full and `key` is new.
    pub(crate) fn insert(&self, key: K, value: V) {
        self.insert_unless(key, value, |_| false);
    }

    /// As [`BoundedMap::insert`], but leaves the value of `key` as it is if `keep` says so of it.
    pub(crate) fn insert_unless(&self, key: K, value: V, keep: impl FnOnce(&V) -> bool) {
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(kept) if keep(kept) => return,
            Some(_) => {}
            None if entries.len() >= CAPACITY => entries.clear(),
            None => {}
        }
        entries.insert(key, value);
    }

    /// Takes the value of `key` out.
    pub(crate) fn remove(&self, key: &K) -> Option<V> {
        self.lock().remove(key)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        // No operation can panic halfway through a change, so a poisoned map is consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::BoundedMap;

    #[test]
    fn a_new_key_past_capacity_empties_the_map_first() {
        let map: BoundedMap<u32, &str, 2> = BoundedMap::default();
        map.insert(1, "a");
        map.insert(2, "b");
        map.insert(2, "b2");
        assert_eq!((map.get(&1), map.get(&2)), (Some("a"), Some("b2")));
        map.insert(3, "c");
        assert_eq!(
            (map.get(&1), map.get(&2), map.get(&3)),
            (None, None, Some("c"))
        );
    }

    #[test]
    fn insert_unless_keeps_what_keep_names() {
        let map: BoundedMap<u32, u64, 4> = BoundedMap::default();
        map.insert(1, 5);
        map.insert_unless(1, 3, |kept| *kept > 3);
        assert_eq!(map.get(&1), Some(5));
        map.insert_unless(1, 7, |kept| *kept > 7);
        assert_eq!(map.remove(&1), Some(7));
        assert_eq!(map.get(&1), None);
    }
}
