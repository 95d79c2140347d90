//! The [`Store`] trait: where jobs and executions live, and the atomic transitions on them.
//!
//! A store is not a bag of rows: every change of an execution's status goes through
//! [`Store::transition`] or [`Store::claim`], which apply [`crate::machine::apply`] inside the
//! store's own atomic section (through [`crate::feed::transition`], which also records the status
//! event). So the state machine is the same on every backend, and the backend only supplies
//! atomicity, durability and indexes.
//!
//! Stores also keep each execution's live feed: the events [`crate::feed::transition`] and
//! [`crate::feed::append`] record, and the webhook outbox derived from them, written in the same
//! atomic section as the change they report.
//!
//! Every store must pass the conformance suite in `runner_core::testkit` (feature `testkit`).

use std::future::Future;

use tokio::sync::broadcast;

use crate::execution::{Execution, Status};
use crate::executor::ExecutorEvent;
use crate::feed::{Delivery, DeliveryKey, Event, Settlement};
use crate::ids::{AccountAlias, ExecutionId, JobId, NodeId, ScheduleId};
use crate::job::Job;
use crate::machine::{Command, TransitionError};
use crate::page::{Page, PageRequest};
use crate::schedule::{Schedule, ServiceAccount};
use crate::time::Timestamp;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such job or execution (under that account).
    #[error("not found")]
    NotFound,
    /// The state machine refused the command.
    #[error(transparent)]
    Refused(#[from] TransitionError),
    /// The change conflicts with the current state, e.g. deleting a job that still runs.
    #[error("{0}")]
    Conflict(String),
    /// The backend failed (connection lost, I/O error). The caller may retry.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored record could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

/// A wake-up call from the store to the engines that use it (on this node, or on every node for
/// a shared database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// An execution became PENDING: there is work to claim.
    Pending,
    /// A claimed execution was asked to stop or be killed (or lost its run otherwise): the node
    /// running it must look.
    Control(ExecutionId),
    /// Events were recorded for the execution (and maybe deliveries added to the outbox): live
    /// feeds and the webhook delivery service look.
    Feed(ExecutionId),
}

/// The signal a store must send after `command` brought `execution` to its current status.
/// Stores call this so that the rule of who is woken lives here, once.
pub fn signal_after(command: &Command, execution: &Execution) -> Option<Signal> {
    match (command, execution.status) {
        (_, Status::Pending) => Some(Signal::Pending),
        (
            Command::Stop { .. }
            | Command::Kill { .. }
            | Command::EscalateStop
            | Command::ForceKill
            | Command::ExpireTtl
            | Command::LoseLease,
            _,
        ) => Some(Signal::Control(execution.execution_id)),
        _ => None,
    }
}

/// Where jobs and executions live.
///
/// Methods are `async fn`s returning `Send` futures, so the engine can run them on a
/// multi-threaded runtime. Implementations must be safe to share between tasks (and, for a shared
/// database, between nodes).
pub trait Store: Send + Sync + 'static {
    /// Stores a new job.
    fn insert_job(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A job of `alias`, if it exists.
    fn get_job(
        &self,
        alias: &AccountAlias,
        id: JobId,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;

    /// Replaces a stored job (same id and alias). [`StoreError::NotFound`] if it is gone.
    fn update_job(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes a job and its schedules. [`StoreError::Conflict`] while one of its executions has
    /// not ended (checked atomically with the delete); its executions stay readable.
    fn delete_job(
        &self,
        alias: &AccountAlias,
        id: JobId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A page of the account's jobs, newest first.
    fn list_jobs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Job>, StoreError>> + Send;

    /// Stores a new PENDING execution; [`StoreError::NotFound`] if its job is gone.
    /// Sends [`Signal::Pending`].
    fn insert_execution(
        &self,
        execution: &Execution,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new PENDING execution of job `job_id` of `alias`, made by `make` from the job
    /// (as [`Store::insert_execution`] does), and returns it; [`StoreError::NotFound`] if there
    /// is no such job. The execution reflects the job as it is now: an update of the job that
    /// was acknowledged before this call is seen. The default reads the job with
    /// [`Store::get_job`]; a store may instead make the execution from a copy of the job it
    /// keeps and have the insert check that the copy is current, calling `make` again on the
    /// job as stored if it is not.
    ///
    /// ```
    /// # use runner_core::store::{Store, StoreError};
    /// # use runner_core::execution::Execution;
    /// # use runner_core::testkit::fixtures::{alias, job};
    /// # async fn demo(store: impl Store) -> Result<(), StoreError> {
    /// let job = job("ACME", 0);
    /// store.insert_job(&job).await?;
    /// let execution = store
    ///     .start_execution(&alias("ACME"), job.id, |job| Execution::new(job, None, None, 1))
    ///     .await?;
    /// assert_eq!(execution.job_id, job.id);
    /// # Ok(()) }
    /// ```
    fn start_execution<F>(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        mut make: F,
    ) -> impl Future<Output = Result<Execution, StoreError>> + Send
    where
        F: FnMut(&Job) -> Execution + Send,
    {
        async move {
            let job = self
                .get_job(alias, job_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            let execution = make(&job);
            self.insert_execution(&execution).await?;
            Ok(execution)
        }
    }

    /// One execution of a job of `alias`.
    fn get_execution(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
    ) -> impl Future<Output = Result<Option<Execution>, StoreError>> + Send;

    /// A page of a job's executions, newest first.
    fn list_executions(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Execution>, StoreError>> + Send;

    /// Applies `command` to the execution atomically through [`crate::machine::apply`] and
    /// returns it as it is afterwards. Sends the signal [`signal_after`] names.
    fn transition(
        &self,
        id: ExecutionId,
        command: &Command,
        now: Timestamp,
    ) -> impl Future<Output = Result<Execution, StoreError>> + Send;

    /// Claims up to `limit` PENDING executions, oldest first, for `node` with a lease until
    /// `lease_until` (each through [`crate::machine::apply`] with [`Command::Claim`]). An
    /// execution is claimed by one caller only, however many nodes claim at once.
    fn claim(
        &self,
        node: &NodeId,
        limit: usize,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send;

    /// The job to run for `execution`, which this store's [`Store::claim`] handed out; `None`
    /// if the job is gone. A store that read the jobs along with the claim may answer with that
    /// copy (the job as it was at the claim), which saves a read per run; the default reads it
    /// with [`Store::get_job`]. A job cannot be deleted while an execution of it is claimed, and
    /// an update of the job while the execution waits for a worker may or may not be seen.
    fn job_to_run(
        &self,
        execution: &Execution,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send {
        self.get_job(&execution.account_alias, execution.job_id)
    }

    /// Up to `limit` executions whose [`Execution::next_deadline`] is at or before `now`.
    fn due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send;

    /// The earliest [`Execution::next_deadline`] of any execution, so that the engine can sleep
    /// until then.
    fn next_deadline(&self) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send;

    /// Subscribes to the store's [`Signal`]s. Signals are hints: an engine also polls, so a missed
    /// one (a lagging receiver, a dropped database listener) only delays work.
    fn subscribe(&self) -> broadcast::Receiver<Signal>;

    /// Records events an executor reported for run `attempt`, through [`crate::feed::append`]
    /// (fenced like a worker command), with their deliveries, in one atomic write. Returns the
    /// execution's latest sequence number. Sends [`Signal::Feed`] when it recorded any.
    fn append_events(
        &self,
        id: ExecutionId,
        attempt: u32,
        events: &[ExecutorEvent],
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `limit` events of an execution of a job of `alias` with a sequence number above
    /// `after`, in order. [`StoreError::NotFound`] if there is no such execution.
    fn list_events(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;

    /// Takes up to `limit` deliveries to attempt now: of each (execution, callback) queue only the
    /// pending delivery with the lowest sequence, and only if it is due (`next_attempt_at <= now`)
    /// and not taken by another caller whose hold (`hold_until`) has not passed. A taken delivery
    /// is hidden from other callers until `hold_until` or until it is settled, so a queue has one
    /// attempt in flight, and a node that dies holding one only delays it.
    fn claim_deliveries(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// Records how an attempt ended (see [`Settlement`]) and releases the hold. A key that is no
    /// longer pending (another node settled it after a hold passed) is ignored.
    fn settle_delivery(
        &self,
        key: &DeliveryKey,
        settlement: &Settlement,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The earliest time at which [`Store::claim_deliveries`] could hand out a delivery: over the
    /// head of each queue, its `next_attempt_at`, or the end of its hold if it is held (the later
    /// of the two). Deliveries behind a head do not count. `None` when the outbox is empty. The
    /// delivery service sleeps until then (or until a [`Signal::Feed`]).
    fn next_delivery_at(
        &self,
    ) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send;
}

/// A shared store is a store: several engines (or an engine and a test) can hold one `Arc`.
impl<T: Store> Store for std::sync::Arc<T> {
    fn insert_job(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert_job(job)
    }
    fn get_job(
        &self,
        alias: &AccountAlias,
        id: JobId,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send {
        (**self).get_job(alias, id)
    }
    fn update_job(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).update_job(job)
    }
    fn delete_job(
        &self,
        alias: &AccountAlias,
        id: JobId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete_job(alias, id)
    }
    fn list_jobs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Job>, StoreError>> + Send {
        (**self).list_jobs(alias, page)
    }
    fn insert_execution(
        &self,
        execution: &Execution,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert_execution(execution)
    }
    fn start_execution<F>(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        make: F,
    ) -> impl Future<Output = Result<Execution, StoreError>> + Send
    where
        F: FnMut(&Job) -> Execution + Send,
    {
        (**self).start_execution(alias, job_id, make)
    }
    fn get_execution(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
    ) -> impl Future<Output = Result<Option<Execution>, StoreError>> + Send {
        (**self).get_execution(alias, job_id, id)
    }
    fn list_executions(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Execution>, StoreError>> + Send {
        (**self).list_executions(alias, job_id, page)
    }
    fn transition(
        &self,
        id: ExecutionId,
        command: &Command,
        now: Timestamp,
    ) -> impl Future<Output = Result<Execution, StoreError>> + Send {
        (**self).transition(id, command, now)
    }
    fn claim(
        &self,
        node: &NodeId,
        limit: usize,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send {
        (**self).claim(node, limit, lease_until, now)
    }
    fn job_to_run(
        &self,
        execution: &Execution,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send {
        (**self).job_to_run(execution)
    }
    fn due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send {
        (**self).due(now, limit)
    }
    fn next_deadline(&self) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send {
        (**self).next_deadline()
    }
    fn subscribe(&self) -> broadcast::Receiver<Signal> {
        (**self).subscribe()
    }
    fn append_events(
        &self,
        id: ExecutionId,
        attempt: u32,
        events: &[ExecutorEvent],
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).append_events(id, attempt, events, now)
    }
    fn list_events(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send {
        (**self).list_events(alias, job_id, id, after, limit)
    }
    fn claim_deliveries(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send {
        (**self).claim_deliveries(now, hold_until, limit)
    }
    fn settle_delivery(
        &self,
        key: &DeliveryKey,
        settlement: &Settlement,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).settle_delivery(key, settlement)
    }
    fn next_delivery_at(
        &self,
    ) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send {
        (**self).next_delivery_at()
    }
}

/// Service accounts and job schedules: the store side of the Job Schedule Service.
///
/// A separate trait from [`Store`] so that a backend can be adopted before it schedules; every
/// store of this workspace implements both, and the conformance suite covers both.
pub trait ScheduleStore: Store {
    /// Stores a new service account; [`StoreError::Conflict`] if the alias is taken in the account.
    fn insert_service_account(
        &self,
        account: &ServiceAccount,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One service account of `alias`.
    fn get_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> impl Future<Output = Result<Option<ServiceAccount>, StoreError>> + Send;

    /// A page of the account's service accounts, newest first.
    fn list_service_accounts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<ServiceAccount>, StoreError>> + Send;

    /// Deletes a service account; [`StoreError::Conflict`] while a schedule uses it (checked
    /// atomically with the delete).
    fn delete_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new schedule. [`StoreError::NotFound`] if its job is gone;
    /// [`StoreError::Conflict`] if its service account does not exist (checked atomically).
    fn insert_schedule(
        &self,
        schedule: &Schedule,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One schedule of a job of `alias`.
    fn get_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> impl Future<Output = Result<Option<Schedule>, StoreError>> + Send;

    /// Replaces a schedule (same errors as [`ScheduleStore::insert_schedule`]).
    fn update_schedule(
        &self,
        schedule: &Schedule,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes a schedule.
    fn delete_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A page of a job's schedules, newest first.
    fn list_schedules(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Schedule>, StoreError>> + Send;

    /// Fires every schedule due at `now` (up to `limit`): atomically per schedule, applies
    /// [`Schedule::fire`], inserts one PENDING execution ([`Execution::scheduled`]) unless one
    /// exists for the same schedule and due time, and stores the advanced schedule. Returns the
    /// executions it created and sends [`Signal::Pending`] when there are any. Several nodes may
    /// call this at once: each due time still creates one execution.
    fn fire_due_schedules(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send;

    /// The earliest `next_fire_time` of any schedule.
    fn next_fire_time(&self) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send;
}

impl<T: ScheduleStore> ScheduleStore for std::sync::Arc<T> {
    fn insert_service_account(
        &self,
        account: &ServiceAccount,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert_service_account(account)
    }
    fn get_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> impl Future<Output = Result<Option<ServiceAccount>, StoreError>> + Send {
        (**self).get_service_account(alias, name)
    }
    fn list_service_accounts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<ServiceAccount>, StoreError>> + Send {
        (**self).list_service_accounts(alias, page)
    }
    fn delete_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete_service_account(alias, name)
    }
    fn insert_schedule(
        &self,
        schedule: &Schedule,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert_schedule(schedule)
    }
    fn get_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> impl Future<Output = Result<Option<Schedule>, StoreError>> + Send {
        (**self).get_schedule(alias, job_id, id)
    }
    fn update_schedule(
        &self,
        schedule: &Schedule,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).update_schedule(schedule)
    }
    fn delete_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete_schedule(alias, job_id, id)
    }
    fn list_schedules(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Schedule>, StoreError>> + Send {
        (**self).list_schedules(alias, job_id, page)
    }
    fn fire_due_schedules(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send {
        (**self).fire_due_schedules(now, limit)
    }
    fn next_fire_time(&self) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send {
        (**self).next_fire_time()
    }
}
