//! # runner-store-memory
//!
//! A complete [`Store`] kept in memory: thread-safe, indexed for every query the engine makes, and
//! gone when the process ends. For tests, examples, benchmarks and programs that need no
//! durability. It passes the conformance suite of `runner_core::testkit`.
//!
//! ```
//! use runner_store_memory::MemoryStore;
//! use runner_core::prelude::*;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let alias: AccountAlias = "ACME".parse().unwrap();
//! let page = store.list_jobs(&alias, PageRequest::default()).await.unwrap();
//! assert_eq!(page.total_size, 0);
//! # });
//! ```
//!
//! Every method takes one mutex for its whole work, which makes each operation atomic; the
//! state machine ([`runner_core::feed::transition`]) runs under that lock, and the feed events and
//! webhook deliveries it records are stored under the same lock.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use runner_core::execution::{Execution, ScheduledFire, Status};
use runner_core::executor::ExecutorEvent;
use runner_core::feed::{
    self, Delivery, DeliveryKey, Event, GivenUpDelivery, Recorded, Settlement,
};
use runner_core::ids::{AccountAlias, ExecutionId, JobId, NodeId, ScheduleId};
use runner_core::inventory::InventoryHost;
use runner_core::job::Job;
use runner_core::key_pair::KeyPair;
use runner_core::machine::Command;
use runner_core::overlap::{self, ClaimGate};
use runner_core::page::{Page, PageRequest};
use runner_core::run_log::{self, LogCap, LogMeta, LogPage};
use runner_core::schedule::{Schedule, ServiceAccount, SkippedFire};
use runner_core::search::{ExecutionFilter, counted, newest_first};
use runner_core::store::prelude::*;
use runner_core::store::{LogRead, Signal, StoreError, signal_after, tally_live};
use runner_core::time::Timestamp;
use tokio::sync::broadcast;

/// How many signals a slow subscriber may fall behind before it sees `Lagged`.
const SIGNAL_CAPACITY: usize = 1024;

/// An in-memory [`Store`]. Cheap to create; share it behind an `Arc` or clone the engine.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    signals: broadcast::Sender<Signal>,
}

#[derive(Debug, Default)]
struct State {
    jobs: HashMap<JobId, Job>,
    /// Per account, its jobs in creation order (listing reads it backwards: newest first).
    jobs_by_account: HashMap<AccountAlias, Vec<JobId>>,
    executions: HashMap<ExecutionId, Execution>,
    /// Per job, its executions in creation order.
    executions_by_job: HashMap<JobId, Vec<ExecutionId>>,
    /// The claim queue: PENDING executions by the order they became PENDING.
    pending: BTreeMap<u64, ExecutionId>,
    pending_position: HashMap<ExecutionId, u64>,
    next_position: u64,
    /// Executions by their next deadline.
    deadlines: BTreeSet<(Timestamp, ExecutionId)>,
    /// Ended executions by their end ([`Execution::ended_time`]): what retention purges first.
    ended: BTreeSet<(Timestamp, ExecutionId)>,
    /// Service accounts by account and name, and each account's names in creation order.
    service_accounts: HashMap<(AccountAlias, String), ServiceAccount>,
    service_accounts_by_account: HashMap<AccountAlias, Vec<String>>,
    /// Key pairs by account, then by name.
    key_pairs: HashMap<AccountAlias, BTreeMap<String, KeyPair>>,
    inventory: HashMap<AccountAlias, BTreeMap<String, InventoryHost>>,
    schedules: HashMap<ScheduleId, Schedule>,
    /// Per job, its schedules in creation order.
    schedules_by_job: HashMap<JobId, Vec<ScheduleId>>,
    /// Schedules by their next fire time.
    fire_times: BTreeSet<(Timestamp, ScheduleId)>,
    /// The (schedule, due time) pairs that created an execution.
    fired: HashSet<(ScheduleId, Timestamp)>,
    /// Each execution's feed; the event with sequence n is at index n - 1.
    events: HashMap<ExecutionId, Vec<Event>>,
    /// The outbox: pending deliveries in queue order, (execution, callback) then sequence.
    outbox: BTreeMap<DeliveryKey, Pending>,
    /// Deliveries given up on, with their last error: kept for operators, never retried; in
    /// (execution, callback, sequence) order, as they are listed.
    failed: BTreeMap<DeliveryKey, (Delivery, String)>,
    /// Each attempt's run log.
    run_logs: HashMap<(ExecutionId, u32), RunLog>,
}

/// One attempt's run log: its chunks by offset, as `run_log` plans them.
#[derive(Debug, Default)]
struct RunLog {
    meta: LogMeta,
    chunks: BTreeMap<u64, Vec<u8>>,
}

/// A delivery waiting in the outbox.
#[derive(Debug)]
struct Pending {
    delivery: Delivery,
    /// Taken by a delivery service until then.
    held_until: Option<Timestamp>,
    last_error: Option<String>,
}

impl Pending {
    /// When a claim may take it next.
    fn available_at(&self) -> Timestamp {
        self.held_until
            .map_or(self.delivery.next_attempt_at, |held| {
                held.max(self.delivery.next_attempt_at)
            })
    }
}

/// Moves `id`'s entry in a time index (`deadlines`, `ended`) from `old` to `new` (`None`: no
/// entry).
fn reindex(
    index: &mut BTreeSet<(Timestamp, ExecutionId)>,
    id: ExecutionId,
    old: Option<Timestamp>,
    new: Option<Timestamp>,
) {
    if old != new {
        if let Some(at) = old {
            index.remove(&(at, id));
        }
        if let Some(at) = new {
            index.insert((at, id));
        }
    }
}

/// Every delivery key of execution `id`: its queues, in (callback, sequence) order.
fn deliveries_of(id: ExecutionId) -> std::ops::RangeInclusive<DeliveryKey> {
    DeliveryKey {
        execution_id: id,
        callback: 0,
        sequence: 0,
    }..=DeliveryKey {
        execution_id: id,
        callback: u32::MAX,
        sequence: u64::MAX,
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            signals: broadcast::channel(SIGNAL_CAPACITY).0,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied transition: `apply` works on
        // a copy, and the indexes are updated after it succeeded. So a poisoned lock is usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn signal(&self, signal: Option<Signal>) {
        if let Some(signal) = signal {
            let _ = self.signals.send(signal);
        }
    }
}

impl State {
    /// Stores a new `execution` with its creation event, and indexes it.
    fn put(&mut self, execution: Execution) {
        self.record(vec![feed::created(&execution)]);
        let id = execution.execution_id;
        if let Some(deadline) = execution.next_deadline() {
            self.deadlines.insert((deadline, id));
        }
        let pending = execution.status == runner_core::execution::Status::Pending;
        self.executions.insert(id, execution);
        if pending {
            self.enqueue(id);
        }
    }

    /// The head of each (execution, callback) queue of the outbox: keys sort by (execution,
    /// callback, sequence), so a queue's first entry is its head.
    fn queue_heads(&self) -> impl Iterator<Item = &Pending> {
        let mut queue = None;
        self.outbox.iter().filter_map(move |(key, pending)| {
            let this_queue = Some((key.execution_id, key.callback));
            (queue != this_queue).then(|| {
                queue = this_queue;
                pending
            })
        })
    }

    /// Keeps recorded events and their deliveries.
    fn record(&mut self, recorded: Vec<Recorded>) {
        for Recorded { event, deliveries } in recorded {
            for delivery in deliveries {
                let pending = Pending {
                    delivery,
                    held_until: None,
                    last_error: None,
                };
                self.outbox.insert(pending.delivery.key, pending);
            }
            self.events
                .entry(event.execution_id)
                .or_default()
                .push(event);
        }
    }

    /// Applies `command` to the stored execution in place (the state machine leaves it untouched
    /// when it refuses), records its feed events and re-indexes it; returns a copy of the result
    /// and whether events were recorded.
    fn apply(
        &mut self,
        id: ExecutionId,
        command: &Command,
        now: Timestamp,
    ) -> Result<(Execution, bool), StoreError> {
        let execution = self.executions.get_mut(&id).ok_or(StoreError::NotFound)?;
        let old_deadline = execution.next_deadline();
        let old_end = execution.ended_time();
        let recorded = feed::transition(execution, command, now)?;
        let new_deadline = execution.next_deadline();
        let new_end = execution.ended_time();
        let pending = execution.status == runner_core::execution::Status::Pending;
        let changed = execution.clone();
        reindex(&mut self.deadlines, id, old_deadline, new_deadline);
        reindex(&mut self.ended, id, old_end, new_end);
        match (pending, self.pending_position.remove(&id)) {
            (true, Some(position)) => {
                self.pending_position.insert(id, position);
            }
            (true, None) => self.enqueue(id),
            (false, Some(position)) => {
                self.pending.remove(&position);
            }
            (false, None) => {}
        }
        let any = !recorded.is_empty();
        self.record(recorded);
        Ok((changed, any))
    }

    /// Deletes execution `id`, which has ended, with everything kept for it.
    fn purge(&mut self, id: ExecutionId) {
        let Some(execution) = self.executions.remove(&id) else {
            return;
        };
        if let Some(ids) = self.executions_by_job.get_mut(&execution.job_id) {
            ids.retain(|other| *other != id);
        }
        self.events.remove(&id);
        let queues = deliveries_of(id);
        let pending: Vec<DeliveryKey> =
            self.outbox.range(queues.clone()).map(|(k, _)| *k).collect();
        for key in pending {
            self.outbox.remove(&key);
        }
        let failed: Vec<DeliveryKey> = self.failed.range(queues).map(|(k, _)| *k).collect();
        for key in failed {
            self.failed.remove(&key);
        }
        for attempt in 0..=execution.attempt {
            self.run_logs.remove(&(id, attempt));
        }
    }

    fn enqueue(&mut self, id: ExecutionId) {
        let position = self.next_position;
        self.next_position += 1;
        self.pending.insert(position, id);
        self.pending_position.insert(id, position);
    }

    /// Stores `schedule`, keeping the fire-time index in step with it.
    fn put_schedule(&mut self, schedule: Schedule) {
        if let Some(old) = self.schedules.get(&schedule.id) {
            if let Some(at) = old.next_fire_time {
                self.fire_times.remove(&(at, old.id));
            }
        }
        if let Some(at) = schedule.next_fire_time {
            self.fire_times.insert((at, schedule.id));
        }
        self.schedules.insert(schedule.id, schedule);
    }

    fn remove_schedule(&mut self, id: ScheduleId) -> Option<Schedule> {
        let schedule = self.schedules.remove(&id)?;
        if let Some(at) = schedule.next_fire_time {
            self.fire_times.remove(&(at, id));
        }
        if let Some(ids) = self.schedules_by_job.get_mut(&schedule.job_id) {
            ids.retain(|other| *other != id);
        }
        Some(schedule)
    }

    fn check_service_account(&self, schedule: &Schedule) -> Result<(), StoreError> {
        let key = (
            schedule.account_alias.clone(),
            schedule.service_account_alias.clone(),
        );
        if self.service_accounts.contains_key(&key) {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!(
                "service account {} does not exist",
                schedule.service_account_alias
            )))
        }
    }

    /// The executions of job `id`.
    fn executions_of_job(&self, id: JobId) -> impl Iterator<Item = &Execution> {
        self.executions_by_job
            .get(&id)
            .into_iter()
            .flatten()
            .filter_map(|execution| self.executions.get(execution))
    }

    /// The start rule of `crate::overlap` for `execution`.
    fn blocking_execution(&self, execution: &Execution) -> Option<ExecutionId> {
        overlap::blocking_execution(execution, self.executions_of_job(execution.job_id))
    }

    /// Whether an execution of job `id` holds its turn (see `overlap::ClaimGate`).
    fn job_holds_a_turn(&self, id: JobId) -> bool {
        self.executions_of_job(id).any(overlap::holds_the_turn)
    }

    fn job_of(&self, alias: &AccountAlias, id: JobId) -> Option<&Job> {
        self.jobs.get(&id).filter(|job| &job.account_alias == alias)
    }

    fn execution_of(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
    ) -> Option<&Execution> {
        self.executions
            .get(&id)
            .filter(|execution| &execution.account_alias == alias && execution.job_id == job_id)
    }
}

impl JobStore for MemoryStore {
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.jobs.contains_key(&job.id) {
            return Err(StoreError::Conflict(format!(
                "job {} exists already",
                job.id
            )));
        }
        state
            .jobs_by_account
            .entry(job.account_alias.clone())
            .or_default()
            .push(job.id);
        state.jobs.insert(job.id, job.clone());
        Ok(())
    }

    async fn get_job(&self, alias: &AccountAlias, id: JobId) -> Result<Option<Job>, StoreError> {
        Ok(self.state().job_of(alias, id).cloned())
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.job_of(&job.account_alias, job.id).is_none() {
            return Err(StoreError::NotFound);
        }
        state.jobs.insert(job.id, job.clone());
        Ok(())
    }

    async fn delete_job(&self, alias: &AccountAlias, id: JobId) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.job_of(alias, id).is_none() {
            return Err(StoreError::NotFound);
        }
        let busy = state
            .executions_by_job
            .get(&id)
            .into_iter()
            .flatten()
            .filter_map(|execution_id| state.executions.get(execution_id))
            .find(|execution| !execution.status.is_terminal());
        if let Some(execution) = busy {
            return Err(StoreError::Conflict(format!(
                "job {id} has execution {} in status {}; stop or kill it first",
                execution.execution_id, execution.status
            )));
        }
        state.jobs.remove(&id);
        if let Some(jobs) = state.jobs_by_account.get_mut(alias) {
            jobs.retain(|job| *job != id);
        }
        for schedule in state.schedules_by_job.remove(&id).unwrap_or_default() {
            state.remove_schedule(schedule);
        }
        Ok(())
    }

    async fn list_jobs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        let state = self.state();
        let ids = state
            .jobs_by_account
            .get(alias)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let newest_first: Vec<Job> = ids
            .iter()
            .rev()
            .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
            .take(page.size as usize)
            .filter_map(|id| state.jobs.get(id).cloned())
            .collect();
        Ok(Page::new(page, ids.len() as u64, newest_first))
    }
}

impl ExecutionStore for MemoryStore {
    async fn insert_execution(&self, execution: &Execution) -> Result<(), StoreError> {
        {
            let mut state = self.state();
            if state
                .job_of(&execution.account_alias, execution.job_id)
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            if state.executions.contains_key(&execution.execution_id) {
                return Err(StoreError::Conflict(format!(
                    "execution {} exists already",
                    execution.execution_id
                )));
            }
            if let Some(active) = state.blocking_execution(execution) {
                return Err(StoreError::Overlapping(active));
            }
            state
                .executions_by_job
                .entry(execution.job_id)
                .or_default()
                .push(execution.execution_id);
            state.put(execution.clone());
        }
        self.signal(Some(Signal::Pending));
        self.signal(Some(Signal::Feed(execution.execution_id)));
        Ok(())
    }

    async fn get_execution(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
    ) -> Result<Option<Execution>, StoreError> {
        Ok(self.state().execution_of(alias, job_id, id).cloned())
    }

    async fn list_executions(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        let state = self.state();
        let ids = state
            .executions_by_job
            .get(&job_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let visible = |id: &&ExecutionId| {
            state
                .executions
                .get(id)
                .is_some_and(|execution| &execution.account_alias == alias)
        };
        let total = ids.iter().filter(visible).count();
        let newest_first: Vec<Execution> = ids
            .iter()
            .rev()
            .filter(visible)
            .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
            .take(page.size as usize)
            .filter_map(|id| state.executions.get(id).cloned())
            .collect();
        Ok(Page::new(page, total as u64, newest_first))
    }

    async fn find_executions(
        &self,
        alias: &AccountAlias,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        // A scan of every execution: this store is for tests and embedding, where a few
        // thousand executions are many (PostgreSQL answers from indexes).
        let state = self.state();
        let mut found: Vec<&Execution> = state
            .executions
            .values()
            .filter(|execution| &execution.account_alias == alias && filter.matches(execution))
            .collect();
        found.sort_by_key(|execution| newest_first(execution.created_time, execution.execution_id));
        let results = page.slice(&found).results.into_iter().cloned().collect();
        Ok(counted(page, found.len() as u64, results))
    }

    async fn count_live(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        let state = self.state();
        Ok(tally_live(
            state
                .executions
                .values()
                .map(|execution| (execution.status, 1)),
        ))
    }

    async fn transition(
        &self,
        id: ExecutionId,
        command: &Command,
        now: Timestamp,
    ) -> Result<Execution, StoreError> {
        let (changed, recorded) = self.state().apply(id, command, now)?;
        self.signal(signal_after(command, &changed));
        self.signal(recorded.then_some(Signal::Feed(id)));
        Ok(changed)
    }
}

impl ClaimStore for MemoryStore {
    async fn claim(
        &self,
        node: &NodeId,
        limit: usize,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Execution>, StoreError> {
        let mut state = self.state();
        let command = Command::Claim {
            node: node.clone(),
            lease_until,
        };
        let mut gate = ClaimGate::new();
        let ids: Vec<ExecutionId> = state
            .pending
            .values()
            .filter(|id| {
                state.executions.get(id).is_some_and(|execution| {
                    gate.admits(execution, || state.job_holds_a_turn(execution.job_id))
                })
            })
            .take(limit)
            .copied()
            .collect();
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            // Only PENDING executions are queued, so the claim cannot be refused; skip it if it is.
            if let Ok((execution, _)) = state.apply(id, &command, now) {
                claimed.push(execution);
            }
        }
        drop(state);
        for execution in &claimed {
            self.signal(Some(Signal::Feed(execution.execution_id)));
        }
        Ok(claimed)
    }

    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<Execution>, StoreError> {
        let state = self.state();
        Ok(state
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .take(limit)
            .filter_map(|(_, id)| state.executions.get(id).cloned())
            .collect())
    }

    async fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .state()
            .deadlines
            .first()
            .map(|(deadline, _)| *deadline))
    }
}

impl FeedStore for MemoryStore {
    async fn append_events(
        &self,
        id: ExecutionId,
        attempt: u32,
        events: &[ExecutorEvent],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let (latest, any) = {
            let mut state = self.state();
            let execution = state.executions.get_mut(&id).ok_or(StoreError::NotFound)?;
            let recorded = feed::append(execution, attempt, events, now)?;
            let latest = execution.events;
            let any = !recorded.is_empty();
            state.record(recorded);
            (latest, any)
        };
        self.signal(any.then_some(Signal::Feed(id)));
        Ok(latest)
    }

    async fn list_events(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let state = self.state();
        state
            .execution_of(alias, job_id, id)
            .ok_or(StoreError::NotFound)?;
        let events = state.events.get(&id).map(Vec::as_slice).unwrap_or_default();
        Ok(events
            .iter()
            .skip_while(|event| event.sequence <= after)
            .take(limit)
            .cloned()
            .collect())
    }
}

impl OutboxStore for MemoryStore {
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut state = self.state();
        let due: Vec<DeliveryKey> = state
            .queue_heads()
            .filter(|head| head.available_at() <= now)
            .take(limit)
            .map(|head| head.delivery.key)
            .collect();
        Ok(due
            .iter()
            .filter_map(|key| {
                let head = state.outbox.get_mut(key)?;
                head.held_until = Some(hold_until);
                Some(head.delivery.clone())
            })
            .collect())
    }

    async fn settle_delivery(
        &self,
        key: &DeliveryKey,
        settlement: &Settlement,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        match settlement {
            Settlement::Delivered => {
                state.outbox.remove(key);
            }
            Settlement::Retry { at, error } => {
                if let Some(pending) = state.outbox.get_mut(key) {
                    pending.delivery.attempts += 1;
                    pending.delivery.next_attempt_at = *at;
                    pending.held_until = None;
                    pending.last_error = Some(error.clone());
                }
            }
            Settlement::GiveUp { error } => {
                if let Some(mut pending) = state.outbox.remove(key) {
                    pending.delivery.attempts += 1;
                    state.failed.insert(*key, (pending.delivery, error.clone()));
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn next_delivery_at(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.state().queue_heads().map(Pending::available_at).min())
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        Ok(self.state().outbox.len() as u64)
    }

    async fn given_up_deliveries(
        &self,
        id: ExecutionId,
        page: PageRequest,
    ) -> Result<Page<GivenUpDelivery>, StoreError> {
        let state = self.state();
        let given_up: Vec<&(Delivery, String)> = state
            .failed
            .range(deliveries_of(id))
            .map(|(_, failed)| failed)
            .collect();
        let slice = page.slice(&given_up);
        let results = slice
            .results
            .into_iter()
            .map(|(delivery, error)| GivenUpDelivery::new(delivery.clone(), error.clone()))
            .collect();
        Ok(Page::new(page, slice.total_size, results))
    }
}

impl RetentionStore for MemoryStore {
    async fn purge_ended(&self, before: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let mut state = self.state();
        let due: Vec<(Timestamp, ExecutionId)> = state
            .ended
            .iter()
            .take_while(|(end, _)| *end < before)
            .take(limit)
            .copied()
            .collect();
        for entry in &due {
            state.ended.remove(entry);
            state.purge(entry.1);
        }
        Ok(due.len())
    }
}

impl RunLogStore for MemoryStore {
    async fn append_log(
        &self,
        id: ExecutionId,
        attempt: u32,
        chunk: &[u8],
        cap: LogCap,
        _now: Timestamp,
    ) -> Result<u64, StoreError> {
        let total = {
            let mut state = self.state();
            let execution = state.executions.get(&id).ok_or(StoreError::NotFound)?;
            runner_core::machine::fence(execution, attempt)?;
            let log = state.run_logs.entry((id, attempt)).or_default();
            let plan = log.meta.plan_append(cap, chunk.len());
            for piece in plan.pieces {
                log.chunks.insert(piece.offset, chunk[piece.range].to_vec());
            }
            log.meta = plan.meta;
            let meta = log.meta;
            log.chunks
                .retain(|offset, bytes| !meta.droppable(*offset, bytes.len() as u64));
            meta.total
        };
        self.signal(Some(Signal::Log(id)));
        Ok(total)
    }

    async fn read_log(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        read: LogRead,
    ) -> Result<LogPage, StoreError> {
        let state = self.state();
        let execution = state
            .execution_of(alias, job_id, id)
            .ok_or(StoreError::NotFound)?;
        let attempt =
            run_log::resolve_attempt(execution, read.attempt).ok_or(StoreError::NotFound)?;
        let ended = run_log::attempt_ended(execution, attempt);
        let empty = RunLog::default();
        let log = state.run_logs.get(&(id, attempt)).unwrap_or(&empty);
        let plan = log.meta.plan_read(read.offset, read.limit);
        // The chunk holding `plan.from`, and those after it up to `plan.to`.
        let first = log.chunks.range(..=plan.from).next_back();
        let rest = log.chunks.range(plan.from + 1..plan.to.max(plan.from + 1));
        let chunks = first
            .into_iter()
            .chain(rest)
            .map(|(offset, bytes)| (*offset, bytes.as_slice()));
        Ok(LogPage::new(attempt, &log.meta, &plan, chunks, ended))
    }
}

impl KeyPairStore for MemoryStore {
    async fn insert_key_pair(&self, pair: &KeyPair) -> Result<(), StoreError> {
        let mut state = self.state();
        let pairs = state
            .key_pairs
            .entry(pair.account_alias.clone())
            .or_default();
        if pairs.contains_key(&pair.name) {
            return Err(StoreError::Conflict(format!(
                "key pair {} exists already",
                pair.name
            )));
        }
        pairs.insert(pair.name.clone(), pair.clone());
        Ok(())
    }

    async fn get_key_pair(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<KeyPair>, StoreError> {
        let state = self.state();
        Ok(state
            .key_pairs
            .get(alias)
            .and_then(|pairs| pairs.get(name))
            .cloned())
    }

    async fn list_key_pairs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<KeyPair>, StoreError> {
        let state = self.state();
        let all: Vec<KeyPair> = state
            .key_pairs
            .get(alias)
            .map(|pairs| pairs.values().cloned().collect())
            .unwrap_or_default();
        Ok(page.slice(&all))
    }

    async fn delete_key_pair(&self, alias: &AccountAlias, name: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        state
            .key_pairs
            .get_mut(alias)
            .and_then(|pairs| pairs.remove(name))
            .map(drop)
            .ok_or(StoreError::NotFound)
    }
}

impl InventoryStore for MemoryStore {
    async fn insert_inventory_host(&self, host: &InventoryHost) -> Result<(), StoreError> {
        let mut state = self.state();
        let hosts = state
            .inventory
            .entry(host.account_alias.clone())
            .or_default();
        if hosts.contains_key(&host.host.id) {
            return Err(StoreError::Conflict(format!(
                "the inventory has a host {} already",
                host.host.id
            )));
        }
        hosts.insert(host.host.id.clone(), host.clone());
        Ok(())
    }

    async fn get_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> Result<Option<InventoryHost>, StoreError> {
        let state = self.state();
        Ok(state
            .inventory
            .get(alias)
            .and_then(|hosts| hosts.get(id))
            .cloned())
    }

    async fn replace_inventory_host(&self, host: &InventoryHost) -> Result<(), StoreError> {
        let mut state = self.state();
        let stored = state
            .inventory
            .get_mut(&host.account_alias)
            .and_then(|hosts| hosts.get_mut(&host.host.id))
            .ok_or(StoreError::NotFound)?;
        *stored = host.clone();
        Ok(())
    }

    async fn list_inventory_hosts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<InventoryHost>, StoreError> {
        let state = self.state();
        let all: Vec<InventoryHost> = state
            .inventory
            .get(alias)
            .map(|hosts| hosts.values().cloned().collect())
            .unwrap_or_default();
        Ok(page.slice(&all))
    }

    async fn delete_inventory_host(
        &self,
        alias: &AccountAlias,
        id: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state
            .inventory
            .get_mut(alias)
            .and_then(|hosts| hosts.remove(id))
            .map(drop)
            .ok_or(StoreError::NotFound)
    }
}

impl SignalSource for MemoryStore {
    fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.signals.subscribe()
    }
}

impl ScheduleStore for MemoryStore {
    async fn insert_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        let mut state = self.state();
        let key = (account.account_alias.clone(), account.alias.clone());
        if state.service_accounts.contains_key(&key) {
            return Err(StoreError::Conflict(format!(
                "service account {} exists already",
                account.alias
            )));
        }
        state
            .service_accounts_by_account
            .entry(account.account_alias.clone())
            .or_default()
            .push(account.alias.clone());
        state.service_accounts.insert(key, account.clone());
        Ok(())
    }

    async fn get_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        let key = (alias.clone(), name.to_owned());
        Ok(self.state().service_accounts.get(&key).cloned())
    }

    async fn list_service_accounts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<ServiceAccount>, StoreError> {
        let state = self.state();
        let names = state
            .service_accounts_by_account
            .get(alias)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let newest_first: Vec<ServiceAccount> = names
            .iter()
            .rev()
            .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
            .take(page.size as usize)
            .filter_map(|name| {
                state
                    .service_accounts
                    .get(&(alias.clone(), name.clone()))
                    .cloned()
            })
            .collect();
        Ok(Page::new(page, names.len() as u64, newest_first))
    }

    async fn delete_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let key = (alias.clone(), name.to_owned());
        if !state.service_accounts.contains_key(&key) {
            return Err(StoreError::NotFound);
        }
        let user = state.schedules.values().find(|schedule| {
            &schedule.account_alias == alias && schedule.service_account_alias == name
        });
        if let Some(schedule) = user {
            return Err(StoreError::Conflict(format!(
                "service account {name} is used by schedule {} of job {}",
                schedule.id, schedule.job_id
            )));
        }
        state.service_accounts.remove(&key);
        if let Some(names) = state.service_accounts_by_account.get_mut(alias) {
            names.retain(|other| other != name);
        }
        Ok(())
    }

    async fn insert_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        let mut state = self.state();
        if state
            .job_of(&schedule.account_alias, schedule.job_id)
            .is_none()
        {
            return Err(StoreError::NotFound);
        }
        state.check_service_account(schedule)?;
        state
            .schedules_by_job
            .entry(schedule.job_id)
            .or_default()
            .push(schedule.id);
        state.put_schedule(schedule.clone());
        Ok(())
    }

    async fn get_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<Option<Schedule>, StoreError> {
        let state = self.state();
        Ok(state
            .schedules
            .get(&id)
            .filter(|schedule| &schedule.account_alias == alias && schedule.job_id == job_id)
            .cloned())
    }

    async fn update_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        let mut state = self.state();
        let exists = state.schedules.get(&schedule.id).is_some_and(|stored| {
            stored.account_alias == schedule.account_alias && stored.job_id == schedule.job_id
        });
        if !exists {
            return Err(StoreError::NotFound);
        }
        state.check_service_account(schedule)?;
        state.put_schedule(schedule.clone());
        Ok(())
    }

    async fn delete_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let owned = state
            .schedules
            .get(&id)
            .is_some_and(|schedule| &schedule.account_alias == alias && schedule.job_id == job_id);
        if !owned {
            return Err(StoreError::NotFound);
        }
        state.remove_schedule(id);
        Ok(())
    }

    async fn list_schedules(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Schedule>, StoreError> {
        let state = self.state();
        let visible: Vec<&Schedule> = state
            .schedules_by_job
            .get(&job_id)
            .into_iter()
            .flatten()
            .rev()
            .filter_map(|id| state.schedules.get(id))
            .filter(|schedule| &schedule.account_alias == alias)
            .collect();
        let results = visible
            .iter()
            .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
            .take(page.size as usize)
            .map(|schedule| (*schedule).clone())
            .collect();
        Ok(Page::new(page, visible.len() as u64, results))
    }

    async fn fire_due_schedules(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let created = {
            let mut state = self.state();
            let due: Vec<ScheduleId> = state
                .fire_times
                .iter()
                .take_while(|(at, _)| *at <= now)
                .take(limit)
                .map(|(_, id)| *id)
                .collect();
            let mut created = Vec::new();
            for id in due {
                let Some(mut schedule) = state.schedules.get(&id).cloned() else {
                    continue;
                };
                let Some(due_time) = schedule.fire(now) else {
                    continue;
                };
                let fire = ScheduledFire {
                    schedule_id: id,
                    due_time,
                };
                let job = state
                    .job_of(&schedule.account_alias, schedule.job_id)
                    .cloned();
                if let Some(job) = job.filter(|_| state.fired.insert((id, due_time))) {
                    let execution = Execution::scheduled(&job, fire, &schedule.launch_options, now);
                    if let Some(active) = state.blocking_execution(&execution) {
                        schedule.last_skipped_fire = Some(SkippedFire {
                            due_time,
                            active_execution_id: active,
                        });
                        state.put_schedule(schedule);
                        continue;
                    }
                    state
                        .executions_by_job
                        .entry(job.id)
                        .or_default()
                        .push(execution.execution_id);
                    state.put(execution.clone());
                    created.push(execution);
                }
                state.put_schedule(schedule);
            }
            created
        };
        if !created.is_empty() {
            self.signal(Some(Signal::Pending));
        }
        for execution in &created {
            self.signal(Some(Signal::Feed(execution.execution_id)));
        }
        Ok(created)
    }

    async fn next_fire_time(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.state().fire_times.first().map(|(at, _)| *at))
    }
}

#[cfg(test)]
mod conformance {
    runner_core::store_conformance_tests!(async { super::MemoryStore::new() });

    mod schedules {
        runner_core::schedule_store_conformance_tests!(async { crate::MemoryStore::new() });
    }
}
