//! The engine: composes a [`Store`](crate::store::Store), an
//! [`Executor`](crate::executor::Executor), a [`Notifier`](crate::notifier::Notifier) and a
//! [`Clock`](crate::time::Clock) into a job runner.
//!
//! [`Engine`] is a cheap handle (clone it freely). It offers the operations of the Job Service
//! (create, start, stop, kill, restart, ...) and, once [`Engine::start`]ed, runs executions:
//!
//! - the **dispatcher** (`engine/dispatch.rs`) claims PENDING executions while the worker pool has room
//!   (the `concurrency` limit) and wakes on the store's signals, with polling as a fallback; while
//!   runs are short it keeps a few claimed executions waiting, so that a place that frees starts
//!   the next one without a round trip to the store (the rules: `engine/prefetch.rs`);
//! - a **worker** (`engine/worker.rs`) per claimed execution runs the executor, renews the lease, turns
//!   stop and kill requests into cancellations, and records the outcome;
//! - the **maintenance** loop (`engine/dispatch.rs`) applies timed commands whose deadline passed
//!   (executionTtl, stop escalation, kill deadline, lapsed leases), whichever node set them;
//! - the **retention** service (`engine/retention.rs`), when [`EngineConfig::retain`] is set,
//!   deletes executions that ended longer ago, in bounded batches.
//!
//! One type owns the node's places (`engine/places.rs`): the worker pool, the executions with a
//! worker, the prefetch queue and the count of live workers. A worker holds its places through a
//! guard whose drop gives them back; a pool place that frees goes straight to the oldest waiting
//! execution.
//!
//! Deadlines live in the store, not in this process, so they survive a restart of any node.
//!
//! # Test signals
//!
//! A test can wait for what the loops do instead of polling the store or yielding in a loop, in
//! the manner of the test signals of River's maintenance services: build the engine with
//! [`EngineBuilder::test_signals`] and take an [`EngineProbe`] with [`Engine::probe`] before
//! starting it. The probe receives an [`EngineSignal`] when the dispatcher claims an execution
//! (`Claimed`) or leaves it waiting for a place (`Prefetched`), when a worker starts (`Started`)
//! and ends (`Finished`), when the node hands an execution back (`HandedBack`), when the
//! maintenance loop applies a deadline (`DeadlineApplied`), when the scheduler fires
//! (`ScheduleFired`), when the retention service ends a pass (`RetentionPass`) and when
//! shutdown has fixed the end of its grace (`ShutdownGrace`).
//!
//! ```
//! # use std::sync::Arc;
//! # use runner_core::engine::{Engine, EngineSignal, StartRequest};
//! # use runner_core::testkit::{Script, ScriptedExecutor, fixtures};
//! # async fn example<S: runner_core::store::Store>(store: S) {
//! let engine = Engine::builder()
//!     .store(store)
//!     .executor(ScriptedExecutor::new(Script::Succeed))
//!     .test_signals()
//!     .build();
//! let mut probe = engine.probe();
//! let running = engine.clone().start();
//! let acme = fixtures::alias("ACME");
//! let job = engine.create_job(&acme, fixtures::inline_spec(&["a"])).await.unwrap();
//! let execution = engine.start_job(&acme, job.id, StartRequest::default()).await.unwrap();
//! probe.wait_for(EngineSignal::Finished(execution.execution_id)).await;
//! running.shutdown().await;
//! # }
//! ```
//!
//! Off (the default), every place that would send a signal costs one branch on an `Option`, and
//! nothing is allocated: an engine running 100,000 executions a second does not notice them.
//!
//! # Modules
//!
//! Each module uses only the modules listed below it, so the graph has no circle; this file only
//! declares them and re-exports the public types. An arrow reads "uses" (by `use`, or by calling
//! methods the other module defines on a shared type, such as `Engine::notify_status`):
//!
//! ```text
//! schedules    ──► api, running, worker, handle, error, signals
//! distribution ──► api, key_pairs, handle, error
//! api          ──► key_pairs, worker, handle, error
//! running      ──► dispatch, retention, handle, places, signals
//! retention    ──► handle, signals
//! dispatch     ──► worker, handle, places, signals
//! worker       ──► inventory, key_pairs, handle, places, signals
//! inventory    ──► key_pairs, handle, error
//! key_pairs    ──► handle, error
//! handle       ──► places, config, signals
//! places       ──► prefetch, config, signals
//! prefetch     ──► config
//! config, error, signals, health: nothing of the engine
//! ```
//!
//! - `config`: [`EngineConfig`]; `error`: [`EngineError`]; `signals`: [`EngineSignal`],
//!   [`EngineProbe`].
//! - `prefetch`: the prefetch rules; `places`: the places that follow them, and the guard that
//!   gives a place back. The places start workers through a trait (`Launcher`) that `worker`
//!   implements, so they need nothing from it.
//! - `health`: what the node saw of the store's reachability, and the rule it sets for rescuing
//!   lapsed leases (a store outage is not a dead node).
//! - `handle`: [`Engine`], what its clones share, and [`EngineBuilder`].
//! - `worker`: starts and runs the workers, and sends the status notifications of every part of
//!   the engine.
//! - `dispatch`: the dispatcher (with the hand-back of prefetched executions) and the
//!   maintenance loop; `retention`: the retention service; `running`: [`Engine::start`],
//!   [`RunningEngine`], shutdown.
//! - `api`: the Job Service operations; `schedules`: the Job Schedule Service operations and the
//!   scheduler; `key_pairs` and `inventory`: the key-pair and inventory operations, and what a
//!   run resolves from them (key pairs into keys, the account's hosts into the run's);
//!   `distribution`: a key pair's public key installed on hosts by a job of its own.

mod api;
mod config;
mod dispatch;
mod distribution;
mod error;
mod handle;
mod health;
mod inventory;
mod key_pairs;
mod places;
mod prefetch;
mod retention;
mod running;
mod schedules;
mod signals;
mod worker;

pub use api::{RestartRequest, StartRequest};
pub use config::{DEFAULT_EVENT_FIELD_BYTES, DEFAULT_FEED_FLUSH_WINDOW, EngineConfig};
pub use distribution::{DEFAULT_AUTHORIZED_KEYS_FILE, DistributeRequest};
pub use error::EngineError;
pub use handle::{Engine, EngineBuilder};
pub use running::RunningEngine;
pub use signals::{EngineProbe, EngineSignal};
