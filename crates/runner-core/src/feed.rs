//! The live feed of an execution: numbered [`Event`]s, and the webhook [`Delivery`] rows (the
//! outbox) derived from them.
//!
//! # Why the store records events
//!
//! Status changes of one execution are made by different tasks, and on several nodes by different
//! processes: the API applying a stop, the worker recording STOPPED, the maintenance loop applying
//! a TTL. A feed numbered by whoever happens to publish first could put STOPPED before STOPPING.
//! So events are recorded by the store, in the same atomic section as the change they report:
//! stores apply commands through [`transition`] (which wraps [`crate::machine::apply`]) and persist
//! what it returns with the execution. Executor events reach the store through
//! [`Store::append_events`](crate::store::FeedStore::append_events), fenced by the attempt like every
//! worker command. Sequence numbers therefore count 1, 2, 3, ... per execution, without gaps, in
//! causal order, on every node.
//!
//! # Levels
//!
//! Every event has a [`CallbackLevel`]: status changes and the playbook's final per-host summary
//! are `RESULT` (a FAILURE is a status change, so it is a result too); failed tasks and
//! unreachable hosts are `ERROR`; everything else is `DEBUG`. A callback receives the events at or above its level
//! ([`CallbackLevel::accepts`]): `DEBUG` gets everything, `ERROR` gets errors and results,
//! `RESULT` only results.
//!
//! # The outbox
//!
//! When an event is recorded, the store also records one [`Delivery`] per callback of the
//! execution that accepts it, in the same write. Callbacks are the job's at the time the execution
//! was created ([`Execution::callbacks`]), so editing a job does not redirect a running feed. A
//! delivery service (`runner-webhook`) takes the head of each (execution, callback) queue with
//! [`Store::claim_deliveries`](crate::store::OutboxStore::claim_deliveries), posts it, and settles it
//! with [`Store::settle_delivery`](crate::store::OutboxStore::settle_delivery).
//!
//! ```
//! use runner_core::feed::{self, EventKind};
//! use runner_core::execution::{Execution, Status};
//! use runner_core::job::{Callback, CallbackLevel, Job, JobSpec};
//! use runner_core::machine::Command;
//!
//! let spec = JobSpec {
//!     callbacks: vec![Callback { url: "https://hooks.example.com/r".into(), level: CallbackLevel::Result }],
//!     ..JobSpec::default()
//! };
//! let job = Job::new("ACME".parse().unwrap(), spec, 0);
//! let mut execution = Execution::new(&job, None, None, 0);
//! let created = feed::created(&execution);
//! assert_eq!((created.event.sequence, created.event.status), (1, Some(Status::Pending)));
//!
//! let claim = Command::Claim { node: "node-1".into(), lease_until: 30_000 };
//! let recorded = feed::transition(&mut execution, &claim, 5).unwrap();
//! let event = &recorded[0].event;
//! assert_eq!((event.sequence, event.kind, event.status), (2, EventKind::Status, Some(Status::Initializing)));
//! assert_eq!(recorded[0].deliveries.len(), 1, "RESULT callbacks receive status changes");
//! ```

use serde::{Deserialize, Serialize};

use crate::execution::{Execution, Status};
use crate::executor::{self, ExecutorEvent};
use crate::ids::{AccountAlias, ExecutionId, JobId};
use crate::job::CallbackLevel;
use crate::machine::{self, Command, TransitionError};
use crate::time::Timestamp;

/// One entry of an execution's feed: the body of a webhook POST, an item of the events endpoint
/// and the data of a server-sent event. `host`, `task`, `status`, `message` and `result` are
/// left out when they do not apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Event {
    /// The execution.
    pub execution_id: ExecutionId,
    /// Its job.
    pub job_id: JobId,
    /// The job's account.
    pub account_alias: AccountAlias,
    /// 1, 2, 3, ... per execution, without gaps, in the order things happened (1 is the
    /// creation, PENDING).
    #[cfg_attr(feature = "utoipa", schema(minimum = 1))]
    pub sequence: u64,
    /// When it was recorded, in milliseconds since the Unix epoch.
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub time: Timestamp,
    /// How important it is; a callback receives events at or above its level.
    pub level: CallbackLevel,
    /// What happened.
    pub kind: EventKind,
    /// The host it concerns, for host events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The task (or play) it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The execution's status after a `status` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Human-readable detail: the reason of a status, a task's error, the final summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the task returned, for host results: `changed`, and where present `msg`, `stdout`,
    /// `stderr`, `rc`, the loop `item`, the `until` attempts, and the rescued, ignored and
    /// handler markers. Texts are capped by the server (`--event-field-bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<executor::TaskResult>>,
}

/// Kinds of [`Event`]: a status change, which the store records, or what the executor reported.
/// Both serialize as one snake_case string (`"status"`, `"host_ok"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The execution changed status (`status` holds the new one).
    Status,
    /// The executor reported it while the playbook ran.
    #[serde(untagged)]
    Executor(executor::EventKind),
}

impl EventKind {
    /// The level of events of this kind: one rule for every store and every callback.
    pub fn level(self) -> CallbackLevel {
        use executor::EventKind as Reported;
        match self {
            Self::Status | Self::Executor(Reported::PlaybookEnd) => CallbackLevel::Result,
            Self::Executor(Reported::HostFailed | Reported::HostUnreachable) => {
                CallbackLevel::Error
            }
            Self::Executor(
                Reported::PlaybookStart
                | Reported::PlayStart
                | Reported::TaskStart
                | Reported::HostOk
                | Reported::HostSkipped
                | Reported::HostRetry
                | Reported::Log,
            ) => CallbackLevel::Debug,
        }
    }
}

/// The kinds as one enum of strings, the way they serialize: `status`, then the executor's.
#[cfg(feature = "utoipa")]
impl utoipa::PartialSchema for EventKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{Object, Schema};
        let RefOr::T(Schema::Object(reported)) =
            <executor::EventKind as utoipa::PartialSchema>::schema()
        else {
            unreachable!("a unit enum's schema is an object with enum values");
        };
        let status = serde_json::to_value(EventKind::Status).expect("a unit variant serializes");
        let values = std::iter::once(status).chain(reported.enum_values.into_iter().flatten());
        let mut kinds = Object::with_type(utoipa::openapi::schema::Type::String);
        kinds.description = Some(
            "What an event reports: `status` (the execution changed status; `status` holds the \
             new one), or what the executor reported while the playbook ran."
                .into(),
        );
        kinds.enum_values = Some(values.collect());
        RefOr::T(Schema::Object(kinds))
    }
}

#[cfg(feature = "utoipa")]
impl utoipa::ToSchema for EventKind {}

impl CallbackLevel {
    /// Whether a callback of this level receives `event`: events at or above it.
    ///
    /// ```
    /// use runner_core::executor::EventKind as Reported;
    /// use runner_core::feed::EventKind;
    /// use runner_core::job::CallbackLevel;
    /// let failed = EventKind::Executor(Reported::HostFailed);
    /// assert!(CallbackLevel::Error.accepts_level(failed.level()));
    /// assert!(CallbackLevel::Error.accepts_level(EventKind::Status.level()));
    /// assert!(!CallbackLevel::Error.accepts_level(EventKind::Executor(Reported::HostOk).level()));
    /// assert!(!CallbackLevel::Result.accepts_level(EventKind::Executor(Reported::HostUnreachable).level()));
    /// ```
    pub fn accepts_level(self, level: CallbackLevel) -> bool {
        level >= self
    }

    /// Whether a callback of this level receives `event`.
    pub fn accepts(self, event: &Event) -> bool {
        self.accepts_level(event.level)
    }
}

/// Identifies one delivery: an event for one callback of its execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeliveryKey {
    /// The execution.
    pub execution_id: ExecutionId,
    /// The callback's index in [`Execution::callbacks`].
    pub callback: u32,
    /// The event's sequence number.
    pub sequence: u64,
}

impl DeliveryKey {
    /// The value of the `Idempotency-Key` header: the same for every attempt of this delivery,
    /// different for every other, so a receiver can drop repeats.
    ///
    /// ```
    /// # use runner_core::feed::DeliveryKey;
    /// # use runner_core::ids::ExecutionId;
    /// let id: ExecutionId = "0195f3a2-0000-7000-8000-000000000001".parse().unwrap();
    /// let key = DeliveryKey { execution_id: id, callback: 1, sequence: 7 };
    /// assert_eq!(key.idempotency_key(), "0195f3a2-0000-7000-8000-000000000001:1:7");
    /// ```
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}:{}", self.execution_id, self.callback, self.sequence)
    }
}

/// A row of the outbox: one event to POST to one callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Which event, for which callback.
    pub key: DeliveryKey,
    /// Where to POST it (the callback's URL when the execution was created).
    pub url: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before then (now, or a retry after a backoff).
    pub next_attempt_at: Timestamp,
    /// The body.
    pub event: Event,
}

/// How a delivery attempt ended: what [`Store::settle_delivery`](crate::store::OutboxStore::settle_delivery) records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// The receiver took it (2xx): the delivery leaves the outbox.
    Delivered,
    /// It failed; try again at `at`. Counts an attempt.
    Retry {
        /// The next attempt.
        at: Timestamp,
        /// What went wrong (kept for operators; never a secret).
        error: String,
    },
    /// It failed for the last time: the delivery is kept as failed and its queue moves on.
    GiveUp {
        /// What went wrong the last time.
        error: String,
    },
}

/// A delivery given up on ([`Settlement::GiveUp`]): what `GET .../executions/{id}/deliveries`
/// lists, kept until retention purges its execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GivenUpDelivery {
    /// The callback's index in the job's `callbacks` when the execution was created.
    pub callback: u32,
    /// Where it was posted.
    pub url: String,
    /// The event's sequence number.
    pub sequence: u64,
    /// How many attempts failed, the last one included.
    pub attempts: u32,
    /// What went wrong the last time.
    pub last_error: String,
    /// The body that was posted.
    pub event: Event,
}

impl GivenUpDelivery {
    /// The given-up `delivery` (its attempts counting the last one) and its last `error`.
    pub fn new(delivery: Delivery, error: String) -> Self {
        Self {
            callback: delivery.key.callback,
            url: delivery.url,
            sequence: delivery.key.sequence,
            attempts: delivery.attempts,
            last_error: error,
            event: delivery.event,
        }
    }
}

/// An event as recorded, with the deliveries it adds to the outbox: what a store persists in the
/// atomic section of the change that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The event.
    pub event: Event,
    /// One per accepting callback.
    pub deliveries: Vec<Delivery>,
}

/// The first event of every execution: it was created PENDING (sequence 1). Stores persist it
/// with the new execution ([`Execution::new`] counts it in [`Execution::events`]).
pub fn created(execution: &Execution) -> Recorded {
    with_deliveries(
        execution,
        status_event(execution, 1, execution.created_time),
    )
}

/// Applies `command` through [`machine::apply`] and returns the status event it caused, if the
/// status changed (the execution's event counter counts it). Stores call this, not
/// [`machine::apply`], and persist the result with the execution.
pub fn transition(
    execution: &mut Execution,
    command: &Command,
    now: Timestamp,
) -> Result<Vec<Recorded>, TransitionError> {
    let before = execution.status;
    machine::apply(execution, command, now)?;
    if execution.status == before {
        return Ok(Vec::new());
    }
    execution.events += 1;
    let event = status_event(execution, execution.events, now);
    Ok(vec![with_deliveries(execution, event)])
}

/// Records events an executor reported for the run `attempt` of `execution`. Fenced like any
/// worker command ([`machine::fence`]), so a node that lost its lease cannot add to the feed of
/// the run that replaced it.
pub fn append(
    execution: &mut Execution,
    attempt: u32,
    events: &[ExecutorEvent],
    now: Timestamp,
) -> Result<Vec<Recorded>, TransitionError> {
    machine::fence(execution, attempt)?;
    Ok(events
        .iter()
        .map(|reported| {
            execution.events += 1;
            let kind = EventKind::Executor(reported.kind);
            let event = Event {
                host: reported.host.clone(),
                task: reported.task.clone(),
                message: reported.message.clone(),
                result: reported.result.clone(),
                ..event_of(execution, execution.events, now, kind)
            };
            with_deliveries(execution, event)
        })
        .collect())
}

/// An event of `kind` numbered `sequence`, with only what every event has.
fn event_of(execution: &Execution, sequence: u64, time: Timestamp, kind: EventKind) -> Event {
    Event {
        execution_id: execution.execution_id,
        job_id: execution.job_id,
        account_alias: execution.account_alias.clone(),
        sequence,
        time,
        level: kind.level(),
        kind,
        host: None,
        task: None,
        status: None,
        message: None,
        result: None,
    }
}

/// The event saying the execution is now in its current status, for its current reason.
fn status_event(execution: &Execution, sequence: u64, time: Timestamp) -> Event {
    Event {
        status: Some(execution.status),
        message: execution.message.clone(),
        ..event_of(execution, sequence, time, EventKind::Status)
    }
}

fn with_deliveries(execution: &Execution, event: Event) -> Recorded {
    let deliveries = execution
        .callbacks
        .iter()
        .enumerate()
        .filter(|(_, callback)| callback.level.accepts(&event))
        .map(|(index, callback)| Delivery {
            key: DeliveryKey {
                execution_id: event.execution_id,
                callback: u32::try_from(index).unwrap_or(u32::MAX),
                sequence: event.sequence,
            },
            url: callback.url.clone(),
            attempts: 0,
            next_attempt_at: event.time,
            event: event.clone(),
        })
        .collect();
    Recorded { event, deliveries }
}

#[cfg(test)]
mod tests;
