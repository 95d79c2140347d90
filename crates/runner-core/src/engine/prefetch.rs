//! Prefetch: executions claimed ahead of free places in the worker pool, so that a place that
//! frees starts the next execution at once, instead of after a claim's round trip to the store
//! (a durable commit: milliseconds on a database, longer than a short run).
//!
//! Every rule of it lives here; the queue it governs is kept by
//! [`Places`](super::places::Places), which asks these rules:
//!
//! - At most [`EngineConfig::prefetch`] claimed executions wait on a node (on top of the ones
//!   running): [`Prefetch::wanted`].
//! - A node prefetches only while its runs are short: the last run to end held its place for less
//!   than [`EngineConfig::prefetch_wait`] ([`Prefetch::is_short`]). A node busy with long runs (a
//!   real playbook) claims only for free places, so it does not sit on work that an idle node
//!   could run; a node that has seen no run end yet does not prefetch either.
//! - A prefetched execution waits at most `prefetch_wait` (never more than a third of the lease,
//!   so its claim's lease has two thirds left when it starts, and its worker's first heartbeat
//!   comes well before the lease ends): [`Prefetch::expiry`]. Then the node hands it back
//!   (release: PENDING again, for any node) and stops prefetching until a short run turns it back
//!   on.
//! - A stop or kill of a waiting execution is passed to its worker as soon as it starts.
//! - On shutdown the waiting executions are handed back at once; after a simulated crash
//!   ([`RunningEngine::abort`](crate::engine::RunningEngine::abort)) their leases lapse, as the
//!   running ones' do.

use std::time::Duration;

use super::config::EngineConfig;
use crate::time::{Timestamp, after};

/// The prefetch rules of one engine, from its configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Prefetch {
    /// How many claimed executions may wait while prefetching is on.
    depth: usize,
    /// How long a prefetched execution may wait for a place.
    wait: Duration,
}

impl Prefetch {
    pub(super) fn new(config: &EngineConfig) -> Self {
        Self {
            depth: config.prefetch,
            wait: config.prefetch_wait.min(config.lease / 3),
        }
    }

    /// How many executions the dispatcher should claim now: one per free place, plus the
    /// prefetch depth while prefetching is on, less those already waiting.
    pub(super) fn wanted(&self, free_places: usize, prefetching: bool, waiting: usize) -> usize {
        let ahead = if prefetching { self.depth } else { 0 };
        (free_places + ahead).saturating_sub(waiting)
    }

    /// Whether a run that held its place from `since` until `now` was short enough for
    /// prefetching to pay.
    pub(super) fn is_short(&self, since: Timestamp, now: Timestamp) -> bool {
        now.saturating_sub(since) < after(0, self.wait)
    }

    /// When an execution claimed at `claimed_at` is handed back if it still waits for a place.
    pub(super) fn expiry(&self, claimed_at: Timestamp) -> Timestamp {
        after(claimed_at, self.wait)
    }
}
