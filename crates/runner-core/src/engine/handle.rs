//! The [`Engine`] handle, what it holds, and its builder.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::config::EngineConfig;
use super::health::StoreHealth;
use super::places::Places;
use super::signals::{EngineProbe, Signals};
use crate::executor::Executor;
use crate::ids::NodeId;
use crate::notifier::{NoopNotifier, Notifier};
use crate::store::Store;
use crate::time::{Clock, SystemClock};

/// A job runner. See the [module docs](crate::engine).
pub struct Engine<S, E, N = NoopNotifier, C = SystemClock> {
    pub(super) inner: Arc<Inner<S, E, N, C>>,
}

impl<S, E, N, C> std::fmt::Debug for Engine<S, E, N, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl<S, E, N, C> Clone for Engine<S, E, N, C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// What every clone of an engine shares.
pub(super) struct Inner<S, E, N, C> {
    pub(super) store: S,
    pub(super) executor: E,
    pub(super) notifier: N,
    pub(super) clock: C,
    pub(super) config: EngineConfig,
    /// The pool, the running executions and the prefetch.
    pub(super) places: Places,
    /// Where the engine is in its life; workers and loops watch it.
    pub(super) phase: watch::Sender<Phase>,
    /// Test signals; off unless [`EngineConfig::test_signals`].
    pub(super) signals: Signals,
    /// What this node saw of the store's reachability; rescues follow it.
    pub(super) health: StoreHealth,
}

/// The life of a started engine, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Phase {
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

impl<S, E, N, C> std::fmt::Debug for EngineBuilder<S, E, N, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
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

    /// Deletes executions that ended longer ago than `retain`, with their feeds and logs (see
    /// [`EngineConfig::retain`]).
    pub fn retain(mut self, retain: Duration) -> Self {
        self.config.retain = Some(retain);
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

    /// The longest text an event keeps per field (see [`EngineConfig::event_field_bytes`]).
    pub fn event_field_bytes(mut self, bytes: usize) -> Self {
        self.config.event_field_bytes = bytes;
        self
    }

    /// Turns test signals on, for [`Engine::probe`] (see [`EngineConfig::test_signals`]).
    pub fn test_signals(mut self) -> Self {
        self.config.test_signals = true;
        self
    }
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> EngineBuilder<S, E, N, C> {
    /// The engine. Call [`Engine::start`] to run executions.
    pub fn build(self) -> Engine<S, E, N, C> {
        Engine {
            inner: Arc::new(Inner {
                places: Places::new(&self.config),
                signals: Signals::new(self.config.test_signals),
                health: StoreHealth::new(),
                store: self.store,
                executor: self.executor,
                notifier: self.notifier,
                clock: self.clock,
                config: self.config,
                phase: watch::channel(Phase::Running).0,
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
        self.inner.places.running_count()
    }

    /// A subscription to the engine's test signals, from now on: what its loops do, for a test
    /// to await (see [`EngineSignal`](crate::engine::EngineSignal)). Make it before
    /// [`Engine::start`] to see every signal.
    ///
    /// # Panics
    ///
    /// When the engine was built without test signals ([`EngineConfig::test_signals`],
    /// [`EngineBuilder::test_signals`]).
    pub fn probe(&self) -> EngineProbe {
        self.inner
            .signals
            .probe()
            .expect("the engine was built without test signals (EngineBuilder::test_signals)")
    }
}
