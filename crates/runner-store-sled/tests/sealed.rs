//! Secrets at rest on sled: sealed in the files, opened only with the store's key, rotated.

use std::path::Path;

use runner_core::seal::{Keyring, SecretKey};
use runner_core::testkit::sealing::{assert_secrets_read_back, secrets_in, store_every_secret};
use runner_store_sled::{Durability, SledStore, SledStoreError};

fn open(dir: &Path, keys: Option<&Keyring>) -> Result<SledStore, SledStoreError> {
    SledStore::open_sealed(dir, Durability::default(), keys.cloned())
}

/// The secrets found in clear in any file of `dir`.
fn secrets_in_files(dir: &Path) -> Vec<&'static str> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        found.extend(secrets_in(&std::fs::read(&entry).unwrap()));
    }
    found.sort_unstable();
    found.dedup();
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn the_files_hold_no_secret_and_the_store_reads_them_back() {
    let keys = Keyring::new(SecretKey::generate());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Some(&keys)).unwrap();
    let stored = store_every_secret(&store).await;
    assert_secrets_read_back(&store, stored).await;
    drop(store);
    assert_eq!(secrets_in_files(dir.path()), Vec::<&str>::new());
    let store = open(dir.path(), Some(&keys)).unwrap();
    assert_secrets_read_back(&store, stored).await;

    // The same writes without a key: the search above finds them, so its silence means sealed.
    let clear = tempfile::tempdir().unwrap();
    let store = open(clear.path(), None).unwrap();
    store_every_secret(&store).await;
    drop(store);
    assert_eq!(
        secrets_in_files(clear.path()).len(),
        runner_core::testkit::sealing::SECRETS.len()
    );
}

#[tokio::test]
async fn another_key_or_none_is_refused_at_open() {
    let keys = Keyring::new(SecretKey::generate());
    let dir = tempfile::tempdir().unwrap();
    store_every_secret(&open(dir.path(), Some(&keys)).unwrap()).await;

    let other = Keyring::new(SecretKey::generate());
    let error = open(dir.path(), Some(&other)).unwrap_err();
    assert!(
        matches!(error, SledStoreError::SecretKey { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&keys.current().to_string())
            && message.contains(&other.current().to_string()),
        "the message names both keys: {message}"
    );
    let error = open(dir.path(), None).unwrap_err();
    assert!(
        matches!(error, SledStoreError::KeyRequired { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("--secret-key-file"), "{error}");
    // The right key still opens it: a refused open changed nothing.
    open(dir.path(), Some(&keys)).unwrap();
}

#[tokio::test]
async fn a_rotation_reseals_everything_under_the_new_key() {
    let old = SecretKey::generate();
    let new = SecretKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let stored =
        store_every_secret(&open(dir.path(), Some(&Keyring::new(old.clone()))).unwrap()).await;

    let rotating = Keyring::new(new.clone()).with_previous(old.clone());
    let store = open(dir.path(), Some(&rotating)).unwrap();
    // The job, the execution, the key pair and the inventory host.
    assert_eq!(store.reseal().await.unwrap(), 4);
    drop(store);

    let store = open(dir.path(), Some(&Keyring::new(new))).unwrap();
    assert_secrets_read_back(&store, stored).await;
    drop(store);
    let error = open(dir.path(), Some(&Keyring::new(old))).unwrap_err();
    assert!(
        matches!(error, SledStoreError::SecretKey { .. }),
        "the old key is done: {error:?}"
    );
}
