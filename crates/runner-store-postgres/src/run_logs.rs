//! Run logs in PostgreSQL (migration 0006): what [`runner_core::run_log`] plans, in two tables.
//!
//! An append is one transaction: it reads the execution (`FOR SHARE`, so a claim or a lapse of
//! the lease by another node waits for it, and the fence it checks holds until the commit) with
//! the log's meta, then inserts the pieces, deletes the tail chunks the cap drops and writes the
//! meta in one statement. Only the worker holding the attempt's lease appends to it, so appends
//! to one log never race. A read is two statements (the meta with the execution, then the
//! chunks); a chunk dropped in between ends the page early (see [`run_log::assemble`]).

use runner_core::execution::Execution;
use runner_core::ids::{AccountAlias, ExecutionId, JobId};
use runner_core::machine;
use runner_core::run_log::{self, LogCap, LogMeta, LogPage};
use runner_core::store::{LogRead, Signal, StoreError};
use runner_core::time::Timestamp;

use crate::codec::Encode;
use crate::{PgStore, to_i64};

/// The meta of an attempt's log as stored: total, head_len, cap (all NULL for no row yet).
type MetaRow = (Option<i64>, Option<i64>, Option<i64>);

/// An execution's body with the meta of one attempt's log.
type ExecutionLogRow = (String, Option<i64>, Option<i64>, Option<i64>);

fn meta_of((total, head_len, cap): MetaRow) -> LogMeta {
    match (total, head_len, cap) {
        (Some(total), Some(head_len), Some(cap)) => LogMeta {
            total: total.max(0) as u64,
            head_len: head_len.max(0) as u64,
            cap: LogCap::new(cap.max(0) as u64),
        },
        _ => LogMeta::default(),
    }
}

/// Inserts the pieces (`$3` offsets, `$4` bytes), drops the tail chunks from the head's end
/// (`$5`) up to the new window's start (`$6`) that end before it, and writes the meta (`$7`
/// total, `$5` head_len, `$8` cap) of log (`$1`, `$2`).
const WRITE_LOG: &str = "WITH pieces AS (
    INSERT INTO run_log_chunks (execution_id, attempt, start_offset, data)
    SELECT $1, $2, p.o, p.d FROM unnest($3::int8[], $4::bytea[]) AS p(o, d)
), dropped AS (
    DELETE FROM run_log_chunks
     WHERE execution_id = $1 AND attempt = $2 AND start_offset >= $5 AND start_offset < $6
       AND start_offset + length(data) <= $6
)
INSERT INTO run_logs (execution_id, attempt, total, head_len, cap)
VALUES ($1, $2, $7, $5, $8)
ON CONFLICT (execution_id, attempt)
DO UPDATE SET total = excluded.total, head_len = excluded.head_len, cap = excluded.cap";

/// `RunLogStore::append_log`: see the module docs.
pub(crate) async fn append_log(
    store: &PgStore,
    id: ExecutionId,
    attempt: u32,
    chunk: &[u8],
    cap: LogCap,
    _now: Timestamp,
) -> Result<u64, StoreError> {
    let total = transaction!(store, |tx| async {
        let row: Option<ExecutionLogRow> = sqlx::query_as(
            "SELECT x.body::text, l.total, l.head_len, l.cap
               FROM executions AS x
               LEFT JOIN run_logs AS l ON l.execution_id = x.id AND l.attempt = $2
              WHERE x.id = $1
                FOR SHARE OF x",
        )
        .bind(id.0)
        .bind(i64::from(attempt))
        .fetch_optional(&mut **tx)
        .await?;
        let Some((body, total, head_len, stored_cap)) = row else {
            return Err(StoreError::NotFound.into());
        };
        let execution: Execution = store.shared().codec.decode("execution", id.0, &body)?;
        machine::fence(&execution, attempt).map_err(StoreError::Refused)?;
        let meta = meta_of((total, head_len, stored_cap));
        let plan = meta.plan_append(cap, chunk.len());
        let next = plan.meta;
        let offsets: Vec<i64> = plan.pieces.iter().map(|p| to_i64(p.offset)).collect();
        let bytes: Vec<&[u8]> = plan
            .pieces
            .iter()
            .map(|p| &chunk[p.range.clone()])
            .collect();
        sqlx::query(WRITE_LOG)
            .bind(id.0)
            .bind(i64::from(attempt))
            .bind(&offsets)
            .bind(&bytes)
            .bind(to_i64(next.head_len))
            .bind(to_i64(next.window_start()))
            .bind(to_i64(next.total))
            .bind(to_i64(next.cap.bytes()))
            .execute(&mut **tx)
            .await?;
        Ok(next.total)
    })?;
    store.shared().committed(vec![Signal::Log(id)]);
    Ok(total)
}

/// `RunLogStore::read_log`: see the module docs.
pub(crate) async fn read_log(
    store: &PgStore,
    alias: &AccountAlias,
    job_id: JobId,
    id: ExecutionId,
    read: LogRead,
) -> Result<LogPage, StoreError> {
    let asked = read.attempt.map(i64::from);
    let row: Option<ExecutionLogRow> = store
        .read(|| {
            sqlx::query_as(
                "SELECT x.body::text, l.total, l.head_len, l.cap
                   FROM executions AS x
                   LEFT JOIN run_logs AS l
                     ON l.execution_id = x.id AND l.attempt = COALESCE($4, GREATEST(x.attempt, 1))
                  WHERE x.id = $1 AND x.job_id = $2 AND x.account_alias = $3",
            )
            .bind(id.0)
            .bind(job_id.0)
            .bind(alias.as_str())
            .bind(asked)
            .fetch_optional(store.pool())
        })
        .await?;
    let Some((body, total, head_len, cap)) = row else {
        return Err(StoreError::NotFound);
    };
    let execution: Execution = store.shared().codec.decode("execution", id.0, &body)?;
    let attempt = run_log::resolve_attempt(&execution, read.attempt).ok_or(StoreError::NotFound)?;
    let ended = run_log::attempt_ended(&execution, attempt);
    let meta = meta_of((total, head_len, cap));
    let plan = meta.plan_read(read.offset, read.limit);
    let chunks: Vec<(i64, Vec<u8>)> = if plan.to > plan.from {
        store
            .read(|| {
                sqlx::query_as(
                    "SELECT start_offset, data FROM run_log_chunks
                      WHERE execution_id = $1 AND attempt = $2 AND start_offset < $4
                        AND start_offset >= COALESCE((
                            SELECT max(start_offset) FROM run_log_chunks
                             WHERE execution_id = $1 AND attempt = $2 AND start_offset <= $3), 0)
                      ORDER BY start_offset",
                )
                .bind(id.0)
                .bind(i64::from(attempt))
                .bind(to_i64(plan.from))
                .bind(to_i64(plan.to))
                .fetch_all(store.pool())
            })
            .await?
    } else {
        Vec::new()
    };
    Ok(LogPage::new(
        attempt,
        &meta,
        &plan,
        chunks
            .iter()
            .map(|(offset, data)| ((*offset).max(0) as u64, data.as_slice())),
        ended,
    ))
}
