//! The delivery loop and one delivery attempt.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use runner_core::feed::{Delivery, Settlement};
use runner_core::store::{OutboxStore, Signal, SignalSource};
use runner_core::time::{self, Clock};
use sha2::Sha256;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use url::Url;

use crate::guard::{self, GuardedResolver};
use crate::signals::{self, DeliverySignal, SignalSender};
use crate::{ATTEMPT_HEADER, DELIVERIES, IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, WebhookConfig};

/// Added to the request timeout to make a claim's hold: room for settling after a timed-out
/// request, so a slow store write does not let another node attempt the same delivery at once.
const HOLD_MARGIN: Duration = Duration::from_secs(10);

/// What every task of the service shares.
struct Shared<S, C> {
    store: S,
    clock: C,
    config: WebhookConfig,
    client: reqwest::Client,
    signals: SignalSender,
}

impl<S, C> Shared<S, C> {
    fn signal(&self, make: impl FnOnce() -> DeliverySignal) {
        signals::send(&self.signals, make);
    }
}

/// The running delivery service of this node, from [`start`](crate::start).
///
/// Dropping it leaves the loop running (like the engine's `RunningEngine`); call
/// [`RunningDelivery::shutdown`] to stop it.
#[derive(Debug)]
pub struct RunningDelivery {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningDelivery {
    /// Stops claiming deliveries, waits for the POSTs in flight (each ends within
    /// [`WebhookConfig::request_timeout`]), settles them, and returns.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(error) = self.task.await {
            if error.is_panic() {
                tracing::error!(%error, "webhook delivery loop panicked");
            }
        }
    }
}

pub(crate) fn start<S: OutboxStore + SignalSource, C: Clock>(
    store: S,
    clock: C,
    config: WebhookConfig,
    signals: SignalSender,
) -> RunningDelivery {
    let client = client(&config);
    let shared = Arc::new(Shared {
        store,
        clock,
        config,
        client,
        signals,
    });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(shared, stopped));
    RunningDelivery { stop, task }
}

fn client(config: &WebhookConfig) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.request_timeout)
        // A proxy would resolve the name itself, past the guard; callbacks go direct.
        .no_proxy()
        .user_agent(concat!("runner-webhook/", env!("CARGO_PKG_VERSION")));
    if !config.allow_private {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    // Only a TLS backend that cannot initialise fails here; rustls with compiled-in roots and
    // no system configuration does not.
    builder
        .build()
        .expect("the webhook HTTP client builds (rustls, webpki roots)")
}

/// The loop: claim what is due into the free in-flight slots, one task per delivery, and sleep
/// until a feed signal, a finished attempt, the next due delivery or the poll interval.
async fn run<S: OutboxStore + SignalSource, C: Clock>(
    shared: Arc<Shared<S, C>>,
    mut stop: watch::Receiver<bool>,
) {
    let config = &shared.config;
    let slots = config.max_in_flight.max(1);
    let hold = config.request_timeout.saturating_add(HOLD_MARGIN);
    let mut signals = shared.store.subscribe();
    let mut in_flight = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let now = shared.clock.now();
        let mut wake_at = time::after(now, config.poll_interval);
        let free = slots.saturating_sub(in_flight.len());
        if free > 0 {
            match shared
                .store
                .claim_deliveries(now, time::after(now, hold), free)
                .await
            {
                Ok(claimed) => {
                    for delivery in claimed {
                        shared.signal(|| DeliverySignal::Claimed {
                            key: delivery.key,
                            attempt: delivery.attempts.saturating_add(1),
                        });
                        in_flight.spawn(attempt(Arc::clone(&shared), delivery));
                    }
                }
                Err(error) => tracing::warn!(%error, "claiming webhook deliveries failed"),
            }
        }
        if in_flight.len() < slots {
            match shared.store.next_delivery_at().await {
                // A time already passed means something due that the claim did not return: it
                // sits behind a queue head in flight. Waking for it would spin; a finished
                // attempt of ours wakes us anyway, and the poll covers another node's hold.
                Ok(Some(at)) if at > now => wake_at = wake_at.min(at),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "reading the next webhook delivery failed"),
            }
        }
        shared.signal(|| DeliverySignal::Parked {
            in_flight: in_flight.len(),
            wake_at,
        });
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => log_join(joined),
            () = feed_signal(&mut signals) => drain(&mut signals),
            () = shared.clock.sleep_until(wake_at) => {}
        }
    }
    // Shutdown: no new claims; every attempt in flight ends within its timeout and settles.
    while let Some(joined) = in_flight.join_next().await {
        log_join(joined);
    }
}

fn log_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        // The hold lapses and another attempt follows; nothing is lost.
        tracing::error!(%error, "webhook delivery task failed");
    }
}

/// Resolves once a stop was asked; never if the handle was dropped (the loop then runs on).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves at the next [`Signal::Feed`], or when signals were lost (lagging), since either may
/// mean new deliveries. Other signals are for the engine.
async fn feed_signal(signals: &mut broadcast::Receiver<Signal>) {
    loop {
        match signals.recv().await {
            Ok(Signal::Feed(_)) | Err(broadcast::error::RecvError::Lagged(_)) => return,
            Ok(_) => {}
            // The store is gone with its sender: only polling is left.
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Drops the signals already queued: the claim about to run covers them all, so a burst of
/// events costs one claim, not one per event.
fn drain(signals: &mut broadcast::Receiver<Signal>) {
    while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = signals.try_recv() {}
}

/// One attempt at one delivery, settled in the store however it ends.
async fn attempt<S: OutboxStore + SignalSource, C: Clock>(
    shared: Arc<Shared<S, C>>,
    delivery: Delivery,
) {
    let config = &shared.config;
    let number = delivery.attempts.saturating_add(1);
    let key = delivery.key.idempotency_key();
    let settlement = match post(&shared, &delivery, number).await {
        Ok(()) => {
            tracing::debug!(key, attempt = number, "webhook delivered");
            metrics::counter!(DELIVERIES, "result" => "delivered").increment(1);
            Settlement::Delivered
        }
        Err(error) if number >= config.max_attempts => {
            tracing::warn!(key, attempt = number, %error, "webhook delivery given up");
            metrics::counter!(DELIVERIES, "result" => "given_up").increment(1);
            Settlement::GiveUp { error }
        }
        Err(error) => {
            let at = time::after(shared.clock.now(), backoff(config, number));
            tracing::info!(key, attempt = number, %error, retry_at = at, "webhook delivery failed; will retry");
            metrics::counter!(DELIVERIES, "result" => "retried").increment(1);
            Settlement::Retry { at, error }
        }
    };
    match shared
        .store
        .settle_delivery(&delivery.key, &settlement)
        .await
    {
        Ok(()) => shared.signal(|| DeliverySignal::Settled {
            key: delivery.key,
            attempt: number,
            settlement,
        }),
        Err(error) => {
            // The hold lapses and the delivery is attempted again: at least once, never lost.
            tracing::warn!(key, %error, "settling a webhook delivery failed");
            shared.signal(|| DeliverySignal::NotSettled {
                key: delivery.key,
                attempt: number,
                error: error.to_string(),
            });
        }
    }
}

/// POSTs the event; `Err` says why it did not count as delivered, without the URL (it may hold
/// a token) and without any secret.
async fn post<S, C>(shared: &Shared<S, C>, delivery: &Delivery, number: u32) -> Result<(), String> {
    let url = Url::parse(&delivery.url).map_err(|error| format!("invalid URL: {error}"))?;
    if !shared.config.allow_private {
        guard::check_literal_host(&url).map_err(|refused| format!("refused: host {refused}"))?;
    }
    let body = serde_json::to_vec(&delivery.event)
        .map_err(|error| format!("event not serializable: {error}"))?;
    let mut request = shared
        .client
        .post(url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(IDEMPOTENCY_KEY_HEADER, delivery.key.idempotency_key())
        .header(ATTEMPT_HEADER, number.to_string());
    if let Some(secret) = &shared.config.signing_secret {
        let mut value = HeaderValue::try_from(crate::signature(secret.expose().as_bytes(), &body))
            .map_err(|_| "signature header not encodable".to_owned())?;
        value.set_sensitive(true);
        request = request.header(SIGNATURE_HEADER, value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|error| describe(&error.without_url()))?;
    let status = response.status();
    // The body is not read: nothing in it matters, and a receiver could make it endless.
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// The error and its causes on one line ("error sending request: ...: connection refused").
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Wrappers often repeat their cause; say it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The wait after failed attempt `failed` (1-based): `base * 2^(failed - 1)`, capped at
/// `backoff_max`, with "equal jitter": a random point in its upper half, so receivers that
/// failed together are not retried together, and no wait is shorter than half the nominal one.
pub(crate) fn backoff(config: &WebhookConfig, failed: u32) -> Duration {
    let doubling = 2u32.saturating_pow(failed.saturating_sub(1));
    let nominal = config
        .backoff_base
        .saturating_mul(doubling)
        .min(config.backoff_max);
    let half = nominal / 2;
    let spread = u64::try_from((nominal - half).as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(fastrand::u64(0..=spread))
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body` under `secret`.
pub(crate) fn signature(secret: &[u8], body: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut text = String::with_capacity(7 + 2 * digest.len());
    text.push_str("sha256=");
    for byte in digest {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests;
