//! Prefetch: executions claimed ahead of free places in the worker pool, so that a place that
//! frees starts the next execution at once, instead of after a claim's round trip to the store
//! (a durable commit: milliseconds on a database, longer than a short run).
//!
//! Every rule of it lives here:
//!
//! - At most [`EngineConfig::prefetch`](super::EngineConfig::prefetch) claimed executions wait
//!   on a node (on top of the ones running).
//! - A node prefetches only while its runs are short: the last run to end held its place for less
//!   than [`EngineConfig::prefetch_wait`](super::EngineConfig::prefetch_wait). A node busy with
//!   long runs (a real playbook) claims only for free places, so it does not sit on work that an
//!   idle node could run; a node that has seen no run end yet does not prefetch either.
//! - A prefetched execution waits at most `prefetch_wait` (never more than a third of the lease,
//!   so its claim's lease has two thirds left when it starts, and its worker's first heartbeat
//!   comes well before the lease ends). Then the node hands it back (release: PENDING again, for
//!   any node) and stops prefetching until a short run turns it back on.
//! - A stop or kill of a waiting execution is passed to its worker as soon as it starts.
//! - On shutdown the waiting executions are handed back at once; after a simulated crash
//!   ([`RunningEngine::abort`](super::RunningEngine::abort)) their leases lapse, as the running
//!   ones' do.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::OwnedSemaphorePermit;

use super::{Engine, Phase, worker};
use crate::execution::Execution;
use crate::executor::Executor;
use crate::ids::ExecutionId;
use crate::machine::Command;
use crate::notifier::Notifier;
use crate::store::Store;
use crate::time::{Clock, Timestamp, after};

/// A place in the worker pool, and since when its current worker holds it.
pub(super) struct Slot {
    permit: OwnedSemaphorePermit,
    since: Timestamp,
}

/// A claimed execution waiting for a place.
struct Waiting {
    execution: Execution,
    claimed_at: Timestamp,
    /// A stop, kill or deadline signal came for it while it waited.
    signalled: bool,
}

/// The node's prefetched executions.
#[derive(Default)]
pub(super) struct Prefetch {
    queue: std::sync::Mutex<VecDeque<Waiting>>,
    /// True while runs on this node are short enough for prefetching to pay.
    on: AtomicBool,
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> Engine<S, E, N, C> {
    /// How long a prefetched execution may wait for a place.
    fn prefetch_wait(&self) -> std::time::Duration {
        let config = &self.inner.config;
        config.prefetch_wait.min(config.lease / 3)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiting>> {
        self.inner
            .prefetch
            .queue
            .lock()
            .expect("prefetch queue poisoned")
    }

    /// How many executions the dispatcher should claim now: one per free place, plus the
    /// prefetch while it is on, less those already waiting.
    pub(super) fn wanted(&self) -> usize {
        let inner = &self.inner;
        let ahead = if inner.prefetch.on.load(Ordering::Relaxed) {
            inner.config.prefetch
        } else {
            0
        };
        (inner.slots.available_permits() + ahead).saturating_sub(self.waiting().len())
    }

    /// Queues freshly claimed executions and starts as many as there are free places.
    pub(super) fn enqueue(&self, claimed: Vec<Execution>, now: Timestamp) {
        if claimed.is_empty() {
            return;
        }
        // A waiting execution counts as a live worker, so that shutdown waits for its hand-back.
        self.inner
            .live_workers
            .send_modify(|live| *live += claimed.len());
        self.waiting()
            .extend(claimed.into_iter().map(|execution| Waiting {
                execution,
                claimed_at: now,
                signalled: false,
            }));
        self.start_waiting();
    }

    /// Starts waiting executions in the free places of the pool.
    fn start_waiting(&self) {
        let mut waiting = self.waiting();
        while !waiting.is_empty() {
            let Ok(permit) = Arc::clone(&self.inner.slots).try_acquire_owned() else {
                return;
            };
            let next = waiting.pop_front().expect("not empty");
            self.start_waiting_one(next, permit);
        }
    }

    /// Spawns the worker of `next` (called with the queue locked, so that a signal for it is
    /// either marked on it or finds its worker).
    fn start_waiting_one(&self, next: Waiting, permit: OwnedSemaphorePermit) {
        let id = next.execution.execution_id;
        let slot = Slot {
            permit,
            since: self.inner.clock.now(),
        };
        worker::spawn(self.clone(), next.execution, slot);
        // The worker counts itself now.
        self.inner.live_workers.send_modify(|live| *live -= 1);
        if next.signalled {
            self.ring_worker(id);
        }
    }

    /// A worker's executor ended: its place goes to the oldest waiting execution, or back to the
    /// pool. The run's length decides whether prefetching is worth it.
    pub(super) fn give_back_slot(&self, slot: Slot) {
        let inner = &self.inner;
        let now = inner.clock.now();
        let short = now.saturating_sub(slot.since) < after(0, self.prefetch_wait());
        inner.prefetch.on.store(short, Ordering::Relaxed);
        if *inner.phase.borrow() == Phase::Running {
            let mut waiting = self.waiting();
            if let Some(next) = waiting.pop_front() {
                self.start_waiting_one(next, slot.permit);
                drop(waiting);
                // The dispatcher refills the prefetch.
                inner.slot_freed.notify_one();
                return;
            }
        }
        drop(slot);
        inner.slot_freed.notify_one();
    }

    /// When the oldest waiting execution must be handed back.
    pub(super) fn next_prefetch_expiry(&self) -> Option<Timestamp> {
        let wait = self.prefetch_wait();
        self.waiting()
            .front()
            .map(|first| after(first.claimed_at, wait))
    }

    /// Takes the waiting executions that waited too long (all of them with `all`), and turns
    /// prefetching off when any did.
    pub(super) fn take_expired(&self, now: Timestamp, all: bool) -> Vec<Execution> {
        let wait = self.prefetch_wait();
        let mut waiting = self.waiting();
        let mut expired = Vec::new();
        while waiting
            .front()
            .is_some_and(|first| all || after(first.claimed_at, wait) <= now)
        {
            expired.extend(waiting.pop_front().map(|w| w.execution));
        }
        if !expired.is_empty() && !all {
            self.inner.prefetch.on.store(false, Ordering::Relaxed);
        }
        expired
    }

    /// Hands executions claimed by this node back to PENDING, for any node.
    pub(super) async fn hand_back(&self, executions: Vec<Execution>) {
        let inner = &self.inner;
        for execution in executions {
            let command = Command::Release {
                attempt: execution.attempt,
            };
            let now = inner.clock.now();
            match inner
                .store
                .transition(execution.execution_id, &command, now)
                .await
            {
                Ok(released) => self.notify_status(&released).await,
                // A stop or kill may have ended it meanwhile; otherwise its lease lapses.
                Err(error) => tracing::warn!(
                    execution = %execution.execution_id,
                    %error,
                    "could not hand back a prefetched execution"
                ),
            }
            inner.live_workers.send_modify(|live| *live -= 1);
        }
    }

    /// Makes the local worker of `id` re-read its execution; if `id` is still waiting for a
    /// place, its worker will as soon as it starts.
    pub(super) fn ring(&self, id: ExecutionId) {
        // Queue, then the running map: the order `start_waiting_one` holds them in.
        let mut waiting = self.waiting();
        if let Some(entry) = waiting
            .iter_mut()
            .find(|entry| entry.execution.execution_id == id)
        {
            entry.signalled = true;
            return;
        }
        self.ring_worker(id);
    }

    fn ring_worker(&self, id: ExecutionId) {
        let running = self.inner.running.lock().expect("running map poisoned");
        if let Some(bell) = running.get(&id) {
            bell.notify_one();
        }
    }
}
