//! Inserts of executions and transitions, applied in batches: each write lane takes every request
//! queued when it starts a transaction and applies them all in it, so concurrent transitions share
//! one commit (group commit). Per request the rule stays the one of the brief: lock the row
//! (`SELECT ... FOR UPDATE`), run [`machine::apply`] in Rust, write the row, notify, commit; the
//! caller hears back only after the commit.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runner_core::execution::{Execution, Status};
use runner_core::ids::{ExecutionId, JobId};
use runner_core::machine::{self, Command};
use runner_core::store::{Signal, StoreError, signal_after};
use runner_core::time::Timestamp;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::Shared;
use crate::codec::{ExecutionRow, ExecutionUpdates, decode, encode};
use crate::error::{SharedError, is_connection_error, is_transient_conflict, is_unique_violation};

/// The most requests one transaction takes.
const MAX_BATCH: usize = 256;

/// A write waiting for a lane.
pub(crate) enum Request {
    Insert {
        execution: Box<Execution>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Transition {
        id: ExecutionId,
        command: Command,
        now: Timestamp,
        reply: oneshot::Sender<Result<Execution, StoreError>>,
    },
}

/// The queue of writes; lanes take from it.
pub(crate) type Queue = mpsc::UnboundedSender<Request>;

/// Starts `lanes` write lanes; they end when every [`Queue`] sender is dropped.
pub(crate) fn start(shared: &Arc<Shared>, lanes: usize) -> (Queue, Vec<tokio::task::JoinHandle<()>>) {
    let (queue, receiver) = mpsc::unbounded_channel();
    let receiver = Arc::new(Mutex::new(receiver));
    let handles = (0..lanes.max(1))
        .map(|_| tokio::spawn(lane(Arc::clone(shared), Arc::clone(&receiver))))
        .collect();
    (queue, handles)
}

async fn lane(shared: Arc<Shared>, receiver: Arc<Mutex<mpsc::UnboundedReceiver<Request>>>) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            batch
        };
        run(&shared, batch).await;
    }
}

/// What one request of a committed batch got.
type Outcome = Result<Option<Execution>, StoreError>;

/// How a batch transaction failed.
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

/// Applies a batch, retrying it while the database is unreachable, and answers every request.
async fn run(shared: &Shared, batch: Vec<Request>) {
    let deadline = Instant::now() + shared.retry_for;
    let mut pause = Duration::from_millis(20);
    let failure = loop {
        match attempt(shared, &batch).await {
            Ok((outcomes, signals)) => {
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    answer(request, outcome);
                }
                shared.signal_local(signals);
                return;
            }
            Err(Failed::Before(error))
                if (is_connection_error(&error) || is_transient_conflict(&error))
                    && Instant::now() < deadline =>
            {
                tracing::debug!(%error, "write batch failed before its commit; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(failed) => break failed,
        }
    };
    match failure {
        // One bad request (a duplicate id, say) must not fail the others: apply each alone.
        Failed::Before(error) if batch.len() > 1 && !is_connection_error(&error) => {
            tracing::debug!(%error, "write batch failed; applying its requests one by one");
            for request in batch {
                Box::pin(run(shared, vec![request])).await;
            }
        }
        Failed::Before(error) if batch.len() == 1 && is_unique_violation(&error) => {
            let message = match &batch[0] {
                Request::Insert { execution, .. } => {
                    format!("execution {} exists already", execution.execution_id)
                }
                Request::Transition { id, .. } => format!("execution {id} exists already"),
            };
            for request in batch {
                answer(request, Err(StoreError::Conflict(message.clone())));
            }
        }
        Failed::Before(error) | Failed::AtCommit(error) => {
            // An ambiguous commit is reported as unavailable: the caller retries, and the state
            // machine refuses a transition that did land (an insert that landed is a conflict).
            let shared_error = SharedError(Arc::new(error));
            for request in batch {
                answer(request, Err(StoreError::unavailable(shared_error.clone())));
            }
        }
    }
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

/// One transaction for the whole batch. Returns each request's outcome and the signals to send.
async fn attempt(
    shared: &Shared,
    batch: &[Request],
) -> Result<(Vec<Outcome>, Vec<Signal>), Failed> {
    let mut tx = shared.pool.begin().await?;
    let mut outcomes: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();
    let mut signals = Vec::new();

    // Transitions: lock every row once, in id order (so two lanes never deadlock), then apply
    // the commands in request order, each on the result of the one before.
    let ids: BTreeSet<Uuid> = batch
        .iter()
        .filter_map(|request| match request {
            Request::Transition { id, .. } => Some(id.0),
            Request::Insert { .. } => None,
        })
        .collect();
    let mut current: HashMap<Uuid, Result<(Status, Execution), String>> = HashMap::new();
    if !ids.is_empty() {
        let ids: Vec<Uuid> = ids.into_iter().collect();
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, body::text FROM executions WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        for (id, body) in rows {
            let decoded = decode::<Execution>("execution", id, &body)
                .map(|execution| (execution.status, execution))
                .map_err(|error| error.to_string());
            current.insert(id, decoded);
        }
    }
    let mut changed: Vec<Uuid> = Vec::new();
    for (index, request) in batch.iter().enumerate() {
        let Request::Transition {
            id, command, now, ..
        } = request
        else {
            continue;
        };
        let outcome = match current.get_mut(&id.0) {
            None => Err(StoreError::NotFound),
            Some(Err(message)) => Err(StoreError::Corrupt(message.clone())),
            Some(Ok((_, execution))) => {
                let mut next = execution.clone();
                match machine::apply(&mut next, command, *now) {
                    Ok(()) => {
                        signals.extend(signal_after(command, &next));
                        *execution = next.clone();
                        if !changed.contains(&id.0) {
                            changed.push(id.0);
                        }
                        Ok(Some(next))
                    }
                    Err(refused) => Err(StoreError::Refused(refused)),
                }
            }
        };
        outcomes[index] = Some(outcome);
    }

    // A restart brings an ended execution back: hold its job (KEY SHARE) so that a concurrent
    // delete_job, which locks the job FOR UPDATE, either sees it PENDING or went first.
    let revived: BTreeSet<Uuid> = changed
        .iter()
        .filter_map(|id| match current.get(id) {
            Some(Ok((was, now))) if was.is_terminal() && !now.status.is_terminal() => {
                Some(now.job_id.0)
            }
            _ => None,
        })
        .collect();
    if !revived.is_empty() {
        let jobs: Vec<Uuid> = revived.into_iter().collect();
        sqlx::query("SELECT id FROM jobs WHERE id = ANY($1) ORDER BY id FOR KEY SHARE")
            .bind(&jobs)
            .execute(&mut *tx)
            .await?;
    }

    insert_executions(&mut tx, batch, &mut outcomes, &mut signals).await?;

    let mut updates = ExecutionUpdates::default();
    for id in &changed {
        if let Some(Ok((was, execution))) = current.get(id) {
            let requeue = execution.status == Status::Pending && *was != Status::Pending;
            match ExecutionRow::of(execution) {
                Ok(row) => updates.push(row, requeue),
                Err(error) => {
                    // Cannot happen for a record that decoded; refuse its requests rather than
                    // write half of it.
                    let message = error.to_string();
                    for (index, request) in batch.iter().enumerate() {
                        if matches!(request, Request::Transition { id: of, .. } if of.0 == *id) {
                            outcomes[index] = Some(Err(StoreError::Corrupt(message.clone())));
                        }
                    }
                }
            }
        }
    }
    if !updates.is_empty() {
        updates.query().execute(&mut *tx).await?;
    }

    notify(&mut tx, shared, &signals).await?;
    tx.commit().await.map_err(Failed::AtCommit)?;
    let outcomes = outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| Err(StoreError::Corrupt("request left unanswered".into()))))
        .collect();
    Ok((outcomes, signals))
}

/// Inserts the batch's new executions: numbers them within their jobs (locking each job row, so
/// a concurrent delete_job waits or wins), then writes them in one statement.
async fn insert_executions(
    tx: &mut sqlx::PgConnection,
    batch: &[Request],
    outcomes: &mut [Option<Outcome>],
    signals: &mut Vec<Signal>,
) -> Result<(), sqlx::Error> {
    let mut seen = HashSet::new();
    let mut inserts: Vec<(usize, &Execution)> = Vec::new();
    for (index, request) in batch.iter().enumerate() {
        if let Request::Insert { execution, .. } = request {
            if seen.insert(execution.execution_id) {
                inserts.push((index, execution));
            } else {
                outcomes[index] = Some(Err(StoreError::Conflict(format!(
                    "execution {} exists already",
                    execution.execution_id
                ))));
            }
        }
    }
    if inserts.is_empty() {
        return Ok(());
    }
    // One row per job, in id order.
    let mut per_job: std::collections::BTreeMap<JobId, (&str, i64)> = Default::default();
    for (_, execution) in &inserts {
        per_job
            .entry(execution.job_id)
            .or_insert((execution.account_alias.as_str(), 0))
            .1 += 1;
    }
    let job_ids: Vec<Uuid> = per_job.keys().map(|id| id.0).collect();
    let aliases: Vec<&str> = per_job.values().map(|(alias, _)| *alias).collect();
    let counts: Vec<i64> = per_job.values().map(|(_, count)| *count).collect();
    let numbered: Vec<(Uuid, i64)> = sqlx::query_as(
        "UPDATE jobs AS j SET execution_seq = j.execution_seq + v.n
           FROM unnest($1::uuid[], $2::text[], $3::int8[]) AS v(id, alias, n)
          WHERE j.id = v.id AND j.account_alias = v.alias
      RETURNING j.id, j.execution_seq",
    )
    .bind(&job_ids)
    .bind(&aliases)
    .bind(&counts)
    .fetch_all(&mut *tx)
    .await?;
    // The next number to hand out, per job that exists.
    let mut next: HashMap<Uuid, i64> = numbered
        .into_iter()
        .map(|(id, last)| {
            let count = per_job.get(&JobId(id)).map_or(0, |(_, count)| *count);
            (id, last - count + 1)
        })
        .collect();

    let mut rows = InsertRows::default();
    for (index, execution) in inserts {
        let Some(seq) = next.get_mut(&execution.job_id.0) else {
            outcomes[index] = Some(Err(StoreError::NotFound));
            continue;
        };
        match encode("execution", execution) {
            Ok(body) => {
                rows.push(execution, *seq, body);
                *seq += 1;
                outcomes[index] = Some(Ok(None));
            }
            Err(error) => outcomes[index] = Some(Err(error)),
        }
    }
    if rows.ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO executions (id, job_id, account_alias, status, created_time, job_seq,
                                 queue_position, next_deadline, attempt, body)
         SELECT v.id, v.job_id, v.alias, v.status, v.created, v.seq,
                nextval('execution_queue'), v.deadline, v.attempt, v.body::jsonb
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                       $7::int8[], $8::int8[], $9::text[])
                AS v(id, job_id, alias, status, created, seq, deadline, attempt, body)",
    )
    .bind(&rows.ids)
    .bind(&rows.job_ids)
    .bind(&rows.aliases)
    .bind(&rows.statuses)
    .bind(&rows.created)
    .bind(&rows.seqs)
    .bind(&rows.deadlines)
    .bind(&rows.attempts)
    .bind(&rows.bodies)
    .execute(&mut *tx)
    .await?;
    signals.push(Signal::Pending);
    Ok(())
}

#[derive(Default)]
struct InsertRows {
    ids: Vec<Uuid>,
    job_ids: Vec<Uuid>,
    aliases: Vec<String>,
    statuses: Vec<&'static str>,
    created: Vec<i64>,
    seqs: Vec<i64>,
    deadlines: Vec<Option<i64>>,
    attempts: Vec<i64>,
    bodies: Vec<String>,
}

impl InsertRows {
    fn push(&mut self, execution: &Execution, seq: i64, body: String) {
        self.ids.push(execution.execution_id.0);
        self.job_ids.push(execution.job_id.0);
        self.aliases.push(execution.account_alias.as_str().to_owned());
        self.statuses.push(execution.status.as_str());
        self.created.push(execution.created_time);
        self.seqs.push(seq);
        self.deadlines.push(execution.next_deadline());
        self.attempts.push(i64::from(execution.attempt));
        self.bodies.push(body);
    }
}

/// Sends the batch's signals to the other nodes, delivered with the commit.
pub(crate) async fn notify(
    tx: &mut sqlx::PgConnection,
    shared: &Shared,
    signals: &[Signal],
) -> Result<(), sqlx::Error> {
    let payloads = shared.payloads(signals);
    if payloads.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
        .bind(&shared.channel)
        .bind(&payloads)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
