//! The key-pair handlers: SSH key pairs per account, generated or imported, shown without
//! their private key, and distributed into hosts' `authorized_keys` by an execution.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use runner_core::engine::DistributeRequest;
use runner_core::execution::ExecutionView;
use runner_core::executor::Executor;
use runner_core::key_pair::{KeyPairSpec, KeyPairView};
use runner_core::notifier::Notifier;
use runner_core::page::{Page, PageRequest};
use runner_core::store::Store;
use runner_core::time::Clock;

use super::{ApiResult, AppState, created};
use crate::error::ErrorBody;
use crate::extract::{AccountPath, JsonBody, KeyPairPath, PageQuery, RequestBody};
use crate::response::{execution_href, key_pair_href};

/// The keys of a key-pair response that a client may send back; they are ignored.
pub const KEY_PAIR_READ_ONLY_FIELDS: &[&str] =
    &["accountAlias", "publicKey", "fingerprint", "createdTime"];

impl RequestBody for KeyPairSpec {
    const READ_ONLY: &'static [&'static str] = KEY_PAIR_READ_ONLY_FIELDS;
}

impl RequestBody for DistributeRequest {
    const READ_ONLY: &'static [&'static str] = &[];
}

/// Generates a key pair, or imports one (`privateKey`).
///
/// `POST /keyPairs/{alias}`: 201 + Location; 409 when the name is taken in the account. The
/// response never carries the private key.
#[utoipa::path(post, path = "/keyPairs/{alias}", tag = "keyPairs",
    operation_id = "createKeyPair",
    params(AccountPath),
    request_body(content = KeyPairSpec, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; Location is its path", body = KeyPairView,
         headers(("Location" = String, description = "/keyPairs/{alias}/{keyPairName}"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The name is taken in this account", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn create_key_pair<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    JsonBody(spec): JsonBody<KeyPairSpec>,
) -> ApiResult<Response> {
    let pair = state.engine.create_key_pair(&alias, spec).await?;
    let location = key_pair_href(&alias, &pair.name);
    Ok(created(location, KeyPairView::from(&pair)))
}

/// The account's key pairs, by name.
///
/// `GET /keyPairs/{alias}?page=&size=`.
#[utoipa::path(get, path = "/keyPairs/{alias}", tag = "keyPairs",
    operation_id = "listKeyPairs",
    params(AccountPath, PageRequest),
    responses((status = 200, description = "By name", body = Page<KeyPairView>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_key_pairs<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    AccountPath { alias }: AccountPath,
    PageQuery(page): PageQuery,
) -> ApiResult<Json<Page<KeyPairView>>> {
    let page = state.engine.list_key_pairs(&alias, page).await?;
    Ok(Json(page.map(|pair| KeyPairView::from(&pair))))
}

/// A key pair (its public key and fingerprint; never the private key).
///
/// `GET /keyPairs/{alias}/{keyPairName}`.
#[utoipa::path(get, path = "/keyPairs/{alias}/{keyPairName}", tag = "keyPairs",
    operation_id = "getKeyPair",
    params(KeyPairPath),
    responses((status = 200, body = KeyPairView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_key_pair<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    KeyPairPath { alias, name }: KeyPairPath,
) -> ApiResult<Json<KeyPairView>> {
    let pair = state.engine.get_key_pair(&alias, &name).await?;
    Ok(Json(KeyPairView::from(&pair)))
}

/// Deletes a key pair.
///
/// `DELETE /keyPairs/{alias}/{keyPairName}`: 204; 409 naming the jobs and inventory hosts that
/// still use it.
#[utoipa::path(delete, path = "/keyPairs/{alias}/{keyPairName}", tag = "keyPairs",
    operation_id = "deleteKeyPair",
    params(KeyPairPath),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Jobs or inventory hosts use it; the message names them", body = ErrorBody)))]
pub async fn delete_key_pair<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    KeyPairPath { alias, name }: KeyPairPath,
) -> ApiResult<StatusCode> {
    state.engine.delete_key_pair(&alias, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Installs the key pair's public key into a user's `authorized_keys` on hosts (or removes it).
///
/// `POST /keyPairs/{alias}/{keyPairName}/distribute`: creates a job that does it with ansible's
/// builtin modules and starts it; 201 with the PENDING execution, whose path is the Location:
/// follow, stop, kill and restart it as any other.
#[utoipa::path(post, path = "/keyPairs/{alias}/{keyPairName}/distribute", tag = "keyPairs",
    operation_id = "distributeKeyPair",
    params(KeyPairPath),
    request_body(content = DistributeRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "A PENDING execution; Location is its path",
         body = ExecutionView, headers(("Location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 409, description = "A key pair or service account the body names does not exist in the account, or a field sends the mask `********` where no secret is stored (each such field is named)", body = ErrorBody)))]
pub async fn distribute_key_pair<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    KeyPairPath { alias, name }: KeyPairPath,
    JsonBody(request): JsonBody<DistributeRequest>,
) -> ApiResult<Response> {
    let (job, execution) = state
        .engine
        .distribute_key_pair(&alias, &name, request)
        .await?;
    let location = execution_href(&alias, job.id, execution.execution_id);
    Ok(created(location, execution.view()))
}
