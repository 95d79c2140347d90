//! The Job Schedule Service handlers: a job's schedules, which start it at cron or date triggers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use runner_core::executor::Executor;
use runner_core::notifier::Notifier;
use runner_core::page::Page;
use runner_core::schedule::{SCHEDULE_READ_ONLY_FIELDS, Schedule, ScheduleSpec};
use runner_core::store::ScheduleStore;
use runner_core::time::Clock;

use super::{ApiResult, AppState, created};
use crate::extract::{JobPath, JsonBody, PageQuery, RequestBody, SchedulePath};
use crate::response::schedule_href;

impl RequestBody for ScheduleSpec {
    const READ_ONLY: &'static [&'static str] = SCHEDULE_READ_ONLY_FIELDS;
}

/// `POST /jobs/{alias}/{jobId}/schedules`: creates a schedule (201 + Location). 400 for a bad
/// trigger or an unknown service account, 404 for an unknown job.
pub async fn create_schedule<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
    JsonBody(spec): JsonBody<ScheduleSpec>,
) -> ApiResult<Response> {
    let schedule = state.engine.create_schedule(&alias, job_id, spec).await?;
    let location = schedule_href(&alias, job_id, schedule.id);
    Ok(created(location, schedule))
}

/// `GET /jobs/{alias}/{jobId}/schedules?page=&size=`: the job's schedules, newest first.
pub async fn list_schedules<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    JobPath { alias, job_id }: JobPath,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<Page<Schedule>>> {
    Ok(Json(
        state.engine.list_schedules(&alias, job_id, page).await?,
    ))
}

/// `GET /jobs/{alias}/{jobId}/schedules/{scheduleId}`.
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

/// `PUT /jobs/{alias}/{jobId}/schedules/{scheduleId}`: replaces description, service account and
/// trigger; the next fire time is planned anew from now.
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

/// `DELETE /jobs/{alias}/{jobId}/schedules/{scheduleId}`: 204.
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
