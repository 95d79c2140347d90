//! What this node saw of the store's reachability, and the rule it sets for rescues: a store
//! outage must not pass for dead nodes.
//!
//! While the store is unreachable no node can renew a lease, so every lease lapses together; if
//! the first node to see the store again rescued them all, every execution of the cluster would
//! end in FAILURE although its node stayed alive. So a node rescues a lapsed lease only when the
//! store was reachable, as it saw it, for a whole lease: the lease's own last period, or a whole
//! lease since the store came back (time enough for a live holder's heartbeat to renew it, which
//! the state machine allows until the rescue).
//!
//! A node starts without having seen an outage: one that starts while another node's lease has
//! lapsed rescues it at once, as before.

use std::sync::Mutex;
use std::time::Duration;

use crate::machine::LeaseLoss;
use crate::store::StoreError;
use crate::time::{Timestamp, after};

/// The node's view of the store: reachable since a time, or unreachable now.
#[derive(Debug)]
pub(super) struct StoreHealth {
    /// Since when every store call this node made answered; `None` while the last one failed
    /// because the store was unavailable.
    reachable_since: Mutex<Option<Timestamp>>,
}

/// A change of the node's view, worth a log line and a test signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HealthChange {
    /// The store stopped answering.
    Lost,
    /// The store answers again.
    Back,
}

impl StoreHealth {
    pub(super) fn new() -> Self {
        Self {
            reachable_since: Mutex::new(Some(Timestamp::MIN)),
        }
    }

    /// Takes in the result of a store call made at `now`. Only an unavailable store counts: a
    /// refusal or a missing record is an answer.
    pub(super) fn observe<T>(
        &self,
        result: &Result<T, StoreError>,
        now: Timestamp,
    ) -> Option<HealthChange> {
        let mut since = self
            .reachable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match (result, *since) {
            (Err(StoreError::Unavailable(_)), Some(_)) => {
                *since = None;
                Some(HealthChange::Lost)
            }
            (Err(StoreError::Unavailable(_)), None) | (_, Some(_)) => None,
            (_, None) => {
                *since = Some(now);
                Some(HealthChange::Back)
            }
        }
    }

    /// Whether a lease that lapsed at `expired_at` may be rescued at `now`, and on what grounds;
    /// `None` means not yet. `lease` is the length of a lease (the same on every node).
    pub(super) fn rescue(
        &self,
        expired_at: Timestamp,
        lease: Duration,
        now: Timestamp,
    ) -> Option<LeaseLoss> {
        let since = (*self
            .reachable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()))?;
        let renewed_at = expired_at.saturating_sub(millis(lease));
        if since <= renewed_at {
            (expired_at <= now).then_some(LeaseLoss::NodeGone)
        } else {
            (after(since, lease) <= now && expired_at <= now)
                .then_some(LeaseLoss::SilentAfterOutage)
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(30);

    fn unavailable() -> Result<(), StoreError> {
        Err(StoreError::unavailable(std::io::Error::other("down")))
    }

    #[test]
    fn without_an_outage_a_lapsed_lease_is_rescued_when_it_lapses() {
        let health = StoreHealth::new();
        assert_eq!(health.rescue(30_000, LEASE, 29_999), None);
        assert_eq!(
            health.rescue(30_000, LEASE, 30_000),
            Some(LeaseLoss::NodeGone)
        );
    }

    #[test]
    fn during_an_outage_nothing_is_rescued() {
        let health = StoreHealth::new();
        assert_eq!(
            health.observe(&unavailable(), 10_000),
            Some(HealthChange::Lost)
        );
        assert_eq!(health.observe(&unavailable(), 20_000), None);
        assert_eq!(health.rescue(30_000, LEASE, 1_000_000), None);
    }

    #[test]
    fn after_an_outage_the_holder_gets_a_whole_lease_to_renew() {
        let health = StoreHealth::new();
        health.observe(&unavailable(), 10_000);
        // The store is back at 70 s; the lease lapsed at 30 s, during the outage.
        assert_eq!(health.observe(&Ok(()), 70_000), Some(HealthChange::Back));
        assert_eq!(health.observe(&Ok(()), 71_000), None);
        assert_eq!(health.rescue(30_000, LEASE, 70_000), None);
        assert_eq!(health.rescue(30_000, LEASE, 99_999), None);
        assert_eq!(
            health.rescue(30_000, LEASE, 100_000),
            Some(LeaseLoss::SilentAfterOutage)
        );
    }

    #[test]
    fn a_lease_whose_whole_period_followed_the_outage_is_an_ordinary_loss() {
        let health = StoreHealth::new();
        health.observe(&unavailable(), 10_000);
        health.observe(&Ok(()), 20_000);
        // Renewed at 25 s (after the store came back), lapsed at 55 s.
        assert_eq!(
            health.rescue(55_000, LEASE, 55_000),
            Some(LeaseLoss::NodeGone)
        );
        // Renewed at 15 s, during the outage: wait until 50 s.
        assert_eq!(health.rescue(45_000, LEASE, 45_000), None);
        assert_eq!(
            health.rescue(45_000, LEASE, 50_000),
            Some(LeaseLoss::SilentAfterOutage)
        );
    }

    #[test]
    fn refusals_are_answers() {
        let health = StoreHealth::new();
        let refused: Result<(), StoreError> = Err(StoreError::NotFound);
        assert_eq!(health.observe(&refused, 5_000), None);
        assert_eq!(
            health.rescue(30_000, LEASE, 30_000),
            Some(LeaseLoss::NodeGone)
        );
    }
}
