//! API errors: one enum, one JSON shape, one status code per variant.
//!
//! Every error body is `{"message": "...", "errors": [{"field", "message"}]}` (`errors` only for
//! 400). Internal details (store errors, panics) are logged, never sent, and never contain a
//! secret: the domain types print secrets as `********`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runner_core::engine::EngineError;
use runner_core::validation::{FieldError, ValidationErrors};
use serde::Serialize;
use utoipa::ToSchema;

/// Why a request failed, as the client sees it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the request is invalid; every field error at once.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// 401: no bearer token, or one that does not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token is valid but its scope does not include the account alias.
    #[error("this token has no access to account {0}")]
    Forbidden(String),
    /// 404: no such resource (also for a malformed ID and for a resource of another account).
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 409: the request names what the account does not have (a key pair, a service account);
    /// every such field is named.
    #[error(transparent)]
    Missing(ValidationErrors),
    /// 413: the body is larger than the limit (bytes).
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: a body that is not `application/json`.
    #[error("the request body must be JSON: send Content-Type: application/json")]
    UnsupportedMediaType,
    /// 503: the store did not answer.
    #[error("the store is unavailable; retry later")]
    Unavailable,
    /// 500: a bug (a caught panic). Never caused by input.
    #[error("internal error")]
    Internal,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong, in one sentence.
    pub message: String,
    /// For 400: every field that is wrong, with its path (`hosts[2].id`); for a 409 of a missing
    /// key pair or service account, every field that names one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    /// A 400 naming one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid(FieldError::new(field, message).into())
    }

    /// The status code of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::Missing(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body of this error.
    pub fn body(&self) -> ErrorBody {
        match self {
            ApiError::Invalid(errors) | ApiError::Missing(errors) => ErrorBody {
                message: errors.to_string(),
                errors: errors.errors.clone(),
            },
            other => ErrorBody {
                message: other.to_string(),
                errors: Vec::new(),
            },
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Invalid(errors) => ApiError::Invalid(errors),
            EngineError::NotFound => ApiError::NotFound("not found".into()),
            EngineError::Conflict(message) => ApiError::Conflict(message),
            EngineError::Missing(errors) => ApiError::Missing(errors),
            EngineError::Store(error) => {
                // The detail helps the operator, not the client.
                tracing::warn!(%error, "store error");
                ApiError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "unexpected engine error");
                ApiError::Unavailable
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        if matches!(self, ApiError::Unavailable) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"runner\""),
            );
        }
        response
    }
}
