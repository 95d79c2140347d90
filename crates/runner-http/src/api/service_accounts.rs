//! The service account handlers: the identities schedules run under, per account.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use runner_core::executor::Executor;
use runner_core::notifier::Notifier;
use runner_core::page::Page;
use runner_core::schedule::{ServiceAccount, ServiceAccountSpec};
use runner_core::store::ScheduleStore;
use runner_core::time::Clock;

use super::{ApiResult, AppState, created};
use crate::extract::{AccountPath, JsonBody, PageQuery, RequestBody, ServiceAccountPath};
use crate::response::service_account_href;

/// The keys of a service account response that a client may send back; they are ignored.
pub const SERVICE_ACCOUNT_READ_ONLY_FIELDS: &[&str] = &["accountAlias", "createdTime"];

impl RequestBody for ServiceAccountSpec {
    const READ_ONLY: &'static [&'static str] = SERVICE_ACCOUNT_READ_ONLY_FIELDS;
}

/// `POST /serviceAccounts/{alias}`: creates a service account (201 + Location); 409 when the
/// name is taken in the account.
pub async fn create_service_account<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    JsonBody(spec): JsonBody<ServiceAccountSpec>,
) -> ApiResult<Response> {
    let account = state.engine.create_service_account(&alias, spec).await?;
    let location = service_account_href(&alias, &account.alias);
    Ok(created(location, account))
}

/// `GET /serviceAccounts/{alias}?page=&size=`: the account's service accounts, newest first.
pub async fn list_service_accounts<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<Page<ServiceAccount>>> {
    Ok(Json(
        state.engine.list_service_accounts(&alias, page).await?,
    ))
}

/// `GET /serviceAccounts/{alias}/{serviceAccountAlias}`.
pub async fn get_service_account<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    ServiceAccountPath { alias, name }: ServiceAccountPath,
) -> ApiResult<Json<ServiceAccount>> {
    Ok(Json(state.engine.get_service_account(&alias, &name).await?))
}

/// `DELETE /serviceAccounts/{alias}/{serviceAccountAlias}`: 204; 409 while a schedule uses it.
pub async fn delete_service_account<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    ServiceAccountPath { alias, name }: ServiceAccountPath,
) -> ApiResult<StatusCode> {
    state.engine.delete_service_account(&alias, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
