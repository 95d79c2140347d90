//! Shared by the integration tests: the test database, fresh schemas, a throwaway cluster.

#![allow(dead_code)] // each test binary uses a part

pub(crate) mod cluster;

use runner_store_postgres::{PgStore, PgStoreOptions};

/// The database the tests use: `$DATABASE_URL`, else the local default.
pub(crate) fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A unique schema name.
pub(crate) fn fresh_schema() -> String {
    format!("test_{}", uuid::Uuid::new_v4().simple())
}

/// Options for a new, empty schema of the test database.
pub(crate) fn fresh_options() -> PgStoreOptions {
    PgStoreOptions::new(database_url()).schema(fresh_schema())
}

/// A store in a new, empty schema. Panics, saying how to get a database, when there is none.
pub(crate) async fn fresh_store() -> PgStore {
    connect(fresh_options()).await
}

/// A store in a new, empty schema, its secrets sealed under a new key (so that every
/// conformance case runs through the sealing codec).
pub(crate) async fn fresh_sealed_store() -> PgStore {
    let keys = runner_core::seal::Keyring::new(runner_core::seal::SecretKey::generate());
    connect(fresh_options().secret_keys(keys)).await
}

/// Connects or panics with directions.
pub(crate) async fn connect(options: PgStoreOptions) -> PgStore {
    match PgStore::connect_with(options).await {
        Ok(store) => store,
        Err(error) => panic!(
            "cannot use the test database ({error}). Start one and point DATABASE_URL at it: \
             `export DATABASE_URL=$(scripts/ensure-postgres.sh)` (default \
             postgres://postgres@127.0.0.1:5432/test)"
        ),
    }
}
