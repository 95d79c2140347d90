//! Where jobs and executions live: the store's roles, one trait each, and [`Store`], their sum.
//!
//! A store is not a bag of rows: every change of an execution's status goes through
//! [`ExecutionStore::transition`] or [`ClaimStore::claim`], which apply [`crate::machine::apply`]
//! inside the store's own atomic section (through [`crate::feed::transition`], which also records
//! the status event). So the state machine is the same on every backend, and the backend only
//! supplies atomicity, durability and indexes.
//!
//! Stores also keep each execution's live feed: the events [`crate::feed::transition`] and
//! [`crate::feed::append`] record, and the webhook outbox derived from them, written in the same
//! atomic section as the change they report.
//!
//! # Roles
//!
//! | trait | what it keeps or does | who asks for it |
//! |---|---|---|
//! | [`JobStore`] | jobs: insert, read, update, delete, list | the engine's API, the HTTP layer |
//! | [`ExecutionStore`] | executions and the transitions on them | the engine's API and workers |
//! | [`ClaimStore`] | claims of PENDING work, the deadline index | the engine's dispatcher and maintenance |
//! | [`FeedStore`] | the events of each execution | workers (append), the events endpoint (read) |
//! | [`OutboxStore`] | webhook deliveries waiting to go out | `runner-webhook` |
//! | [`RunLogStore`] | each attempt's run log (ansible's output), capped | workers (append), the log endpoint (read) |
//! | [`SignalSource`] | wake-ups ([`Signal`]) after changes | every loop that would otherwise only poll |
//! | [`ScheduleStore`] | service accounts, schedules, firing due ones | the engine's scheduler, the HTTP layer |
//! | [`KeyPairStore`] | each account's SSH key pairs (private keys included) | workers (a job naming `sshKeyPair`), the HTTP layer |
//! | [`InventoryStore`] | each account's inventory hosts (secrets included) | workers (a `useDynamicInventory` job), the HTTP layer |
//! | [`RetentionStore`] | deleting executions that ended long ago, whole | the engine's retention service |
//!
//! [`Store`] is the sum of all but [`ScheduleStore`] and is implemented for every type that has them, so a
//! backend implements the roles and a consumer that needs everything asks for `Store`. A consumer
//! that needs less asks for less: the webhook delivery service takes `OutboxStore + SignalSource`.
//!
//! A wrapper that hands every method to an inner store (an `Arc`, an enum of backends, a test's
//! temporary store) uses [`forward_store!`](crate::forward_store), which writes every method of
//! every role it names, so no wrapper can miss one and fall back to a default method.
//!
//! Methods are `async fn`s returning `Send` futures, so the engine can run them on a
//! multi-threaded runtime. Implementations must be safe to share between tasks (and, for a shared
//! database, between nodes). Every store must pass the conformance suite in
//! `runner_core::testkit` (feature `testkit`).
//!
//! Calling a role's methods on a concrete store needs the role in scope; [`prelude`] brings them
//! all.
//!
//! A store that retries while its backend is unreachable bounds the retries by the caller's
//! [`patience`] (the HTTP layer sets one second per request; the engine sets none).

mod claims;
mod error;
mod events;
mod executions;
mod forward;
mod inventory;
mod jobs;
mod key_pairs;
mod outbox;
pub mod patience;
mod retention;
mod run_logs;
mod schedules;
mod signals;

pub use claims::ClaimStore;
pub use error::StoreError;
pub use events::FeedStore;
pub use executions::{ExecutionStore, tally_live};
pub use inventory::InventoryStore;
pub use jobs::JobStore;
pub use key_pairs::KeyPairStore;
pub use outbox::OutboxStore;
pub use retention::RetentionStore;
pub use run_logs::{LogRead, RunLogStore};
pub use schedules::ScheduleStore;
pub use signals::{Signal, SignalSource, signal_after};

/// Everything a store keeps and does, for consumers that use it all (the engine, the HTTP
/// layer). Implemented for every type that implements each role.
pub trait Store:
    JobStore
    + ExecutionStore
    + ClaimStore
    + FeedStore
    + OutboxStore
    + RunLogStore
    + KeyPairStore
    + InventoryStore
    + RetentionStore
    + SignalSource
{
}

impl<T> Store for T where
    T: JobStore
        + ExecutionStore
        + ClaimStore
        + FeedStore
        + OutboxStore
        + RunLogStore
        + KeyPairStore
        + InventoryStore
        + RetentionStore
        + SignalSource
{
}

/// The role traits, for calling store methods on a concrete store:
/// `use runner_core::store::prelude::*;`.
pub mod prelude {
    pub use super::{
        ClaimStore, ExecutionStore, FeedStore, InventoryStore, JobStore, KeyPairStore, OutboxStore,
        RetentionStore, RunLogStore, ScheduleStore, SignalSource, Store,
    };
}

crate::forward_store!(impl[T] for std::sync::Arc<T> => T, |this| &**this;
    JobStore, ExecutionStore, ClaimStore, FeedStore, OutboxStore, RunLogStore, KeyPairStore,
    InventoryStore,
    RetentionStore, SignalSource, ScheduleStore);
