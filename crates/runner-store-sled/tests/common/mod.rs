//! A sled store in a temporary directory that lives as long as the store.

#![allow(dead_code)]

use runner_store_sled::SledStore;

/// A [`SledStore`] whose data directory is removed when it is dropped.
pub(crate) struct TempStore {
    // Declared first: the store (and its lock) close before the directory is removed.
    pub store: SledStore,
    pub dir: tempfile::TempDir,
}

impl TempStore {
    /// A fresh store in a new temporary directory, its secrets sealed under a new key (so that
    /// every conformance case runs through the sealing codec).
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let keys = runner_core::seal::Keyring::new(runner_core::seal::SecretKey::generate());
        let store = SledStore::open_sealed(
            dir.path(),
            runner_store_sled::Durability::default(),
            Some(keys),
        )
        .expect("open a fresh sled store");
        Self { store, dir }
    }
}

runner_core::forward_store!(impl[] for TempStore => SledStore, |this| &this.store;
    JobStore, ExecutionStore, ClaimStore, FeedStore, OutboxStore, RunLogStore, KeyPairStore, InventoryStore, RetentionStore, SignalSource, ScheduleStore);

/// Starts this test binary again, running only `test`, with `env` set so that the test plays a
/// role (a writer to kill, a lock holder) instead of its assertions. Its stdout is piped.
pub(crate) fn spawn_role(test: &str, env: (&str, &std::path::Path)) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().expect("test binary path"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn the test binary")
}

/// The part of a child's output line after `marker`, if the line has it (libtest may print its
/// own text on the same line).
pub(crate) fn after_marker<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|at| &line[at + marker.len()..])
}
