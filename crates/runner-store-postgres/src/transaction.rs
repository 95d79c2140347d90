//! Short transactions with retries: [`transaction!`] runs a body in a transaction and commits,
//! again (through [`retry`](crate::retry::retry), for `retry_for`) while the database is
//! unreachable or PostgreSQL rolled it back for a deadlock.
//!
//! A macro rather than a function taking an async closure: the store's futures must be `Send`,
//! which the compiler cannot yet prove through a higher-ranked async closure bound.

use runner_core::store::StoreError;

use crate::error::{is_retryable, unavailable};

/// How a transaction failed.
pub(crate) enum TxError {
    /// The store's answer (not found, conflict, corrupt): nothing was written.
    Store(StoreError),
    /// The database failed before the commit was sent: nothing was written; may be retried.
    Before(sqlx::Error),
    /// The commit itself failed: it may or may not have been applied.
    AtCommit(sqlx::Error),
}

impl From<sqlx::Error> for TxError {
    fn from(error: sqlx::Error) -> Self {
        TxError::Before(error)
    }
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        TxError::Store(error)
    }
}

/// True for a failure before the commit that is worth a retry (the connection was lost, or
/// PostgreSQL rolled the transaction back for a deadlock); logs the retry. A failed commit is
/// never retried: it may have landed.
pub(crate) fn worth_retrying(error: &TxError) -> bool {
    match error {
        TxError::Before(error) if is_retryable(error) => {
            tracing::debug!(%error, "transaction failed; retrying");
            true
        }
        _ => false,
    }
}

/// The store's answer for the outcome of the last attempt: a database failure (a failed commit
/// among them) is `Unavailable`.
pub(crate) fn settle<T>(outcome: Result<T, TxError>) -> Result<T, StoreError> {
    outcome.map_err(|error| match error {
        TxError::Store(error) => error,
        TxError::Before(error) | TxError::AtCommit(error) => unavailable(error),
    })
}

/// Fixes the output type of a transaction's body, so that `?` inside it knows its error type.
pub(crate) fn body<T, F: Future<Output = Result<T, TxError>>>(future: F) -> F {
    future
}

/// `transaction!(store, |tx| async { ... })`: runs the async block with `tx: &mut
/// sqlx::Transaction<Postgres>` and commits; evaluates to `Result<T, StoreError>`. The block
/// returns `Result<T, TxError>` (`?` works on sqlx and store errors) and may run more than once.
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store: &$crate::PgStore = $store;
        let outcome = $crate::retry::retry(
            $crate::retry::REQUEST_RETRY,
            $crate::retry::GiveUp::after(runner_core::store::patience::bounded(
                store.shared().retry_for,
            )),
            || async {
                let attempt: Result<_, $crate::transaction::TxError> = async {
                    let mut transaction = store.pool().begin().await?;
                    let value = {
                        let $tx = &mut transaction;
                        $crate::transaction::body($body).await?
                    };
                    transaction
                        .commit()
                        .await
                        .map_err($crate::transaction::TxError::AtCommit)?;
                    Ok(value)
                }
                .await;
                attempt
            },
            $crate::transaction::worth_retrying,
        )
        .await;
        $crate::transaction::settle(outcome)
    }};
}
