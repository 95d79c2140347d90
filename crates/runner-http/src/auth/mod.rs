//! Bearer-token authentication and per-account scopes.
//!
//! An [`Authenticator`] turns the token of an `Authorization: Bearer <token>` header into a
//! [`Scope`]: every account, or a list of account aliases. Two implementations ship:
//!
//! - [`TokenFile`]: static tokens from a file (`TOKEN ALIAS[,ALIAS...]` or `TOKEN *`);
//! - [`JwtAuthenticator`]: signed JWTs (HS256 or RS256) whose aliases sit in a configurable claim.
//!
//! The [`require_bearer`] middleware authenticates every request of the routes it wraps and puts
//! the [`Scope`] into the request's extensions; the path extractors of [`crate::extract`] check
//! the account alias of the path against it (403 when it is not in scope).

pub mod jwt;
pub mod token_file;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use runner_core::ids::AccountAlias;

pub use jwt::{JwtAuthenticator, JwtError};
pub use token_file::{TokenFile, TokenFileError};

use crate::error::ApiError;

/// What a token may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every account (an operator's token).
    All,
    /// Only these accounts.
    Aliases(BTreeSet<AccountAlias>),
}

impl Scope {
    /// True when this scope includes `alias`.
    pub fn allows(&self, alias: &AccountAlias) -> bool {
        match self {
            Scope::All => true,
            Scope::Aliases(aliases) => aliases.contains(alias),
        }
    }
}

/// Why a token was refused (always 401; the message is safe to show, it never echoes the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Unknown token, bad signature, malformed JWT.
    #[error("invalid bearer token")]
    Invalid,
    /// A JWT whose `exp` has passed.
    #[error("the bearer token has expired")]
    Expired,
    /// A JWT without a usable scope claim.
    #[error("the bearer token has no valid \"{0}\" claim")]
    MissingScope(String),
}

/// Verifies bearer tokens. Implementations must not log or echo the token.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// The scope of `token`, or why it is refused.
    async fn authenticate(&self, token: &str) -> Result<Scope, AuthError>;
}

/// A shared, type-erased authenticator, as the router holds it.
pub type SharedAuthenticator = Arc<dyn Authenticator>;

/// Middleware: 401 unless the request carries a bearer token the authenticator accepts; puts the
/// token's [`Scope`] into the request extensions for the handlers.
pub async fn require_bearer(
    State(authenticator): State<SharedAuthenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = match bearer_token(request.headers()) {
        Ok(token) => token,
        Err(error) => return error.into_response(),
    };
    match authenticator.authenticate(token).await {
        Ok(scope) => {
            request.extensions_mut().insert(scope);
            next.run(request).await
        }
        Err(error) => ApiError::Unauthorized(error.to_string()).into_response(),
    }
}

fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let missing = || ApiError::Unauthorized("send Authorization: Bearer <token>".into());
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}
