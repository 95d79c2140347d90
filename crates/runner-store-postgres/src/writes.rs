//! Inserts of executions and transitions, applied in batches: each write lane takes every request
//! queued when it starts a statement and applies them all in it, so concurrent transitions share
//! one commit (group commit). Per request the rule stays the one of the brief: the state machine
//! ([`runner_core::machine::apply`], through [`feed::transition`], which also records the status
//! event) runs in Rust on the execution as stored, and its result is written only if the row is
//! still that version (see [`transition_batch`]); the caller hears back only after the commit.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use runner_core::execution::{Execution, Status};
use runner_core::feed::{self, Recorded};
use runner_core::ids::ExecutionId;
use runner_core::machine::Command;
use runner_core::store::{Signal, StoreError, signal_after};
use runner_core::time::Timestamp;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::Shared;
use crate::batch;
use crate::codec::{Codec, Encode, ExecutionRow, ExecutionUpdates};
use crate::error::{SharedError, is_connection_error, is_retryable, is_unique_violation};
use crate::live_feed::{self, FeedRows};
use crate::retry::{GiveUp, REQUEST_RETRY, retry_with_state};

/// The most requests one transaction takes.
const MAX_BATCH: usize = 256;

/// A write waiting for a lane.
pub(crate) enum Request {
    Insert {
        execution: Box<Execution>,
        /// Insert only if the job is at this revision (see `job_cache`).
        job_revision: Option<i64>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Transition {
        id: ExecutionId,
        command: Command,
        now: Timestamp,
        reply: oneshot::Sender<Result<Execution, StoreError>>,
    },
}

/// The queues of writes that the lanes take from: inserts go to one lane per store (they all
/// lock their job's row, so more lanes would only queue behind each other), transitions to
/// `lanes` lanes, except the ones [`is_relaxed`] names, which have a lane of their own: their
/// batches commit without waiting for the disk, and mixed into a batch with a durable transition
/// they would wait for its flush (a worker waits on BeginRun before its executor's outcome is
/// recorded). One caller's transitions stay in order: it awaits each before the next.
pub(crate) struct Queues {
    inserts: mpsc::UnboundedSender<Request>,
    transitions: mpsc::UnboundedSender<Request>,
    relaxed: mpsc::UnboundedSender<Request>,
}

impl Queues {
    /// Queues a request for its lane; fails once the lanes have stopped.
    pub(crate) fn send(&self, request: Request) -> Result<(), StoreError> {
        let queue = match request {
            Request::Insert { .. } => &self.inserts,
            Request::Transition { .. } if is_relaxed(&request) => &self.relaxed,
            Request::Transition { .. } => &self.transitions,
        };
        queue
            .send(request)
            .map_err(|_| StoreError::Unavailable("the store's write lanes have stopped".into()))
    }
}

/// Starts the write lanes; they end when the [`Queues`] are dropped.
pub(crate) fn start(
    shared: &Arc<Shared>,
    lanes: usize,
) -> (Queues, Vec<tokio::task::JoinHandle<()>>) {
    let (inserts, insert_receiver) = mpsc::unbounded_channel();
    let (transitions, transition_receiver) = mpsc::unbounded_channel();
    let (relaxed, relaxed_receiver) = mpsc::unbounded_channel();
    let transition_receiver = Arc::new(Mutex::new(transition_receiver));
    let mut handles: Vec<_> = (0..lanes.max(1))
        .map(|_| tokio::spawn(lane(Arc::clone(shared), Arc::clone(&transition_receiver))))
        .collect();
    for receiver in [insert_receiver, relaxed_receiver] {
        handles.push(tokio::spawn(lane(
            Arc::clone(shared),
            Arc::new(Mutex::new(receiver)),
        )));
    }
    (
        Queues {
            inserts,
            transitions,
            relaxed,
        },
        handles,
    )
}

async fn lane(shared: Arc<Shared>, receiver: Arc<Mutex<mpsc::UnboundedReceiver<Request>>>) {
    loop {
        let Some(batch) = batch::next(&receiver, MAX_BATCH).await else {
            return;
        };
        run(&shared, batch).await;
    }
}

/// What one request of a committed batch got (`None` for an insert).
type Outcome = Result<Option<Execution>, StoreError>;

/// How a batch failed.
enum Failed {
    /// Before the commit was sent: nothing was applied.
    Before(sqlx::Error),
    /// The commit itself failed: it may or may not have been applied.
    AtCommit(sqlx::Error),
}

impl From<sqlx::Error> for Failed {
    fn from(error: sqlx::Error) -> Self {
        Failed::Before(error)
    }
}

/// What the attempts at one batch have done so far.
struct Progress {
    /// Per request, in batch order: its answer once settled.
    outcomes: Vec<Option<Outcome>>,
    /// The signals of the writes committed.
    signals: Vec<Signal>,
    /// Whether an earlier attempt lost its connection, so that its inserts may have landed.
    recovering: bool,
}

/// Applies a batch (all inserts or all transitions), retrying while the database is unreachable,
/// and answers every request. A request is settled once its write committed (or was refused);
/// a retry applies only the requests still unsettled.
async fn run(shared: &Shared, batch: Vec<Request>) {
    let inserts = matches!(batch.first(), Some(Request::Insert { .. }));
    let progress = Progress {
        outcomes: (0..batch.len()).map(|_| None).collect(),
        signals: Vec::new(),
        recovering: false,
    };
    let (progress, outcome) = retry_with_state(
        REQUEST_RETRY,
        GiveUp::after(shared.retry_for),
        progress,
        |progress| attempt(shared, &batch, inserts, progress),
        |failed| match failed {
            Failed::Before(error) if is_retryable(error) => {
                tracing::debug!(%error, "write batch failed; retrying");
                true
            }
            _ => false,
        },
    )
    .await;
    let failure = outcome.err();
    let Progress {
        outcomes, signals, ..
    } = progress;
    shared.committed(signals);
    let mut unsettled = Vec::new();
    for (request, outcome) in batch.into_iter().zip(outcomes) {
        match outcome {
            Some(outcome) => answer(request, outcome),
            None => unsettled.push(request),
        }
    }
    match failure {
        None => {
            for request in unsettled {
                answer(request, Err(StoreError::Corrupt("unanswered".into())));
            }
        }
        // One bad request (a duplicate id, say) must not fail the others: apply each alone.
        Some(Failed::Before(error)) if unsettled.len() > 1 && !is_connection_error(&error) => {
            tracing::debug!(%error, "write batch failed; applying its requests one by one");
            for request in unsettled {
                Box::pin(run(shared, vec![request])).await;
            }
        }
        Some(Failed::Before(error)) if is_unique_violation(&error) => {
            for request in unsettled {
                let message = match &request {
                    Request::Insert { execution, .. } => {
                        format!("execution {} exists already", execution.execution_id)
                    }
                    Request::Transition { id, .. } => format!("execution {id} exists already"),
                };
                answer(request, Err(StoreError::Conflict(message)));
            }
        }
        Some(Failed::Before(error) | Failed::AtCommit(error)) => {
            // An ambiguous commit of transitions is reported as unavailable: the caller retries,
            // and the state machine refuses a transition that did land.
            let shared_error = SharedError(Arc::new(error));
            for request in unsettled {
                answer(request, Err(StoreError::unavailable(shared_error.clone())));
            }
        }
    }
}

/// One attempt at the unsettled requests of a batch.
async fn attempt(
    shared: &Shared,
    batch: &[Request],
    inserts: bool,
    mut progress: Progress,
) -> (Progress, Result<(), Failed>) {
    let Progress {
        outcomes,
        signals,
        recovering,
    } = &mut progress;
    let outcome = if inserts {
        insert_batch(shared, batch, *recovering, outcomes, signals).await
    } else {
        transition_batch(shared, batch, outcomes, signals).await
    };
    // An insert is one statement in its own transaction: a lost connection leaves it unknown
    // whether it landed, which the next attempt checks.
    if let Err(Failed::Before(error)) = &outcome {
        *recovering |= inserts && is_connection_error(error);
    }
    (progress, outcome)
}

fn answer(request: Request, outcome: Outcome) {
    match request {
        Request::Insert { reply, .. } => {
            let _ = reply.send(outcome.map(|_| ()));
        }
        Request::Transition { reply, .. } => {
            let _ = reply.send(outcome.and_then(|execution| {
                execution.ok_or_else(|| StoreError::Corrupt("transition without a result".into()))
            }));
        }
    }
}

/// An execution as a round of [`transition_batch`] starts from it.
struct Row {
    id: Uuid,
    /// The `xmin` of the version the record is.
    xmin: String,
    execution: Result<Execution, String>,
    /// Read in this round, rather than this store's copy of its last write (see `versions`).
    read: bool,
}

/// Applies the unsettled transitions of a batch, optimistically and without an explicit
/// transaction: start from the rows (this store's copy of a row it wrote last, or the row read
/// with its `xmin`, which every new version of a row changes), apply the commands in request
/// order (each on the result of the one before), then write every changed row in one statement
/// that updates a row only if its `xmin` is still the one started from (a compare-and-set),
/// inserts the recorded events of the rows it updated, and commits. A row that another writer
/// changed in between is read again and its commands applied again, until every request is
/// settled. Writers rarely meet on one execution (its worker's writes follow each other; a stop
/// request or a rescue is the exception), so a worker's transition costs one round trip (two
/// without a copy) where `BEGIN`, `SELECT ... FOR UPDATE`, the write and `COMMIT` cost four, and
/// takes no row lock (which PostgreSQL writes to the row) before the update.
async fn transition_batch(
    shared: &Shared,
    batch: &[Request],
    outcomes: &mut [Option<Outcome>],
    signals: &mut Vec<Signal>,
) -> Result<(), Failed> {
    loop {
        let ids: BTreeSet<Uuid> = batch
            .iter()
            .zip(outcomes.iter())
            .filter_map(|(request, outcome)| match request {
                Request::Transition { id, .. } if outcome.is_none() => Some(id.0),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(ids.len());
        let mut unknown = Vec::new();
        for id in ids {
            match shared.versions.get(id) {
                Some((xmin, execution)) => rows.push(Row {
                    id,
                    xmin,
                    execution: Ok(execution),
                    read: false,
                }),
                None => unknown.push(id),
            }
        }
        if !unknown.is_empty() {
            let read: Vec<(Uuid, String, String)> = sqlx::query_as(
                "SELECT id, xmin::text, body::text FROM executions WHERE id = ANY($1)",
            )
            .bind(&unknown)
            .fetch_all(&shared.pool)
            .await?;
            rows.extend(read.into_iter().map(|(id, xmin, body)| {
                Row {
                    id,
                    xmin,
                    execution: shared
                        .codec
                        .decode::<Execution>("execution", id, &body)
                        .map_err(|error| error.to_string()),
                    read: true,
                }
            }));
        }
        let again = apply_and_write(shared, batch, outcomes, signals, rows).await?;
        if !again {
            return Ok(());
        }
    }
}

/// One round of [`transition_batch`]: applies the unsettled requests to `rows` and writes the
/// changed rows (compare-and-set on `xmin`). Settles the requests of rows written, refused
/// against a row read now, or missing; leaves the others unsettled (their row changed, or the
/// copy they were refused against may be out of date) and drops those copies. Returns whether
/// anything was left for another round.
async fn apply_and_write(
    shared: &Shared,
    batch: &[Request],
    outcomes: &mut [Option<Outcome>],
    signals: &mut Vec<Signal>,
    rows: Vec<Row>,
) -> Result<bool, Failed> {
    let read: HashSet<Uuid> = rows
        .iter()
        .filter(|row| row.read)
        .map(|row| row.id)
        .collect();
    // Per row: the xmin started from, the status it had, and the record as the commands leave
    // it. A row missing here does not exist (only read rows can be missing).
    let mut current: HashMap<Uuid, Result<(String, Status, Execution), String>> = rows
        .into_iter()
        .map(|row| {
            let started = row
                .execution
                .map(|execution| (row.xmin, execution.status, execution));
            (row.id, started)
        })
        .collect();

    // Per request of this round: its result if its row is written.
    let mut results: Vec<(usize, Uuid, Outcome)> = Vec::new();
    let mut row_signals: HashMap<Uuid, Vec<Signal>> = HashMap::new();
    let mut changed: BTreeSet<Uuid> = BTreeSet::new();
    // Per row: the feed events its commands recorded, in order.
    let mut recorded: HashMap<Uuid, Vec<Recorded>> = HashMap::new();
    for (index, request) in batch.iter().enumerate() {
        if outcomes[index].is_some() {
            continue;
        }
        let Request::Transition {
            id, command, now, ..
        } = request
        else {
            outcomes[index] = Some(Err(StoreError::Corrupt(
                "an insert among transitions".into(),
            )));
            continue;
        };
        match current.get_mut(&id.0) {
            None => outcomes[index] = Some(Err(StoreError::NotFound)),
            Some(Err(message)) => outcomes[index] = Some(Err(StoreError::Corrupt(message.clone()))),
            Some(Ok((_, _, execution))) => {
                let mut next = execution.clone();
                match feed::transition(&mut next, command, *now) {
                    Ok(events) => {
                        let row = row_signals.entry(id.0).or_default();
                        row.extend(signal_after(command, &next));
                        if !events.is_empty() {
                            recorded.entry(id.0).or_default().extend(events);
                        }
                        *execution = next.clone();
                        changed.insert(id.0);
                        results.push((index, id.0, Ok(Some(next))));
                    }
                    // A refusal is settled only if the row it saw is current: kept with the
                    // row's other results below.
                    Err(refused) => results.push((index, id.0, Err(StoreError::Refused(refused)))),
                }
            }
        }
    }

    // A restart brings an ended execution back: hold its job (KEY SHARE) so that a concurrent
    // delete_job, which locks the job FOR UPDATE, either sees it PENDING or went first.
    let mut revived: BTreeSet<Uuid> = BTreeSet::new();
    let mut updates = ExecutionUpdates::default();
    let mut feed_rows = FeedRows::default();
    let mut unwritable: HashSet<Uuid> = HashSet::new();
    // Rows that became PENDING: they draw a new queue position, and other nodes may hear of them.
    let mut requeued: HashSet<Uuid> = HashSet::new();
    for id in &changed {
        let Some(Ok((xmin, was, execution))) = current.get(id) else {
            continue;
        };
        if was.is_terminal() && !execution.status.is_terminal() {
            revived.insert(execution.job_id.0);
        }
        let requeue = execution.status == Status::Pending && *was != Status::Pending;
        if requeue {
            requeued.insert(*id);
        }
        let events = recorded.remove(id).unwrap_or_default();
        // The row and its events are written together or not at all.
        match ExecutionRow::of(&shared.codec, execution)
            .and_then(|row| feed_rows.push(&shared.codec, &events).map(|()| row))
        {
            Ok(row) => {
                updates.push(row, requeue, Some(xmin.clone()));
                if !events.is_empty() {
                    row_signals
                        .entry(*id)
                        .or_default()
                        .push(Signal::Feed(ExecutionId(*id)));
                }
            }
            Err(error) => {
                // Cannot happen for a record that decoded; refuse its requests rather than
                // write half of it.
                unwritable.insert(*id);
                for (index, of, _) in &results {
                    if of == id {
                        outcomes[*index] = Some(Err(StoreError::Corrupt(error.to_string())));
                    }
                }
            }
        }
    }
    results.retain(|(_, id, _)| !unwritable.contains(id));

    let mut written: HashMap<Uuid, String> = HashMap::new();
    if !updates.ids.is_empty() {
        let round_signals: Vec<Signal> = updates
            .ids
            .iter()
            .flat_map(|id| row_signals.get(id).into_iter().flatten().copied())
            .collect();
        let payloads = shared.commit_payloads(&round_signals);
        let relaxed = batch
            .iter()
            .zip(outcomes.iter())
            .all(|(request, outcome)| outcome.is_some() || is_relaxed(request));
        let jobs: Vec<Uuid> = revived.into_iter().collect();
        let updated: Vec<(Uuid, String)> = live_feed::write_executions(
            &updates,
            &jobs,
            &feed_rows,
            &shared.channel,
            &payloads,
            relaxed,
        )
        .fetch_all(&shared.pool)
        .await
        .map_err(|error| {
            // The statement is its own transaction: a lost connection leaves it unknown
            // whether it committed. Anything else rolled it back.
            if is_connection_error(&error) {
                Failed::AtCommit(error)
            } else {
                Failed::Before(error)
            }
        })?;
        written.extend(updated);
    }
    let mut again = false;
    for (index, id, result) in results {
        let settled = written.contains_key(&id)
            // A refusal needs no write; it stands if the row it saw was read just now.
            || (result.is_err() && !changed.contains(&id) && read.contains(&id));
        if settled {
            outcomes[index] = Some(result);
        } else {
            again = true;
            shared.versions.forget(id);
        }
    }
    for (id, xmin) in written {
        if requeued.contains(&id) {
            shared.unannounced.pending([id]);
        }
        if let Some(Ok((_, _, execution))) = current.get(&id) {
            shared.versions.remember(xmin, execution);
        }
        signals.extend(row_signals.remove(&id).unwrap_or_default());
    }
    Ok(again)
}

/// True for a transition whose loss in a crash of the database server the state machine
/// tolerates, so its commit need not wait for the disk: BeginRun (a lost one leaves the execution
/// INITIALIZING under the same claim, from which Finish still applies) and Heartbeat (the next one
/// renews the lease again). Everything else (claims, outcomes, stop and kill requests, releases)
/// is committed durably. WAL order is kept: a later durable commit also makes these durable.
///
/// The feed events of such a batch (BeginRun's INITIALIZING -> RUNNING status event, and its
/// deliveries) are in the same transaction, so they are not synchronously committed either. That
/// is consistent: a crash that loses them loses the transition they report too, and the feed
/// never shows a status the execution does not have (the sequence number is counted in the body
/// that is lost with them).
fn is_relaxed(request: &Request) -> bool {
    matches!(
        request,
        Request::Transition {
            command: Command::BeginRun { .. } | Command::Heartbeat { .. },
            ..
        }
    )
}

/// One statement (so one implicit transaction) for a batch of inserts: it numbers the new
/// executions within their jobs, locking each job row (so a concurrent delete_job waits or wins,
/// and the lock is held only for this statement and its commit), inserts them, and notifies.
/// `recovering`: an earlier try may have landed; executions already stored are taken as done.
async fn insert_batch(
    shared: &Shared,
    batch: &[Request],
    recovering: bool,
    outcomes: &mut [Option<Outcome>],
    signals: &mut Vec<Signal>,
) -> Result<(), Failed> {
    let mut landed: HashSet<ExecutionId> = HashSet::new();
    if recovering {
        let ids: Vec<Uuid> = batch
            .iter()
            .filter_map(|request| match request {
                Request::Insert { execution, .. } => Some(execution.execution_id.0),
                Request::Transition { .. } => None,
            })
            .collect();
        let stored: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM executions WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&shared.pool)
            .await?;
        landed.extend(stored.into_iter().map(ExecutionId));
    }

    let mut seen = HashSet::new();
    let mut rows = NewExecutions::default();
    let mut pending: Vec<(usize, ExecutionId)> = Vec::new();
    for (index, request) in batch.iter().enumerate() {
        if outcomes[index].is_some() {
            continue;
        }
        let Request::Insert {
            execution,
            job_revision,
            ..
        } = request
        else {
            outcomes[index] = Some(Err(StoreError::Corrupt(
                "a transition among inserts".into(),
            )));
            continue;
        };
        if landed.contains(&execution.execution_id) {
            outcomes[index] = Some(Ok(None));
            continue;
        }
        if !seen.insert(execution.execution_id) {
            outcomes[index] = Some(Err(StoreError::Conflict(format!(
                "execution {} exists already",
                execution.execution_id
            ))));
            continue;
        }
        match rows.push(&shared.codec, execution, *job_revision) {
            Ok(()) => pending.push((index, execution.execution_id)),
            Err(error) => outcomes[index] = Some(Err(error)),
        }
    }

    if !pending.is_empty() {
        let inserted = rows.insert(&shared.pool).await?;
        for (index, id) in pending {
            // Not inserted: its job is gone (or belongs to another account, or is no longer at
            // the revision the execution was made from).
            outcomes[index] = Some(if inserted.contains(&id.0) {
                Ok(None)
            } else {
                Err(StoreError::NotFound)
            });
        }
        if !inserted.is_empty() {
            signals.push(Signal::Pending);
            shared.unannounced.pending(inserted.iter().copied());
            // Their creation events (see `NewExecutions`).
            signals.extend(
                batch
                    .iter()
                    .filter_map(|request| match request {
                        Request::Insert { execution, .. } => Some(execution.execution_id),
                        Request::Transition { .. } => None,
                    })
                    .filter(|id| inserted.contains(&id.0))
                    .map(Signal::Feed),
            );
        }
    }
    Ok(())
}

/// Numbers and inserts in one statement. `fresh` drops executions of a schedule's due time that
/// exists already (the fire path holds the schedule's row lock, so this check is exact; the
/// `ON CONFLICT` on the unique key is the second guard) and executions made from a copy of their
/// job whose revision is no longer the job's (see `job_cache`; the statement's snapshot is taken
/// after the start began, so an update acknowledged before it is seen), and ranks the rest within
/// their job in request order. `numbered` bumps each job's counter by its count (locking the job
/// row) and yields the number before the batch; a new execution's `job_seq` is that plus its rank.
/// Queue positions are drawn in request order (`ORDER BY ord`; PostgreSQL evaluates volatile output
/// columns after the sort). `events` and `outbox` store the creation event of each execution
/// inserted (and its deliveries), from the arrays of a [`FeedRows`] (`$1..$9`, joined on the
/// inserted ids). The wake-ups for other nodes (pending, feed) are sent after the commit (see
/// `notifier`).
const INSERT_EXECUTIONS: &str = concat!(
    "WITH fresh AS (
    SELECT r.*, row_number() OVER (PARTITION BY r.job_id ORDER BY r.ord) AS rank
      FROM unnest($12::uuid[], $13::uuid[], $14::text[], $15::int8[], $16::int8[], $17::int8[],
                  $18::text[], $19::uuid[], $20::int8[], $21::int8[], $22::bool[])
           WITH ORDINALITY AS r(id, job_id, status, created, deadline, attempt, body,
                                schedule_id, due_time, job_revision, one_at_a_time, ord)
     WHERE (r.schedule_id IS NULL
            OR NOT EXISTS (SELECT 1 FROM executions AS e
                            WHERE e.schedule_id = r.schedule_id AND e.due_time = r.due_time))
       AND (r.job_revision IS NULL
            OR EXISTS (SELECT 1 FROM jobs AS j
                        WHERE j.id = r.job_id AND j.revision = r.job_revision))
), counts AS (
    SELECT job_id, count(*) AS n FROM fresh GROUP BY job_id
), numbered AS (
    UPDATE jobs AS j SET execution_seq = j.execution_seq + c.n
      FROM counts AS c, unnest($10::uuid[], $11::text[]) AS v(id, alias)
     WHERE j.id = c.job_id AND j.id = v.id AND j.account_alias = v.alias
 RETURNING j.id, j.account_alias, j.execution_seq - c.n AS base
), inserted AS (
    INSERT INTO executions (id, job_id, account_alias, status, created_time, job_seq,
                            queue_position, next_deadline, attempt, body, schedule_id, due_time,
                            one_at_a_time)
    SELECT f.id, f.job_id, numbered.account_alias, f.status, f.created, numbered.base + f.rank,
           nextval('execution_queue'), f.deadline, f.attempt, f.body::json, f.schedule_id,
           f.due_time, f.one_at_a_time
      FROM fresh AS f
      JOIN numbered ON numbered.id = f.job_id
     ORDER BY f.ord
        ON CONFLICT (schedule_id, due_time) WHERE schedule_id IS NOT NULL DO NOTHING
 RETURNING id
), ",
    feed_inserts!("JOIN inserted USING (id)"),
    "\nSELECT id FROM inserted"
);

/// New executions to store with [`INSERT_EXECUTIONS`], as its parallel arrays. Both the insert
/// lane and the scheduler's firing transaction insert through it, so numbering and queueing are
/// written once.
#[derive(Default)]
pub(crate) struct NewExecutions {
    /// Per job: its id and account, in the order first seen.
    jobs: Vec<(Uuid, String)>,
    ids: Vec<Uuid>,
    job_ids: Vec<Uuid>,
    statuses: Vec<&'static str>,
    created: Vec<i64>,
    deadlines: Vec<Option<i64>>,
    attempts: Vec<i64>,
    bodies: Vec<String>,
    schedule_ids: Vec<Option<Uuid>>,
    due_times: Vec<Option<i64>>,
    job_revisions: Vec<Option<i64>>,
    one_at_a_time: Vec<bool>,
    /// Their creation events ([`feed::created`]).
    feed: FeedRows,
}

impl NewExecutions {
    /// Adds an execution (encoding it, secrets included), to be inserted only if its job is at
    /// `job_revision` if one is given.
    pub(crate) fn push(
        &mut self,
        codec: &Codec,
        execution: &Execution,
        job_revision: Option<i64>,
    ) -> Result<(), StoreError> {
        let body = codec.encode("execution", execution)?;
        self.feed.push(codec, &[feed::created(execution)])?;
        let job = execution.job_id.0;
        if !self.jobs.iter().any(|(id, _)| *id == job) {
            self.jobs
                .push((job, execution.account_alias.as_str().to_owned()));
        }
        self.ids.push(execution.execution_id.0);
        self.job_ids.push(job);
        self.statuses.push(execution.status.as_str());
        self.created.push(execution.created_time);
        self.deadlines.push(execution.next_deadline());
        self.attempts.push(i64::from(execution.attempt));
        self.bodies.push(body);
        self.schedule_ids
            .push(execution.scheduled.map(|fire| fire.schedule_id.0));
        self.due_times
            .push(execution.scheduled.map(|fire| fire.due_time));
        self.job_revisions.push(job_revision);
        self.one_at_a_time.push(execution.overlap.one_at_a_time());
        Ok(())
    }

    /// Inserts them (through `executor`: the pool, or an open transaction); the caller signals
    /// [`Signal::Pending`] and their feeds after the commit if any was inserted. Returns the ids
    /// inserted: an execution whose job is gone, or whose schedule and due time exist already,
    /// is left out.
    pub(crate) async fn insert<'e, E: sqlx::PgExecutor<'e>>(
        &self,
        executor: E,
    ) -> Result<HashSet<Uuid>, sqlx::Error> {
        let job_ids: Vec<Uuid> = self.jobs.iter().map(|(id, _)| *id).collect();
        let aliases: Vec<&str> = self.jobs.iter().map(|(_, alias)| alias.as_str()).collect();
        let query = self
            .feed
            .bind(sqlx::query_as(INSERT_EXECUTIONS))
            .bind(&job_ids)
            .bind(&aliases)
            .bind(&self.ids)
            .bind(&self.job_ids)
            .bind(&self.statuses)
            .bind(&self.created)
            .bind(&self.deadlines)
            .bind(&self.attempts)
            .bind(&self.bodies)
            .bind(&self.schedule_ids)
            .bind(&self.due_times)
            .bind(&self.job_revisions)
            .bind(&self.one_at_a_time);
        let inserted: Vec<(Uuid,)> = query.fetch_all(executor).await?;
        Ok(inserted.into_iter().map(|(id,)| id).collect())
    }
}
