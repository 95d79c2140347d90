//! The LISTEN side of wake-ups: a background task turns other nodes' notifications into the
//! store's [`Signal`]s, and reconnects after the connection drops.
//!
//! Payloads are `"<origin> pending"` and `"<origin> control:<execution uuid>"`, where `<origin>`
//! names the store instance that sent it: a store already signalled its own subscribers right
//! after its commit, so it skips its own notifications.

use std::time::Duration;

use runner_core::ids::ExecutionId;
use runner_core::store::Signal;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

/// The payload for `signal` from `origin`.
pub(crate) fn payload(origin: &str, signal: Signal) -> String {
    match signal {
        Signal::Pending => format!("{origin} pending"),
        Signal::Control(id) => format!("{origin} control:{}", id.0),
    }
}

/// The signal in a payload, unless it came from `own_origin` or is not one of ours.
pub(crate) fn parse(payload: &str, own_origin: &str) -> Option<Signal> {
    let (origin, body) = payload.split_once(' ')?;
    if origin == own_origin {
        return None;
    }
    match body {
        "pending" => Some(Signal::Pending),
        _ => body
            .strip_prefix("control:")?
            .parse()
            .ok()
            .map(|id| Signal::Control(ExecutionId(id))),
    }
}

/// Listens on `channel` until the task is aborted.
pub(crate) async fn run(
    pool: PgPool,
    channel: String,
    origin: String,
    signals: broadcast::Sender<Signal>,
) {
    let mut pause = Duration::from_millis(100);
    let mut reconnecting = false;
    loop {
        let mut listener = match connect(&pool, &channel).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for wake-ups yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        if reconnecting {
            // Notifications sent while we were away are lost: have every engine look again.
            tracing::info!("listening for wake-ups again");
            let _ = signals.send(Signal::Pending);
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if let Some(signal) = parse(notification.payload(), &origin) {
                        let _ = signals.send(signal);
                    }
                }
                Ok(None) => {
                    tracing::warn!("the LISTEN connection dropped; reconnecting");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "the LISTEN connection failed; reconnecting");
                    break;
                }
            }
        }
        reconnecting = true;
        let _ = signals.send(Signal::Pending);
    }
}

async fn connect(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnect ourselves (above) so that we know when notifications may have been missed.
    listener.ignore_pool_close_event(true);
    listener.listen(channel).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_skip_our_own() {
        let id = ExecutionId::new();
        for signal in [Signal::Pending, Signal::Control(id)] {
            assert_eq!(parse(&payload("a1", signal), "b2"), Some(signal));
            assert_eq!(parse(&payload("a1", signal), "a1"), None);
        }
        assert_eq!(parse("a1 control:not-a-uuid", "b2"), None);
        assert_eq!(parse("garbage", "b2"), None);
    }
}
