//! Secrets at rest on PostgreSQL: sealed in the rows, opened only with the store's key (a node
//! with another key or none refuses to start), rotated.

mod common;

use runner_core::seal::{Keyring, SecretKey};
use runner_core::testkit::sealing::{
    SECRETS, assert_secrets_read_back, secrets_in, store_every_secret,
};
use runner_store_postgres::{PgStore, PgStoreError, PgStoreOptions};

/// The secrets found in clear in any row of the store's tables (every column, as text).
async fn secrets_in_rows(store: &PgStore) -> Vec<&'static str> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(
        tables.iter().any(|table| table == "executions"),
        "{tables:?}"
    );
    let mut found = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} AS t"))
            .fetch_all(store.pool())
            .await
            .unwrap();
        for row in rows {
            found.extend(secrets_in(row.as_bytes()));
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

fn sealed(options: &PgStoreOptions, keys: &Keyring) -> PgStoreOptions {
    options.clone().secret_keys(keys.clone())
}

#[tokio::test]
async fn the_rows_hold_no_secret_and_the_store_reads_them_back() {
    let keys = Keyring::new(SecretKey::generate());
    let options = common::fresh_options();
    let store = common::connect(sealed(&options, &keys)).await;
    let stored = store_every_secret(&store).await;
    assert_secrets_read_back(&store, stored).await;
    assert_eq!(secrets_in_rows(&store).await, Vec::<&str>::new());
    // Another node with the same key reads them.
    let node = common::connect(sealed(&options, &keys)).await;
    assert_secrets_read_back(&node, stored).await;

    // The same writes without a key: the search above finds them, so its silence means sealed.
    let clear = common::fresh_store().await;
    store_every_secret(&clear).await;
    assert_eq!(secrets_in_rows(&clear).await.len(), SECRETS.len());
}

#[tokio::test]
async fn a_node_with_another_key_or_none_refuses_to_start() {
    let keys = Keyring::new(SecretKey::generate());
    let options = common::fresh_options();
    let store = common::connect(sealed(&options, &keys)).await;
    store_every_secret(&store).await;

    let other = Keyring::new(SecretKey::generate());
    let error = PgStore::connect_with(sealed(&options, &other))
        .await
        .unwrap_err();
    assert!(matches!(error, PgStoreError::SecretKey(_)), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&keys.current().to_string())
            && message.contains(&other.current().to_string()),
        "the message names both keys: {message}"
    );
    let error = PgStore::connect_with(options.clone()).await.unwrap_err();
    assert!(matches!(error, PgStoreError::KeyRequired), "{error:?}");
    assert!(error.to_string().contains("--secret-key-file"), "{error}");
}

#[tokio::test]
async fn a_rotation_reseals_everything_under_the_new_key() {
    let old = SecretKey::generate();
    let new = SecretKey::generate();
    let options = common::fresh_options();
    let store = common::connect(sealed(&options, &Keyring::new(old.clone()))).await;
    let stored = store_every_secret(&store).await;
    drop(store);

    let rotating = Keyring::new(new.clone()).with_previous(old.clone());
    let store = common::connect(sealed(&options, &rotating)).await;
    // The job, the execution, the key pair and the inventory host.
    assert_eq!(store.reseal().await.unwrap(), 4);
    drop(store);

    let store = common::connect(sealed(&options, &Keyring::new(new))).await;
    assert_secrets_read_back(&store, stored).await;
    let error = PgStore::connect_with(sealed(&options, &Keyring::new(old)))
        .await
        .unwrap_err();
    assert!(
        matches!(error, PgStoreError::SecretKey(_)),
        "the old key is done: {error:?}"
    );
}
