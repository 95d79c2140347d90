//! # runner-webhook
//!
//! Delivers the webhook outbox of a Runner store: every event of an execution's live feed that a
//! job's callback accepts is POSTed to the callback's URL, at least once, in order per execution
//! and callback.
//!
//! The store records events, and one outbox row ([`Delivery`](runner_core::feed::Delivery)) per
//! accepting callback, in the same atomic write as the change they report (see
//! [`runner_core::feed`]). This crate only drains the outbox. [`start`] runs one loop per node: it
//! claims the head of each (execution, callback) queue that is due ([`OutboxStore::claim_deliveries`]),
//! POSTs each in its own task, and settles the result ([`OutboxStore::settle_delivery`]). It wakes when
//! the store signals new events ([`Signal::Feed`](runner_core::store::Signal::Feed)), when an
//! attempt ends, when the next retry is due, and every [`WebhookConfig::poll_interval`] in case a
//! signal was lost.
//!
//! ```no_run
//! use runner_core::prelude::*;
//! use runner_core::secret::Secret;
//! use runner_store_memory::MemoryStore;
//! use runner_webhook::WebhookConfig;
//! use std::sync::Arc;
//!
//! # async fn demo() {
//! let store = Arc::new(MemoryStore::new());
//! let config = WebhookConfig::new().with_signing_secret(Secret::new("shared with receivers"));
//! let delivery = runner_webhook::start(store.clone(), SystemClock, config);
//! // ... run an engine on the same store ...
//! delivery.shutdown().await;
//! # }
//! ```
//!
//! ## Isolation
//!
//! Executions never wait for deliveries: the store writes the outbox row with the event, and the
//! delivery service works beside the engine. A queue has at most one attempt in flight, and each
//! attempt is its own task holding one of [`WebhookConfig::max_in_flight`] slots, so a receiver
//! that is slow or never answers holds back only its own queue (and one slot, for at most
//! [`WebhookConfig::request_timeout`]); every other callback's queue goes on.
//!
//! ## The request
//!
//! `POST <callback url>`, body the JSON [`Event`](runner_core::feed::Event), with the headers:
//!
//! | header | value |
//! |---|---|
//! | `Content-Type` | `application/json` |
//! | `Idempotency-Key` | `<execution id>:<callback index>:<sequence>` ([`DeliveryKey::idempotency_key`](runner_core::feed::DeliveryKey::idempotency_key)): the same on every attempt of a delivery, so a receiver can drop repeats |
//! | `X-Runner-Attempt` | the attempt number, from 1 |
//! | `X-Runner-Signature` | `sha256=<lowercase hex HMAC-SHA256 of the body>`, only when the server has a [`WebhookConfig::signing_secret`] |
//!
//! A 2xx answer delivers it. Anything else (another status, a redirect, a connection error, the
//! timeout, a target the SSRF guard refuses) is a failed attempt. Redirects are not followed.
//!
//! ## Verifying the signature
//!
//! A receiver computes the HMAC-SHA256 of the raw body bytes, as received and before any JSON
//! parsing, with the shared secret, and compares it in constant time with the header:
//!
//! ```
//! use hmac::{Hmac, Mac};
//! use sha2::Sha256;
//!
//! fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
//!     let Some(hex) = header.strip_prefix("sha256=") else { return false };
//!     let Some(expected) = decode_hex(hex) else { return false };
//!     let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
//!     mac.update(body);
//!     mac.verify_slice(&expected).is_ok() // constant time
//! }
//!
//! fn decode_hex(hex: &str) -> Option<Vec<u8>> {
//!     (0..hex.len())
//!         .step_by(2)
//!         .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
//!         .collect()
//! }
//!
//! let body = br#"{"sequence":1}"#;
//! let header = runner_webhook::signature(b"shared with receivers", body);
//! assert!(verify(b"shared with receivers", body, &header));
//! assert!(!verify(b"another secret", body, &header));
//! ```
//!
//! The signature proves the sender knows the secret and the body is intact; it does not prevent
//! replays, which the `Idempotency-Key` (and the event's `sequence`) let a receiver detect.
//!
//! ## Retries
//!
//! Delivery is at least once: a delivery leaves the outbox only after a 2xx, and a node that dies
//! mid-attempt only delays it (its claim's hold lapses after the request timeout plus a margin,
//! then any node attempts it again). After failed attempt `n`, the next waits
//! `backoff_base * 2^(n-1)`, capped at `backoff_max`, with jitter: a random point between half
//! that wait and all of it, so receivers that failed together are not hit together again. Waits
//! are measured on the service's [`Clock`]. After [`WebhookConfig::max_attempts`] failed
//! attempts the delivery is given up ([`Settlement::GiveUp`](runner_core::feed::Settlement::GiveUp),
//! logged at `warn` with its idempotency key and the last error): it stays in the store marked
//! failed, and the queue moves on to the next event. A queue delivers in sequence order: event
//! `n + 1` is not attempted before event `n` was delivered or given up.
//!
//! ## SSRF policy
//!
//! Callback URLs are user input, and the node POSTing to them usually sees networks the user
//! does not. Unless [`WebhookConfig::allow_private`] is set, a callback must be `http` or `https`
//! and reach only globally reachable addresses, by the rules of [`runner_core::net`] (every IANA
//! special-purpose block that is not globally reachable: loopback, private, CGNAT, link-local,
//! unique-local, benchmarking, documentation, reserved, multicast, broadcast, unspecified), with
//! IPv6 forms of IPv4 addresses (`::ffff:10.0.0.1`, 6to4, NAT64) judged by their IPv4 address.
//! [`guard::vet_callback_url`] checks a URL when a job is saved (a name that does not resolve
//! is refused then); at
//! delivery the HTTP client's resolver drops refused addresses (failing the attempt when none is
//! left) and IP-literal hosts are checked before connecting, so a name that later resolves
//! inward (DNS rebinding) is still refused. Proxies from the environment are not used, since a
//! proxy would resolve the name past the guard. Logs and recorded errors never contain the
//! signing secret, the signature or the callback URL (it may carry a token).
//!
//! ## Test signals
//!
//! A test waits for what the loop did, never for a duration and never by polling the store:
//! [`start_with_signals`] starts the service with a [`DeliverySignals`] reader of its
//! [`DeliverySignal`]s, in the manner of the test signals of River's maintenance services.
//!
//! | signal | sent when |
//! |---|---|
//! | [`Claimed { key, attempt }`](DeliverySignal::Claimed) | the loop claimed a delivery and starts attempt `attempt` |
//! | [`Settled { key, attempt, settlement }`](DeliverySignal::Settled) | the attempt ended and the store recorded `settlement`: [`Delivered`](runner_core::feed::Settlement::Delivered) (delivered), [`Retry`](runner_core::feed::Settlement::Retry) (retry scheduled at `at`) or [`GiveUp`](runner_core::feed::Settlement::GiveUp) (gave up) |
//! | [`NotSettled { key, attempt, error }`](DeliverySignal::NotSettled) | the attempt ended but the store refused the settlement (the hold lapses, it is attempted again) |
//! | [`Parked { in_flight, wake_at }`](DeliverySignal::Parked) | the loop claimed what it could and waits; `in_flight == 0` means idle |
//!
//! Every `Claimed` is followed, for the same key and attempt, by exactly one `Settled` or
//! `NotSettled`, sent once the store write has returned and before the attempt's task ends; so
//! when [`RunningDelivery::shutdown`] returns, the settlements of the attempts it waited for are
//! already there to read ([`DeliverySignals::try_next`]), and the reader ends
//! ([`DeliverySignals::next`] gives `None`) once they are read. Signals of different queues
//! interleave in no fixed order. [`start`] sends none: without a reader the service builds no
//! signal and pays one branch per signal point.
//!
//! ```no_run
//! use runner_core::feed::Settlement;
//! use runner_core::prelude::*;
//! use runner_store_memory::MemoryStore;
//! use runner_webhook::{DeliverySignal, WebhookConfig};
//! use std::sync::Arc;
//!
//! # async fn demo() {
//! let store = Arc::new(MemoryStore::new());
//! let (delivery, mut signals) =
//!     runner_webhook::start_with_signals(store.clone(), SystemClock, WebhookConfig::new());
//! // ... record an execution whose job has a callback ...
//! while let Some(signal) = signals.next().await {
//!     if let DeliverySignal::Settled { settlement: Settlement::Delivered, .. } = signal {
//!         break;
//!     }
//! }
//! delivery.shutdown().await;
//! # }
//! ```

use std::time::Duration;

use runner_core::secret::Secret;
use runner_core::store::{OutboxStore, SignalSource};
use runner_core::time::Clock;

pub mod guard;
mod service;
mod signals;

pub use service::RunningDelivery;
pub use signals::{DeliverySignal, DeliverySignals};

/// The header that carries [`DeliveryKey::idempotency_key`](runner_core::feed::DeliveryKey::idempotency_key).
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// The header that carries the body's signature, `sha256=<hex>`, when a signing secret is set.
pub const SIGNATURE_HEADER: &str = "X-Runner-Signature";
/// The header that carries the attempt number, from 1.
pub const ATTEMPT_HEADER: &str = "X-Runner-Attempt";

/// Webhook delivery attempts, by `result`: `delivered`, `retried` (a retry is scheduled) or
/// `given_up` (counter, through the [`metrics`] facade).
pub const DELIVERIES: &str = "runner_webhook_deliveries_total";

/// Describes the delivery service's metrics to the installed recorder (its `# HELP` lines).
pub fn describe_metrics() {
    metrics::describe_counter!(DELIVERIES, "Webhook delivery attempts, by result.");
}

/// Settings of the delivery service.
///
/// ```
/// use std::time::Duration;
/// use runner_webhook::WebhookConfig;
///
/// let config = WebhookConfig::new()
///     .with_max_attempts(5)
///     .with_backoff_base(Duration::from_millis(500));
/// assert_eq!(config.max_attempts, 5);
/// assert!(!config.allow_private);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The HMAC-SHA256 key of the `X-Runner-Signature` header; `None` sends no signature.
    pub signing_secret: Option<Secret>,
    /// Lets callbacks reach loopback, private, link-local and other non-public addresses (see
    /// the crate docs' SSRF policy). For tests and closed networks.
    pub allow_private: bool,
    /// Attempts before a delivery is given up. Default 12: with the default backoff, 14 to 27
    /// minutes of retries. 0 counts as 1.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles with each further one. Default 1 s.
    pub backoff_base: Duration,
    /// The longest wait between attempts. Default 10 min.
    pub backoff_max: Duration,
    /// How long one POST may take, connecting included. Default 10 s.
    pub request_timeout: Duration,
    /// Concurrent POSTs on this node. Default 64.
    pub max_in_flight: usize,
    /// How often to look for due deliveries without a signal. Default 5 s.
    pub poll_interval: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            signing_secret: None,
            allow_private: false,
            max_attempts: 12,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            request_timeout: Duration::from_secs(10),
            max_in_flight: 64,
            poll_interval: Duration::from_secs(5),
        }
    }
}

impl WebhookConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`WebhookConfig::signing_secret`] (a [`Secret`], or an `Option` of one).
    pub fn with_signing_secret(mut self, secret: impl Into<Option<Secret>>) -> Self {
        self.signing_secret = secret.into();
        self
    }

    /// Sets [`WebhookConfig::allow_private`].
    pub fn with_allow_private(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// Sets [`WebhookConfig::max_attempts`].
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`WebhookConfig::backoff_base`].
    pub fn with_backoff_base(mut self, base: Duration) -> Self {
        self.backoff_base = base;
        self
    }

    /// Sets [`WebhookConfig::backoff_max`].
    pub fn with_backoff_max(mut self, max: Duration) -> Self {
        self.backoff_max = max;
        self
    }

    /// Sets [`WebhookConfig::request_timeout`].
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`WebhookConfig::max_in_flight`] (0 counts as 1).
    pub fn with_max_in_flight(mut self, slots: usize) -> Self {
        self.max_in_flight = slots;
        self
    }

    /// Sets [`WebhookConfig::poll_interval`].
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }
}

/// Starts the delivery loop on the current tokio runtime.
///
/// Run one per node and store; several nodes on a shared store split the outbox between them
/// (a claimed delivery is hidden from other claimers until it is settled or its hold lapses).
///
/// # Panics
///
/// Outside a tokio runtime, or if the TLS backend cannot initialise (rustls with compiled-in
/// roots does not depend on the system, so this is not expected).
pub fn start<S: OutboxStore + SignalSource, C: Clock>(
    store: S,
    clock: C,
    config: WebhookConfig,
) -> RunningDelivery {
    service::start(store, clock, config, None)
}

/// [`start`], and the service's [`DeliverySignals`]: what a test waits on instead of polling
/// the store or a receiver (see the crate docs' test signals).
///
/// # Panics
///
/// As [`start`].
pub fn start_with_signals<S: OutboxStore + SignalSource, C: Clock>(
    store: S,
    clock: C,
    config: WebhookConfig,
) -> (RunningDelivery, DeliverySignals) {
    let (sender, signals) = DeliverySignals::channel();
    (service::start(store, clock, config, Some(sender)), signals)
}

/// The value of the `X-Runner-Signature` header for `body` under `secret`: `sha256=` and the
/// lowercase hex HMAC-SHA256 of the exact body bytes. For receivers' tests; a receiver should
/// compare in constant time (see the crate docs).
///
/// ```
/// // RFC 4231, test case 2.
/// assert_eq!(
///     runner_webhook::signature(b"Jefe", b"what do ya want for nothing?"),
///     "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
/// );
/// ```
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    service::signature(secret, body)
}
