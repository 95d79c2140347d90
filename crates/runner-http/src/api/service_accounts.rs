//! The service account handlers: the identities schedules run under, per account.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use runner_core::executor::Executor;
use runner_core::notifier::Notifier;
use runner_core::page::{Page, PageRequest};
use runner_core::schedule::{ServiceAccount, ServiceAccountSpec};
use runner_core::store::ScheduleStore;
use runner_core::time::Clock;

use super::{ApiResult, AppState, created};
use crate::error::ErrorBody;
use crate::extract::{AccountPath, JsonBody, PageQuery, RequestBody, ServiceAccountPath};
use crate::response::service_account_href;

/// The keys of a service account response that a client may send back; they are ignored.
pub const SERVICE_ACCOUNT_READ_ONLY_FIELDS: &[&str] = &["accountAlias", "createdTime"];

impl RequestBody for ServiceAccountSpec {
    const READ_ONLY: &'static [&'static str] = SERVICE_ACCOUNT_READ_ONLY_FIELDS;

    fn rule_errors(&self) -> Vec<runner_core::validation::FieldError> {
        crate::api::errors_of(self.validate())
    }
}

/// Creates a service account.
///
/// `POST /serviceAccounts/{alias}`: 201 + Location; 409 when the name is taken in the account.
#[utoipa::path(post, path = "/serviceAccounts/{alias}", tag = "schedules",
    operation_id = "createServiceAccount",
    params(AccountPath),
    request_body(content = ServiceAccountSpec, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; Location is its path", body = ServiceAccount,
         headers(("Location" = String, description = "/serviceAccounts/{alias}/{serviceAccountAlias}"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The name is taken in this account", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn create_service_account<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    JsonBody(spec): JsonBody<ServiceAccountSpec>,
) -> ApiResult<Response> {
    let account = state.engine.create_service_account(&alias, spec).await?;
    let location = service_account_href(&alias, &account.alias);
    Ok(created(location, account))
}

/// The account's service accounts, newest first.
///
/// `GET /serviceAccounts/{alias}?page=&size=`.
#[utoipa::path(get, path = "/serviceAccounts/{alias}", tag = "schedules",
    operation_id = "listServiceAccounts",
    params(AccountPath, PageRequest),
    responses((status = 200, description = "Newest first", body = Page<ServiceAccount>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_service_accounts<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<Page<ServiceAccount>>> {
    Ok(Json(
        state.engine.list_service_accounts(&alias, page).await?,
    ))
}

/// A service account.
///
/// `GET /serviceAccounts/{alias}/{serviceAccountAlias}`.
#[utoipa::path(get, path = "/serviceAccounts/{alias}/{serviceAccountAlias}", tag = "schedules",
    operation_id = "getServiceAccount",
    params(ServiceAccountPath),
    responses((status = 200, body = ServiceAccount), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_service_account<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    ServiceAccountPath { alias, name }: ServiceAccountPath,
) -> ApiResult<Json<ServiceAccount>> {
    Ok(Json(state.engine.get_service_account(&alias, &name).await?))
}

/// Deletes a service account.
///
/// `DELETE /serviceAccounts/{alias}/{serviceAccountAlias}`: 204; 409 while a schedule uses it.
#[utoipa::path(delete, path = "/serviceAccounts/{alias}/{serviceAccountAlias}", tag = "schedules",
    operation_id = "deleteServiceAccount",
    params(ServiceAccountPath),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "A schedule uses it", body = ErrorBody)))]
pub async fn delete_service_account<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    ServiceAccountPath { alias, name }: ServiceAccountPath,
) -> ApiResult<StatusCode> {
    state.engine.delete_service_account(&alias, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
