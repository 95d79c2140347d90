//! The delivery service against a memory store and real HTTP receivers on 127.0.0.1.
//!
//! Time is a [`MockClock`] that only the test moves, so backoff is exact and nothing waits on
//! wall-clock luck: each test waits for requests and for the service's [`DeliverySignals`],
//! never for a duration. The only real timeout is a generous guard that turns a hang into a
//! failure.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use runner_core::execution::Execution;
use runner_core::executor::{EventKind as Reported, ExecutorEvent};
use runner_core::feed::{DeliveryKey, Event};
use runner_core::ids::{ExecutionId, JobId};
use runner_core::job::{Callback, CallbackLevel, Job};
use runner_core::secret::Secret;
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures;
use runner_core::time::{MockClock, Timestamp};
use runner_store_memory::MemoryStore;
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::DeliverySignals;
use crate::guard::vet_callback_url;

const NOW: Timestamp = 1_000_000;

/// Turns a hang into a failure; never reached when the service works.
const GUARD: Duration = Duration::from_secs(60);

async fn guarded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A request as a test receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    idempotency_key: Option<String>,
    attempt: Option<u32>,
    signature: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

impl Received {
    fn event(&self) -> Event {
        serde_json::from_slice(&self.body).expect("the body is an Event")
    }

    /// (sequence, attempt), what order tests compare.
    fn seen(&self) -> (u64, u32) {
        (self.event().sequence, self.attempt.expect("attempt header"))
    }
}

/// An HTTP receiver on 127.0.0.1 that answers each request with `respond(request)` and reports
/// it (before answering). Returns its URL.
async fn receiver(
    respond: impl Fn(&Received) -> u16 + Clone + Send + Sync + 'static,
) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (seen, requests) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let header = |name: &str| Some(headers.get(name)?.to_str().ok()?.to_owned());
            let received = Received {
                idempotency_key: header(IDEMPOTENCY_KEY_HEADER),
                attempt: header(ATTEMPT_HEADER).and_then(|value| value.parse().ok()),
                signature: header(SIGNATURE_HEADER),
                content_type: header("content-type"),
                body,
            };
            let status = respond(&received);
            let _ = seen.send(received);
            async move { StatusCode::from_u16(status).expect("test status") }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hook"), requests)
}

/// A receiver that accepts connections and never answers until `release` is sent (then it
/// closes them all). Reports each accepted connection.
async fn hanging_receiver() -> (String, mpsc::UnboundedReceiver<()>, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (accepted, connections) = mpsc::unbounded_channel();
    let (release, mut released) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                _ = &mut released => break,
                Ok((stream, _)) = listener.accept() => {
                    held.push(stream);
                    let _ = accepted.send(());
                }
            }
        }
    });
    (format!("http://{address}/hook"), connections, release)
}

/// A claimed execution with one DEBUG callback per URL and `host_events` executor events:
/// sequences 1 (created), 2 (claimed), then 3.. (the events). Returns its id and job.
async fn execution(store: &MemoryStore, urls: &[&str], host_events: usize) -> (ExecutionId, JobId) {
    let mut spec = fixtures::inline_spec(&["a"]);
    spec.callbacks = urls
        .iter()
        .map(|url| Callback {
            url: (*url).to_owned(),
            level: CallbackLevel::Debug,
        })
        .collect();
    let job = Job::new(fixtures::alias("ACME"), spec, NOW);
    store.insert_job(&job).await.expect("insert job");
    let execution = Execution::new(&job, None, None, NOW);
    store
        .insert_execution(&execution)
        .await
        .expect("insert execution");
    let claimed = store
        .claim(&"node-a".to_owned(), 1, NOW + 600_000, NOW)
        .await
        .expect("claim");
    assert_eq!(claimed[0].execution_id, execution.execution_id);
    let events: Vec<ExecutorEvent> = (0..host_events)
        .map(|index| ExecutorEvent {
            host: Some(format!("host-{index}")),
            ..ExecutorEvent::new(Reported::HostOk)
        })
        .collect();
    if !events.is_empty() {
        store
            .append_events(execution.execution_id, 1, &events, NOW)
            .await
            .expect("append events");
    }
    (execution.execution_id, job.id)
}

async fn next_request(requests: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    guarded("a request", requests.recv())
        .await
        .expect("receiver alive")
}

async fn next_signal(signals: &mut DeliverySignals) -> DeliverySignal {
    guarded("a signal", signals.next())
        .await
        .expect("the service runs")
}

/// The next settlement the service wrote to the store, passing over its other signals.
async fn next_settlement(signals: &mut DeliverySignals) -> (DeliveryKey, Settlement) {
    loop {
        match next_signal(signals).await {
            DeliverySignal::Settled {
                key, settlement, ..
            } => return (key, settlement),
            DeliverySignal::NotSettled { key, error, .. } => {
                panic!("the memory store refused to settle {key:?}: {error}")
            }
            _ => {}
        }
    }
}

/// The next claim or settlement, passing over the loop's parking.
async fn next_step(signals: &mut DeliverySignals) -> DeliverySignal {
    loop {
        match next_signal(signals).await {
            DeliverySignal::Parked { .. } => {}
            step => return step,
        }
    }
}

/// Waits until the loop parks with nothing in flight and returns when it means to wake; any
/// claim or settlement on the way fails the test.
async fn idle(signals: &mut DeliverySignals) -> Timestamp {
    loop {
        match next_signal(signals).await {
            DeliverySignal::Parked {
                in_flight: 0,
                wake_at,
            } => return wake_at,
            DeliverySignal::Parked { .. } => {}
            step => panic!("expected the loop to park, got {step:?}"),
        }
    }
}

fn memory_store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new())
}

fn test_config() -> WebhookConfig {
    WebhookConfig::new()
        .with_allow_private(true)
        .with_backoff_base(Duration::from_secs(1))
        .with_backoff_max(Duration::from_secs(4))
}

fn verifies(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let expected: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    expected.is_some_and(|expected| mac.verify_slice(&expected).is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_signed_idempotent_events_in_order() {
    let store = memory_store();
    let clock = MockClock::at(NOW);
    let (url, mut requests) = receiver(|_| 200).await;
    let (id, job_id) = execution(&store, &[&url], 2).await;
    let config = test_config().with_signing_secret(Secret::new("s3cr3t"));
    let (delivery, mut signals) = crate::start_with_signals(store.clone(), clock.clone(), config);

    let recorded = store
        .list_events(&fixtures::alias("ACME"), job_id, id, 0, 100)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 4);
    for expected in &recorded {
        let request = next_request(&mut requests).await;
        assert_eq!(
            &request.event(),
            expected,
            "in sequence order, the JSON event"
        );
        assert_eq!(
            request.idempotency_key.as_deref(),
            Some(format!("{id}:0:{}", expected.sequence).as_str())
        );
        assert_eq!(request.attempt, Some(1));
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        let signature = request.signature.as_deref().expect("signed");
        assert!(verifies(b"s3cr3t", &request.body, signature), "{signature}");
        assert!(!verifies(b"other", &request.body, signature));
    }
    for _ in &recorded {
        let (_, settlement) = next_settlement(&mut signals).await;
        assert_eq!(settlement, Settlement::Delivered);
    }
    assert_eq!(
        store.next_delivery_at().await.unwrap(),
        None,
        "outbox empty"
    );
    delivery.shutdown().await;
    assert!(requests.try_recv().is_err(), "each delivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_signature_without_a_secret() {
    let store = memory_store();
    let (url, mut requests) = receiver(|_| 204).await;
    execution(&store, &[&url], 0).await;
    let delivery = crate::start(store.clone(), MockClock::at(NOW), test_config());
    let request = next_request(&mut requests).await;
    assert_eq!(request.signature, None);
    assert!(request.idempotency_key.is_some());
    delivery.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_backoff_and_keeps_the_queue_in_order() {
    let store = memory_store();
    let clock = MockClock::at(NOW);
    let failures = Arc::new(AtomicU32::new(3));
    let (url, mut requests) = receiver({
        let failures = Arc::clone(&failures);
        move |_| {
            let failing = failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
            if failing { 503 } else { 200 }
        }
    })
    .await;
    let (id, _) = execution(&store, &[&url], 1).await;
    let (delivery, mut signals) =
        crate::start_with_signals(store.clone(), clock.clone(), test_config());

    // Three failed attempts of sequence 1: each retry waits base * 2^(n-1) (1 s, 2 s, 4 s),
    // with jitter into its upper half, from the time the attempt failed.
    for (attempt, nominal) in [(1, 1_000), (2, 2_000), (3, 4_000)] {
        assert_eq!(next_request(&mut requests).await.seen(), (1, attempt));
        let (key, settlement) = next_settlement(&mut signals).await;
        assert_eq!(
            key,
            DeliveryKey {
                execution_id: id,
                callback: 0,
                sequence: 1
            }
        );
        let Settlement::Retry { at, error } = settlement else {
            panic!("expected a retry, got {settlement:?}");
        };
        assert_eq!(error, "HTTP 503 Service Unavailable");
        let failed_at = clock.now();
        assert!(
            (failed_at + nominal / 2..=failed_at + nominal).contains(&at),
            "attempt {attempt}: retry at +{}",
            at - failed_at
        );
        // Nothing else of this queue may go while sequence 1 waits.
        assert!(requests.try_recv().is_err());
        clock.set(at);
    }
    let seen: Vec<(u64, u32)> = [
        next_request(&mut requests).await,
        next_request(&mut requests).await,
        next_request(&mut requests).await,
    ]
    .iter()
    .map(Received::seen)
    .collect();
    assert_eq!(seen, [(1, 4), (2, 1), (3, 1)]);
    delivery.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_max_attempts_and_moves_on() {
    let store = memory_store();
    let clock = MockClock::at(NOW);
    // Sequence 1 always fails; the rest succeed.
    let (url, mut requests) = receiver(|request| {
        if request.event().sequence == 1 {
            500
        } else {
            200
        }
    })
    .await;
    execution(&store, &[&url], 1).await;
    let config = test_config().with_max_attempts(2);
    let (delivery, mut signals) = crate::start_with_signals(store.clone(), clock.clone(), config);

    assert_eq!(next_request(&mut requests).await.seen(), (1, 1));
    let (_, settlement) = next_settlement(&mut signals).await;
    let Settlement::Retry { at, .. } = settlement else {
        panic!("expected a retry, got {settlement:?}");
    };
    clock.set(at);
    assert_eq!(next_request(&mut requests).await.seen(), (1, 2));
    let (key, settlement) = next_settlement(&mut signals).await;
    assert_eq!(key.sequence, 1);
    assert_eq!(
        settlement,
        Settlement::GiveUp {
            error: "HTTP 500 Internal Server Error".into()
        }
    );
    assert_eq!(next_request(&mut requests).await.seen(), (2, 1));
    assert_eq!(next_request(&mut requests).await.seen(), (3, 1));
    delivery.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_does_not_hold_back_another_callback() {
    let store = memory_store();
    let (hanging, mut connections, release) = hanging_receiver().await;
    let (url, mut requests) = receiver(|_| 200).await;
    // Two slots: the hanging queue takes one for as long as it hangs, the other queue the other.
    let config = test_config().with_max_in_flight(2);
    let (id, _) = execution(&store, &[&hanging, &url], 4).await;
    let (delivery, mut signals) =
        crate::start_with_signals(store.clone(), MockClock::at(NOW), config);

    guarded("the hanging connection", connections.recv()).await;
    let mut seen = Vec::new();
    for _ in 1..=6 {
        seen.push(next_request(&mut requests).await.seen());
    }
    assert_eq!(seen, [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1)]);

    // Released, the hanging attempt fails and is settled for a retry; its queue never moved.
    release.send(()).unwrap();
    loop {
        let (key, settlement) = next_settlement(&mut signals).await;
        if key.callback == 0 {
            assert_eq!(
                key,
                DeliveryKey {
                    execution_id: id,
                    callback: 0,
                    sequence: 1
                }
            );
            assert!(
                matches!(settlement, Settlement::Retry { .. }),
                "{settlement:?}"
            );
            break;
        }
    }
    delivery.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_at_delivery() {
    let store = memory_store();
    let (url, mut requests) = receiver(|_| 200).await;
    let by_name = url.replace("127.0.0.1", "localhost");
    for url in [&url, &by_name] {
        let refused = vet_callback_url(url, false).await.unwrap_err();
        assert!(refused.to_string().contains("loopback"), "{refused}");
    }
    let (id, _) = execution(&store, &[&url, &by_name], 0).await;
    let config = test_config().with_allow_private(false).with_max_attempts(1);
    let (delivery, mut signals) =
        crate::start_with_signals(store.clone(), MockClock::at(NOW), config);

    // Sequences 1 and 2 for both callbacks: the IP literal (checked before connecting) and the
    // name (its resolver leaves no address).
    let mut refused = Vec::new();
    for _ in 0..4 {
        let (key, settlement) = next_settlement(&mut signals).await;
        assert_eq!(key.execution_id, id);
        let Settlement::GiveUp { error } = settlement else {
            panic!("expected a refusal, got {settlement:?}");
        };
        assert!(error.contains("loopback address"), "{error}");
        assert!(
            !error.contains("/hook"),
            "errors leave the URL out: {error}"
        );
        refused.push((key.callback, key.sequence));
    }
    refused.sort_unstable();
    assert_eq!(refused, [(0, 1), (0, 2), (1, 1), (1, 2)]);
    delivery.shutdown().await;
    assert!(
        requests.try_recv().is_err(),
        "the receiver was never reached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_attempts_in_flight_and_settles_them() {
    let store = memory_store();
    let (hanging, mut connections, release) = hanging_receiver().await;
    execution(&store, &[&hanging], 0).await;
    let (delivery, mut signals) =
        crate::start_with_signals(store.clone(), MockClock::at(NOW), test_config());
    guarded("the hanging connection", connections.recv()).await;

    let shutdown = tokio::spawn(delivery.shutdown());
    release.send(()).unwrap();
    guarded("the shutdown", shutdown).await.unwrap();
    let (key, settlement) = std::iter::from_fn(|| signals.try_next())
        .find_map(|signal| match signal {
            DeliverySignal::Settled {
                key, settlement, ..
            } => Some((key, settlement)),
            _ => None,
        })
        .expect("settled before shutdown returned");
    assert_eq!(key.sequence, 1);
    assert!(
        matches!(settlement, Settlement::Retry { .. }),
        "{settlement:?}"
    );
}

#[test]
fn backoff_doubles_up_to_the_cap_with_jitter() {
    let config = WebhookConfig::new()
        .with_backoff_base(Duration::from_secs(1))
        .with_backoff_max(Duration::from_secs(600));
    for (failed, nominal) in [
        (1, 1),
        (2, 2),
        (3, 4),
        (10, 512),
        (11, 600),
        (12, 600),
        (1_000, 600),
    ] {
        let nominal = Duration::from_secs(nominal);
        for _ in 0..100 {
            let wait = backoff(&config, failed);
            assert!(
                nominal / 2 <= wait && wait <= nominal,
                "attempt {failed}: {wait:?}"
            );
        }
    }
}

#[test]
fn signature_is_the_hex_hmac_of_the_body() {
    // RFC 4231, test case 2.
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert!(verifies(b"Jefe", b"body", &signature(b"Jefe", b"body")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_later_wake_the_loop() {
    let store = memory_store();
    let clock = MockClock::at(NOW);
    let (url, mut requests) = receiver(|_| 200).await;
    // Started on an empty outbox, with a clock that never reaches the next poll: only the
    // store's feed signals can bring these deliveries. The events are recorded once the loop
    // has parked, so its first claim cannot have found them.
    let (delivery, mut signals) =
        crate::start_with_signals(store.clone(), clock.clone(), test_config());
    idle(&mut signals).await;
    let (id, _) = execution(&store, &[&url], 0).await;
    assert_eq!(next_request(&mut requests).await.seen(), (1, 1));
    assert_eq!(next_request(&mut requests).await.seen(), (2, 1));
    let more = [ExecutorEvent::new(Reported::PlaybookStart)];
    store.append_events(id, 1, &more, NOW).await.unwrap();
    assert_eq!(next_request(&mut requests).await.seen(), (3, 1));
    delivery.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let store = memory_store();
    let (elsewhere, mut redirected) = receiver(|_| 200).await;
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let location = elsewhere.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [("location", location)]) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    execution(&store, &[&url], 0).await;
    let (delivery, mut signals) =
        crate::start_with_signals(store.clone(), MockClock::at(NOW), test_config());

    let (_, settlement) = next_settlement(&mut signals).await;
    let Settlement::Retry { error, .. } = settlement else {
        panic!("expected a retry, got {settlement:?}");
    };
    assert_eq!(error, "HTTP 307 Temporary Redirect");
    delivery.shutdown().await;
    assert!(
        redirected.try_recv().is_err(),
        "the redirect was not followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_callbacks_speak_tls() {
    let store = memory_store();
    let (url, mut requests) = receiver(|_| 200).await;
    // A plain HTTP receiver at an https URL: the client must attempt a TLS handshake (and fail
    // it), which shows TLS is compiled in rather than the scheme refused.
    let url = url.replace("http://", "https://");
    execution(&store, &[&url], 0).await;
    let (delivery, mut signals) =
        crate::start_with_signals(store.clone(), MockClock::at(NOW), test_config());
    let (_, settlement) = next_settlement(&mut signals).await;
    let Settlement::Retry { error, .. } = settlement else {
        panic!("expected a retry, got {settlement:?}");
    };
    assert!(error.contains("error sending request"), "{error}");
    assert!(!error.contains("scheme"), "{error}");
    delivery.shutdown().await;
    assert!(requests.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_report_each_claim_settlement_and_park() {
    let store = memory_store();
    let clock = MockClock::at(NOW);
    // The first request fails, every later one succeeds.
    let failures = Arc::new(AtomicU32::new(1));
    let (url, _requests) = receiver({
        let failures = Arc::clone(&failures);
        move |_| {
            let failing = failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
            if failing { 503 } else { 200 }
        }
    })
    .await;
    let (id, _) = execution(&store, &[&url], 0).await;
    let config = test_config();
    let poll = config.poll_interval;
    let (delivery, mut signals) = crate::start_with_signals(store.clone(), clock.clone(), config);
    let key = |sequence| DeliveryKey {
        execution_id: id,
        callback: 0,
        sequence,
    };

    assert_eq!(
        next_step(&mut signals).await,
        DeliverySignal::Claimed {
            key: key(1),
            attempt: 1
        }
    );
    let step = next_step(&mut signals).await;
    let DeliverySignal::Settled {
        key: settled,
        attempt: 1,
        settlement: Settlement::Retry { at, .. },
    } = step
    else {
        panic!("expected attempt 1 to be settled for a retry, got {step:?}");
    };
    assert_eq!(settled, key(1));
    assert_eq!(
        idle(&mut signals).await,
        at,
        "the loop sleeps until the retry is due"
    );

    clock.set(at);
    for (sequence, attempt) in [(1, 2), (2, 1)] {
        assert_eq!(
            next_step(&mut signals).await,
            DeliverySignal::Claimed {
                key: key(sequence),
                attempt
            }
        );
        assert_eq!(
            next_step(&mut signals).await,
            DeliverySignal::Settled {
                key: key(sequence),
                attempt,
                settlement: Settlement::Delivered
            }
        );
    }
    assert_eq!(
        idle(&mut signals).await,
        time::after(at, poll),
        "an empty outbox leaves only the poll"
    );

    delivery.shutdown().await;
    // The service is gone with its end of the channel: what is left ends, and claims nothing.
    while let Some(signal) = guarded("the end of the signals", signals.next()).await {
        assert!(
            matches!(signal, DeliverySignal::Parked { in_flight: 0, .. }),
            "{signal:?}"
        );
    }
}
