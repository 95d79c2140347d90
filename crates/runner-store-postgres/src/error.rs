//! Errors: [`PgStoreError`] for connecting, and the mapping of database errors to
//! [`StoreError`]s (which ones are worth a retry).

use std::sync::Arc;

use runner_core::store::StoreError;

/// Why [`crate::PgStore::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgStoreError {
    /// The URL is not a PostgreSQL URL.
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    /// The schema name is not 1 to 63 of `a-z 0-9 _` (not starting with a digit or `pg_`).
    #[error(
        "invalid schema name {0:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit or pg_"
    )]
    InvalidSchema(String),
    /// The database did not answer, refused the login, or failed to create the schema.
    #[error("could not connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    /// The migrations could not be applied.
    #[error("could not apply the database migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The store's secrets are sealed, and the keys given do not open them.
    #[error("cannot use the store: {0}")]
    SecretKey(#[source] runner_core::seal::SealError),
    /// The store's secrets are sealed, and no key was given.
    #[error("the store holds sealed secrets: connect with its secret key (`--secret-key-file`)")]
    KeyRequired,
    /// The start-up check of the secret key could not read or write its row.
    #[error("could not check the secret key: {0}")]
    Canary(#[source] sqlx::Error),
}

/// A database error shared by every request of a failed batch.
#[derive(Debug, Clone)]
pub(crate) struct SharedError(pub(crate) Arc<sqlx::Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The SQLSTATE of a database error, if it is one.
fn code(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// True when the connection, not the request, failed: the server restarts, shuts down, or cannot
/// be reached. A request that failed so before its commit was not applied and may be retried.
pub(crate) fn is_connection_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(_) => code(error).is_some_and(|code| {
            // 08: connection exception; 57P01-03: admin/crash shutdown, cannot connect now.
            code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// True for a deadlock or serialization failure: the transaction was rolled back; retry it.
pub(crate) fn is_transient_conflict(error: &sqlx::Error) -> bool {
    matches!(code(error).as_deref(), Some("40P01" | "40001"))
}

/// True for a failure before the commit that is worth trying again: nothing was applied, and
/// the next try may succeed (the connection is back, the conflicting transaction is gone).
pub(crate) fn is_retryable(error: &sqlx::Error) -> bool {
    is_connection_error(error) || is_transient_conflict(error)
}

/// True for a unique-key violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    code(error).as_deref() == Some("23505")
}

/// A backend failure as a [`StoreError`].
pub(crate) fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::unavailable(error)
}
