//! # runner-store-sled
//!
//! A durable, embedded [`Store`] and [`ScheduleStore`] on [sled](https://docs.rs/sled/0.34): the
//! server's default store (`runner serve --store sled:./runner-data`). One process owns a data
//! directory; jobs, executions, their live feeds (events and the webhook outbox), service
//! accounts and schedules survive restarts and crashes of that process, and a runner that comes
//! back rescues
//! what the dead one left running (its leases lapse, see [`runner_core::machine`]).
//!
//! ```
//! use runner_store_sled::SledStore;
//! use runner_core::prelude::*;
//!
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap().block_on(async {
//! # let dir = std::env::temp_dir().join(format!("runner-sled-doc-{}", std::process::id()));
//! let store = SledStore::open(&dir)?;
//! let alias: AccountAlias = "ACME".parse().unwrap();
//! assert_eq!(store.list_jobs(&alias, PageRequest::default()).await?.total_size, 0);
//! // A second open of the same directory is refused while the first is alive.
//! let refused = SledStore::open(&dir).unwrap_err();
//! assert!(refused.to_string().contains("another runner holds it"));
//! # drop(store);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! ## Layout
//!
//! Records are JSON (serialized inside [`runner_core::seal::sealing`], so secrets persist; the
//! store is their only home; see "Secrets at rest"). Keys are bytes that sort in the order each index is read: an
//! account alias is length-prefixed, times are big-endian with the sign bit flipped, IDs are the
//! 16 bytes of their UUID.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `jobs` | job id | the [`Job`] |
//! | `executions` | execution id | the [`Execution`] (with lease, attempt, deadlines) |
//! | `jobs_by_account` | alias, created time, job id | empty; read backwards: newest first |
//! | `executions_by_job` | alias, job id, created time, execution id | empty; read backwards |
//! | `pending` | queue position (u64) | execution id: the claim queue, oldest first |
//! | `pending_position` | execution id | its queue position, to take it out of the queue |
//! | `deadlines` | [`Execution::next_deadline`], execution id | empty: lapsed leases, TTLs, stop escalations, kill deadlines in time order |
//! | `ended` | [`Execution::ended_time`], execution id | empty: ended executions in the order they ended, what retention purges first |
//! | `service_accounts` | alias, name | the [`ServiceAccount`] |
//! | `service_accounts_by_account` | alias, created time, name | empty; read backwards: newest first |
//! | `schedules` | schedule id | the [`Schedule`] (trigger, next and last fire time) |
//! | `schedules_by_job` | alias, job id, created time, schedule id | empty; read backwards |
//! | `job_schedules` | alias, job id | the job's schedule ids, 16 bytes each: what deleting the job deletes, and (by its length) how many it has |
//! | `fire_times` | [`Schedule::next_fire_time`], schedule id | empty: schedules in the order they are due |
//! | `fired` | schedule id, due time | empty: the due times that created an execution |
//! | `events` | execution id, sequence (u64) | the [`Event`]: an execution's feed, in order |
//! | `outbox` | execution id, callback index (u32), sequence (u64) | the pending [`Delivery`] (attempts so far, next attempt time), its state and last error: each (execution, callback) queue in order, its head first |
//! | `outbox_failed` | as `outbox` | deliveries given up ([`Settlement::GiveUp`]), kept for operators, never claimed |
//! | `run_logs` | execution id, attempt (u32) | one attempt's run log: its length, head, cap and oldest tail chunk (see `run_logs.rs`) |
//! | `run_log_chunks` | execution id, attempt (u32), offset (u64) | the bytes of one kept chunk of the run log, at that offset of the stream |
//! | `key_pairs` | alias, name | the [`KeyPair`](runner_core::key_pair::KeyPair), private key included: by name |
//! | `inventory` | alias, host id | the [`InventoryHost`](runner_core::inventory::InventoryHost), secrets included: by id |
//! | `meta` | `j`+alias, `e`+alias+job, `a`+job, `s`+alias, `u`+alias+name, `q`, `format` | jobs per account, executions per job, unfinished executions per job, service accounts per account, schedules per service account, the queue's tail, the format version; `secret_canary`: a value sealed with the store's key |
//!
//! Listing a page reads the count from `meta` (for schedules, the length of the job's
//! `job_schedules` entry) and walks the index backwards from the page's offset; claiming walks
//! `pending` from its start; the maintenance loop reads `deadlines` and the scheduler reads
//! `fire_times` from their start; a feed page is one range of `events`. Claiming deliveries
//! reads the head of each queue of `outbox` and seeks past the rest of the queue (delivered
//! deliveries are deleted and given-up ones moved to `outbox_failed`, so `outbox` holds only
//! pending ones); `next_delivery_at` reads the same heads. No query scans records.
//!
//! sled's transactions read and write single keys, with no range scans; so what a transaction
//! must find has a key of its own: deleting a job reads the job's `job_schedules` entry to delete
//! its schedules, deleting a service account reads its usage count (`u`) to refuse while a
//! schedule uses it. The `fired` set keeps one key per schedule, its latest due time: a fire
//! replaces the previous key (fires only move forward) and deleting the schedule removes it.
//!
//! ## Atomicity
//!
//! Every write (a job inserted, updated or deleted; an execution inserted; a transition; a claim
//! of a batch; a service account or schedule inserted, updated or deleted; a round of firing
//! schedules; an append of executor events; a settled delivery) runs on **one writer thread**,
//! inside **a sled transaction over all twenty-one trees**. An execution changes only through
//! [`runner_core::feed::transition`] (which wraps [`runner_core::machine::apply`]) inside that
//! transaction, on the record the transaction read, and the same transaction moves it in the
//! claim queue and the deadline index, updates the counts, and stores the status event with its
//! deliveries. A new execution (inserted, or fired by a schedule) is stored with its creation
//! event ([`runner_core::feed::created`]), and an append ([`FeedStore::append_events`], fenced by
//! [`runner_core::feed::append`]) stores the execution's new event count with the events and
//! their deliveries. So a feed has no gaps, and no event without the change it reports, also
//! after a crash. sled's transactions are serializable (sled 0.34 runs
//! them under a process-wide write lock), and sled seals a transaction's writes as one batch in
//! its log, which recovery replays whole or not at all. So after a crash a record and its indexes
//! still agree (the kill -9 test checks exactly that).
//!
//! The writer thread takes every write waiting for it (up to 64) into one transaction, applying
//! them in arrival order. Each write is checked before it writes anything, so a refused one (a
//! transition the state machine refuses, a job that is gone) changes nothing and does not disturb
//! the others; if the transaction aborts as a whole (a record that cannot be read back), its
//! writes are retried one transaction each, so a bad record only fails the writes that touch it.
//! Claims read the head of the claim queue just before the transaction; as the writer thread is
//! the only writer, only earlier claims of the same batch can have taken a candidate, and the
//! transaction (which sees their writes) skips those. Deleting a job checks the job's count of
//! unfinished executions inside its transaction, so no start or restart slips in between, and
//! deletes the job's schedules (and their fire-time entries) in the same transaction.
//!
//! Schedules follow the same pattern. Inserting or updating one checks, in its transaction, that
//! its job exists under its account ([`StoreError::NotFound`]) and that its service account
//! exists ([`StoreError::Conflict`]). Firing ([`ScheduleStore::fire_due_schedules`]) reads the
//! head of `fire_times` just before the transaction, and inside it, per schedule still due:
//! applies [`Schedule::fire`] (the rule lives in core), inserts one
//! [`Execution::scheduled`] through the same code as [`ExecutionStore::insert_execution`] (so the claim
//! queue, the job's listing and counts stay right) unless `fired` holds the (schedule, due time)
//! already, and stores the advanced schedule with its new `fire_times` entry. So after a crash
//! a fire's execution and the schedule's advance are both there or neither (`tests/crash_schedules.rs`
//! kills a firing process and checks exactly that), and several callers at once fire each due
//! time once: the writer thread serializes them.
//!
//! ## Durability
//!
//! A write is acknowledged (its future resolves) only after sled's log is flushed to the file
//! ([`Durability::Flush`], the default): an acknowledged write survives `kill -9` of the process.
//! This is group commit: the writer thread flushes once per batch, then answers every write of
//! the batch; while it flushes, the next batch gathers. Under load one flush acknowledges tens of
//! writes (see BENCHMARKS.md). [`Durability::Sync`] adds an `fdatasync` of the log for
//! power-loss safety (sled's flush uses `sync_file_range`, which neither persists the file's
//! metadata nor empties the device's cache); [`Durability::Deferred`] acknowledges at commit
//! (benchmarks only). The integration test `tests/crash.rs` kills a writer process with SIGKILL
//! and finds every write it acknowledged.
//!
//! Signals ([`Signal::Pending`], [`Signal::Control`]) go out on a tokio broadcast channel after
//! the write is durable, as [`signal_after`] names them; a round of firing that created
//! executions sends [`Signal::Pending`]. Every write that recorded events (an insert, a fire, a
//! claim, a transition that changed a status, an append) also sends [`Signal::Feed`] for each
//! execution concerned.
//!
//! ## The live feed
//!
//! Events and deliveries are written as described under Atomicity, and acknowledged like every
//! write (after the flush): an acknowledged append or settle survives `kill -9` (`tests/crash.rs`
//! appends, delivers and retries, and checks after the kill that each feed has no gaps and each
//! delivery queue holds exactly its feed's undelivered rest).
//!
//! Claims of deliveries ([`OutboxStore::claim_deliveries`]) hold them **in memory**, not on disk: only
//! one process can open a data directory (see the lock below), so no other process can hand
//! them out meanwhile, and after a restart nothing is held, so every delivery that was not
//! settled is handed out again: at least once, which the delivery contract allows (receivers
//! drop repeats by their `Idempotency-Key`). Claims read the outbox on the blocking pool and
//! take their deliveries under a lock that settles release only after committing, so two
//! callers never get the same delivery while a hold lasts. They also take turns between queues
//! (each claim starts where the previous one stopped), so busy executions do not starve the
//! others. `src/feed.rs` explains the choices.
//!
//! ## Secrets at rest
//!
//! Opened with a [`Keyring`] ([`SledStore::open_sealed`]), the store seals every password and
//! private key it writes (jobs, executions, key pairs) with XChaCha20-Poly1305 under the
//! keyring's current key (see [`runner_core::seal`]); no secret reaches sled's files in clear.
//! The first sealed open writes a canary sealed with that key to `meta`; every later open checks
//! it, so a store opened with another key, or without one, is refused at once
//! ([`SledStoreError::SecretKey`], [`SledStoreError::KeyRequired`]) rather than failing on each
//! record. [`SledStore::reseal`] re-seals everything under a new key (the end of a rotation).
//! A store written in clear before it was first opened with a key reads as it is; its records
//! are sealed as they are next written, or all at once by [`SledStore::reseal`] (sled may keep
//! the clear bytes in its log until it reuses the space).
//!
//! ## Format versions
//!
//! `meta` holds the format version. Version 2 added the feed trees and the feed fields of
//! executions (`callbacks`, `events`). A version 1 directory opens: the feed trees are created
//! empty, executions read back with no callbacks and no events, and their feeds start at their
//! next status change (sequence 1). The directory is then marked version 2, which a runner of
//! version 1 refuses to open ([`SledStoreError::Format`]): it would rewrite executions without
//! their feed fields, and their feeds would be numbered again from 1 over the stored events.
//! Version 3 added the `ended` tree: opening a version 1 or 2 directory builds it from the
//! executions (after the secret key was checked) before marking the directory version 3.
//!
//! ## Retention
//!
//! [`RetentionStore::purge_ended`] reads the head of `ended` and, for each execution, the keys
//! of its events, deliveries and run logs (a transaction cannot read a range), then deletes
//! them with the execution, its listing entry and its job's count in one write; an execution
//! changed since the read (restarted, or with new events) is skipped (`src/retention.rs`).
//! Directories of a later version than this runner's are refused too.
//!
//! ## The directory lock
//!
//! [`SledStore::open`] first takes an exclusive `flock` on `runner.lock` in the data directory,
//! without waiting: a second runner on the same directory (another process, or a second open in
//! the same process) fails at once with [`SledStoreError::Locked`], whose message names the
//! directory and the pid of the holder. The kernel drops the lock when the holder's process ends,
//! however it ends, so a crash never leaves a stale lock. sled's own lock on its `db` file stays
//! as a second guard (mapped to the same error). Dropping the last handle of a store stops the
//! writer thread, closes the database and then releases the lock, so the directory can be opened
//! again at once.
//!
//! ## Blocking
//!
//! sled's calls block, so none of the slow ones runs on a tokio worker:
//! - writes (transactions and flushes) run on the writer thread; the caller awaits a oneshot
//!   reply. This costs one thread hand-off per batch instead of one `spawn_blocking` per write;
//!   on this 2-core machine it made end-to-end execution throughput about 6 times higher.
//! - reads that walk many keys (listings, the deadline scan, the message of a refused delete,
//!   feed pages, delivery claims and `next_delivery_at`) run on tokio's blocking pool
//!   ([`tokio::task::spawn_blocking`]).
//! - point reads (`get_job`, `get_execution`, `next_deadline`, `get_service_account`,
//!   `get_schedule`, `next_fire_time`) run inline: they read a cached
//!   page in microseconds, less than a `spawn_blocking` hand-off costs. They can wait for sled's
//!   write lock while a batch transaction runs; batches are capped at 64 writes to keep that wait
//!   well under a millisecond. A cold read of a page not in sled's cache (1 GiB by default) reads
//!   the disk inline.
//!
//! ## Modules
//!
//! Each write is a type of its own that names its reply (`writer::Write`), kept with the records
//! it changes; the writer thread batches them without knowing them, and the caller gets back
//! exactly the write's reply type. The modules use one another in one direction only: each line
//! below uses only modules of the lines under it (test modules aside).
//!
//! ```text
//! store_impl ──────► lib, jobs, executions, feed, retention,    JobStore … SignalSource
//!                    trees, keys
//! schedule_store ──► lib, schedules, trees, keys                ScheduleStore
//! lib ─────────────► writer, feed, trees, lock, durability,     SledStore: open, close,
//!                    keys, codec                                 the writer's inbox
//! jobs ────────────► schedules, writer, trees, keys, codec      writes of jobs
//! schedules ───────► executions, writer, trees, keys, codec     writes of service accounts,
//!                                                                schedules and their fires
//! executions ──────► feed, writer, trees, keys                  inserts, transitions, claims
//! feed ────────────► writer, trees, keys, codec                 events, outbox, holds
//! retention ───────► writer, trees, keys                        purges of ended executions
//! writer ──────────► trees, durability, keys                    the thread, batches, flushes
//! trees ───────────► keys, codec                                the trees, reads, transactions
//! codec, keys, durability, lock                                  (none of the crate's modules)
//! ```

mod codec;
mod durability;
mod executions;
mod feed;
mod inventory;
mod jobs;
mod key_pairs;
mod keys;
mod lock;
mod named;
mod retention;
mod run_logs;
mod schedule_store;
mod schedules;
mod store_impl;
mod trees;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

#[cfg(doc)]
use runner_core::execution::Execution;
#[cfg(doc)]
use runner_core::feed::{Delivery, Event, Settlement};
#[cfg(doc)]
use runner_core::job::Job;
#[cfg(doc)]
use runner_core::schedule::{Schedule, ServiceAccount};
#[cfg(doc)]
use runner_core::store::{
    ExecutionStore, FeedStore, OutboxStore, RetentionStore, ScheduleStore, Store, signal_after,
};
use runner_core::store::{Signal, StoreError};
use tokio::sync::broadcast;

use runner_core::seal::{Keyring, SealError};

use crate::codec::{Codec, Encode, count};
pub use crate::durability::Durability;
use crate::lock::{DirectoryLock, LockError};
use crate::trees::Trees;
use crate::writer::{Request, Write, Writer};

/// How many signals a slow subscriber may fall behind before it sees `Lagged`.
const SIGNAL_CAPACITY: usize = 1024;

/// The on-disk format this version writes. Version 2 added the live feed: the `events`,
/// `outbox` and `outbox_failed` trees, and the `callbacks` and `events` fields of executions.
///
/// A version 1 directory opens and is marked version 2 (see "Format versions" in the crate
/// docs); a directory of a later version is refused, and so is a version 2 directory by a runner
/// that reads version 1 only: it would drop the feed fields of the executions it rewrites, and
/// the next runner would number their events again from the start.
///
/// Version 3 added the `ended` tree (ended executions by end time, for retention); opening an
/// older directory builds it from the executions before the directory is marked version 3.
const FORMAT_VERSION: u64 = 3;

/// The oldest format this version opens (upgrading it to [`FORMAT_VERSION`] in place).
const OLDEST_FORMAT: u64 = 1;

/// Why a data directory cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SledStoreError {
    /// Another runner (process or open store) holds the directory.
    #[error(
        "the data directory {} is locked: another runner holds it{}; stop it or use another directory",
        path.display(),
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default()
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// The process id the holder wrote into the lock file, if it could be read.
        holder: Option<u32>,
    },
    /// The directory or a file in it cannot be created or opened.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// sled cannot open its database (corrupt files, I/O errors).
    #[error("cannot open the sled database in {}: {source}", path.display())]
    Sled {
        /// The data directory.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// The directory holds data of another format version of this store.
    #[error("the data directory {} holds format version {found}; this runner reads versions {OLDEST_FORMAT} to {FORMAT_VERSION}", path.display())]
    Format {
        /// The data directory.
        path: PathBuf,
        /// The version found.
        found: u64,
    },

    /// The store's secrets are sealed, and the key given does not open them.
    #[error("cannot open the store in {}: {source}", path.display())]
    SecretKey {
        /// The data directory.
        path: PathBuf,
        /// Which key sealed them, and which was given.
        #[source]
        source: SealError,
    },
    /// The store's secrets are sealed, and no key was given.
    #[error(
        "the store in {} holds sealed secrets: open it with its secret key (`--secret-key-file`)",
        path.display()
    )]
    KeyRequired {
        /// The data directory.
        path: PathBuf,
    },
    /// Upgrading an older format failed: a record could not be read, or sled failed.
    #[error("cannot upgrade the store in {}: {error}", path.display())]
    Upgrade {
        /// The data directory.
        path: PathBuf,
        /// What failed.
        #[source]
        error: StoreError,
    },
}

/// Builds the `ended` tree (format 3) from the executions of a directory of an older format.
fn index_ended(trees: &Trees) -> Result<(), StoreError> {
    for entry in trees.executions.iter() {
        let (_, bytes) = entry.map_err(StoreError::unavailable)?;
        let execution: runner_core::execution::Execution =
            trees.codec.decode("execution", &bytes)?;
        if let Some(at) = execution.ended_time() {
            trees
                .ended
                .insert(keys::ended(at, execution.execution_id), &[][..])
                .map_err(StoreError::unavailable)?;
        }
    }
    Ok(())
}

impl From<LockError> for SledStoreError {
    fn from(error: LockError) -> Self {
        match error {
            LockError::Held { dir, holder } => SledStoreError::Locked { path: dir, holder },
            LockError::Io { path, source } => SledStoreError::Io { path, source },
        }
    }
}

/// A durable [`Store`] and [`ScheduleStore`] in one data directory. Cheap to clone (clones share the database).
///
/// See the [crate docs](crate) for the layout, atomicity, durability and the lock.
#[derive(Debug, Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The writer thread's inbox; `None` once the store is closing.
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// For reads (writes go through the writer thread).
    trees: Trees,
    /// Key pairs: outside [`Trees`] and the writer's transactions, as no other record refers
    /// to them atomically (see `named.rs`).
    key_pairs: sled::Tree,
    /// Inventory hosts: outside [`Trees`] as key pairs are (see `named.rs`).
    inventory: sled::Tree,
    durability: Durability,
    flushes: Arc<AtomicU64>,
    signals: broadcast::Sender<Signal>,
    /// Claimed deliveries (in memory: see "The live feed" in the crate docs).
    holds: feed::Holds,
    path: PathBuf,
    _db: sled::Db,
    // Dropped last (fields drop in order): the lock outlives every database handle.
    _lock: DirectoryLock,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the inbox ends the writer thread after its current batch; waiting for it means
        // the database is closed (and the directory free) once the last store handle is gone.
        self.requests = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl SledStore {
    /// Opens (creating it if needed) the store in `path`, with [`Durability::Flush`].
    ///
    /// Fails at once with [`SledStoreError::Locked`] if another runner holds the directory.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, SledStoreError> {
        Self::open_with(path, Durability::default())
    }

    /// Like [`SledStore::open`], with a chosen [`Durability`].
    pub fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<SledStore, SledStoreError> {
        Self::open_sealed(path, durability, None)
    }

    /// Like [`SledStore::open_with`], with every secret sealed under `keys` (see "Secrets at
    /// rest" in the crate docs). A store opened once with keys must be opened with them (or a
    /// keyring that holds the key they were sealed with) from then on:
    /// [`SledStoreError::KeyRequired`], [`SledStoreError::SecretKey`] otherwise.
    pub fn open_sealed(
        path: impl AsRef<Path>,
        durability: Durability,
        keys: Option<Keyring>,
    ) -> Result<SledStore, SledStoreError> {
        let path = path.as_ref().to_path_buf();
        private_dir(&path).map_err(|source| SledStoreError::Io {
            path: path.clone(),
            source,
        })?;
        let lock = DirectoryLock::acquire(&path)?;
        let sled_error = |source: sled::Error| match &source {
            // sled's own lock, should anything else hold its files.
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                SledStoreError::Locked {
                    path: path.clone(),
                    holder: None,
                }
            }
            _ => SledStoreError::Sled {
                path: path.clone(),
                source,
            },
        };
        let db = open_sled(&path).map_err(sled_error)?;
        let trees = Trees::open(&db, Codec::new(keys.clone())).map_err(sled_error)?;
        let key_pairs = db.open_tree("key_pairs").map_err(sled_error)?;
        let inventory = db.open_tree("inventory").map_err(sled_error)?;
        let found = trees
            .meta
            .get(keys::FORMAT)
            .map_err(sled_error)?
            .map(|found| count(Some(&found)));
        // An older directory is marked with the new version only once it is upgraded, after
        // the secret key was checked (the upgrade reads sealed executions).
        let mut upgrade_from = None;
        match found {
            Some(FORMAT_VERSION) => {}
            Some(found) if !(OLDEST_FORMAT..FORMAT_VERSION).contains(&found) => {
                return Err(SledStoreError::Format { path, found });
            }
            // A new directory, or an older format: the trees it lacks were just created empty,
            // and records read back with their new fields at their defaults.
            Some(found) => {
                tracing::info!(path = %path.display(), found, to = FORMAT_VERSION, "upgrading the sled store's format");
                upgrade_from = Some(found);
            }
            None => {
                trees
                    .meta
                    .insert(keys::FORMAT, &FORMAT_VERSION.to_be_bytes())
                    .map_err(sled_error)?;
                db.flush().map_err(sled_error)?;
            }
        }
        let canary = trees.meta.get(keys::SECRET_CANARY).map_err(sled_error)?;
        match (&keys, canary) {
            (Some(keys), Some(canary)) => keys
                .check_canary(&String::from_utf8_lossy(&canary))
                .map_err(|source| SledStoreError::SecretKey {
                    path: path.clone(),
                    source,
                })?,
            (Some(keys), None) => {
                // A new store, or one from before sealing: what it holds in clear reads as it is,
                // and is sealed when it is next written (or by `reseal`).
                trees
                    .meta
                    .insert(keys::SECRET_CANARY, keys.canary().as_bytes())
                    .map_err(sled_error)?;
                db.flush().map_err(sled_error)?;
            }
            (None, Some(_)) => return Err(SledStoreError::KeyRequired { path }),
            (None, None) => {}
        }
        if upgrade_from.is_some() {
            index_ended(&trees).map_err(|error| SledStoreError::Upgrade {
                path: path.clone(),
                error,
            })?;
            trees
                .meta
                .insert(keys::FORMAT, &FORMAT_VERSION.to_be_bytes())
                .map_err(sled_error)?;
            db.flush().map_err(sled_error)?;
        }
        let log = match durability {
            Durability::Sync => {
                let log_path = path.join("db");
                Some(
                    std::fs::File::open(&log_path).map_err(|source| SledStoreError::Io {
                        path: log_path,
                        source,
                    })?,
                )
            }
            _ => None,
        };
        let flushes = Arc::new(AtomicU64::new(0));
        let (requests, inbox) = mpsc::channel();
        let writer = Writer {
            db: db.clone(),
            trees: trees.clone(),
            durability,
            log,
            flushes: Arc::clone(&flushes),
        };
        let writer = std::thread::Builder::new()
            .name("runner-sled-writer".into())
            .spawn(move || writer.run(inbox))
            .map_err(|source| SledStoreError::Io {
                path: path.clone(),
                source,
            })?;
        tracing::info!(path = %path.display(), ?durability, "sled store opened");
        Ok(SledStore {
            inner: Arc::new(Inner {
                requests: Some(requests),
                writer: Some(writer),
                trees,
                key_pairs,
                inventory,
                durability,
                flushes,
                signals: broadcast::channel(SIGNAL_CAPACITY).0,
                holds: feed::Holds::default(),
                path,
                _db: db,
                _lock: lock,
            }),
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many flushes acknowledged writes so far (each covers a batch); for benchmarks.
    pub fn flush_count(&self) -> u64 {
        self.inner.flushes.load(Ordering::Relaxed)
    }

    /// Seals every secret the store holds under its keyring's current key, and marks the store
    /// as sealed with it: the end of a key rotation (`runner secrets rotate`), after which the
    /// previous key may be dropped. Returns how many records were rewritten. Runs while the
    /// store is open, so nothing else writes the directory meanwhile (the lock).
    pub async fn reseal(&self) -> Result<u64, StoreError> {
        let Some(keys) = self.inner.trees.codec.keys().cloned() else {
            return Err(StoreError::Corrupt(
                "the store has no secret key to seal with".into(),
            ));
        };
        let current = keys.current();
        let sealed = self
            .scan(move |inner| {
                let codec = &inner.trees.codec;
                let mut rewritten = 0;
                rewritten += reseal_tree::<runner_core::job::Job>(codec, &inner.trees.jobs, "job")?;
                rewritten += reseal_tree::<runner_core::execution::Execution>(
                    codec,
                    &inner.trees.executions,
                    "execution",
                )?;
                rewritten += reseal_tree::<runner_core::key_pair::KeyPair>(
                    codec,
                    &inner.key_pairs,
                    "key pair",
                )?;
                rewritten += reseal_tree::<runner_core::inventory::InventoryHost>(
                    codec,
                    &inner.inventory,
                    "inventory host",
                )?;
                inner
                    .trees
                    .meta
                    .insert(keys::SECRET_CANARY, keys.canary().as_bytes())
                    .map_err(StoreError::unavailable)?;
                named::make_durable(inner, &inner.key_pairs)?;
                named::make_durable(inner, &inner.inventory)?;
                Ok(rewritten)
            })
            .await?;
        tracing::info!(path = %self.path().display(), records = sealed, key = %current, "secrets sealed with the current key");
        Ok(sealed)
    }

    /// Hands `write` to the writer thread; resolves once it is durable (or refused).
    async fn write<W: Write>(&self, write: W) -> Result<W::Reply, StoreError> {
        let (request, outcome) = Request::new(write);
        let closed = || StoreError::unavailable(std::io::Error::other("the sled store is closed"));
        self.inner
            .requests
            .as_ref()
            .ok_or_else(closed)?
            .send(request)
            .map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }

    /// Runs a read that may walk many keys on the blocking pool.
    async fn scan<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(StoreError::unavailable)?
    }

    fn signal(&self, signal: Option<Signal>) {
        if let Some(signal) = signal {
            let _ = self.inner.signals.send(signal);
        }
    }
}

/// Rewrites every record of `tree` under the codec's current key (each seal takes a fresh
/// nonce, and a record may hold secrets in clear from before sealing, so all are rewritten).
/// Each record is swapped only if untouched meanwhile.
fn reseal_tree<T: serde::Serialize + serde::de::DeserializeOwned>(
    codec: &Codec,
    tree: &sled::Tree,
    what: &str,
) -> Result<u64, StoreError> {
    let mut rewritten = 0;
    for entry in tree.iter() {
        let (key, bytes) = entry.map_err(StoreError::unavailable)?;
        let record: T = codec.decode(what, &bytes)?;
        let again = codec.encode(what, &record)?;
        tree.compare_and_swap(&key, Some(&bytes), Some(again))
            .map_err(StoreError::unavailable)?
            .map_err(|_| StoreError::Conflict(format!("a {what} changed while it was resealed")))?;
        rewritten += 1;
    }
    Ok(rewritten)
}

/// Opens sled's database in `path`, which this process has locked already.
///
/// sled's own lock on its `db` file can still be held for a moment after the previous store of
/// this process on the same directory was dropped: sled finishes a last log write on a background
/// thread of its own. As the directory lock guarantees no other runner uses the directory, a
/// contended sled lock is retried for up to two seconds before it is reported.
/// Creates the data directory 0700 (its parents too, when missing), and narrows an existing one to
/// 0700: the data holds job secrets, so no other local user may even list it. The files sled
/// writes inside get the process's umask (the `runner` binary sets 077).
fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode != 0o700 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "narrowing the data directory to 0700"
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn open_sled(path: &Path) -> sled::Result<sled::Db> {
    const ATTEMPTS: u32 = 200;
    let mut attempt = 0;
    loop {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(io))
                if attempt < ATTEMPTS && io.to_string().contains("could not acquire lock") =>
            {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use runner_core::execution::{Execution, Status};
    use runner_core::feed::EventKind;
    use runner_core::machine::Command;
    use runner_core::store::prelude::*;
    use runner_core::testkit::fixtures::{alias, job};

    use super::*;

    /// A directory written before the live feed (format 1: no feed trees, executions without
    /// their feed fields) opens, is marked format 2, and its executions start their feed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_format_1_directory_opens_and_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let execution = Execution::new(&job, None, None, 2);
        store.insert_execution(&execution).await.unwrap();
        // Turn it into a format 1 directory.
        let trees = &store.inner.trees;
        let mut record: serde_json::Value = serde_json::from_slice(
            &trees
                .executions
                .get(keys::execution(execution.execution_id))
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        let fields = record.as_object_mut().unwrap();
        assert!(fields.remove("events").is_some() && fields.remove("callbacks").is_some());
        trees
            .executions
            .insert(
                keys::execution(execution.execution_id),
                serde_json::to_vec(&record).unwrap(),
            )
            .unwrap();
        trees
            .meta
            .insert(keys::FORMAT, &1u64.to_be_bytes())
            .unwrap();
        for tree in ["events", "outbox", "outbox_failed"] {
            assert!(store.inner._db.drop_tree(tree).unwrap());
        }
        store.inner._db.flush().unwrap();
        drop(store);

        let store = SledStore::open(dir.path()).unwrap();
        let format = store.inner.trees.meta.get(keys::FORMAT).unwrap();
        assert_eq!(count(format.as_deref()), FORMAT_VERSION);
        let acme = alias("ACME");
        let (id, job_id) = (execution.execution_id, job.id);
        assert!(
            store
                .list_events(&acme, job_id, id, 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let kill = Command::Kill { force_at: None };
        store.transition(id, &kill, 3).await.unwrap();
        let events = store.list_events(&acme, job_id, id, 0, 10).await.unwrap();
        let seen: Vec<_> = events
            .iter()
            .map(|e| (e.sequence, e.kind, e.status))
            .collect();
        assert_eq!(seen, [(1, EventKind::Status, Some(Status::Killed))]);
    }

    /// A directory written before retention (format 2: no `ended` tree) opens, gets its ended
    /// executions indexed, and they can be purged.
    #[tokio::test]
    async fn a_format_2_directory_gets_its_ended_executions_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let ended = Execution::new(&job, None, None, 2);
        store.insert_execution(&ended).await.unwrap();
        let kill = Command::Kill { force_at: None };
        store
            .transition(ended.execution_id, &kill, 3)
            .await
            .unwrap();
        let live = Execution::new(&job, None, None, 4);
        store.insert_execution(&live).await.unwrap();
        // Turn it into a format 2 directory.
        assert!(store.inner._db.drop_tree("ended").unwrap());
        store
            .inner
            .trees
            .meta
            .insert(keys::FORMAT, &2u64.to_be_bytes())
            .unwrap();
        store.inner._db.flush().unwrap();
        drop(store);

        let store = SledStore::open(dir.path()).unwrap();
        let format = store.inner.trees.meta.get(keys::FORMAT).unwrap();
        assert_eq!(count(format.as_deref()), FORMAT_VERSION);
        assert_eq!(store.inner.trees.ended.len(), 1, "the ended execution only");
        assert_eq!(store.purge_ended(i64::MAX, 10).await.unwrap(), 1);
        let acme = alias("ACME");
        let gone = store.get_execution(&acme, job.id, ended.execution_id).await;
        assert!(gone.unwrap().is_none());
        let kept = store.get_execution(&acme, job.id, live.execution_id).await;
        assert!(kept.unwrap().is_some());
    }

    #[test]
    fn a_later_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let later = FORMAT_VERSION + 1;
        store
            .inner
            .trees
            .meta
            .insert(keys::FORMAT, &later.to_be_bytes())
            .unwrap();
        store.inner._db.flush().unwrap();
        drop(store);
        match SledStore::open(dir.path()) {
            Err(SledStoreError::Format { found, .. }) => assert_eq!(found, later),
            other => panic!("a later format must be refused: {other:?}"),
        }
    }
}
