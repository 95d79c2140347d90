//! Records to and from their stored JSON, with secrets persisted (sealed under the store's
//! keyring when it has one, inside [`runner_core::seal::sealing`]), and the indexed columns of
//! an execution.

use runner_core::execution::Execution;
pub(crate) use runner_core::seal::RecordCodec as Codec;
use runner_core::seal::SEAL_ERROR_PREFIX;
use runner_core::store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Records to JSON and back, with the errors this store reports.
pub(crate) trait Encode {
    /// The stored JSON of a record, its secrets sealed.
    fn encode<T: Serialize>(&self, what: &str, value: &T) -> Result<String, StoreError>;
    /// A record from its stored JSON. The error names the record and where the JSON broke (or
    /// why a sealed secret did not open), never the content.
    fn decode<T: DeserializeOwned>(
        &self,
        what: &str,
        id: Uuid,
        json: &str,
    ) -> Result<T, StoreError>;
}

impl Encode for Codec {
    fn encode<T: Serialize>(&self, what: &str, value: &T) -> Result<String, StoreError> {
        self.to_string(value)
            .map_err(|error| StoreError::Corrupt(format!("could not encode a {what}: {error}")))
    }

    fn decode<T: DeserializeOwned>(
        &self,
        what: &str,
        id: Uuid,
        json: &str,
    ) -> Result<T, StoreError> {
        self.from_str(json).map_err(|error| {
            // A secret that did not open: its message says which key it needs, and holds no
            // secret; any other message might quote the stored value, so it is left out.
            let message = error.to_string();
            let why = if message.starts_with(SEAL_ERROR_PREFIX) {
                format!(": {message}")
            } else {
                String::new()
            };
            StoreError::Corrupt(format!(
                "{what} {id} could not be read ({:?} error at line {}, column {}){why}",
                error.classify(),
                error.line(),
                error.column()
            ))
        })
    }
}

/// An execution as the columns of its row.
pub(crate) struct ExecutionRow {
    pub(crate) id: Uuid,
    pub(crate) status: &'static str,
    pub(crate) next_deadline: Option<i64>,
    /// [`Execution::ended_time`]: what retention orders and cuts by.
    pub(crate) ended_time: Option<i64>,
    pub(crate) attempt: i64,
    pub(crate) body: String,
}

impl ExecutionRow {
    pub(crate) fn of(codec: &Codec, execution: &Execution) -> Result<Self, StoreError> {
        Ok(Self {
            id: execution.execution_id.0,
            status: execution.status.as_str(),
            next_deadline: execution.next_deadline(),
            ended_time: execution.ended_time(),
            attempt: i64::from(execution.attempt),
            body: codec.encode("execution", execution)?,
        })
    }
}

/// Rows to write with `live_feed::write_executions`, as its parallel arrays.
#[derive(Default)]
pub(crate) struct ExecutionUpdates {
    pub(crate) ids: Vec<Uuid>,
    pub(crate) statuses: Vec<&'static str>,
    pub(crate) deadlines: Vec<Option<i64>>,
    pub(crate) ended_times: Vec<Option<i64>>,
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
        self.ended_times.push(row.ended_time);
        self.attempts.push(row.attempt);
        self.bodies.push(row.body);
        self.requeue.push(requeue);
    }
}
