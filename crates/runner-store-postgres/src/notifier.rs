//! The NOTIFY side of wake-ups: which signals go out with the commit that caused them, and the
//! background task that sends the rest right after it.
//!
//! A transaction that calls `pg_notify` takes a database-wide lock in its pre-commit step and
//! holds it until its commit record is flushed, so that notifications enter the queue in commit
//! order. Every such transaction therefore commits alone: concurrent writers no longer share a
//! WAL flush (group commit), and on this project's benchmark machine `pgbench -N` with a
//! `pg_notify` in each transaction ran at 0.6x of the same script without it. Nearly every write
//! of the store has a hint for the other nodes (a new PENDING execution, a feed event), so the
//! hints that a lost notification only delays are sent by one task per store, after the commit,
//! in a transaction of their own that does not wait for the disk (`synchronous_commit = off`
//! set for that transaction alone) and that carries everything queued in the [`GATHER`] after
//! the first:
//!
//! - [`Signal::Pending`]: an idle engine also polls (`EngineConfig::poll_interval`). It is sent
//!   only if some execution that became PENDING here is still unclaimed by this node when the
//!   hint goes out ([`Unannounced`]): work this node took on itself meanwhile is no other node's
//!   business, and waking every node for it would have them all race for the queue's head;
//! - [`Signal::Feed`]: live-feed streams and the webhook delivery loop also poll.
//!
//! [`Signal::Control`] (a stop or kill request) is rare and should reach the node running the
//! execution within a second even if this node dies right after the commit, so it still goes out
//! with the commit ([`with_commit`]): PostgreSQL delivers it if and only if the request is
//! stored.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use runner_core::store::Signal;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::listener;

/// How long the task gathers hints before it sends them: at thousands of commits a second, a
/// send per commit would be as many extra transactions, each waking every listening node; and a
/// node that has room claims its new work within a few milliseconds, so by then there is often
/// no Pending hint left to send. Other nodes hear of new work at most this much later.
pub(crate) const GATHER: Duration = Duration::from_millis(10);

/// The executions that became PENDING here (inserted, fired, requeued) and that this node has
/// not claimed since the last Pending hint went out.
#[derive(Default)]
pub(crate) struct Unannounced {
    ids: Mutex<HashSet<Uuid>>,
}

impl Unannounced {
    /// Executions became PENDING in a committed write of this store.
    pub(crate) fn pending(&self, ids: impl IntoIterator<Item = Uuid>) {
        self.lock().extend(ids);
    }

    /// This store claimed these executions (and committed the claim).
    pub(crate) fn claimed(&self, ids: impl IntoIterator<Item = Uuid>) {
        let mut unannounced = self.lock();
        for id in ids {
            unannounced.remove(&id);
        }
    }

    /// Whether a Pending hint is due, and forgets what it would announce.
    fn take(&self) -> bool {
        let mut unannounced = self.lock();
        let due = !unannounced.is_empty();
        unannounced.clear();
        due
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The signals among `signals` that must be sent by the committing transaction itself.
pub(crate) fn with_commit(signals: &[Signal]) -> Vec<Signal> {
    let mut unique = Vec::new();
    for signal in signals {
        if matches!(signal, Signal::Control(_)) && !unique.contains(signal) {
            unique.push(*signal);
        }
    }
    unique
}

/// True for a signal the [`run`] task sends after the commit.
pub(crate) fn after_commit(signal: &Signal) -> bool {
    !matches!(signal, Signal::Control(_))
}

/// Sends each batch of queued hints in one statement: `set_config(..., true)` lasts until the end
/// of the statement's own transaction, which is when PostgreSQL reads `synchronous_commit`.
const SEND: &str = "SELECT pg_notify($1, payload), set_config('synchronous_commit', 'off', true)
  FROM unnest($2::text[]) AS payload";

/// The notifier task: at the first hint, waits [`GATHER`], takes every hint queued by then,
/// drops repeats (and a Pending hint [`Unannounced`] finds nothing for), and sends the rest on
/// `channel` in one transaction. Ends when every sender is gone. A failed send is dropped (the
/// receivers poll); the next batch tries again.
pub(crate) async fn run(
    pool: PgPool,
    channel: String,
    origin: String,
    unannounced: Arc<Unannounced>,
    mut hints: mpsc::UnboundedReceiver<Signal>,
) {
    let mut seen = HashSet::new();
    while let Some(first) = hints.recv().await {
        tokio::time::sleep(GATHER).await;
        let mut batch = vec![first];
        seen.clear();
        seen.insert(first);
        while let Ok(signal) = hints.try_recv() {
            if seen.insert(signal) {
                batch.push(signal);
            }
        }
        if seen.contains(&Signal::Pending) && !unannounced.take() {
            batch.retain(|signal| *signal != Signal::Pending);
        }
        if batch.is_empty() {
            continue;
        }
        let payloads = listener::payloads(&origin, &batch);
        if let Err(error) = sqlx::query(SEND)
            .bind(&channel)
            .bind(&payloads)
            .execute(&pool)
            .await
        {
            tracing::debug!(%error, "wake-ups for other nodes not sent; they find the work by polling");
        }
    }
}

#[cfg(test)]
mod tests {
    use runner_core::ids::ExecutionId;

    use super::*;

    #[test]
    fn only_control_signals_go_with_the_commit() {
        let id = ExecutionId(Uuid::new_v4());
        let signals = [
            Signal::Pending,
            Signal::Feed(id),
            Signal::Control(id),
            Signal::Control(id),
        ];
        assert_eq!(with_commit(&signals), vec![Signal::Control(id)]);
        let later: Vec<Signal> = signals.into_iter().filter(after_commit).collect();
        assert_eq!(later, vec![Signal::Pending, Signal::Feed(id)]);
    }

    #[test]
    fn a_pending_hint_is_due_only_for_work_this_node_left_unclaimed() {
        let unannounced = Unannounced::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(!unannounced.take(), "nothing became PENDING");
        unannounced.pending([a, b]);
        unannounced.claimed([a, b]);
        assert!(!unannounced.take(), "this node claimed all of it");
        unannounced.pending([a, b]);
        unannounced.claimed([a]);
        assert!(unannounced.take(), "b is still waiting");
        assert!(!unannounced.take(), "b was announced");
    }
}
