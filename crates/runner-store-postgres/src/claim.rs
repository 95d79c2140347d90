//! Claims: one transaction takes the oldest PENDING executions no other transaction holds
//! (`FOR UPDATE SKIP LOCKED`), applies [`Command::Claim`] to each in Rust (through
//! [`feed::transition`]) and writes them all and their INITIALIZING events in one statement (the
//! one transitions use, `live_feed::write_executions`). Many nodes claim at once without waiting
//! on each other or taking one twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use runner_core::execution::Execution;
use runner_core::feed;
use runner_core::ids::NodeId;
use runner_core::job::Job;
use runner_core::machine::Command;
use runner_core::store::{Signal, StoreError, patience};
use runner_core::time::Timestamp;
use uuid::Uuid;

use crate::Shared;
use crate::codec::{Encode, ExecutionRow, ExecutionUpdates};
use crate::error::{is_connection_error, is_retryable, unavailable};
use crate::live_feed::{self, FeedRows};
use crate::retry::{GiveUp, REQUEST_RETRY, RetryPolicy, retry};

enum Failed {
    Before(sqlx::Error),
    /// The commit failed after these executions were claimed in the transaction.
    AtCommit(sqlx::Error, Vec<Execution>),
}

impl From<sqlx::Error> for Failed {
    fn from(error: sqlx::Error) -> Self {
        Failed::Before(error)
    }
}

pub(crate) async fn claim(
    shared: &Shared,
    node: &NodeId,
    limit: usize,
    lease_until: Timestamp,
    now: Timestamp,
) -> Result<Vec<Execution>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let command = Command::Claim {
        node: node.clone(),
        lease_until,
    };
    let give_up = GiveUp::after(patience::bounded(shared.retry_for));
    let outcome = retry(
        REQUEST_RETRY,
        give_up,
        || attempt(shared, &command, limit, now),
        |failed| matches!(failed, Failed::Before(error) if is_retryable(error)),
    )
    .await;
    match outcome {
        Ok(claimed) => Ok(claimed),
        Err(Failed::Before(error)) => Err(unavailable(error)),
        Err(Failed::AtCommit(error, claimed)) => {
            // Claimed executions that nobody runs would sit until their lease lapses and then
            // fail: find out whether the commit landed, and hand over what is ours.
            tracing::warn!(%error, "the commit of a claim failed; reading back what it claimed");
            read_back(shared, claimed, give_up)
                .await
                .map_err(unavailable)
        }
    }
}

/// The oldest PENDING executions that no other transaction holds, locked (`$1` at most), in
/// queue order, then the jobs they belong to with their revision (the third column tells which a
/// row is), so that a worker needs no read of its job (see `claimed_jobs`) and a start none
/// either (see `job_cache`). `FOR UPDATE` in the CTE locks only the executions; the CTE is read
/// once.
const CANDIDATES: &str = concat!(
    "WITH picked AS (
    SELECT id, job_id, queue_position, body FROM executions AS e
     WHERE status = 'PENDING' AND ",
    crate::overlap::claimable!(),
    "
     ORDER BY queue_position
     LIMIT $1
       FOR UPDATE SKIP LOCKED
)
SELECT id, body::text, false AS job, queue_position AS n FROM picked
UNION ALL
SELECT id, body::text, true, revision FROM jobs WHERE id IN (SELECT job_id FROM picked)
ORDER BY job, n"
);

async fn attempt(
    shared: &Shared,
    command: &Command,
    limit: usize,
    now: Timestamp,
) -> Result<Vec<Execution>, Failed> {
    let mut tx = shared.pool.begin().await?;
    let rows: Vec<(Uuid, String, bool, i64)> = sqlx::query_as(CANDIDATES)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
    let (job_rows, rows): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, _, job, _)| *job);
    let jobs: HashMap<Uuid, Arc<Job>> = job_rows
        .into_iter()
        .filter_map(
            |(id, body, _, revision)| match shared.codec.decode::<Job>("job", id, &body) {
                Ok(job) => {
                    let job = Arc::new(job);
                    shared.job_cache.keep(Arc::clone(&job), revision);
                    Some((id, job))
                }
                Err(error) => {
                    // Its worker reads it again and fails the run with the error.
                    tracing::error!(%error, "a claimed execution's job is unreadable");
                    None
                }
            },
        )
        .collect();
    let mut claimed = Vec::with_capacity(rows.len());
    let mut updates = ExecutionUpdates::default();
    let mut feed_rows = FeedRows::default();
    let mut signals = Vec::new();
    for (id, body, _, _) in rows {
        let mut execution = match shared.codec.decode::<Execution>("execution", id, &body) {
            Ok(execution) => execution,
            Err(error) => {
                // Leave a record we cannot read in the queue for a person; claim the others.
                tracing::error!(%error, "skipping an unreadable PENDING execution");
                continue;
            }
        };
        // Only PENDING rows were selected, so the claim is allowed; skip it if it is not.
        let Ok(events) = feed::transition(&mut execution, command, now) else {
            continue;
        };
        // The row and its events are written together or not at all.
        match ExecutionRow::of(&shared.codec, &execution)
            .and_then(|row| feed_rows.push(&shared.codec, &events).map(|()| row))
        {
            Ok(row) => {
                updates.push(row, false, None);
                if !events.is_empty() {
                    signals.push(Signal::Feed(execution.execution_id));
                }
            }
            Err(error) => {
                tracing::error!(%error, "skipping an execution that cannot be encoded");
                continue;
            }
        }
        claimed.push(execution);
    }
    if claimed.is_empty() {
        tx.rollback().await?;
        return Ok(claimed);
    }
    let payloads = shared.commit_payloads(&signals);
    let written: HashMap<Uuid, String> =
        live_feed::write_executions(&updates, &[], &feed_rows, &shared.channel, &payloads, false)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    match tx.commit().await {
        Ok(()) => {
            // The workers' first transitions start from these versions (see `versions`).
            for execution in &claimed {
                if let Some(xmin) = written.get(&execution.execution_id.0) {
                    shared.versions.remember(xmin.clone(), execution);
                }
                if let Some(job) = jobs.get(&execution.job_id.0) {
                    shared.claimed_jobs.keep(execution, Arc::clone(job));
                }
            }
            shared
                .unannounced
                .claimed(claimed.iter().map(|execution| execution.execution_id.0));
            shared.committed(signals);
            Ok(claimed)
        }
        Err(error) => Err(Failed::AtCommit(error, claimed)),
    }
}

/// The pauses of [`read_back`], which shares the claim's deadline.
const READ_BACK_RETRY: RetryPolicy = RetryPolicy {
    first_pause: Duration::from_millis(50),
    max_pause: Duration::from_secs(1),
};

/// After a failed commit: the executions of `claimed` whose stored claim is this one (same
/// attempt and node, still claimed), as stored now, retrying while the database is unreachable
/// until `give_up`.
async fn read_back(
    shared: &Shared,
    claimed: Vec<Execution>,
    give_up: GiveUp,
) -> Result<Vec<Execution>, sqlx::Error> {
    let ids: Vec<Uuid> = claimed.iter().map(|e| e.execution_id.0).collect();
    let rows: Vec<(Uuid, String)> = retry(
        READ_BACK_RETRY,
        give_up,
        || {
            sqlx::query_as("SELECT id, body::text FROM executions WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(&shared.pool)
        },
        is_connection_error,
    )
    .await?;
    let node = |execution: &Execution| execution.lease.as_ref().map(|lease| lease.node.clone());
    Ok(rows
        .into_iter()
        .filter_map(|(id, body)| {
            shared
                .codec
                .decode::<Execution>("execution", id, &body)
                .ok()
        })
        .filter(|stored| {
            stored.status.is_claimed()
                && claimed.iter().any(|ours| {
                    ours.execution_id == stored.execution_id
                        && ours.attempt == stored.attempt
                        && node(ours) == node(stored)
                })
        })
        .collect())
}
