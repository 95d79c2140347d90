//! The handlers of the Job Service. Each one parses (through [`crate::extract`]), calls one or two
//! [`Engine`] operations, and maps the result; the rules live in the engine. The Job Schedule
//! Service's handlers are in [`schedules`] and [`service_accounts`].

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use runner_core::engine::{Engine, StartRequest};
use runner_core::execution::ExecutionView;
use runner_core::executor::Executor;
use runner_core::job::{JOB_READ_ONLY_FIELDS, JobSpec};
use runner_core::notifier::Notifier;
use runner_core::page::Page;
use runner_core::store::Store;
use runner_core::time::Clock;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{
    AccountPath, ExecutionPath, Immediate, JobPath, JsonBody, OptionalJsonBody, PageQuery,
    RequestBody,
};
use crate::response::{JobResponse, execution_href, job_href};

pub mod events;
pub mod schedules;
pub mod service_accounts;

/// The longest `expiryDuration` accepted: a week, in seconds.
pub const MAX_EXPIRY_SECONDS: f64 = 604_800.0;

impl RequestBody for JobSpec {
    const READ_ONLY: &'static [&'static str] = JOB_READ_ONLY_FIELDS;
}

impl RequestBody for StartRequest {}

/// The body of a stop or kill request.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryRequest {
    /// Seconds; 0 (the default) means no escalation (stop) or no forced end (kill).
    #[serde(default)]
    pub expiry_duration: f64,
}

impl RequestBody for ExpiryRequest {}

impl ExpiryRequest {
    fn duration(self) -> Result<Duration, ApiError> {
        let seconds = self.expiry_duration;
        if !(0.0..=MAX_EXPIRY_SECONDS).contains(&seconds) {
            return Err(ApiError::field(
                "expiryDuration",
                format!("must be a number of seconds from 0 to {MAX_EXPIRY_SECONDS}"),
            ));
        }
        Ok(Duration::from_secs_f64(seconds))
    }
}

/// What every handler shares: the engine and the live feed's settings.
pub struct AppState<S, E, N, C> {
    /// The engine the handlers call.
    pub engine: Engine<S, E, N, C>,
    /// Whether job callbacks may target loopback, private and link-local addresses.
    pub allow_private_callbacks: bool,
    /// Ends the open live streams at shutdown.
    pub live_feeds: events::LiveFeeds,
}

impl<S, E, N, C> Clone for AppState<S, E, N, C> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            allow_private_callbacks: self.allow_private_callbacks,
            live_feeds: self.live_feeds.clone(),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn created(location: String, body: impl serde::Serialize) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}

/// `POST /jobs/{alias}?immediate=`: creates a job (201 + Location); `immediate=true` also starts
/// an execution, linked from the job's `links` as `execution`. Callback URLs the SSRF guard
/// refuses are 400 ([`events::vet_callbacks`]).
pub async fn create_job<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    Immediate(immediate): Immediate,
    JsonBody(spec): JsonBody<JobSpec>,
) -> ApiResult<Response> {
    events::vet_callbacks(&spec, state.allow_private_callbacks).await?;
    let job = state.engine.create_job(&alias, spec).await?;
    let location = job_href(&alias, job.id);
    let mut response = JobResponse::new(job);
    if immediate {
        let execution = state
            .engine
            .start_job(&alias, response.job.id, StartRequest::default())
            .await?;
        response = response.with_execution(&execution);
    }
    Ok(created(location, response))
}

/// `GET /jobs/{alias}?page=&size=`: the account's jobs, newest first.
pub async fn list_jobs<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<Page<JobResponse>>> {
    let jobs = state.engine.list_jobs(&alias, page).await?;
    Ok(Json(jobs.map(JobResponse::new)))
}

/// `GET /jobs/{alias}/{jobId}`.
pub async fn get_job<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
) -> ApiResult<Json<JobResponse>> {
    let job = state.engine.get_job(&alias, job_id).await?;
    Ok(Json(JobResponse::new(job)))
}

/// `PUT /jobs/{alias}/{jobId}?immediate=`: replaces the definition; `"********"` keeps a secret.
/// Callback URLs are checked as on create (an unknown job is still 404 first).
pub async fn update_job<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
    Immediate(immediate): Immediate,
    JsonBody(spec): JsonBody<JobSpec>,
) -> ApiResult<Json<JobResponse>> {
    if let Err(refused) = events::vet_callbacks(&spec, state.allow_private_callbacks).await {
        state.engine.get_job(&alias, job_id).await?;
        return Err(refused);
    }
    let job = state.engine.update_job(&alias, job_id, spec).await?;
    let mut response = JobResponse::new(job);
    if immediate {
        let execution = state
            .engine
            .start_job(&alias, job_id, StartRequest::default())
            .await?;
        response = response.with_execution(&execution);
    }
    Ok(Json(response))
}

/// `DELETE /jobs/{alias}/{jobId}`: 204; 409 while an execution is active.
pub async fn delete_job<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
) -> ApiResult<StatusCode> {
    state.engine.delete_job(&alias, job_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /jobs/{alias}/{jobId}/start`: a new PENDING execution (201 + Location).
pub async fn start_job<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
    OptionalJsonBody(request): OptionalJsonBody<StartRequest>,
) -> ApiResult<Response> {
    let execution = state.engine.start_job(&alias, job_id, request).await?;
    let location = execution_href(&alias, job_id, execution.execution_id);
    Ok(created(location, execution.view()))
}

/// `GET /jobs/{alias}/{jobId}/executions?page=&size=`: newest first. 404 when the job never
/// existed (a deleted job's executions stay readable).
pub async fn list_executions<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<Page<ExecutionView>>> {
    let executions = state.engine.list_executions(&alias, job_id, page).await?;
    if executions.total_size == 0 {
        state.engine.get_job(&alias, job_id).await?;
    }
    Ok(Json(executions.map(|execution| execution.view())))
}

/// `GET /jobs/{alias}/{jobId}/executions/{executionId}`.
pub async fn get_execution<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: ExecutionPath,
) -> ApiResult<Json<ExecutionView>> {
    let execution = state
        .engine
        .get_execution(&path.alias, path.job_id, path.execution_id)
        .await?;
    Ok(Json(execution.view()))
}

/// `POST .../executions/{executionId}/restart`: a FAILURE execution runs again (409 otherwise).
pub async fn restart_execution<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: ExecutionPath,
    OptionalJsonBody(request): OptionalJsonBody<StartRequest>,
) -> ApiResult<Json<ExecutionView>> {
    let execution = state
        .engine
        .restart(&path.alias, path.job_id, path.execution_id, request)
        .await?;
    Ok(Json(execution.view()))
}

/// `POST .../executions/{executionId}/stop`: graceful stop, escalating after `expiryDuration`.
pub async fn stop_execution<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: ExecutionPath,
    OptionalJsonBody(request): OptionalJsonBody<ExpiryRequest>,
) -> ApiResult<Json<ExecutionView>> {
    let expiry = request.duration()?;
    let execution = state
        .engine
        .stop(&path.alias, path.job_id, path.execution_id, expiry)
        .await?;
    Ok(Json(execution.view()))
}

/// `POST .../executions/{executionId}/kill`: kill, forced after `expiryDuration` if unconfirmed.
pub async fn kill_execution<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: ExecutionPath,
    OptionalJsonBody(request): OptionalJsonBody<ExpiryRequest>,
) -> ApiResult<Json<ExecutionView>> {
    let expiry = request.duration()?;
    let execution = state
        .engine
        .kill(&path.alias, path.job_id, path.execution_id, expiry)
        .await?;
    Ok(Json(execution.view()))
}

/// How long `/healthz` waits for the store.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /healthz` (no auth): 200 `{"status":"ok"}` when the store answers, else 503.
pub async fn healthz<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
) -> Response {
    let probe = tokio::time::timeout(HEALTH_TIMEOUT, state.engine.store().next_deadline()).await;
    match probe {
        Ok(Ok(_)) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: store error");
            unavailable()
        }
        Err(_) => {
            tracing::warn!("health check: store did not answer in time");
            unavailable()
        }
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"status": "unavailable"})),
    )
        .into_response()
}
