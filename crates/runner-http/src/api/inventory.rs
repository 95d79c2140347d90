//! The inventory handlers: the hosts of an account's inventory, which every job of the account
//! with `useDynamicInventory` runs on (see `runner_core::inventory`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use runner_core::executor::Executor;
use runner_core::inventory::{INVENTORY_HOST_READ_ONLY_FIELDS, InventoryHost, InventoryHostSpec};
use runner_core::notifier::Notifier;
use runner_core::page::{Page, PageRequest};
use runner_core::store::Store;
use runner_core::time::Clock;
use runner_core::validation::ValidationErrors;

use super::{ApiResult, AppState, created};
use crate::error::ErrorBody;
use crate::extract::{AccountPath, InventoryHostPath, JsonBody, PageQuery, RequestBody};
use crate::response::inventory_host_href;

impl RequestBody for InventoryHostSpec {
    const READ_ONLY: &'static [&'static str] = INVENTORY_HOST_READ_ONLY_FIELDS;

    fn rule_errors(&self) -> Vec<runner_core::validation::FieldError> {
        let mut errors = ValidationErrors::default();
        self.host.validate("", &mut errors);
        errors.errors
    }
}

/// Adds a host to the account's inventory.
///
/// `POST /inventory/{alias}/hosts`: 201 + Location; 409 when the account has a host of that id.
/// The response masks the host's secrets.
#[utoipa::path(post, path = "/inventory/{alias}/hosts", tag = "inventory",
    operation_id = "createInventoryHost",
    params(AccountPath),
    request_body(content = InventoryHostSpec, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; Location is its path", body = InventoryHost,
         headers(("Location" = String, description = "/inventory/{alias}/hosts/{hostId}"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The id is taken in this account; or the key pair it names does not exist, or a field sends the mask `********` where no secret is stored (each such field is named)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn create_inventory_host<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    JsonBody(InventoryHostSpec { host }): JsonBody<InventoryHostSpec>,
) -> ApiResult<Response> {
    let record = state.engine.create_inventory_host(&alias, host).await?;
    let location = inventory_host_href(&alias, &record.host.id);
    Ok(created(location, record))
}

/// The account's inventory, by host id.
///
/// `GET /inventory/{alias}/hosts?page=&size=`.
#[utoipa::path(get, path = "/inventory/{alias}/hosts", tag = "inventory",
    operation_id = "listInventoryHosts",
    params(AccountPath, PageRequest),
    responses((status = 200, description = "By id", body = Page<InventoryHost>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_inventory_hosts<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<Page<InventoryHost>>> {
    Ok(Json(state.engine.list_inventory_hosts(&alias, page).await?))
}

/// A host of the account's inventory (its secrets masked).
///
/// `GET /inventory/{alias}/hosts/{hostId}`.
#[utoipa::path(get, path = "/inventory/{alias}/hosts/{hostId}", tag = "inventory",
    operation_id = "getInventoryHost",
    params(InventoryHostPath),
    responses((status = 200, body = InventoryHost), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_inventory_host<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    InventoryHostPath { alias, id }: InventoryHostPath,
) -> ApiResult<Json<InventoryHost>> {
    Ok(Json(state.engine.get_inventory_host(&alias, &id).await?))
}

/// Replaces a host of the account's inventory; a secret sent back as the mask `********` keeps
/// the stored one.
///
/// `PUT /inventory/{alias}/hosts/{hostId}`: the path names the host; the body's `id` is
/// ignored (a host is not renamed: delete it and add it under the new id).
#[utoipa::path(put, path = "/inventory/{alias}/hosts/{hostId}", tag = "inventory",
    operation_id = "updateInventoryHost",
    params(InventoryHostPath),
    request_body(content = InventoryHostSpec, content_type = "application/json"),
    responses((status = 200, body = InventoryHost),
        (status = 400, description = "A bad field (each named)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The key pair it names does not exist, or a field sends the mask `********` where no secret is stored (each such field is named)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn update_inventory_host<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    InventoryHostPath { alias, id }: InventoryHostPath,
    JsonBody(InventoryHostSpec { host }): JsonBody<InventoryHostSpec>,
) -> ApiResult<Json<InventoryHost>> {
    Ok(Json(
        state
            .engine
            .replace_inventory_host(&alias, &id, host)
            .await?,
    ))
}

/// Removes a host from the account's inventory (runs that started keep it).
///
/// `DELETE /inventory/{alias}/hosts/{hostId}`: 204.
#[utoipa::path(delete, path = "/inventory/{alias}/hosts/{hostId}", tag = "inventory",
    operation_id = "deleteInventoryHost",
    params(InventoryHostPath),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_inventory_host<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    InventoryHostPath { alias, id }: InventoryHostPath,
) -> ApiResult<StatusCode> {
    state.engine.delete_inventory_host(&alias, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
