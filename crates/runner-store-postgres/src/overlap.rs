//! The rules of [`runner_core::overlap`] in SQL, for many nodes on one database.
//!
//! Whether an execution is one-at-a-time (queue or skip) is its column `one_at_a_time` (migration
//! 0012, written at insert from `Overlap::one_at_a_time`), so that the claim never parses a body.
//!
//! - The claim rule is a condition of the claim's candidate query (`claimable!`): a PENDING
//!   one-at-a-time execution is a candidate only if no other one-at-a-time execution of its job
//!   is claimed and none is PENDING ahead of it. Race-free without a lock: the executions that
//!   hold or wait for a job's turn are the ones the condition reads, and a statement's snapshot
//!   sees each of them either PENDING or claimed, never between (a claim writes both in one
//!   statement); so two claims in flight see the older one PENDING and pass over the younger.
//! - The start rule runs in a transaction that first locks the job row (`FOR NO KEY UPDATE`, the
//!   lock the insert statement's numbering takes), so starts of one job follow each other and
//!   each sees the executions the one before committed ([`insert_skipping`]); the scheduler's
//!   firing transaction holds the same locks and asks [`blocking`].

use std::collections::HashMap;

use runner_core::execution::Execution;
use runner_core::ids::ExecutionId;
use runner_core::store::{Signal, StoreError};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::PgStore;
use crate::transaction::TxError;
use crate::writes::NewExecutions;

/// The statuses of `runner_core::overlap::TURN_STATUSES`, and PENDING, as SQL lists.
macro_rules! turn_statuses {
    () => {
        "'INITIALIZING', 'RUNNING', 'STOPPING', 'KILLING'"
    };
}
pub(crate) use turn_statuses;

/// The claim rule, as a condition on the PENDING candidate `e` (a string literal, for
/// `concat!`).
macro_rules! claimable {
    () => {
        concat!(
            "(NOT e.one_at_a_time OR NOT EXISTS (
        SELECT 1 FROM executions AS o
         WHERE o.job_id = e.job_id AND o.id <> e.id AND o.one_at_a_time
           AND (o.status IN (",
            $crate::overlap::turn_statuses!(),
            ")
                OR (o.status = 'PENDING' AND o.queue_position < e.queue_position))))"
        )
    };
}
pub(crate) use claimable;

/// Per job of `jobs` (whose rows the caller has locked): its one-at-a-time execution that has
/// not ended, the oldest first, if it has one.
pub(crate) async fn blocking(
    tx: &mut Transaction<'static, Postgres>,
    jobs: &[Uuid],
) -> Result<HashMap<Uuid, ExecutionId>, sqlx::Error> {
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(concat!(
        "SELECT DISTINCT ON (job_id) job_id, id FROM executions
          WHERE job_id = ANY($1) AND one_at_a_time
            AND status IN ('PENDING', ",
        turn_statuses!(),
        ")
          ORDER BY job_id, queue_position"
    ))
    .bind(jobs)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(job, execution)| (job, ExecutionId(execution)))
        .collect())
}

/// Inserts an execution under skip: in a transaction that locks its job's row, refuses it with
/// [`StoreError::Overlapping`] while a one-at-a-time execution of the job has not ended, and
/// [`StoreError::NotFound`] when the job is gone or (with `job_revision`) no longer at that
/// revision, as the insert lane does.
pub(crate) async fn insert_skipping(
    store: &PgStore,
    execution: &Execution,
    job_revision: Option<i64>,
) -> Result<(), StoreError> {
    let shared = store.shared();
    let job = execution.job_id.0;
    transaction!(store, |tx| async {
        let revision: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM jobs WHERE id = $1 AND account_alias = $2 FOR NO KEY UPDATE",
        )
        .bind(job)
        .bind(execution.account_alias.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        match revision {
            Some(revision) if job_revision.is_none_or(|wanted| wanted == revision) => {}
            _ => return Err(TxError::Store(StoreError::NotFound)),
        }
        if let Some(active) = blocking(tx, &[job]).await?.remove(&job) {
            return Err(TxError::Store(StoreError::Overlapping(active)));
        }
        let mut new = NewExecutions::default();
        new.push(&shared.codec, execution, None)?;
        if new
            .insert(&mut **tx)
            .await?
            .contains(&execution.execution_id.0)
        {
            Ok(())
        } else {
            Err(TxError::Store(StoreError::NotFound))
        }
    })?;
    shared.unannounced.pending([execution.execution_id.0]);
    shared.committed(vec![Signal::Pending, Signal::Feed(execution.execution_id)]);
    Ok(())
}
