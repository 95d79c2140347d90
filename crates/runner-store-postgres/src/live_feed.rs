//! The live feed in PostgreSQL: each execution's events (`execution_events`) and the webhook
//! outbox (`deliveries`), see migration 0003.
//!
//! Events are recorded by [`runner_core::feed`] inside the transaction that changes the
//! execution, under its row lock, and written here in bulk: [`FeedRows`] collects what one
//! transaction recorded and inserts it with one statement (events and deliveries as parallel
//! arrays through `unnest`), whatever the number of executions and events.
//!
//! The outbox is a set of queues, one per (execution, callback). [`claim_deliveries`] hands out
//! only the head of each queue, and hides it from other callers while the hold lasts:
//!
//! - a row is a candidate if it is pending, due, not held at `now`, and no pending row of its
//!   queue has a lower sequence (`NOT EXISTS`, a backward probe of the primary key). The rows of
//!   one queue are inserted in sequence order under the execution's row lock, and a pending row
//!   only ever leaves the pending state (delivered: deleted; given up: failed), so a snapshot
//!   that sees a later row and no earlier pending one sees a settled head;
//! - candidates are locked `FOR UPDATE SKIP LOCKED` and marked held in the same statement, so
//!   concurrent callers skip rows another one is taking; a row another caller took and committed
//!   after our snapshot is re-checked on its new version (held) and drops out. Only the head of a
//!   queue is ever a candidate, so a queue has one delivery in flight.

use runner_core::execution::Execution;
use runner_core::executor::ExecutorEvent;
use runner_core::feed::{self, Delivery, DeliveryKey, Event, Recorded, Settlement};
use runner_core::ids::{AccountAlias, ExecutionId, JobId};
use runner_core::store::{Signal, StoreError};
use runner_core::time::Timestamp;
use uuid::Uuid;

use crate::codec::{Codec, Encode, ExecutionUpdates};
use crate::{PgStore, Shared, to_i64};

/// Events and deliveries recorded in one transaction, as the parallel arrays of
/// [`feed_inserts!`] (and of the feed part of the execution insert, see `writes`).
#[derive(Default)]
pub(crate) struct FeedRows {
    pub(crate) event_ids: Vec<Uuid>,
    pub(crate) event_sequences: Vec<i64>,
    pub(crate) event_bodies: Vec<String>,
    pub(crate) delivery_ids: Vec<Uuid>,
    pub(crate) delivery_callbacks: Vec<i32>,
    pub(crate) delivery_sequences: Vec<i64>,
    pub(crate) delivery_urls: Vec<String>,
    pub(crate) delivery_times: Vec<i64>,
    /// Per delivery: the 1-based index of its event's body in `event_bodies` (a delivery's body
    /// is its event, so it is encoded and sent once).
    pub(crate) delivery_events: Vec<i32>,
}

impl FeedRows {
    /// Adds what one change recorded: all of it, or nothing if an event cannot be encoded.
    pub(crate) fn push(&mut self, codec: &Codec, recorded: &[Recorded]) -> Result<(), StoreError> {
        let bodies = recorded
            .iter()
            .map(|recorded| codec.encode("event", &recorded.event))
            .collect::<Result<Vec<_>, _>>()?;
        for (recorded, body) in recorded.iter().zip(bodies) {
            self.event_ids.push(recorded.event.execution_id.0);
            self.event_sequences.push(to_i64(recorded.event.sequence));
            self.event_bodies.push(body);
            let index = i32::try_from(self.event_bodies.len()).unwrap_or(i32::MAX);
            for delivery in &recorded.deliveries {
                self.delivery_ids.push(delivery.key.execution_id.0);
                self.delivery_callbacks
                    .push(i32::try_from(delivery.key.callback).unwrap_or(i32::MAX));
                self.delivery_sequences.push(to_i64(delivery.key.sequence));
                self.delivery_urls.push(delivery.url.clone());
                self.delivery_times.push(delivery.next_attempt_at);
                self.delivery_events.push(index);
            }
        }
        Ok(())
    }

    /// Binds the nine arrays, in the order of `$1..$9` of [`feed_inserts!`] (or of the
    /// parameters the caller's statement gives them).
    pub(crate) fn bind<'q, O>(
        &'q self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(&self.event_ids)
            .bind(&self.event_sequences)
            .bind(&self.event_bodies)
            .bind(&self.delivery_ids)
            .bind(&self.delivery_callbacks)
            .bind(&self.delivery_sequences)
            .bind(&self.delivery_urls)
            .bind(&self.delivery_times)
            .bind(&self.delivery_events)
    }
}

/// The two common table expressions that insert a [`FeedRows`] (`$1..$9`): the events, and the
/// deliveries, whose bodies are the events' (`$3`, by index), each restricted by the join clause
/// given (`""` for none). A macro, so that the statements below and the execution insert in
/// `writes` are string literals that share this text.
macro_rules! feed_inserts {
    ($join:literal) => {
        concat!(
            "events AS (
    INSERT INTO execution_events (execution_id, sequence, body)
    SELECT e.id, e.seq, e.body::json
      FROM unnest($1::uuid[], $2::int8[], $3::text[]) AS e(id, seq, body) ",
            $join,
            "
), outbox AS (
    INSERT INTO deliveries (execution_id, callback, sequence, url, next_attempt_at, body)
    SELECT d.id, d.callback, d.seq, d.url, d.at, ($3::text[])[d.ev]::json
      FROM unnest($4::uuid[], $5::int4[], $6::int8[], $7::text[], $8::int8[], $9::int4[])
           AS d(id, callback, seq, url, at, ev) ",
            $join,
            "
)"
        )
    };
}

/// Writes changed executions (`$10..$16` and `$21`, an [`ExecutionUpdates`]: a row that became PENDING
/// draws a new queue position; a row with an expected `xmin` is written only if it still has
/// it) and the feed rows of the rows written (`$1..$9`), in one statement (data-modifying CTEs
/// always run to completion); holds the jobs `$17` (`FOR KEY SHARE`), sends the payloads `$19`
/// on channel `$18`, and, if `$20`, lets the transaction commit without waiting for the disk
/// (`set_config(..., true)` is `SET LOCAL`: PostgreSQL reads it at the commit). Returns the id
/// and new `xmin` of each row written.
const WRITE_EXECUTIONS: &str = concat!(
    "WITH updated AS (
    UPDATE executions AS e
       SET status = v.status,
           next_deadline = v.next_deadline,
           ended_time = v.ended_time,
           attempt = v.attempt,
           body = v.body::json,
           queue_position = CASE WHEN v.requeue THEN nextval('execution_queue')
                                 ELSE e.queue_position END
      FROM unnest($10::uuid[], $11::text[], $12::int8[], $13::int8[], $14::text[], $15::bool[],
                  $16::text[], $21::int8[])
           AS v(id, status, next_deadline, attempt, body, requeue, xmin, ended_time)
     WHERE e.id = v.id AND (v.xmin IS NULL OR e.xmin = v.xmin::xid)
 RETURNING e.id, e.xmin::text AS xmin
), ",
    feed_inserts!("JOIN updated USING (id)"),
    ", held AS (
    SELECT id FROM jobs WHERE id = ANY($17) ORDER BY id FOR KEY SHARE
), effects AS (
    SELECT (SELECT count(*) FROM held)
         + (SELECT count(pg_notify($18, payload)) FROM unnest($19::text[]) AS payload)
         + (SELECT count(set_config('synchronous_commit', 'off', true)) WHERE $20) AS n
)
SELECT id, xmin FROM updated WHERE (SELECT n FROM effects) >= 0"
);

/// The one statement of a transaction's writes to executions: [`WRITE_EXECUTIONS`] for `updates`
/// and `feed`, holding the rows of `jobs`, notifying `payloads` on `channel` with the commit;
/// `relaxed` for a transaction that need not wait for the disk. Yields the id and new `xmin` of
/// each row written.
pub(crate) fn write_executions<'q>(
    updates: &'q ExecutionUpdates,
    jobs: &'q [Uuid],
    feed: &'q FeedRows,
    channel: &'q str,
    payloads: &'q [String],
    relaxed: bool,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, (Uuid, String), sqlx::postgres::PgArguments> {
    feed.bind(sqlx::query_as(WRITE_EXECUTIONS))
        .bind(&updates.ids)
        .bind(&updates.statuses)
        .bind(&updates.deadlines)
        .bind(&updates.attempts)
        .bind(&updates.bodies)
        .bind(&updates.requeue)
        .bind(&updates.xmins)
        .bind(jobs)
        .bind(channel)
        .bind(payloads)
        .bind(relaxed)
        .bind(&updates.ended_times)
}

/// The feed inserts plus the new body of the execution (`$10`, `$11`: its id): the whole write of
/// [`append_events`]. Its [`Signal::Feed`] goes to other nodes after the commit (see `notifier`).
const APPEND_FEED: &str = concat!(
    "WITH updated AS (
    UPDATE executions SET body = $10::json WHERE id = $11 RETURNING xmin::text AS xmin
), ",
    feed_inserts!(""),
    "\nSELECT xmin FROM updated"
);

/// `Store::append_events`: one durable transaction (normal synchronous commit) that locks the
/// execution's row, applies [`feed::append`] (fenced by the attempt), and writes the body (its
/// event counter), the events and the deliveries in one statement.
pub(crate) async fn append_events(
    store: &PgStore,
    id: ExecutionId,
    attempt: u32,
    events: &[ExecutorEvent],
    now: Timestamp,
) -> Result<u64, StoreError> {
    let shared: &Shared = store.shared();
    let (latest, written) = transaction!(store, |tx| async {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body::text FROM executions WHERE id = $1 FOR UPDATE")
                .bind(id.0)
                .fetch_optional(&mut **tx)
                .await?;
        let Some(body) = body else {
            return Err(StoreError::NotFound.into());
        };
        let mut execution: Execution = shared.codec.decode("execution", id.0, &body)?;
        let recorded =
            feed::append(&mut execution, attempt, events, now).map_err(StoreError::Refused)?;
        if recorded.is_empty() {
            // Nothing for the feed (only engine events): the fence held, nothing to write.
            return Ok((execution.events, None));
        }
        let mut rows = FeedRows::default();
        rows.push(&shared.codec, &recorded)?;
        let body = shared.codec.encode("execution", &execution)?;
        let (xmin,): (String,) = rows
            .bind(sqlx::query_as(APPEND_FEED))
            .bind(&body)
            .bind(id.0)
            .fetch_one(&mut **tx)
            .await?;
        Ok((execution.events, Some((xmin, execution))))
    })?;
    if let Some((xmin, execution)) = written {
        // The worker's next transition starts from this version (see `versions`).
        shared.versions.remember(xmin, &execution);
        shared.committed(vec![Signal::Feed(id)]);
    }
    Ok(latest)
}

/// `Store::list_events`: one statement that also tells a missing execution (no row) from an
/// empty page (one row with a NULL body).
pub(crate) async fn list_events(
    store: &PgStore,
    alias: &AccountAlias,
    job_id: JobId,
    id: ExecutionId,
    after: u64,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let rows: Vec<Option<String>> = store
        .read(|| {
            sqlx::query_scalar(
                "SELECT ev.body::text
                   FROM executions AS x
                   LEFT JOIN LATERAL (
                        SELECT body, sequence FROM execution_events
                         WHERE execution_id = x.id AND sequence > $4
                         ORDER BY sequence LIMIT $5
                   ) AS ev ON true
                  WHERE x.id = $1 AND x.job_id = $2 AND x.account_alias = $3
                  ORDER BY ev.sequence",
            )
            .bind(id.0)
            .bind(job_id.0)
            .bind(alias.as_str())
            .bind(to_i64(after))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(store.pool())
        })
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    rows.into_iter()
        .flatten()
        .map(|body| store.shared().codec.decode("event", id.0, &body))
        .collect()
}

/// A claimed delivery row.
type DeliveryRow = (Uuid, i32, i64, String, i32, i64, String);

/// `Store::claim_deliveries`: see the module docs. One statement, so one short transaction;
/// retried like a read while the database is unreachable (a claim that landed but whose answer
/// was lost only delays those deliveries until `hold_until`).
pub(crate) async fn claim_deliveries(
    store: &PgStore,
    now: Timestamp,
    hold_until: Timestamp,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<DeliveryRow> = store
        .read(|| {
            sqlx::query_as(
                "WITH heads AS (
                    SELECT d.execution_id, d.callback, d.sequence
                      FROM deliveries AS d
                     WHERE d.state = 'pending'
                       AND d.next_attempt_at <= $1
                       AND (d.held_until IS NULL OR d.held_until <= $1)
                       AND NOT EXISTS (
                            SELECT 1 FROM deliveries AS earlier
                             WHERE earlier.execution_id = d.execution_id
                               AND earlier.callback = d.callback
                               AND earlier.sequence < d.sequence
                               AND earlier.state = 'pending')
                     ORDER BY d.next_attempt_at
                     LIMIT $3
                       FOR UPDATE SKIP LOCKED
                 )
                 UPDATE deliveries AS d SET held_until = $2
                   FROM heads AS h
                  WHERE d.execution_id = h.execution_id
                    AND d.callback = h.callback
                    AND d.sequence = h.sequence
              RETURNING d.execution_id, d.callback, d.sequence, d.url, d.attempts,
                        d.next_attempt_at, d.body::text",
            )
            .bind(now)
            .bind(hold_until)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(store.pool())
        })
        .await?;
    rows.into_iter()
        .map(
            |(execution_id, callback, sequence, url, attempts, next_attempt_at, body)| {
                Ok(Delivery {
                    key: DeliveryKey {
                        execution_id: ExecutionId(execution_id),
                        callback: u32::try_from(callback).unwrap_or(0),
                        sequence: u64::try_from(sequence).unwrap_or(0),
                    },
                    url,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    next_attempt_at,
                    event: store
                        .shared()
                        .codec
                        .decode("delivery", execution_id, &body)?,
                })
            },
        )
        .collect()
}

/// `Store::settle_delivery`: one statement on the pending row (a row that is gone or failed is
/// left alone). Retried while the database is unreachable: deleting and giving up are
/// idempotent; a retried `Retry` whose first try landed counts one attempt too many.
pub(crate) async fn settle_delivery(
    store: &PgStore,
    key: &DeliveryKey,
    settlement: &Settlement,
) -> Result<(), StoreError> {
    let id = key.execution_id.0;
    let callback = i32::try_from(key.callback).unwrap_or(i32::MAX);
    let sequence = to_i64(key.sequence);
    let keyed = |sql: &'static str| sqlx::query(sql).bind(id).bind(callback).bind(sequence);
    store
        .read(|| async {
            let query = match settlement {
                Settlement::Delivered => keyed(
                    "DELETE FROM deliveries
                      WHERE execution_id = $1 AND callback = $2 AND sequence = $3
                        AND state = 'pending'",
                ),
                Settlement::Retry { at, error } => keyed(
                    "UPDATE deliveries
                        SET attempts = attempts + 1, next_attempt_at = $5, held_until = NULL,
                            last_error = $4
                      WHERE execution_id = $1 AND callback = $2 AND sequence = $3
                        AND state = 'pending'",
                )
                .bind(error.as_str())
                .bind(*at),
                Settlement::GiveUp { error } => keyed(
                    "UPDATE deliveries
                        SET attempts = attempts + 1, state = 'failed', held_until = NULL,
                            last_error = $4
                      WHERE execution_id = $1 AND callback = $2 AND sequence = $3
                        AND state = 'pending'",
                )
                .bind(error.as_str()),
                // A settlement this store does not know: leave the delivery pending (its hold
                // lapses and it is tried again) rather than guess.
                _ => return Ok(()),
            };
            query.execute(store.pool()).await.map(|_| ())
        })
        .await
}

/// `Store::next_delivery_at`: over the head of each queue (a later delivery waits for its head,
/// so its own time does not count), the time it can next be taken: `next_attempt_at`, or the end
/// of its hold if that is later. Only heads are ever held (a held row stays its queue's head
/// until settled), so it is the lesser of the first unheld head in `deliveries_due` order (an
/// index walk that stops at the first head) and the earliest end of a hold (a filter over the
/// pending rows: held rows are few, and indexing `held_until` would make every hold update a
/// non-HOT one).
pub(crate) async fn next_delivery_at(store: &PgStore) -> Result<Option<Timestamp>, StoreError> {
    store
        .read(|| {
            sqlx::query_scalar(
                "SELECT LEAST(
                    (SELECT d.next_attempt_at FROM deliveries AS d
                      WHERE d.state = 'pending' AND d.held_until IS NULL
                        AND NOT EXISTS (
                             SELECT 1 FROM deliveries AS earlier
                              WHERE earlier.execution_id = d.execution_id
                                AND earlier.callback = d.callback
                                AND earlier.sequence < d.sequence
                                AND earlier.state = 'pending')
                      ORDER BY d.next_attempt_at LIMIT 1),
                    (SELECT min(GREATEST(next_attempt_at, held_until)) FROM deliveries
                      WHERE state = 'pending' AND held_until IS NOT NULL))",
            )
            .fetch_one(store.pool())
        })
        .await
}
