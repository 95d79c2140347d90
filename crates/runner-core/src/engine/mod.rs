//! The engine: composes a [`Store`], an [`Executor`], a [`Notifier`] and a [`Clock`] into a job
//! runner.
//!
//! [`Engine`] is a cheap handle (clone it freely). It offers the operations of the Job Service
//! (create, start, stop, kill, restart, ...) and, once [`Engine::start`]ed, runs executions:
//!
//! - the **dispatcher** (`engine/dispatch.rs`) claims PENDING executions while the worker pool has room
//!   (the `concurrency` limit) and wakes on the store's signals, with polling as a fallback; while
//!   runs are short it keeps a few claimed executions waiting, so that a place that frees starts
//!   the next one without a round trip to the store (`engine/prefetch.rs`);
//! - a **worker** (`engine/worker.rs`) per claimed execution runs the executor, renews the lease, turns
//!   stop and kill requests into cancellations, and records the outcome;
//! - the **maintenance** loop (`engine/dispatch.rs`) applies timed commands whose deadline passed
//!   (executionTtl, stop escalation, kill deadline, lapsed leases), whichever node set them.
//!
//! Deadlines live in the store, not in this process, so they survive a restart of any node.

mod api;
mod dispatch;
mod prefetch;
mod schedules;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::executor::Executor;
use crate::ids::{ExecutionId, NodeId};
use crate::notifier::{NoopNotifier, Notifier};
use crate::store::{Store, StoreError};
use crate::time::{Clock, SystemClock};
use crate::validation::ValidationErrors;

pub use api::StartRequest;

/// Why an engine operation failed; the HTTP layer maps each variant to one status code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The request is invalid (400).
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// No such job or execution under that account (404).
    #[error("not found")]
    NotFound,
    /// The request conflicts with the current state (409); the message names the status.
    #[error("{0}")]
    Conflict(String),
    /// The store failed (503).
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => EngineError::NotFound,
            StoreError::Refused(refused) => EngineError::Conflict(refused.to_string()),
            StoreError::Conflict(message) => EngineError::Conflict(message),
            other => EngineError::Store(other),
        }
    }
}

/// How an engine runs. Every field has a default that suits a server.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The name this node claims under; unique per node. Default: a random one.
    pub node_id: NodeId,
    /// Executions run at once on this node. Default: 4.
    pub concurrency: usize,
    /// How long a claim holds without renewal; heartbeats renew it every third of it. Default 30 s.
    pub lease: Duration,
    /// How often to look for work and deadlines when no signal came. Default 1 s.
    pub poll_interval: Duration,
    /// How many executions to claim in one store call at most. Default 64.
    pub claim_batch: usize,
    /// Claimed executions that may wait for a place in the pool, at most, on top of the running
    /// ones: a place that frees starts the next one without waiting for a claim. Only while runs
    /// end within [`EngineConfig::prefetch_wait`]; 0 turns prefetching off. Default 16. If the
    /// node crashes, its waiting executions end in FAILURE when their lease lapses, as running
    /// ones do.
    pub prefetch: usize,
    /// How long a prefetched execution may wait for a place (at most a third of the lease) before
    /// the node hands it back to PENDING for any node; also the run length below which the node
    /// prefetches at all. Default 1 s.
    pub prefetch_wait: Duration,
    /// On shutdown, how long running executions may go on before they are handed back. Default 30 s.
    pub shutdown_grace: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            node_id: format!("node-{}", uuid::Uuid::new_v4().simple()),
            concurrency: 4,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            claim_batch: 64,
            prefetch: 16,
            prefetch_wait: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A job runner. See the [module docs](self).
pub struct Engine<S, E, N = NoopNotifier, C = SystemClock> {
    inner: Arc<Inner<S, E, N, C>>,
}

impl<S, E, N, C> Clone for Engine<S, E, N, C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<S, E, N, C> {
    store: S,
    executor: E,
    notifier: N,
    clock: C,
    config: EngineConfig,
    /// Free places in the worker pool.
    slots: Arc<Semaphore>,
    /// Rung when a worker ends, so a dispatcher waiting for room looks again.
    slot_freed: Notify,
    /// The executions this node runs, and the bell that makes each worker re-read its execution.
    running: Mutex<HashMap<ExecutionId, Arc<Notify>>>,
    /// Claimed executions waiting for a place.
    prefetch: prefetch::Prefetch,
    /// Where the engine is in its life; workers and loops watch it.
    phase: watch::Sender<Phase>,
    /// Worker tasks alive, including those still recording an outcome after their executor ended,
    /// and prefetched executions not yet started or handed back.
    live_workers: watch::Sender<usize>,
}

/// The life of a started engine, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Claiming and running.
    Running,
    /// Shutting down: claim nothing more; running executions may finish.
    Draining,
    /// The shutdown grace passed: cancel what still runs and hand it back to PENDING.
    HandingBack,
    /// Simulated crash: stop at once and write nothing more to the store.
    Abandoned,
}

/// Builds an [`Engine`]; [`Engine::builder`] starts one.
pub struct EngineBuilder<S, E, N, C> {
    store: S,
    executor: E,
    notifier: N,
    clock: C,
    config: EngineConfig,
}

impl Engine<(), (), NoopNotifier, SystemClock> {
    /// A builder with the system clock, no notifier and the default [`EngineConfig`].
    pub fn builder() -> EngineBuilder<(), (), NoopNotifier, SystemClock> {
        EngineBuilder {
            store: (),
            executor: (),
            notifier: NoopNotifier,
            clock: SystemClock,
            config: EngineConfig::default(),
        }
    }
}

impl<S, E, N, C> EngineBuilder<S, E, N, C> {
    /// The store.
    pub fn store<S2: Store>(self, store: S2) -> EngineBuilder<S2, E, N, C> {
        EngineBuilder {
            store,
            executor: self.executor,
            notifier: self.notifier,
            clock: self.clock,
            config: self.config,
        }
    }

    /// The executor.
    pub fn executor<E2: Executor>(self, executor: E2) -> EngineBuilder<S, E2, N, C> {
        EngineBuilder {
            store: self.store,
            executor,
            notifier: self.notifier,
            clock: self.clock,
            config: self.config,
        }
    }

    /// The notifier.
    pub fn notifier<N2: Notifier>(self, notifier: N2) -> EngineBuilder<S, E, N2, C> {
        EngineBuilder {
            store: self.store,
            executor: self.executor,
            notifier,
            clock: self.clock,
            config: self.config,
        }
    }

    /// The clock.
    pub fn clock<C2: Clock>(self, clock: C2) -> EngineBuilder<S, E, N, C2> {
        EngineBuilder {
            store: self.store,
            executor: self.executor,
            notifier: self.notifier,
            clock,
            config: self.config,
        }
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The node's name (see [`EngineConfig::node_id`]).
    pub fn node_id(mut self, node_id: impl Into<NodeId>) -> Self {
        self.config.node_id = node_id.into();
        self
    }

    /// Executions run at once on this node (at least 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.config.concurrency = concurrency.max(1);
        self
    }

    /// The lease of a claim (see [`EngineConfig::lease`]).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// The polling fallback (see [`EngineConfig::poll_interval`]).
    pub fn poll_interval(mut self, poll_interval: Duration) -> Self {
        self.config.poll_interval = poll_interval;
        self
    }

    /// Executions claimed ahead of free places, at most (see [`EngineConfig::prefetch`]).
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.config.prefetch = prefetch;
        self
    }

    /// How long a prefetched execution may wait (see [`EngineConfig::prefetch_wait`]).
    pub fn prefetch_wait(mut self, wait: Duration) -> Self {
        self.config.prefetch_wait = wait;
        self
    }

    /// The shutdown grace (see [`EngineConfig::shutdown_grace`]).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> EngineBuilder<S, E, N, C> {
    /// The engine. Call [`Engine::start`] to run executions.
    pub fn build(self) -> Engine<S, E, N, C> {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        Engine {
            inner: Arc::new(Inner {
                store: self.store,
                executor: self.executor,
                notifier: self.notifier,
                clock: self.clock,
                config: self.config,
                slots,
                slot_freed: Notify::new(),
                running: Mutex::new(HashMap::new()),
                prefetch: prefetch::Prefetch::default(),
                phase: watch::channel(Phase::Running).0,
                live_workers: watch::channel(0).0,
            }),
        }
    }
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> Engine<S, E, N, C> {
    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The executor.
    pub fn executor(&self) -> &E {
        &self.inner.executor
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// How many executions this node runs right now.
    pub fn running_count(&self) -> usize {
        self.inner
            .running
            .lock()
            .expect("running map poisoned")
            .len()
    }

    /// Starts the dispatcher and the maintenance loop on the current tokio runtime.
    pub fn start(self) -> RunningEngine<S, E, N, C> {
        let mut tasks = JoinSet::new();
        tasks.spawn(dispatch::dispatcher(self.clone()));
        tasks.spawn(dispatch::maintenance(self.clone()));
        RunningEngine {
            engine: self,
            tasks,
        }
    }
}

/// A started engine. Dropping it leaves the loops running; call [`RunningEngine::shutdown`].
pub struct RunningEngine<S, E, N, C> {
    engine: Engine<S, E, N, C>,
    tasks: JoinSet<()>,
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> RunningEngine<S, E, N, C> {
    /// The engine handle.
    pub fn engine(&self) -> &Engine<S, E, N, C> {
        &self.engine
    }

    /// Stops claiming, hands back the prefetched executions that have not started, lets running
    /// executions finish for up to the shutdown grace (measured on the engine's clock), then hands back the ones still running (they return to PENDING for
    /// another node), and returns once every worker has ended and recorded its outcome.
    pub async fn shutdown(mut self) {
        let inner = &self.engine.inner;
        inner.phase.send_replace(Phase::Draining);
        let all_slots = u32::try_from(inner.config.concurrency).unwrap_or(u32::MAX);
        let grace_end = crate::time::after(inner.clock.now(), inner.config.shutdown_grace);
        tokio::select! {
            _ = inner.slots.acquire_many(all_slots) => {}
            () = inner.clock.sleep_until(grace_end) => {
                inner.phase.send_replace(Phase::HandingBack);
                let _ = inner.slots.acquire_many(all_slots).await;
            }
        }
        // Executors have ended; wait for their outcomes (or hand-backs) to be recorded.
        let _ = inner
            .live_workers
            .subscribe()
            .wait_for(|live| *live == 0)
            .await;
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Ends the loops and abandons running executions without any cleanup, as a crashed process
    /// would. Their leases lapse and another node rescues them. For failure tests.
    pub fn abort(mut self) {
        self.engine.inner.phase.send_replace(Phase::Abandoned);
        self.tasks.abort_all();
    }
}
