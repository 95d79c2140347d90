//! Starting an engine's loops, and ending them: [`RunningEngine`], graceful shutdown and the
//! simulated crash.

use tokio::task::JoinSet;

use super::handle::{Engine, Phase};
use super::signals::EngineSignal;
use super::{dispatch, retention};
use crate::executor::Executor;
use crate::notifier::Notifier;
use crate::store::Store;
use crate::time::{Clock, after};

impl<S: Store, E: Executor, N: Notifier, C: Clock> Engine<S, E, N, C> {
    /// Starts the dispatcher, the maintenance loop and (with [`EngineConfig::retain`](super::EngineConfig::retain)
    /// set) the retention service on the current tokio runtime.
    pub fn start(self) -> RunningEngine<S, E, N, C> {
        let mut tasks = JoinSet::new();
        tasks.spawn(dispatch::dispatcher(self.clone()));
        tasks.spawn(dispatch::maintenance(self.clone()));
        if let Some(retain) = self.inner.config.retain {
            tasks.spawn(retention::retention(self.clone(), retain));
        }
        RunningEngine {
            engine: self,
            tasks,
        }
    }
}

/// A started engine. Dropping it leaves the loops running; call [`RunningEngine::shutdown`].
pub struct RunningEngine<S, E, N, C> {
    pub(super) engine: Engine<S, E, N, C>,
    pub(super) tasks: JoinSet<()>,
}

impl<S, E, N, C> std::fmt::Debug for RunningEngine<S, E, N, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEngine")
            .field("engine", &self.engine)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> RunningEngine<S, E, N, C> {
    /// The engine handle.
    pub fn engine(&self) -> &Engine<S, E, N, C> {
        &self.engine
    }

    /// Stops claiming, hands back the prefetched executions that have not started, lets running
    /// executions finish for up to the shutdown grace (measured on the engine's clock), then
    /// hands back the ones still running (they return to PENDING for another node), and returns
    /// once every worker has ended and recorded its outcome.
    pub async fn shutdown(mut self) {
        let inner = &self.engine.inner;
        inner.phase.send_replace(Phase::Draining);
        let grace_end = after(inner.clock.now(), inner.config.shutdown_grace);
        inner
            .signals
            .send(EngineSignal::ShutdownGrace { until: grace_end });
        tokio::select! {
            () = inner.places.all_free() => {}
            () = inner.clock.sleep_until(grace_end) => {
                inner.phase.send_replace(Phase::HandingBack);
                inner.places.all_free().await;
            }
        }
        // Executors have ended; wait for their outcomes (or hand-backs) to be recorded.
        inner.places.all_ended().await;
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
