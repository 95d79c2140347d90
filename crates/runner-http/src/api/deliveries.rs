//! `GET /jobs/{alias}/{jobId}/executions/{executionId}/deliveries`: the webhook deliveries of an
//! execution that were given up on, so that an operator can see what a receiver never got (and
//! replay it from the event each item carries). They are kept until retention purges the
//! execution.

use axum::Json;
use axum::extract::State;
use runner_core::executor::Executor;
use runner_core::feed::GivenUpDelivery;
use runner_core::notifier::Notifier;
use runner_core::page::{Page, PageRequest};
use runner_core::store::Store;
use runner_core::time::Clock;

use super::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ExecutionPath, PageQuery};

/// The execution's given-up webhook deliveries.
///
/// `GET /jobs/{alias}/{jobId}/executions/{executionId}/deliveries?page=&size=`: in (callback,
/// sequence) order, each with the callback's index and URL, the attempts made, the last error and
/// the event that was posted.
#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/executions/{executionId}/deliveries",
    tag = "executions", operation_id = "listGivenUpDeliveries",
    description = "The webhook deliveries of the execution that were given up on after their \
last retry, in (callback, sequence) order: each with the callback's index in the job's \
`callbacks`, its URL, the attempts made, the last error and the event that was posted. Delivered \
and still pending deliveries are not listed. Kept until retention purges the execution.",
    params(ExecutionPath, PageRequest),
    responses(
        (status = 200, body = Page<GivenUpDelivery>),
        (status = 400, description = "Bad page or size (the parameter is named)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such execution of this job in this account", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn list_given_up_deliveries<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: ExecutionPath,
    PageQuery(page): PageQuery,
) -> Result<Json<Page<GivenUpDelivery>>, ApiError> {
    let deliveries = state
        .engine
        .given_up_deliveries(&path.alias, path.job_id, path.execution_id, page)
        .await?;
    Ok(Json(deliveries))
}
