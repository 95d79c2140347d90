//! `GET /readyz` (may this node take traffic?) and `GET /metrics` (Prometheus text) on the API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use runner_core::executor::Executor;
use runner_core::notifier::Notifier;
use runner_core::store::Store;
use runner_core::time::Clock;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::telemetry::{self, Metrics};

/// How long `/readyz` waits for the store and for the executor's check.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the node drains: set at the shutdown signal, before anything stops, so that the load
/// balancer sees `/readyz` fail and stops sending traffic while the node still answers.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
}

impl Readiness {
    /// A node that takes traffic.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on `/readyz` answers 503 `draining`.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether [`Readiness::start_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// The probes' and metrics' settings the handlers share.
#[derive(Debug, Clone, Default)]
pub struct Operations {
    /// Whether the node drains.
    pub readiness: Readiness,
    /// The recorder `GET /metrics` renders; `None` when metrics are not served on the API
    /// (they are on `--metrics-listen`, or not at all).
    pub metrics: Option<Metrics>,
}

/// What `/readyz` found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readyz {
    /// `ready` (200) or `not_ready` (503).
    pub status: ReadyStatus,
    /// Why not, one entry per failed check (`draining`, `store: ...`, `executor: ...`); empty
    /// when ready.
    pub reasons: Vec<String>,
}

/// The verdict of `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// Every check passed (200).
    Ready,
    /// A check failed (503).
    NotReady,
}

/// Whether this node should get traffic.
///
/// `GET /readyz` (no auth): 200 when the node is not draining, the store answers, and the
/// executor can run a playbook (for Ansible: `ansible-playbook` runs, in the sandbox when there
/// is one); else 503 with the reasons. A node that got SIGTERM answers 503 `draining` from the
/// signal on, while it still serves, before it stops. `/healthz` stays the liveness probe.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "ready", security(),
    responses((status = 200, body = Readyz), (status = 503, body = Readyz)))]
pub async fn readyz<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
) -> Response {
    let mut reasons = Vec::new();
    if state.operations.readiness.is_draining() {
        reasons.push("draining".to_owned());
    }
    let engine = &state.engine;
    let (store, executor) = tokio::join!(
        tokio::time::timeout(READY_TIMEOUT, engine.store().next_deadline()),
        tokio::time::timeout(READY_TIMEOUT, engine.executor().ready()),
    );
    match store {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => reasons.push(format!("store: {error}")),
        Err(_) => reasons.push("store: no answer in time".to_owned()),
    }
    match executor {
        Ok(Ok(())) => {}
        Ok(Err(error)) => reasons.push(format!("executor: {error}")),
        Err(_) => reasons.push("executor: its check did not end in time".to_owned()),
    }
    if reasons.is_empty() {
        Json(Readyz {
            status: ReadyStatus::Ready,
            reasons,
        })
        .into_response()
    } else {
        tracing::info!(?reasons, "not ready");
        let body = Readyz {
            status: ReadyStatus::NotReady,
            reasons,
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// The node's metrics in the Prometheus text format.
///
/// `GET /metrics`: an operator's token (every account) only, since the numbers cover every
/// account. 404 when the server serves them on their own address (`--metrics-listen`) instead.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition format",
            content_type = "text/plain"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn metrics<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    Extension(scope): Extension<Scope>,
) -> Response {
    if scope != Scope::All {
        return ApiError::Forbidden("metrics need a token for every account".into())
            .into_response();
    }
    match &state.operations.metrics {
        Some(metrics) => telemetry::exposition(metrics, state.engine.store()).await,
        None => ApiError::NotFound("metrics are not served on this address".into()).into_response(),
    }
}
