//! Retention: `RetentionStore::purge_ended` and `OutboxStore::given_up_deliveries`.
//!
//! A purge is one statement in its own short transaction: it takes the purge lock of the schema
//! (`pg_try_advisory_xact_lock`, released at the commit), so one node purges at a time and the
//! others delete nothing while it does; it picks up to `limit` ended rows from
//! `executions_ended` (migration 0010) with `FOR UPDATE SKIP LOCKED`, so it never waits on a row
//! a worker or an API call holds; and it deletes their events, deliveries, run logs and rows,
//! counting each job's purged executions in `execution_purges` (which `list_executions` pages
//! by).

use runner_core::feed::{Delivery, DeliveryKey, GivenUpDelivery};
use runner_core::ids::ExecutionId;
use runner_core::page::{Page, PageRequest};
use runner_core::store::StoreError;
use runner_core::time::Timestamp;

use crate::PgStore;
use crate::codec::Encode;

/// The first key of the purge's advisory lock (the second is the schema's hash): a number no
/// other lock of this store uses.
const PURGE_LOCK: i32 = 0x5255_4e52;

const PURGE: &str = "
WITH lock AS (
    SELECT pg_try_advisory_xact_lock($3, hashtext(current_schema())) AS held
), picked AS (
    SELECT id, job_id FROM executions
     WHERE ended_time < $1 AND (SELECT held FROM lock)
     ORDER BY ended_time, id
     LIMIT $2
       FOR UPDATE SKIP LOCKED
), events AS (
    DELETE FROM execution_events WHERE execution_id IN (SELECT id FROM picked)
), deliveries AS (
    DELETE FROM deliveries WHERE execution_id IN (SELECT id FROM picked)
), chunks AS (
    DELETE FROM run_log_chunks WHERE execution_id IN (SELECT id FROM picked)
), logs AS (
    DELETE FROM run_logs WHERE execution_id IN (SELECT id FROM picked)
), gone AS (
    DELETE FROM executions WHERE id IN (SELECT id FROM picked) RETURNING job_id
), counted AS (
    INSERT INTO execution_purges (job_id, purged)
    SELECT job_id, count(*) FROM gone GROUP BY job_id
        ON CONFLICT (job_id) DO UPDATE SET purged = execution_purges.purged + EXCLUDED.purged
)
SELECT count(*) FROM gone";

/// `RetentionStore::purge_ended`.
pub(crate) async fn purge_ended(
    store: &PgStore,
    before: Timestamp,
    limit: usize,
) -> Result<usize, StoreError> {
    if limit == 0 {
        return Ok(0);
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let purged: i64 = transaction!(store, |tx| async {
        Ok(sqlx::query_scalar(PURGE)
            .bind(before)
            .bind(limit)
            .bind(PURGE_LOCK)
            .fetch_one(&mut **tx)
            .await?)
    })?;
    Ok(usize::try_from(purged).unwrap_or(0))
}

type FailedRow = (i32, i64, String, i32, i64, Option<String>, String);

/// `OutboxStore::given_up_deliveries`: one page of the execution's failed rows by primary key.
pub(crate) async fn given_up_deliveries(
    store: &PgStore,
    id: ExecutionId,
    page: PageRequest,
) -> Result<Page<GivenUpDelivery>, StoreError> {
    let (total, rows): (i64, Vec<FailedRow>) = store
        .read(|| async {
            let total = sqlx::query_scalar(
                "SELECT count(*) FROM deliveries WHERE execution_id = $1 AND state = 'failed'",
            )
            .bind(id.0)
            .fetch_one(store.pool())
            .await?;
            let rows = sqlx::query_as(
                "SELECT callback, sequence, url, attempts, next_attempt_at, last_error, body::text
                   FROM deliveries
                  WHERE execution_id = $1 AND state = 'failed'
                  ORDER BY callback, sequence
                 OFFSET $2 LIMIT $3",
            )
            .bind(id.0)
            .bind(i64::try_from(page.offset()).unwrap_or(i64::MAX))
            .bind(i64::from(page.size))
            .fetch_all(store.pool())
            .await?;
            Ok((total, rows))
        })
        .await?;
    let results = rows
        .into_iter()
        .map(
            |(callback, sequence, url, attempts, next_attempt_at, last_error, body)| {
                let delivery = Delivery {
                    key: DeliveryKey {
                        execution_id: id,
                        callback: u32::try_from(callback).unwrap_or(0),
                        sequence: u64::try_from(sequence).unwrap_or(0),
                    },
                    url,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    next_attempt_at,
                    event: store.shared().codec.decode("delivery", id.0, &body)?,
                };
                Ok(GivenUpDelivery::new(
                    delivery,
                    last_error.unwrap_or_default(),
                ))
            },
        )
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Page::new(page, u64::try_from(total).unwrap_or(0), results))
}
