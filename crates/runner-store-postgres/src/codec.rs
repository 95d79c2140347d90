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

/// Rows to write with `live_feed::write_executions`, as its parallel arrays.
#[derive(Default)]
pub(crate) struct ExecutionUpdates {
    pub(crate) ids: Vec<Uuid>,
    pub(crate) statuses: Vec<&'static str>,
    pub(crate) deadlines: Vec<Option<i64>>,
    pub(crate) attempts: Vec<i64>,
    pub(crate) bodies: Vec<String>,
    /// The execution became PENDING: it goes to the end of the claim queue.
    pub(crate) requeue: Vec<bool>,
    /// Write the row only if its `xmin` is still this one (`None`: the row is locked already).
    pub(crate) xmins: Vec<Option<String>>,
}

impl ExecutionUpdates {
    pub(crate) fn push(&mut self, row: ExecutionRow, requeue: bool, xmin: Option<String>) {
        self.xmins.push(xmin);
        self.ids.push(row.id);
        self.statuses.push(row.status);
        self.deadlines.push(row.next_deadline);
        self.attempts.push(row.attempt);
        self.bodies.push(row.body);
        self.requeue.push(requeue);
    }
}
