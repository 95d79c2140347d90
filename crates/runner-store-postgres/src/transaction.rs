//! Short transactions with retries: [`transaction!`] runs a body in a transaction and commits,
//! again while the database is unreachable or PostgreSQL rolled it back for a deadlock.
//!
//! A macro rather than a function taking an async closure: the store's futures must be `Send`,
//! which the compiler cannot yet prove through a higher-ranked async closure bound.

use std::time::{Duration, Instant};

use runner_core::store::StoreError;

use crate::error::{is_connection_error, is_transient_conflict, unavailable};

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

/// The retry policy of [`transaction!`]: up to `retry_for`, with a doubling pause.
pub(crate) struct Retry {
    deadline: Instant,
    pause: Duration,
}

impl Retry {
    pub(crate) fn new(retry_for: Duration) -> Self {
        Self {
            deadline: Instant::now() + retry_for,
            pause: Duration::from_millis(20),
        }
    }

    /// The result to return, or `None` after a pause when the attempt should be made again. A
    /// failed commit is never retried (it may have landed): the caller gets `Unavailable`.
    pub(crate) async fn settle<T>(
        &mut self,
        attempt: Result<T, TxError>,
    ) -> Option<Result<T, StoreError>> {
        match attempt {
            Ok(value) => Some(Ok(value)),
            Err(TxError::Store(error)) => Some(Err(error)),
            Err(TxError::Before(error))
                if (is_connection_error(&error) || is_transient_conflict(&error))
                    && Instant::now() < self.deadline =>
            {
                tracing::debug!(%error, "transaction failed; retrying");
                tokio::time::sleep(self.pause).await;
                self.pause = (self.pause * 2).min(Duration::from_secs(1));
                None
            }
            Err(TxError::Before(error) | TxError::AtCommit(error)) => Some(Err(unavailable(error))),
        }
    }
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
        let mut retry = $crate::transaction::Retry::new(store.shared().retry_for);
        loop {
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
            if let Some(result) = retry.settle(attempt).await {
                break result;
            }
        }
    }};
}
