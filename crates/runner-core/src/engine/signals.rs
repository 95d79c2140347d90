//! Test signals: what the engine's loops did, announced so that a test can wait for it instead
//! of polling the store or yielding in a loop, in the manner of the test signals of River's
//! maintenance services.
//!
//! They are off unless [`EngineConfig::test_signals`](crate::engine::EngineConfig::test_signals)
//! is set. Off, each place that would send one costs a branch on an `Option`, and nothing is
//! allocated. On, [`Engine::probe`](crate::engine::Engine::probe) subscribes to them: a
//! broadcast with room for 4,096 signals a probe has not read yet.

use tokio::sync::broadcast;

use crate::ids::ExecutionId;
use crate::time::Timestamp;

/// How many signals a probe may fall behind before it misses some (and then fails).
const CAPACITY: usize = 4096;

/// Something one of the engine's loops did; a test awaits these through an [`EngineProbe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineSignal {
    /// The dispatcher claimed the execution: it is INITIALIZING under this node's lease, and
    /// goes to a free place or waits for one.
    Claimed(ExecutionId),
    /// The claimed execution found no free place and waits in the node's prefetch.
    Prefetched(ExecutionId),
    /// A worker began running the execution; its executor is called next.
    Started(ExecutionId),
    /// The execution's worker ended: its outcome is recorded, or it was handed back, or the
    /// engine was aborted. Its place is free.
    Finished(ExecutionId),
    /// The node handed the execution back to PENDING, for any node: a prefetched one that waited
    /// too long or that shutdown found waiting, or a running one at the end of the shutdown grace.
    HandedBack(ExecutionId),
    /// The maintenance loop applied the execution's due timed command (executionTtl, stop
    /// escalation, kill deadline, lapsed lease).
    DeadlineApplied(ExecutionId),
    /// A store call of this node found the store unavailable (the first of an outage).
    StoreLost,
    /// A store call of this node answered again after [`EngineSignal::StoreLost`]; from now on,
    /// leases that lapsed during the outage get a whole lease to be renewed before a rescue.
    StoreBack,
    /// The scheduler created the execution for a due schedule.
    ScheduleFired(ExecutionId),
    /// The retention service ended a pass: it deleted `purged` executions that ended before
    /// `before` (zero included), and sleeps until the next pass.
    RetentionPass {
        /// The cut of this pass, on the engine's clock: now minus the retention.
        before: Timestamp,
        /// How many executions the pass deleted.
        purged: u64,
    },
    /// Shutdown stopped claiming and lets running executions finish until `until`.
    ShutdownGrace {
        /// When the grace ends, on the engine's clock. It is fixed once this is sent: a test may
        /// move a mock clock to it from then on, and the grace ends.
        until: Timestamp,
    },
}

/// Where an engine sends its signals: nowhere unless test signals are on.
#[derive(Debug)]
pub(super) struct Signals(Option<broadcast::Sender<EngineSignal>>);

impl Signals {
    pub(super) fn new(on: bool) -> Self {
        Self(on.then(|| broadcast::channel(CAPACITY).0))
    }

    /// Whether anything is sent; lets a caller skip the work of making a signal.
    pub(super) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    pub(super) fn send(&self, signal: EngineSignal) {
        if let Some(sender) = &self.0 {
            // No probe listening is no error: a test may subscribe late, or not at all.
            let _ = sender.send(signal);
        }
    }

    pub(super) fn probe(&self) -> Option<EngineProbe> {
        self.0.as_ref().map(|sender| EngineProbe {
            receiver: sender.subscribe(),
        })
    }
}

/// A subscription to an engine's [`EngineSignal`]s, from
/// [`Engine::probe`](crate::engine::Engine::probe). It sees the signals sent after it was made,
/// in the order each loop sent them.
///
/// The waits are not bounded in time: wrap them in a timeout so that a broken engine fails a
/// test instead of hanging it.
#[derive(Debug)]
pub struct EngineProbe {
    receiver: broadcast::Receiver<EngineSignal>,
}

impl EngineProbe {
    /// The next signal.
    ///
    /// # Panics
    ///
    /// When the probe fell more than 4,096 signals behind (it missed some, so a wait could
    /// never end), or the engine is gone.
    pub async fn next(&mut self) -> EngineSignal {
        match self.receiver.recv().await {
            Ok(signal) => signal,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                panic!("the engine probe fell behind and missed {missed} signals")
            }
            Err(broadcast::error::RecvError::Closed) => panic!("the engine is gone"),
        }
    }

    /// Waits for `signal`, passing over the others.
    ///
    /// # Panics
    ///
    /// As [`EngineProbe::next`].
    pub async fn wait_for(&mut self, signal: EngineSignal) {
        self.wait_for_all([signal]).await;
    }

    /// Waits until each of `signals` came, in any order, passing over the others.
    ///
    /// # Panics
    ///
    /// As [`EngineProbe::next`].
    pub async fn wait_for_all(&mut self, signals: impl IntoIterator<Item = EngineSignal>) {
        let mut missing: Vec<EngineSignal> = signals.into_iter().collect();
        while !missing.is_empty() {
            let seen = self.next().await;
            if let Some(index) = missing.iter().position(|wanted| *wanted == seen) {
                missing.swap_remove(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ExecutionId {
        ExecutionId(uuid::Uuid::new_v4())
    }

    #[tokio::test]
    async fn off_signals_have_no_probe_and_send_nothing() {
        let signals = Signals::new(false);
        assert!(!signals.is_on());
        assert!(signals.probe().is_none());
        signals.send(EngineSignal::Started(id()));
    }

    #[tokio::test]
    async fn a_probe_sees_signals_sent_after_it_was_made_in_order() {
        let signals = Signals::new(true);
        let (early, first, second) = (id(), id(), id());
        signals.send(EngineSignal::Claimed(early));
        let mut probe = signals.probe().expect("on");
        signals.send(EngineSignal::Claimed(first));
        signals.send(EngineSignal::Started(second));
        signals.send(EngineSignal::Started(first));
        assert_eq!(probe.next().await, EngineSignal::Claimed(first));
        probe
            .wait_for_all([EngineSignal::Started(first), EngineSignal::Started(second)])
            .await;
        signals.send(EngineSignal::Finished(early));
        assert_eq!(probe.next().await, EngineSignal::Finished(early));
    }

    #[tokio::test]
    #[should_panic(expected = "missed")]
    async fn a_probe_that_fell_behind_fails_instead_of_waiting_forever() {
        let signals = Signals::new(true);
        let mut probe = signals.probe().expect("on");
        for _ in 0..=CAPACITY {
            signals.send(EngineSignal::Started(id()));
        }
        probe.next().await;
    }
}
