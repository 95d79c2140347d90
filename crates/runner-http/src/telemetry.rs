//! Prometheus metrics: the recorder the `metrics` facade writes to, the HTTP request metrics,
//! the store call metrics, and `GET /metrics`.
//!
//! The engine (`runner_core::meter`) and the webhook delivery (`runner_webhook::DELIVERIES`)
//! record through the `metrics` facade; this module installs the one process-wide recorder
//! (`metrics-exporter-prometheus`) they write to and renders it in the Prometheus text format.
//! Labels are bounded: an HTTP route is its matched path template (`/jobs/{alias}/{jobId}`),
//! never the path as sent, and nothing carries an execution id, a job id or an account.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use runner_core::execution::Status;
use runner_core::store::{ExecutionStore, OutboxStore, Signal, StoreError};

/// HTTP requests answered, by `method`, `route` (the matched path template, `unmatched` for no
/// route) and `status` (counter).
pub const HTTP_REQUESTS: &str = "runner_http_requests_total";
/// How long HTTP requests took until their response head, by `method` and `route`, in seconds
/// (histogram).
pub const HTTP_DURATION: &str = "runner_http_request_duration_seconds";
/// How long store calls took, in seconds (histogram).
pub const STORE_DURATION: &str = "runner_store_call_duration_seconds";
/// Store calls that failed in the backend, by `kind` (`unavailable`, `corrupt`) (counter). A
/// refusal, a conflict or a missing record is an answer, not an error.
pub const STORE_ERRORS: &str = "runner_store_errors_total";

/// Executions in each live status now, by `status`, across every account (gauge, read from the
/// store at each scrape).
pub const EXECUTIONS: &str = "runner_executions";
/// Webhook deliveries waiting to be delivered (gauge, read from the store at each scrape).
pub const WEBHOOK_BACKLOG: &str = "runner_webhook_backlog";

/// Buckets of the histograms of seconds: from a fast store call (1 ms) to a long run (4 h).
const SECONDS_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 60.0, 300.0, 1800.0,
    14400.0,
];

/// The process's Prometheus recorder, to render `/metrics` from. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The process-wide recorder, installed on the first call. The `metrics` facade has one
    /// global recorder per process, so every server of a process (tests run several) shares it.
    ///
    /// # Panics
    ///
    /// When another recorder was installed before, by something other than this function.
    pub fn global() -> Self {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let mut builder = PrometheusBuilder::new();
            let histograms = runner_core::meter::SECONDS_HISTOGRAMS
                .into_iter()
                .chain([HTTP_DURATION, STORE_DURATION]);
            for name in histograms {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(name.to_owned()), &SECONDS_BUCKETS)
                    .expect("the buckets are not empty");
            }
            let handle = builder
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        });
        Self {
            handle: handle.clone(),
        }
    }

    /// Every metric, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn describe() {
    runner_core::meter::describe();
    runner_webhook::describe_metrics();
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests answered.");
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "How long HTTP requests took until their response head."
    );
    metrics::describe_histogram!(
        STORE_DURATION,
        metrics::Unit::Seconds,
        "How long store calls took."
    );
    metrics::describe_counter!(STORE_ERRORS, "Store calls that failed in the backend.");
}

/// Middleware: counts and times every request by route template and status.
pub(crate) async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// What a store call returned, as the store metrics see it.
pub trait StoreOutcome {
    /// The kind of backend failure, if the call failed in the backend.
    fn backend_error(&self) -> Option<&'static str>;
}

impl<T> StoreOutcome for Result<T, StoreError> {
    fn backend_error(&self) -> Option<&'static str> {
        match self {
            Err(StoreError::Unavailable(_)) => Some("unavailable"),
            Err(StoreError::Corrupt(_)) => Some("corrupt"),
            _ => None,
        }
    }
}

impl StoreOutcome for tokio::sync::broadcast::Receiver<Signal> {
    fn backend_error(&self) -> Option<&'static str> {
        None
    }
}

/// Records one store call that began at `started` and returned `outcome`.
pub fn store_call(started: Instant, outcome: &impl StoreOutcome) {
    metrics::histogram!(STORE_DURATION).record(started.elapsed().as_secs_f64());
    if let Some(kind) = outcome.backend_error() {
        metrics::counter!(STORE_ERRORS, "kind" => kind).increment(1);
    }
}

/// The text of `/metrics`: the recorder's metrics, then the gauges read from `store` now.
///
/// The store's gauges are written here, not through the process-wide recorder: they describe
/// this server's store, and a recorder shared by several servers of one process (tests) would
/// show whichever store wrote last. A store that does not answer within the request patience
/// leaves them out (with a warning in the log), so the scrape still answers.
pub(crate) async fn exposition<S: ExecutionStore + OutboxStore>(
    metrics: &Metrics,
    store: &S,
) -> Response {
    let mut text = metrics.render();
    let gauges = async { Ok::<_, StoreError>((store.count_live().await?, store.backlog().await?)) };
    match tokio::time::timeout(crate::router::STORE_PATIENCE, gauges).await {
        Ok(Ok((live, backlog))) => text.push_str(&store_gauges(&live, backlog)),
        Ok(Err(error)) => tracing::warn!(%error, "metrics: the store's gauges could not be read"),
        Err(_) => tracing::warn!("metrics: the store did not answer for its gauges"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// [`EXECUTIONS`] and [`WEBHOOK_BACKLOG`] in the text exposition format.
fn store_gauges(live: &[(Status, u64)], backlog: u64) -> String {
    use std::fmt::Write as _;
    let mut text = format!(
        "# HELP {EXECUTIONS} Executions in each live status now, across every account.\n\
         # TYPE {EXECUTIONS} gauge\n"
    );
    for (status, count) in live {
        let _ = writeln!(
            text,
            "{EXECUTIONS}{{status=\"{}\"}} {count}",
            status.as_str()
        );
    }
    let _ = write!(
        text,
        "# HELP {WEBHOOK_BACKLOG} Webhook deliveries waiting to be delivered.\n\
         # TYPE {WEBHOOK_BACKLOG} gauge\n{WEBHOOK_BACKLOG} {backlog}\n"
    );
    text
}

/// Serves only `GET /metrics`, without authentication: the router of `--metrics-listen`, an
/// address meant for the scraper alone.
pub fn metrics_router<S: ExecutionStore + OutboxStore>(
    metrics: Metrics,
    store: std::sync::Arc<S>,
) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            let store = std::sync::Arc::clone(&store);
            async move { exposition(&metrics, &*store).await }
        }),
    )
}
