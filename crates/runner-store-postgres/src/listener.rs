//! The LISTEN side of wake-ups: a background task turns other nodes' notifications into the
//! store's [`Signal`]s, and reconnects after the connection drops.
//!
//! Payloads are `"<origin> pending"`, `"<origin> control:<execution uuid>"` and
//! `"<origin> feed:<execution uuid>,<execution uuid>,..."` (and `log:` alike, for run log
//! output), where `<origin>` names the store
//! instance that sent it: a store already signalled its own subscribers right after its commit,
//! so it skips its own notifications. Feed signals are many (every status change records an
//! event), so one payload carries up to [`FEED_IDS_PER_PAYLOAD`] executions: a transaction sends
//! at most one NOTIFY per execution, and usually one in all.

use std::time::Duration;

use runner_core::ids::ExecutionId;
use runner_core::store::Signal;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use crate::retry::{GiveUp, RetryPolicy, retry};

/// How many execution ids one `feed:` payload carries: 128 × 37 bytes plus the prefix stays well
/// under PostgreSQL's 8000-byte payload limit.
pub(crate) const FEED_IDS_PER_PAYLOAD: usize = 128;

/// The payloads for `signals` (without repeats) from `origin`: one per pending or control
/// signal, and the feed signals packed into as few payloads as fit.
pub(crate) fn payloads(origin: &str, signals: &[Signal]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut feed: Vec<ExecutionId> = Vec::new();
    let mut log: Vec<ExecutionId> = Vec::new();
    for signal in signals {
        match signal {
            Signal::Pending => payloads.push(format!("{origin} pending")),
            Signal::Control(id) => payloads.push(format!("{origin} control:{}", id.0)),
            Signal::Feed(id) => feed.push(*id),
            Signal::Log(id) => log.push(*id),
        }
    }
    for (prefix, ids) in [("feed", feed), ("log", log)] {
        for chunk in ids.chunks(FEED_IDS_PER_PAYLOAD) {
            let mut payload = format!("{origin} {prefix}:");
            for (index, id) in chunk.iter().enumerate() {
                if index > 0 {
                    payload.push(',');
                }
                payload.push_str(&id.0.to_string());
            }
            payloads.push(payload);
        }
    }
    payloads
}

/// The signals in a payload; none if it came from `own_origin` or is not one of ours.
pub(crate) fn parse(payload: &str, own_origin: &str) -> Vec<Signal> {
    let Some((origin, body)) = payload.split_once(' ') else {
        return Vec::new();
    };
    if origin == own_origin {
        return Vec::new();
    }
    if body == "pending" {
        return vec![Signal::Pending];
    }
    if let Some(id) = body.strip_prefix("control:") {
        return id
            .parse()
            .ok()
            .map(|id| Signal::Control(ExecutionId(id)))
            .into_iter()
            .collect();
    }
    let (ids, signal): (&str, fn(ExecutionId) -> Signal) =
        match (body.strip_prefix("feed:"), body.strip_prefix("log:")) {
            (Some(ids), _) => (ids, Signal::Feed),
            (_, Some(ids)) => (ids, Signal::Log),
            _ => return Vec::new(),
        };
    ids.split(',')
        .filter_map(|id| id.parse().ok())
        .map(|id| signal(ExecutionId(id)))
        .collect()
}

/// The pauses between attempts to connect (and reconnect) the LISTEN connection, which is
/// tried until it connects.
const CONNECT_RETRY: RetryPolicy = RetryPolicy {
    first_pause: Duration::from_millis(100),
    max_pause: Duration::from_secs(2),
};

/// Listens on `channel` until the task is aborted.
pub(crate) async fn run(
    pool: PgPool,
    channel: String,
    origin: String,
    signals: broadcast::Sender<Signal>,
) {
    let mut reconnecting = false;
    loop {
        // Each reconnection starts again from the first, short pause.
        let connected = retry(
            CONNECT_RETRY,
            GiveUp::Never,
            || connect(&pool, &channel),
            |error| {
                tracing::warn!(%error, "cannot LISTEN for wake-ups yet; retrying");
                true
            },
        )
        .await;
        let Ok(mut listener) = connected else {
            unreachable!("every error is worth a retry, and there is no deadline");
        };
        if reconnecting {
            // Notifications sent while we were away are lost: have every engine look again.
            tracing::info!("listening for wake-ups again");
            let _ = signals.send(Signal::Pending);
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    for signal in parse(notification.payload(), &origin) {
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
        for signal in [Signal::Pending, Signal::Control(id), Signal::Feed(id)] {
            let sent = payloads("a1", &[signal]);
            assert_eq!(sent.len(), 1);
            assert_eq!(parse(&sent[0], "b2"), [signal]);
            assert_eq!(parse(&sent[0], "a1"), []);
        }
        assert_eq!(parse("a1 control:not-a-uuid", "b2"), []);
        assert_eq!(parse("a1 feed:not-a-uuid", "b2"), []);
        assert_eq!(parse("garbage", "b2"), []);
    }

    #[test]
    fn feed_signals_share_payloads_that_fit() {
        let ids: Vec<ExecutionId> = (0..FEED_IDS_PER_PAYLOAD * 2 + 1)
            .map(|_| ExecutionId::new())
            .collect();
        let mut signals = vec![Signal::Pending];
        signals.extend(ids.iter().map(|id| Signal::Feed(*id)));
        let sent = payloads("a1", &signals);
        assert_eq!(sent.len(), 4, "pending, then three feed payloads");
        assert!(sent.iter().all(|payload| payload.len() < 8000));
        let received: Vec<Signal> = sent.iter().flat_map(|p| parse(p, "b2")).collect();
        assert_eq!(received, signals);
    }
}
