//! One runner per data directory: a second open fails at once with a clear error.

use runner_store_sled::{SledStore, SledStoreError};

#[test]
fn a_second_open_in_the_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = SledStore::open(dir.path()).unwrap();
    let refused = SledStore::open(dir.path()).expect_err("the directory is held");
    let message = refused.to_string();
    assert!(
        matches!(&refused, SledStoreError::Locked { path, holder } if path == dir.path() && *holder == Some(std::process::id())),
        "{refused:?}"
    );
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("another runner holds it"), "{message}");
    drop(first);
    SledStore::open(dir.path()).expect("free again once the first store is dropped");
}
