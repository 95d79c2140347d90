//! How long a store call may wait for an unreachable backend, set per task by the caller.
//!
//! A store that rides out a backend restart retries for a while (the PostgreSQL store: its
//! `retry_for`, 10 s by default). The engine wants that: a heartbeat or an outcome that waits a
//! few seconds is better than one that fails. A person at the other end of an HTTP request does
//! not: during an outage they should hear "503, try again" within a second, not after ten. So the
//! HTTP layer runs each request [`with_patience`], and a store that retries asks [`patience`]
//! for the bound of the current task; outside such a scope (the engine's loops) there is none.
//!
//! A write that runs out of patience may still land after the caller was told the store is
//! unavailable (as with any timeout); the caller reads before it repeats a start.

use std::future::Future;
use std::time::Duration;

tokio::task_local! {
    static PATIENCE: Duration;
}

/// Runs `future` with store calls bounded to about `patience` each while the backend does not
/// answer.
pub async fn with_patience<F: Future>(patience: Duration, future: F) -> F::Output {
    PATIENCE.scope(patience, future).await
}

/// The bound the current task set with [`with_patience`], if any.
pub fn patience() -> Option<Duration> {
    PATIENCE.try_with(|patience| *patience).ok()
}

/// `retry_for`, cut to the current task's [`patience`].
pub fn bounded(retry_for: Duration) -> Duration {
    patience().map_or(retry_for, |patience| patience.min(retry_for))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn patience_holds_inside_its_scope_only() {
        assert_eq!(patience(), None);
        assert_eq!(bounded(Duration::from_secs(10)), Duration::from_secs(10));
        let inside = with_patience(Duration::from_secs(1), async {
            (
                patience(),
                bounded(Duration::from_secs(10)),
                bounded(Duration::from_millis(5)),
            )
        })
        .await;
        assert_eq!(
            inside,
            (
                Some(Duration::from_secs(1)),
                Duration::from_secs(1),
                Duration::from_millis(5)
            )
        );
        assert_eq!(patience(), None);
    }
}
