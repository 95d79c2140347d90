//! The handlers of the Job Service. Each one parses (through [`crate::extract`]), calls one or two
//! [`Engine`] operations, and maps the result; the rules live in the engine. The Job Schedule
//! Service's handlers are in [`schedules`] and [`service_accounts`].

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use runner_core::engine::{Engine, RestartRequest, StartRequest};
use runner_core::execution::ExecutionView;
use runner_core::executor::Executor;
use runner_core::job::{JOB_READ_ONLY_FIELDS, JobSpec};
use runner_core::notifier::Notifier;
use runner_core::page::{Page, PageRequest};
use runner_core::store::Store;
use runner_core::time::Clock;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{
    AccountPath, ExecutionPath, ExecutionQuery, Immediate, JobPath, JsonBody, OptionalJsonBody,
    PageQuery, RequestBody,
};
use crate::response::{JobResponse, execution_href, job_href};

pub mod deliveries;
pub mod events;
pub mod inventory;
pub mod key_pairs;
pub mod operations;
pub mod run_log;
pub mod schedules;
pub mod service_accounts;

/// The longest `expiryDuration` accepted: a week, in seconds.
pub const MAX_EXPIRY_SECONDS: f64 = 604_800.0;

impl RequestBody for JobSpec {
    const READ_ONLY: &'static [&'static str] = JOB_READ_ONLY_FIELDS;

    fn rule_errors(&self) -> Vec<runner_core::validation::FieldError> {
        errors_of(self.validate())
    }
}

/// The field errors of a domain check, for [`RequestBody::rule_errors`].
pub(crate) fn errors_of(
    checked: Result<(), runner_core::validation::ValidationErrors>,
) -> Vec<runner_core::validation::FieldError> {
    checked
        .err()
        .map(|errors| errors.errors)
        .unwrap_or_default()
}

impl RequestBody for StartRequest {
    fn rule_errors(&self) -> Vec<runner_core::validation::FieldError> {
        errors_of(self.validate())
    }
}

impl RequestBody for RestartRequest {
    fn rule_errors(&self) -> Vec<runner_core::validation::FieldError> {
        errors_of(StartRequest::from(self.clone()).validate())
    }
}

/// The body of a stop or kill request.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryRequest {
    /// Seconds, 0 to 604800. Stop: escalate to a kill when not stopped by then. Kill: mark
    /// KILLED when no node confirmed by then. 0 (the default) means no escalation (stop) or no
    /// forced end (kill).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800)]
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
    /// Readiness and metrics.
    pub operations: operations::Operations,
}

impl<S, E, N, C> std::fmt::Debug for AppState<S, E, N, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("engine", &self.engine)
            .field("allow_private_callbacks", &self.allow_private_callbacks)
            .field("live_feeds", &self.live_feeds)
            .field("operations", &self.operations)
            .finish()
    }
}

impl<S, E, N, C> Clone for AppState<S, E, N, C> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            allow_private_callbacks: self.allow_private_callbacks,
            live_feeds: self.live_feeds.clone(),
            operations: self.operations.clone(),
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

/// Creates a job.
///
/// `POST /jobs/{alias}?immediate=`: 201 + Location; `immediate=true` also starts an execution,
/// linked from the job's `links` as `execution`. Callback URLs the SSRF guard refuses are 400.
#[utoipa::path(post, path = "/jobs/{alias}", tag = "jobs", operation_id = "createJob",
    params(AccountPath, Immediate),
    request_body(content = JobSpec, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; Location is the job's path", body = JobResponse,
         headers(("Location" = String, description = "/jobs/{alias}/{id}"))),
        (status = 400, description = "Invalid body or alias", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Account not in the token's scope", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
        (status = 409, description = "A key pair or service account the body names does not exist in the account, or a field sends the mask `********` where no secret is stored (each such field is named)", body = ErrorBody)))]
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

/// The account's jobs, newest first.
///
/// `GET /jobs/{alias}?page=&size=`.
#[utoipa::path(get, path = "/jobs/{alias}", tag = "jobs", operation_id = "listJobs",
    params(AccountPath, PageRequest),
    responses((status = 200, description = "A page of jobs, newest first", body = Page<JobResponse>),
        (status = 400, description = "Bad page or size", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn list_jobs<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<Page<JobResponse>>> {
    let jobs = state.engine.list_jobs(&alias, page).await?;
    Ok(Json(jobs.map(JobResponse::new)))
}

/// A job.
///
/// `GET /jobs/{alias}/{jobId}`.
#[utoipa::path(get, path = "/jobs/{alias}/{jobId}", tag = "jobs", operation_id = "getJob",
    params(JobPath),
    responses((status = 200, body = JobResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such job in this account (or a malformed ID)",
         body = ErrorBody)))]
pub async fn get_job<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
) -> ApiResult<Json<JobResponse>> {
    let job = state.engine.get_job(&alias, job_id).await?;
    Ok(Json(JobResponse::new(job)))
}

/// Replaces a job's definition.
///
/// `PUT /jobs/{alias}/{jobId}?immediate=`: `"********"` keeps a secret. Callback URLs are checked
/// as on create (an unknown job is still 404 first).
#[utoipa::path(put, path = "/jobs/{alias}/{jobId}", tag = "jobs", operation_id = "updateJob",
    params(JobPath, Immediate),
    request_body(content = JobSpec, content_type = "application/json",
        description = "The whole definition; \"********\" for a secret keeps the stored one"),
    responses((status = 200, body = JobResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 409, description = "A key pair or service account the body names does not exist in the account, or a field sends the mask `********` where no secret is stored (each such field is named)", body = ErrorBody)))]
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

/// Deletes a job.
///
/// `DELETE /jobs/{alias}/{jobId}`: 204; 409 while an execution is active.
#[utoipa::path(delete, path = "/jobs/{alias}/{jobId}", tag = "jobs", operation_id = "deleteJob",
    params(JobPath),
    responses((status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "An execution is still active", body = ErrorBody)))]
pub async fn delete_job<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
) -> ApiResult<StatusCode> {
    state.engine.delete_job(&alias, job_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a job: a new PENDING execution.
///
/// `POST /jobs/{alias}/{jobId}/start`: 201 + Location.
#[utoipa::path(post, path = "/jobs/{alias}/{jobId}/start", tag = "executions",
    operation_id = "startJob",
    params(JobPath),
    request_body(content = Option<StartRequest>, content_type = "application/json",
        description = "Optional; empty or {} runs on the job's hosts"),
    responses(
        (status = 201, description = "A PENDING execution; Location is its path",
         body = ExecutionView, headers(("Location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 409, description = "The job skips overlapping runs (`overlap: skip`) and an execution of it has not ended (the message names it); or a key pair or service account the body names does not exist in the account, or a field sends the mask `********` where no secret is stored (each such field is named)", body = ErrorBody)))]
pub async fn start_job<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
    OptionalJsonBody(request): OptionalJsonBody<StartRequest>,
) -> ApiResult<Response> {
    let execution = state.engine.start_job(&alias, job_id, request).await?;
    let location = execution_href(&alias, job_id, execution.execution_id);
    Ok(created(location, execution.view()))
}

/// A job's executions, newest first.
///
/// `GET /jobs/{alias}/{jobId}/executions?page=&size=&status=&since=&until=`: 404 when the job never
/// existed (a deleted job's executions stay readable). Without filters the executions come in the
/// order they were made; with filters, as `/executions/{alias}` orders them.
#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/executions", tag = "executions",
    operation_id = "listExecutions",
    params(JobPath, PageRequest, ExecutionQuery),
    responses((status = 200, body = Page<ExecutionView>),
        (status = 400, description = "Bad page, size or filter (the parameter is named)",
         body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_executions<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
    PageQuery(page): PageQuery,
    query: ExecutionQuery,
) -> ApiResult<Json<Page<ExecutionView>>> {
    let mut filter = query.filter();
    // Another job's id filters everything out: an empty page, as any filter that matches nothing.
    let other_job = filter.job_id.is_some_and(|asked| asked != job_id);
    filter.job_id = None;
    let executions = if other_job {
        Page::new(page, 0, Vec::new())
    } else if filter.is_empty() {
        state.engine.list_executions(&alias, job_id, page).await?
    } else {
        filter.job_id = Some(job_id);
        state.engine.find_executions(&alias, &filter, page).await?
    };
    // Nothing listed: 404 unless the job exists or once had executions (a deleted job's).
    if executions.total_size == 0
        && state
            .engine
            .list_executions(&alias, job_id, PageRequest { page: 0, size: 1 })
            .await?
            .total_size
            == 0
    {
        state.engine.get_job(&alias, job_id).await?;
    }
    Ok(Json(executions.map(|execution| execution.view())))
}

/// An account's executions across its jobs, newest first.
///
/// `GET /executions/{alias}?page=&size=&status=&jobId=&since=&until=`: ordered by creation time
/// then id, both descending; deleted jobs' executions included. An account with no executions (or
/// none that pass) is an empty page, not 404. `totalSize` is exact up to 1,000 matches past the
/// page; beyond, `totalSizeExact` is false and `totalSize` is a lower bound.
#[utoipa::path(get, path = "/executions/{alias}", tag = "executions",
    operation_id = "findExecutions",
    params(AccountPath, PageRequest, ExecutionQuery),
    responses((status = 200, description = "A page of executions, newest first",
         body = Page<ExecutionView>),
        (status = 400, description = "Bad page, size or filter (the parameter is named)",
         body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn find_executions<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    PageQuery(page): PageQuery,
    query: ExecutionQuery,
) -> ApiResult<Json<Page<ExecutionView>>> {
    let executions = state
        .engine
        .find_executions(&alias, &query.filter(), page)
        .await?;
    Ok(Json(executions.map(|execution| execution.view())))
}

/// An execution.
///
/// `GET /jobs/{alias}/{jobId}/executions/{executionId}`.
#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/executions/{executionId}", tag = "executions",
    operation_id = "getExecution",
    params(ExecutionPath),
    responses((status = 200, body = ExecutionView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
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

/// Runs a FAILURE execution again.
///
/// `POST .../executions/{executionId}/restart`: 409 unless the execution is in FAILURE.
#[utoipa::path(post, path = "/jobs/{alias}/{jobId}/executions/{executionId}/restart",
    tag = "executions", operation_id = "restartExecution",
    params(ExecutionPath),
    request_body(content = Option<RestartRequest>, content_type = "application/json"),
    responses((status = 200, description = "Back to PENDING", body = ExecutionView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not in FAILURE", body = ErrorBody)))]
pub async fn restart_execution<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: ExecutionPath,
    OptionalJsonBody(request): OptionalJsonBody<RestartRequest>,
) -> ApiResult<Json<ExecutionView>> {
    let execution = state
        .engine
        .restart(&path.alias, path.job_id, path.execution_id, request.into())
        .await?;
    Ok(Json(execution.view()))
}

/// Stops an execution gracefully.
///
/// `POST .../executions/{executionId}/stop`: escalates to a kill after `expiryDuration`.
#[utoipa::path(post, path = "/jobs/{alias}/{jobId}/executions/{executionId}/stop",
    tag = "executions", operation_id = "stopExecution",
    params(ExecutionPath),
    request_body(content = Option<ExpiryRequest>, content_type = "application/json"),
    responses((status = 200, description = "STOPPING (or the final status)", body = ExecutionView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
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

/// Kills an execution.
///
/// `POST .../executions/{executionId}/kill`: marked KILLED after `expiryDuration` if no node
/// confirmed.
#[utoipa::path(post, path = "/jobs/{alias}/{jobId}/executions/{executionId}/kill",
    tag = "executions", operation_id = "killExecution",
    params(ExecutionPath),
    request_body(content = Option<ExpiryRequest>, content_type = "application/json"),
    responses((status = 200, description = "KILLING (or KILLED)", body = ExecutionView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
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

/// Whether the server and its store answer.
///
/// `GET /healthz` (no auth): 200 `{"status":"ok"}` when the store answers, else 503.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "health", security(),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn healthz<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
) -> Response {
    let probe = tokio::time::timeout(HEALTH_TIMEOUT, state.engine.store().next_deadline()).await;
    match probe {
        Ok(Ok(_)) => Json(Health {
            status: HealthStatus::Ok,
        })
        .into_response(),
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
    let health = Health {
        status: HealthStatus::Unavailable,
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(health)).into_response()
}

/// The answer of `/healthz`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Health {
    /// Whether the store answered.
    pub status: HealthStatus,
}

/// What `/healthz` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// The store answered (200).
    Ok,
    /// The store did not answer in time, or failed (503).
    Unavailable,
}
