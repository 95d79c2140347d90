//! Request extractors: account and ID path segments, query parameters and JSON bodies, each
//! turning bad input into the documented 4xx ([`ApiError`]) instead of axum's plain-text
//! rejections.
//!
//! Order of checks on a path: the alias must be well-formed (400), then in the token's scope
//! (403); only then are IDs parsed (a malformed ID is 404, like an unknown one).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{HeaderMap, header, request::Parts};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use runner_core::ids::{AccountAlias, ExecutionId, JobId, ScheduleId};
use runner_core::page::PageRequest;
use runner_core::schedule::is_service_account_alias;
use runner_core::search::ExecutionFilter;
use runner_core::validation::parse_json;
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Scope;
use crate::body_schema;
use crate::error::ApiError;

/// The default limit of a request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The body limit in force, as a request extension (the router sets it).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

async fn path_params<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<HashMap<String, String>, ApiError> {
    Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map(|Path(params)| params)
        // Only a segment that is not UTF-8 once percent-decoded gets here.
        .map_err(|_| ApiError::NotFound("no such resource".into()))
}

fn authorized_alias(
    parts: &Parts,
    params: &HashMap<String, String>,
) -> Result<AccountAlias, ApiError> {
    // The auth middleware always runs first; a missing scope means a route was wired without it.
    let scope = parts
        .extensions
        .get::<Scope>()
        .ok_or_else(|| ApiError::Unauthorized("send Authorization: Bearer <token>".into()))?;
    let raw = params.get("alias").map(String::as_str).unwrap_or_default();
    let alias: AccountAlias = raw
        .parse()
        .map_err(|error: runner_core::validation::FieldError| ApiError::Invalid(error.into()))?;
    if !scope.allows(&alias) {
        return Err(ApiError::Forbidden(alias.to_string()));
    }
    Ok(alias)
}

fn parse_id<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    name: &str,
    what: &str,
) -> Result<T, ApiError> {
    params
        .get(name)
        .and_then(|raw| raw.parse().ok())
        .ok_or_else(|| ApiError::NotFound(format!("{what} not found")))
}

/// `/jobs/{alias}`: an account in the token's scope.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AccountPath {
    /// The account.
    pub alias: AccountAlias,
}

impl<S: Send + Sync> FromRequestParts<S> for AccountPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        Ok(Self {
            alias: authorized_alias(parts, &params)?,
        })
    }
}

/// `/jobs/{alias}/{jobId}`.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Path, rename_all = "camelCase")]
pub struct JobPath {
    /// The account.
    pub alias: AccountAlias,
    /// The job.
    pub job_id: JobId,
}

impl<S: Send + Sync> FromRequestParts<S> for JobPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        let alias = authorized_alias(parts, &params)?;
        Ok(Self {
            alias,
            job_id: parse_id(&params, "jobId", "job")?,
        })
    }
}

/// `/jobs/{alias}/{jobId}/executions/{executionId}`.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Path, rename_all = "camelCase")]
pub struct ExecutionPath {
    /// The account.
    pub alias: AccountAlias,
    /// The job.
    pub job_id: JobId,
    /// The execution.
    pub execution_id: ExecutionId,
}

impl<S: Send + Sync> FromRequestParts<S> for ExecutionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        let alias = authorized_alias(parts, &params)?;
        Ok(Self {
            alias,
            job_id: parse_id(&params, "jobId", "job")?,
            execution_id: parse_id(&params, "executionId", "execution")?,
        })
    }
}

/// `/serviceAccounts/{alias}/{serviceAccountAlias}`. A malformed service account name is 404, like
/// an unknown one.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ServiceAccountPath {
    /// The account.
    pub alias: AccountAlias,
    /// The service account's name.
    #[param(rename = "serviceAccountAlias")]
    pub name: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ServiceAccountPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        let alias = authorized_alias(parts, &params)?;
        let name = params
            .get("serviceAccountAlias")
            .filter(|name| is_service_account_alias(name))
            .cloned()
            .ok_or_else(|| ApiError::NotFound("service account not found".into()))?;
        Ok(Self { alias, name })
    }
}

/// `/keyPairs/{alias}/{keyPairName}`: 403 for another account, 404 for a malformed name as for
/// an unknown one.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPairPath {
    /// The account.
    pub alias: AccountAlias,
    /// The key pair's name.
    #[param(rename = "keyPairName")]
    pub name: String,
}

impl<S: Send + Sync> FromRequestParts<S> for KeyPairPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        let alias = authorized_alias(parts, &params)?;
        let name = params
            .get("keyPairName")
            .filter(|name| is_service_account_alias(name))
            .cloned()
            .ok_or_else(|| ApiError::NotFound("key pair not found".into()))?;
        Ok(Self { alias, name })
    }
}

/// `/inventory/{alias}/hosts/{hostId}`: a host id that is not a host name is 404 (no host can
/// have it).
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InventoryHostPath {
    /// The account.
    pub alias: AccountAlias,
    /// The host's id (percent-encoded where it holds `/`).
    #[param(rename = "hostId")]
    pub id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for InventoryHostPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        let alias = authorized_alias(parts, &params)?;
        let id = params
            .get("hostId")
            .filter(|id| runner_core::job::is_host_name(id))
            .cloned()
            .ok_or_else(|| ApiError::NotFound("inventory host not found".into()))?;
        Ok(Self { alias, id })
    }
}

/// `/jobs/{alias}/{jobId}/schedules/{scheduleId}`.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Path, rename_all = "camelCase")]
pub struct SchedulePath {
    /// The account.
    pub alias: AccountAlias,
    /// The job.
    pub job_id: JobId,
    /// The schedule.
    pub schedule_id: ScheduleId,
}

impl<S: Send + Sync> FromRequestParts<S> for SchedulePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        let alias = authorized_alias(parts, &params)?;
        Ok(Self {
            alias,
            job_id: parse_id(&params, "jobId", "job")?,
            schedule_id: parse_id(&params, "scheduleId", "schedule")?,
        })
    }
}

fn query_params(parts: &Parts) -> HashMap<String, String> {
    form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The query parameter `name` as a whole number from 0 up to the document's `int64` bound (0
/// when absent); anything else adds `message` for it to `errors`.
fn non_negative(
    query: &HashMap<String, String>,
    name: &str,
    message: &str,
    errors: &mut runner_core::validation::ValidationErrors,
) -> u64 {
    match query.get(name).map(|raw| raw.trim().parse::<i64>()) {
        None => 0,
        Some(Ok(value)) if value >= 0 => value.unsigned_abs(),
        Some(_) => {
            errors.add(name, message);
            0
        }
    }
}

/// `?page=&size=`: page from 0, size 1..=100 (default 100).
#[derive(Debug, Clone, Copy)]
pub struct PageQuery(pub PageRequest);

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = query_params(parts);
        let page = PageRequest::parse(
            query.get("page").map(String::as_str),
            query.get("size").map(String::as_str),
        )?;
        Ok(Self(page))
    }
}

/// The default `size` of a page of events.
pub const DEFAULT_EVENTS_SIZE: usize = 100;

/// The largest `size` of a page of events.
pub const MAX_EVENTS_SIZE: usize = 1000;

/// `?after=&size=` of the events endpoint: events with a sequence number above `after` (default
/// 0), at most `size` (1 to [`MAX_EVENTS_SIZE`], default [`DEFAULT_EVENTS_SIZE`]). A bad value is
/// 400 naming the parameter.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events with a sequence number above this one (default 0).
    #[param(required = false)]
    pub after: u64,
    /// At most this many, 1 to 1000 (default 100; JSON pages only).
    #[param(required = false, minimum = 1, maximum = 1000)]
    pub size: usize,
}

impl<S: Send + Sync> FromRequestParts<S> for EventsQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = query_params(parts);
        let mut errors = runner_core::validation::ValidationErrors::default();
        let after = non_negative(
            &query,
            "after",
            "must be a sequence number (0 or more)",
            &mut errors,
        );
        let size = match query.get("size") {
            None => DEFAULT_EVENTS_SIZE,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(size) if (1..=MAX_EVENTS_SIZE).contains(&size) => size,
                _ => {
                    errors.add("size", format!("must be from 1 to {MAX_EVENTS_SIZE}"));
                    DEFAULT_EVENTS_SIZE
                }
            },
        };
        errors.into_result()?;
        Ok(Self { after, size })
    }
}

/// `?status=&jobId=&since=&until=` of the executions lists ([`ExecutionFilter`]): any of several
/// statuses (repeat `status`, or separate statuses with commas), one job, and a range of creation
/// times. A bad value is 400 naming the parameter.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ExecutionQuery {
    /// Executions in any of these statuses (every status when absent):
    /// `status=FAILURE&status=STOPPED` or `status=FAILURE,STOPPED`.
    #[param(required = false, explode = true)]
    pub status: Vec<runner_core::execution::Status>,
    /// Only the executions of this job (on `/executions/{alias}`; the job's own list already is).
    #[param(required = false)]
    pub job_id: Option<JobId>,
    /// Executions created at or after this time, epoch milliseconds.
    #[param(required = false, minimum = 0)]
    pub since: Option<i64>,
    /// Executions created before this time, epoch milliseconds (a range that holds no time matches nothing).
    #[param(required = false, minimum = 0)]
    pub until: Option<i64>,
}

impl ExecutionQuery {
    /// The store's filter these parameters ask for.
    pub fn filter(&self) -> ExecutionFilter {
        ExecutionFilter {
            statuses: self.status.clone(),
            job_id: self.job_id,
            since: self.since,
            until: self.until,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ExecutionQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Every pair in order (not `query_params`, which keeps one value per name), so that a
        // repeated `status` adds up.
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let filter = ExecutionFilter::parse(
            pairs
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )?;
        Ok(Self {
            status: filter.statuses,
            job_id: filter.job_id,
            since: filter.since,
            until: filter.until,
        })
    }
}

/// The largest page of a run log, in bytes.
pub const MAX_LOG_LIMIT: u64 = 4 * 1024 * 1024;

/// The page of a run log without `limit`, in bytes.
pub const DEFAULT_LOG_LIMIT: u64 = 1024 * 1024;

/// `?attempt=&offset=&limit=` of the run log endpoint: which attempt (from 1; default the
/// latest), from which byte of its output (default 0), at most how many bytes (1 to
/// [`MAX_LOG_LIMIT`], default [`DEFAULT_LOG_LIMIT`]). A bad value is 400 naming the parameter.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// The attempt (1 for the first run, one more per restart); default the latest.
    #[param(required = false, minimum = 1)]
    pub attempt: Option<u32>,
    /// The byte offset in the attempt's output to read from (default 0): the
    /// `X-Run-Log-Next-Offset` of the previous page.
    #[param(required = false)]
    pub offset: u64,
    /// At most this many bytes, 1 to 4194304 (default 1048576; plain text only).
    #[param(required = false, minimum = 1, maximum = 4194304)]
    pub limit: u64,
}

impl<S: Send + Sync> FromRequestParts<S> for LogQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = query_params(parts);
        let mut errors = runner_core::validation::ValidationErrors::default();
        let attempt = match query.get("attempt") {
            None => None,
            Some(raw) => match raw.trim().parse::<u32>() {
                Ok(attempt) if attempt >= 1 => Some(attempt),
                _ => {
                    errors.add("attempt", "must be an attempt number (1 or more)");
                    None
                }
            },
        };
        let offset = non_negative(
            &query,
            "offset",
            "must be a byte offset (0 or more)",
            &mut errors,
        );
        let limit = match query.get("limit") {
            None => DEFAULT_LOG_LIMIT,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(limit) if (1..=MAX_LOG_LIMIT).contains(&limit) => limit,
                _ => {
                    errors.add("limit", format!("must be from 1 to {MAX_LOG_LIMIT}"));
                    DEFAULT_LOG_LIMIT
                }
            },
        };
        errors.into_result()?;
        Ok(Self {
            attempt,
            offset,
            limit,
        })
    }
}

/// `?immediate=true|false` (default false).
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(names("immediate"), parameter_in = Query)]
pub struct Immediate(
    /// Also start an execution (default false).
    #[param(required = false)]
    pub bool,
);

impl<S: Send + Sync> FromRequestParts<S> for Immediate {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match query_params(parts).get("immediate").map(String::as_str) {
            None => Ok(Self(false)),
            Some(value) if value.eq_ignore_ascii_case("true") => Ok(Self(true)),
            Some(value) if value.eq_ignore_ascii_case("false") => Ok(Self(false)),
            Some(_) => Err(ApiError::field("immediate", "must be true or false")),
        }
    }
}

/// A type read from a JSON request body, and which top-level keys it tolerates and ignores
/// (read-only fields of a response that a client sends back).
pub trait RequestBody: DeserializeOwned {
    /// Keys ignored at the top level.
    const READ_ONLY: &'static [&'static str] = &[];

    /// What the domain's own rules of this body find wrong without the engine (no store, no
    /// network): reported with the document's errors when the body has those too.
    fn rule_errors(&self) -> Vec<runner_core::validation::FieldError> {
        Vec::new()
    }
}

/// A required JSON body: checked against its schema in the document ([`body_schema`]: every
/// structural error at once), then read through [`parse_json`].
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// An optional JSON body: no body, or `null`, reads as `T::default()`.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: RequestBody + ToSchema> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(request).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::field("", "a JSON body is required"));
        }
        let value = json_value(&bytes)?;
        Ok(Self(read_checked::<T>(&bytes, &value)?))
    }
}

impl<S: Send + Sync, T: RequestBody + ToSchema + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(request).await?;
        // No body at all is no body; whitespace alone is not JSON.
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        let value = json_value(&bytes)?;
        if value.is_null() {
            return Ok(Self(T::default()));
        }
        Ok(Self(read_checked::<T>(&bytes, &value)?))
    }
}

fn json_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::field("", format!("the body is not JSON: {error}")))
}

/// The body as `T` once it has the documented shape. When it has not but still reads as `T`
/// (a value out of range, say), the domain's own rules of `T` join the answer, so that a client
/// hears of every field at once; a field the document already named is not named twice.
fn read_checked<T: RequestBody + ToSchema>(
    bytes: &[u8],
    value: &serde_json::Value,
) -> Result<T, ApiError> {
    let Err(mut errors) = body_schema::check(&T::name(), value) else {
        return Ok(parse_json(bytes, T::READ_ONLY)?);
    };
    if let Ok(body) = parse_json::<T>(bytes, T::READ_ONLY) {
        // The domain's word on a field says what to do where the document's says what is
        // expected: it replaces the document's for that field and for the value around it.
        let rules = body.rule_errors();
        errors.errors.retain(|named| {
            !rules
                .iter()
                .any(|rule| rule.field == named.field || is_inside(&rule.field, &named.field))
        });
        errors.errors.extend(rules);
    }
    Err(errors.into())
}

/// Whether the field path `inner` lies inside `outer` (`callbacks[0].url` inside `callbacks[0]`).
fn is_inside(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// Exactly `application/json` (any case), with any parameters (`; charset=utf-8`). Other JSON
/// types (`application/json-patch+json`, `application/vnd.api+json`) mean something else and
/// are 415 (DECISIONS.md), not read as if they were plain JSON.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case("application/json")
}

/// Reads at most the body limit (413 beyond it) of a body that is JSON (415 otherwise). A
/// request without a content type may only have an empty body.
async fn read_body(request: Request) -> Result<axum::body::Bytes, ApiError> {
    let limit = request
        .extensions()
        .get::<BodyLimit>()
        .map_or(DEFAULT_BODY_LIMIT, |limit| limit.0);
    if content_length(request.headers()).is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
    if let Some(content_type) = &content_type {
        if !content_type.to_str().is_ok_and(is_json) {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let body: Body = request.into_body();
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        Err(_) => return Err(ApiError::field("", "the request body could not be read")),
    };
    if content_type.is_none() && !bytes.is_empty() {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(bytes)
}
