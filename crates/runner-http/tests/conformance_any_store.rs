//! The store conformance suites of runner-core (jobs, executions and the feed; service accounts
//! and schedules) through [`AnyStore`], the enum the `runner` binary picks its store with, on
//! each backend: a case that passes on a store directly but not here points at the delegation.

use runner_http::server::AnyStore;

mod memory {
    use super::AnyStore;

    fn fresh_store() -> AnyStore {
        AnyStore::Memory(Box::new(runner_store_memory::MemoryStore::new()))
    }

    runner_core::store_conformance_tests!(async { fresh_store() });

    mod schedules {
        use super::fresh_store;

        runner_core::schedule_store_conformance_tests!(async { fresh_store() });
    }
}

#[cfg(feature = "sled")]
mod sled {
    use super::AnyStore;

    /// An [`AnyStore::Sled`] whose data directory is removed when it is dropped.
    struct TempStore {
        // Declared first: the store (and its lock) close before the directory is removed.
        store: AnyStore,
        _dir: tempfile::TempDir,
    }

    runner_core::forward_store!(impl[] for TempStore => AnyStore, |this| &this.store;
        JobStore, ExecutionStore, ClaimStore, FeedStore, OutboxStore, RunLogStore, KeyPairStore, InventoryStore, RetentionStore, SignalSource,
        ScheduleStore);

    fn fresh_store() -> TempStore {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store =
            runner_store_sled::SledStore::open(dir.path()).expect("open a fresh sled store");
        TempStore {
            store: AnyStore::Sled(store),
            _dir: dir,
        }
    }

    runner_core::store_conformance_tests!(async { fresh_store() });

    mod schedules {
        use super::fresh_store;

        runner_core::schedule_store_conformance_tests!(async { fresh_store() });
    }
}

/// The PostgreSQL store's own test helpers, so that both suites use the same test database and
/// fail with the same directions when there is none.
#[cfg(feature = "postgres")]
#[path = "../../runner-store-postgres/tests/common/mod.rs"]
mod postgres_common;

/// A fresh schema of the test database per case.
#[cfg(feature = "postgres")]
mod postgres {
    use super::AnyStore;

    async fn fresh_store() -> AnyStore {
        AnyStore::Postgres(super::postgres_common::fresh_store().await)
    }

    runner_core::store_conformance_tests!(async { fresh_store().await });

    mod schedules {
        use super::fresh_store;

        runner_core::schedule_store_conformance_tests!(async { fresh_store().await });
    }
}
