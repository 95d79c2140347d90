//! The places of a node, owned by one type, [`Places`]: the worker pool (the concurrency limit),
//! the executions with a worker, the claimed executions waiting for a place (the prefetch, by
//! the rules of [`Prefetch`]), and the count of live workers that shutdown waits for.
//!
//! A worker holds its places through a [`Place`] guard; dropping the guard gives back what it
//! still holds, on every path out of a worker. A freed pool place goes straight to the oldest
//! waiting execution. Starting that execution's worker is the engine's business: this module
//! asks for it through [`Launcher`], so that it needs nothing from the worker module.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::futures::Notified;
use tokio::sync::{Notify, Semaphore, watch};

use super::config::EngineConfig;
use super::prefetch::Prefetch;
use super::signals::{EngineSignal, Signals};
use crate::execution::Execution;
use crate::ids::ExecutionId;
use crate::time::Timestamp;

/// What the places need from the engine they belong to. The worker module implements it for the
/// engine.
pub(super) trait Launcher: Clone {
    /// The engine's places.
    fn places(&self) -> &Places;
    /// The engine's signals.
    fn signals(&self) -> &Signals;
    /// The engine's time.
    fn now(&self) -> Timestamp;
    /// Whether the engine still starts work: false from the start of shutdown.
    fn accepts_work(&self) -> bool;
    /// Whether the engine was abandoned (a simulated crash): it gives nothing back.
    fn abandoned(&self) -> bool;
    /// Starts the worker of `execution`, which holds `place`.
    fn launch(&self, execution: Execution, place: Place<Self>);
}

/// A claimed execution waiting for a place.
struct Waiting {
    execution: Execution,
    claimed_at: Timestamp,
    /// A stop, kill or deadline signal came for it while it waited.
    signalled: bool,
}

/// A node's places. See the [module docs](self).
pub(super) struct Places {
    prefetch: Prefetch,
    /// Free places in the worker pool.
    pool: Semaphore,
    /// How many places the pool has in all, as shutdown counts them.
    pool_size: u32,
    /// Rung when a place frees, so a dispatcher waiting for room looks again.
    freed: Notify,
    /// The executions with a worker on this node, and the bell that makes each worker re-read
    /// its execution.
    running: Mutex<HashMap<ExecutionId, Arc<Notify>>>,
    /// Claimed executions waiting for a place, oldest first.
    waiting: Mutex<VecDeque<Waiting>>,
    /// True while runs on this node are short enough for prefetching to pay.
    prefetching: AtomicBool,
    /// Workers alive, including those still recording an outcome after their executor ended, and
    /// claimed executions not yet started or handed back.
    live: watch::Sender<usize>,
}

impl Places {
    pub(super) fn new(config: &EngineConfig) -> Self {
        Self {
            prefetch: Prefetch::new(config),
            pool: Semaphore::new(config.concurrency.max(1)),
            pool_size: u32::try_from(config.concurrency).unwrap_or(u32::MAX),
            freed: Notify::new(),
            running: Mutex::new(HashMap::new()),
            waiting: Mutex::new(VecDeque::new()),
            prefetching: AtomicBool::new(false),
            live: watch::channel(0).0,
        }
    }

    fn waiting(&self) -> MutexGuard<'_, VecDeque<Waiting>> {
        self.waiting.lock().expect("prefetch queue poisoned")
    }

    fn running(&self) -> MutexGuard<'_, HashMap<ExecutionId, Arc<Notify>>> {
        self.running.lock().expect("running map poisoned")
    }

    /// How many executions have a worker on this node.
    pub(super) fn running_count(&self) -> usize {
        self.running().len()
    }

    /// How many executions the dispatcher should claim now.
    pub(super) fn wanted(&self) -> usize {
        self.prefetch.wanted(
            self.pool.available_permits(),
            self.prefetching.load(Ordering::Relaxed),
            self.waiting().len(),
        )
    }

    /// Resolves when a place frees (or went to a waiting execution).
    pub(super) fn freed(&self) -> Notified<'_> {
        self.freed.notified()
    }

    /// Queues freshly claimed executions and starts as many as there are free places.
    pub(super) fn enqueue<L: Launcher>(
        &self,
        launcher: &L,
        claimed: Vec<Execution>,
        now: Timestamp,
    ) {
        if claimed.is_empty() {
            return;
        }
        let count = claimed.len();
        // A waiting execution counts as live, so that shutdown waits for its hand-back; its
        // worker keeps the count until it ends.
        self.live.send_modify(|live| *live += count);
        self.waiting()
            .extend(claimed.into_iter().map(|execution| Waiting {
                execution,
                claimed_at: now,
                signalled: false,
            }));
        loop {
            let mut waiting = self.waiting();
            let placed = !waiting.is_empty() && self.pool.try_acquire().map(|p| p.forget()).is_ok();
            if !placed {
                self.announce_prefetched(launcher, &waiting, count);
                return;
            }
            // The permit was forgotten: the place goes back by hand, through the guard.
            let next = waiting.pop_front().expect("not empty");
            let (execution, place) = self.seat(launcher, next);
            drop(waiting);
            launcher.launch(execution, place);
        }
    }

    /// Signals the newest `count` executions of `waiting` as prefetched: only `enqueue` adds to
    /// the queue, at its back, and the others take from its front.
    fn announce_prefetched<L: Launcher>(
        &self,
        launcher: &L,
        waiting: &VecDeque<Waiting>,
        count: usize,
    ) {
        let signals = launcher.signals();
        if signals.is_on() {
            let new = waiting.len().min(count);
            for entry in waiting.iter().skip(waiting.len() - new) {
                signals.send(EngineSignal::Prefetched(entry.execution.execution_id));
            }
        }
    }

    /// Gives `next`, just taken from the queue, a place: its bell joins the running executions
    /// while the queue is still locked, so that a signal for it is either marked on it or finds
    /// its bell. The caller launches it once the queue is unlocked: a launch may drop the place
    /// at once (a runtime shutting down drops what it spawns), and the drop takes the lock.
    fn seat<L: Launcher>(&self, launcher: &L, next: Waiting) -> (Execution, Place<L>) {
        let execution_id = next.execution.execution_id;
        let bell = Arc::new(Notify::new());
        if next.signalled {
            bell.notify_one();
        }
        self.running().insert(execution_id, Arc::clone(&bell));
        let place = Place {
            launcher: launcher.clone(),
            execution_id,
            bell,
            pool_since: Some(launcher.now()),
        };
        (next.execution, place)
    }

    /// A worker's executor ended: its place goes to the oldest waiting execution, or back to the
    /// pool. The run's length decides whether prefetching is worth it.
    fn give_back<L: Launcher>(&self, launcher: &L, since: Timestamp) {
        // A crashed node's places die with it: a freed place would let a dispatcher still
        // between two awaits claim one more execution as the process goes down.
        if launcher.abandoned() {
            return;
        }
        let short = self.prefetch.is_short(since, launcher.now());
        self.prefetching.store(short, Ordering::Relaxed);
        if launcher.accepts_work() {
            let mut waiting = self.waiting();
            if let Some(next) = waiting.pop_front() {
                let (execution, place) = self.seat(launcher, next);
                drop(waiting);
                launcher.launch(execution, place);
                // The dispatcher refills the prefetch.
                self.freed.notify_one();
                return;
            }
        }
        self.pool.add_permits(1);
        self.freed.notify_one();
    }

    /// A worker ended.
    fn leave(&self, execution_id: ExecutionId) {
        self.running().remove(&execution_id);
        self.live.send_modify(|live| *live -= 1);
    }

    /// When the oldest waiting execution must be handed back.
    pub(super) fn next_expiry(&self) -> Option<Timestamp> {
        self.waiting()
            .front()
            .map(|first| self.prefetch.expiry(first.claimed_at))
    }

    /// Takes the waiting executions that waited too long (all of them with `all`), and turns
    /// prefetching off when any did. Each still counts as live until
    /// [`Places::handed_back`] says it is dealt with.
    pub(super) fn take_expired(&self, now: Timestamp, all: bool) -> Vec<Execution> {
        let mut waiting = self.waiting();
        let mut expired = Vec::new();
        while waiting
            .front()
            .is_some_and(|first| all || self.prefetch.expiry(first.claimed_at) <= now)
        {
            expired.extend(waiting.pop_front().map(|entry| entry.execution));
        }
        if !expired.is_empty() && !all {
            self.prefetching.store(false, Ordering::Relaxed);
        }
        expired
    }

    /// One execution from [`Places::take_expired`] was handed back, or given up on: shutdown no
    /// longer waits for it.
    pub(super) fn handed_back(&self) {
        self.live.send_modify(|live| *live -= 1);
    }

    /// Makes the local worker of `id` re-read its execution; if `id` is still waiting for a
    /// place, its worker will as soon as it starts.
    pub(super) fn ring(&self, id: ExecutionId) {
        // Queue, then the running map: the order `seat` holds them in.
        let mut waiting = self.waiting();
        if let Some(entry) = waiting
            .iter_mut()
            .find(|entry| entry.execution.execution_id == id)
        {
            entry.signalled = true;
            return;
        }
        if let Some(bell) = self.running().get(&id) {
            bell.notify_one();
        }
    }

    /// Resolves once every place of the pool is free: no executor runs.
    pub(super) async fn all_free(&self) {
        // Taken and given back at once: this only waits.
        let _ = self.pool.acquire_many(self.pool_size).await;
    }

    /// Resolves once no worker is alive and no claimed execution waits.
    pub(super) async fn all_ended(&self) {
        let _ = self.live.subscribe().wait_for(|live| *live == 0).await;
    }
}

/// A worker's hold on its execution's places: a place in the pool while its executor runs, and
/// its entry among the running executions (where stop and kill signals find its bell) until the
/// worker ends. Dropping it gives back what it still holds.
pub(super) struct Place<L: Launcher> {
    launcher: L,
    execution_id: ExecutionId,
    bell: Arc<Notify>,
    /// When it took its place in the pool; `None` once the place went back.
    pool_since: Option<Timestamp>,
}

impl<L: Launcher> Place<L> {
    /// Rings when someone changed the execution (a stop, a kill, a deadline).
    pub(super) fn bell(&self) -> &Notify {
        &self.bell
    }

    /// Gives the place in the pool back (to the oldest waiting execution, or to the pool), if it
    /// still holds it; the worker stays among the running ones.
    pub(super) fn free_pool_place(&mut self) {
        if let Some(since) = self.pool_since.take() {
            self.launcher.places().give_back(&self.launcher, since);
        }
    }
}

impl<L: Launcher> Drop for Place<L> {
    fn drop(&mut self) {
        self.free_pool_place();
        self.launcher.places().leave(self.execution_id);
    }
}
