//! The Job Schedule Service handlers: a job's schedules, which start it at cron or date triggers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use runner_core::executor::Executor;
use runner_core::notifier::Notifier;
use runner_core::page::{Page, PageRequest};
use runner_core::schedule::{SCHEDULE_READ_ONLY_FIELDS, Schedule, ScheduleSpec};
use runner_core::store::ScheduleStore;
use runner_core::time::Clock;

use super::{ApiResult, AppState, created};
use crate::error::ErrorBody;
use crate::extract::{JobPath, JsonBody, PageQuery, RequestBody, SchedulePath};
use crate::response::schedule_href;

impl RequestBody for ScheduleSpec {
    const READ_ONLY: &'static [&'static str] = SCHEDULE_READ_ONLY_FIELDS;

    /// The rules of a schedule but whether a date lies ahead, which the engine checks at its
    /// own now (here any date lies after the epoch).
    fn rule_errors(&self) -> Vec<runner_core::validation::FieldError> {
        crate::api::errors_of(self.validate(0).map(drop))
    }
}

/// Creates a schedule of a job.
///
/// `POST /jobs/{alias}/{jobId}/schedules`: 201 + Location. 400 for a bad trigger or an unknown
/// service account, 404 for an unknown job.
#[utoipa::path(post, path = "/jobs/{alias}/{jobId}/schedules", tag = "schedules",
    operation_id = "createSchedule",
    params(JobPath),
    request_body(content = ScheduleSpec, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; Location is its path", body = Schedule,
         headers(("Location" = String, description = "/jobs/{alias}/{jobId}/schedules/{scheduleId}"))),
        (status = 400, description = "Invalid body: a bad trigger (`trigger.expression` or \
             `type.expression`), a date in the past, an unknown `serviceAccountAlias`",
         body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such job in this account", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 409, description = "A key pair or service account the body names does not exist in the account, or a field sends the mask `********` where no secret is stored (each such field is named)", body = ErrorBody)))]
pub async fn create_schedule<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
    JsonBody(spec): JsonBody<ScheduleSpec>,
) -> ApiResult<Response> {
    let schedule = state.engine.create_schedule(&alias, job_id, spec).await?;
    let location = schedule_href(&alias, job_id, schedule.id);
    Ok(created(location, schedule))
}

/// A job's schedules, newest first.
///
/// `GET /jobs/{alias}/{jobId}/schedules?page=&size=`.
#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/schedules", tag = "schedules",
    operation_id = "listSchedules",
    params(JobPath, PageRequest),
    responses((status = 200, description = "Newest first", body = Page<Schedule>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_schedules<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<Page<Schedule>>> {
    Ok(Json(
        state.engine.list_schedules(&alias, job_id, page).await?,
    ))
}

/// A schedule.
///
/// `GET /jobs/{alias}/{jobId}/schedules/{scheduleId}`.
#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/schedules/{scheduleId}", tag = "schedules",
    operation_id = "getSchedule",
    params(SchedulePath),
    responses((status = 200, body = Schedule), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_schedule<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: SchedulePath,
) -> ApiResult<Json<Schedule>> {
    let schedule = state
        .engine
        .get_schedule(&path.alias, path.job_id, path.schedule_id)
        .await?;
    Ok(Json(schedule))
}

/// Replaces a schedule's description, service account and trigger.
///
/// `PUT /jobs/{alias}/{jobId}/schedules/{scheduleId}`: the next fire time is planned anew from
/// now.
#[utoipa::path(put, path = "/jobs/{alias}/{jobId}/schedules/{scheduleId}", tag = "schedules",
    operation_id = "updateSchedule",
    params(SchedulePath),
    request_body(content = ScheduleSpec, content_type = "application/json",
        description = "The whole schedule; the next fire time is planned anew from now"),
    responses((status = 200, body = Schedule), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 409, description = "A key pair or service account the body names does not exist in the account, or a field sends the mask `********` where no secret is stored (each such field is named)", body = ErrorBody)))]
pub async fn update_schedule<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: SchedulePath,
    JsonBody(spec): JsonBody<ScheduleSpec>,
) -> ApiResult<Json<Schedule>> {
    let schedule = state
        .engine
        .update_schedule(&path.alias, path.job_id, path.schedule_id, spec)
        .await?;
    Ok(Json(schedule))
}

/// Deletes a schedule.
///
/// `DELETE /jobs/{alias}/{jobId}/schedules/{scheduleId}`: 204.
#[utoipa::path(delete, path = "/jobs/{alias}/{jobId}/schedules/{scheduleId}", tag = "schedules",
    operation_id = "deleteSchedule",
    params(SchedulePath),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_schedule<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: SchedulePath,
) -> ApiResult<StatusCode> {
    state
        .engine
        .delete_schedule(&path.alias, path.job_id, path.schedule_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
