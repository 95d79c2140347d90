//! The retention service: deletes executions that ended longer ago than
//! [`EngineConfig::retain`](super::EngineConfig::retain), in bounded batches.
//!
//! A pass takes the cut (now minus the retention, on the engine's clock) and calls
//! [`RetentionStore::purge_ended`] with [`EngineConfig::retention_batch`](super::EngineConfig::retention_batch)
//! until a call deletes fewer than a batch; each call is one short atomic step of the store, and
//! the service yields between them, so starts and runs never queue behind a purge. On a shared
//! store every node runs the service and the store lets one purge at a time (the others' calls
//! answer 0). A failed call ends the pass; the next one retries.

use std::time::Duration;

use super::handle::Engine;
use super::signals::EngineSignal;
use crate::executor::Executor;
use crate::notifier::Notifier;
use crate::store::{RetentionStore, Store};
use crate::time::{Clock, Timestamp, after};

pub(super) async fn retention<S: Store, E: Executor, N: Notifier, C: Clock>(
    engine: Engine<S, E, N, C>,
    retain: Duration,
) {
    let inner = &engine.inner;
    let batch = inner.config.retention_batch.max(1);
    loop {
        let now = inner.clock.now();
        let before = cut(now, retain);
        let purged = pass(&inner.store, before, batch).await;
        crate::meter::purged(purged);
        if purged > 0 {
            tracing::info!(purged, before, "retention deleted ended executions");
        }
        inner
            .signals
            .send(EngineSignal::RetentionPass { before, purged });
        inner
            .clock
            .sleep_until(after(now, inner.config.retention_interval))
            .await;
    }
}

/// The end time before which an execution is purged at `now`.
fn cut(now: Timestamp, retain: Duration) -> Timestamp {
    now.saturating_sub(i64::try_from(retain.as_millis()).unwrap_or(i64::MAX))
}

/// Purges in batches of `batch` until one comes back short; returns how many went.
async fn pass(store: &impl RetentionStore, before: Timestamp, batch: usize) -> u64 {
    let mut purged = 0;
    loop {
        match store.purge_ended(before, batch).await {
            Ok(count) => {
                purged += count as u64;
                if count < batch {
                    return purged;
                }
                tokio::task::yield_now().await;
            }
            Err(error) => {
                tracing::warn!(%error, "purging ended executions failed; the next pass retries");
                return purged;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_is_the_retention_before_now_and_never_overflows() {
        assert_eq!(cut(100_000, Duration::from_secs(30)), 70_000);
        assert_eq!(cut(0, Duration::MAX), -i64::MAX);
    }
}
