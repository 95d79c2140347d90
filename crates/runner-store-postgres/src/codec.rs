//! Records to and from their stored JSON, with secrets in clear (inside
//! [`runner_core::secret::reveal`]), and the indexed columns of an execution.

use runner_core::execution::Execution;
use runner_core::secret::reveal;
use runner_core::store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// The stored JSON of a record, secrets included.
pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    reveal(|| serde_json::to_string(value))
        .map_err(|error| StoreError::Corrupt(format!("could not encode a {what}: {error}")))
}

/// A record from its stored JSON. The error names the record and where the JSON broke, never
/// the content (which may hold secrets).
pub(crate) fn decode<T: DeserializeOwned>(
    what: &str,
    id: Uuid,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|error| {
        StoreError::Corrupt(format!(
            "{what} {id} could not be read ({:?} error at line {}, column {})",
            error.classify(),
            error.line(),
            error.column()
        ))
    })
}

/// An execution as the columns of its row.
pub(crate) struct ExecutionRow {
    pub(crate) id: Uuid,
    pub(crate) status: &'static str,
    pub(crate) next_deadline: Option<i64>,
    pub(crate) attempt: i64,
    pub(crate) body: String,
}

impl ExecutionRow {
    pub(crate) fn of(execution: &Execution) -> Result<Self, StoreError> {
        Ok(Self {
            id: execution.execution_id.0,
            status: execution.status.as_str(),
            next_deadline: execution.next_deadline(),
            attempt: i64::from(execution.attempt),
            body: encode("execution", execution)?,
        })
    }
}

/// Rows to write with [`UPDATE_EXECUTIONS`], as its parallel arrays.
#[derive(Default)]
pub(crate) struct ExecutionUpdates {
    pub(crate) ids: Vec<Uuid>,
    pub(crate) statuses: Vec<&'static str>,
    pub(crate) deadlines: Vec<Option<i64>>,
    pub(crate) attempts: Vec<i64>,
    pub(crate) bodies: Vec<String>,
    /// The execution became PENDING: it goes to the end of the claim queue.
    pub(crate) requeue: Vec<bool>,
}

impl ExecutionUpdates {
    pub(crate) fn push(&mut self, row: ExecutionRow, requeue: bool) {
        self.ids.push(row.id);
        self.statuses.push(row.status);
        self.deadlines.push(row.next_deadline);
        self.attempts.push(row.attempt);
        self.bodies.push(row.body);
        self.requeue.push(requeue);
    }

    /// The one statement that writes them all and sends `payloads` on `channel`.
    pub(crate) fn query_notifying<'a>(
        &'a self,
        channel: &'a str,
        payloads: &'a [String],
    ) -> sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(UPDATE_EXECUTIONS)
            .bind(&self.ids)
            .bind(&self.statuses)
            .bind(&self.deadlines)
            .bind(&self.attempts)
            .bind(&self.bodies)
            .bind(&self.requeue)
            .bind(channel)
            .bind(payloads)
    }
}

/// Writes changed executions in one statement (a row that became PENDING draws a new queue
/// position), and sends the notifications, which PostgreSQL delivers at the commit.
const UPDATE_EXECUTIONS: &str = "\
WITH updated AS (
UPDATE executions AS e
   SET status = v.status,
       next_deadline = v.next_deadline,
       attempt = v.attempt,
       body = v.body::jsonb,
       queue_position = CASE WHEN v.requeue THEN nextval('execution_queue') ELSE e.queue_position END
  FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::bool[])
       AS v(id, status, next_deadline, attempt, body, requeue)
 WHERE e.id = v.id
)
SELECT pg_notify($7, payload) FROM unnest($8::text[]) AS payload";
