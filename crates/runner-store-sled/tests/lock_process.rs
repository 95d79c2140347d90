//! One runner per data directory, across processes: a second process is refused until the
//! holder dies, and its death (even by SIGKILL) frees the directory.
//!
//! In a binary of its own: a child process inherits the parent's open files between `fork` and
//! `exec`, so a lock another test of the same process releases could look held for a moment.

mod common;

use std::io::{BufRead, BufReader, Read};

use runner_store_sled::SledStore;

const HOLDER_ENV: &str = "RUNNER_SLED_TEST_HOLD_DIR";

#[test]
fn a_second_process_is_refused_until_the_holder_dies() {
    if let Some(dir) = std::env::var_os(HOLDER_ENV) {
        // The holder: open, say so, and hold until killed (or until the parent goes away).
        let _store = SledStore::open(dir).expect("the holder opens first");
        println!("\nholding the store");
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut holder = common::spawn_role(
        "a_second_process_is_refused_until_the_holder_dies",
        (HOLDER_ENV, dir.path()),
    );
    let stdout = BufReader::new(holder.stdout.take().unwrap());
    let mut lines = stdout.lines();
    let holding = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("holding the store"));
    assert!(holding, "the holder process never opened the store");

    let refused = SledStore::open(dir.path()).expect_err("another process holds it");
    let message = refused.to_string();
    assert!(message.contains("another runner holds it"), "{message}");
    assert!(
        message.contains(&format!("process {}", holder.id())),
        "{message}"
    );

    // kill -9: the kernel releases the lock with the process, leaving nothing stale.
    holder.kill().unwrap();
    holder.wait().unwrap();
    SledStore::open(dir.path()).expect("the lock died with its holder");
}
