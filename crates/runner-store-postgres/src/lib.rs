//! # runner-store-postgres
//!
//! A [`Store`] and [`ScheduleStore`] in PostgreSQL, shared by every node of a cluster: jobs,
//! executions, schedules and service accounts survive any node, and the state machine
//! ([`runner_core::machine::apply`], through [`runner_core::feed::transition`]) runs in Rust
//! under the row lock of the execution it changes. Each execution's live feed (numbered events
//! and the webhook outbox) is written in the same transactions.
//!
//! ```no_run
//! use runner_store_postgres::{PgStore, PgStoreOptions};
//!
//! # async fn demo() -> Result<(), runner_store_postgres::PgStoreError> {
//! // Applies the migrations, starts the LISTEN task and the write lanes.
//! let store = PgStore::connect("postgres://runner@127.0.0.1/runner").await?;
//! // Or: a schema of its own, a bigger pool, no LISTEN (behind PgBouncer).
//! let tenant = PgStore::connect_with(
//!     PgStoreOptions::new("postgres://runner@127.0.0.1/runner")
//!         .schema("tenant_a")
//!         .pool_size(20)
//!         .poll_only(true),
//! )
//! .await?;
//! # Ok(()) }
//! ```
//!
//! ## Secrets at rest
//!
//! With [`PgStoreOptions::secret_keys`], every password and private key a body holds (jobs,
//! executions, key pairs) is sealed with XChaCha20-Poly1305 under the keyring's current key (see
//! [`runner_core::seal`]) before it leaves the node: no row holds a secret in clear. Every node of
//! one database must be given the same key: the first sealed node writes a canary sealed with it
//! to `secret_canary`, and a node given another key, or none, refuses to connect
//! ([`PgStoreError::SecretKey`], [`PgStoreError::KeyRequired`]). [`PgStore::reseal`] re-seals
//! everything under a new key, in batches of short transactions (the end of a rotation, with the
//! nodes stopped).
//!
//! How each operation is made safe:
//!
//! - **Transitions** ([`ExecutionStore::transition`]): optimistic, one compare-and-set per row. The
//!   store starts from the row as it read it, or from its own copy of the version it wrote last
//!   (the `versions` module: a worker's BeginRun, heartbeats and Finish need no read), applies
//!   the command in Rust, and writes status, deadline and body in one statement that updates the
//!   row only if its `xmin` (which every new version of a row changes) is still the one it
//!   started from, and that inserts the status events recorded for the rows it updated (with
//!   their deliveries). A row another writer changed meanwhile is not written: the store reads
//!   it again and applies the command again, so no update is lost and none is applied to a
//!   version it was not computed from. Only after the commit does the caller get the result,
//!   the local subscribers their signal, and the other nodes theirs (`NOTIFY`, see below).
//!   Concurrent transitions are batched into one such statement (see the `writes` module), which
//!   is what lets a node run thousands of short executions per second. No transaction is held
//!   while an execution runs.
//! - **Claims** ([`ClaimStore::claim`]): one transaction takes the oldest PENDING rows `FOR UPDATE
//!   SKIP LOCKED`, reads their jobs in the same statement, applies the claim per row, and
//!   writes all rows and their INITIALIZING events with the same statement as transitions.
//! - **Job lookups**: a start ([`ExecutionStore::start_execution`]) makes its execution from this node's
//!   copy of the job, and the insert checks the job's revision (which every update bumps) is
//!   still the copy's; if not, the store reads the job and makes it again (`job_cache` module).
//!   A worker gets its job from the claim ([`ClaimStore::job_to_run`], the `claimed_jobs` module):
//!   the job as it was when the execution was claimed. Reads ([`JobStore::get_job`]) queued while
//!   one query is out go out together in the next (`job_reads` module).
//! - **Query plans**: connections run with `enable_seqscan = off` and generic plans, so that
//!   plans chosen while a table was small (statistics lag behind a table that grows from empty)
//!   never scan a whole table; every query of the store has an index to use.
//! - **The live feed** (see the `live_feed` module): every place that applies a command records
//!   the status event through [`runner_core::feed::transition`], and the inserts record the
//!   creation event ([`runner_core::feed::created`], in the insert statement itself, for
//!   [`ExecutionStore::insert_execution`] and for executions a schedule fires), all in the transaction of
//!   the change and batched into one multi-row insert per transaction. The execution's event
//!   counter lives in its body, which the transaction rewrites under the row lock, so sequence
//!   numbers are dense and in causal order on every node. [`FeedStore::append_events`] locks the row
//!   (`FOR UPDATE`), applies [`runner_core::feed::append`] (fenced by the attempt) and writes
//!   body, events and deliveries in one statement, durably. [`OutboxStore::claim_deliveries`] takes
//!   only the head of each (execution, callback) queue (`NOT EXISTS` an earlier pending
//!   delivery), `FOR UPDATE SKIP LOCKED`, and marks it held in the same statement, so two nodes
//!   never get one delivery while a hold lasts. [`Signal::Feed`] crosses nodes as `NOTIFY`, one
//!   payload carrying up to 128 executions, sent right after the commit that recorded the events.
//! - **Leases, fencing, rescue**: all in `apply`, under the row lock, so two nodes rescuing the
//!   same execution cannot both succeed. [`ClaimStore::due`] reads a partial index on the deadline.
//! - **Stop and kill requests** are stored in the row, so they survive the node that received them;
//!   `NOTIFY` only makes the node running the execution look sooner, and it is sent by the
//!   transaction that stores the request, so it is not lost if that node dies at the commit.
//! - **Wake-ups** (`NOTIFY`): a transaction that notifies holds a database-wide lock until its
//!   commit is on disk, which would make every write commit alone. So only stop and kill requests
//!   notify in their transaction; new PENDING executions and feed events are announced by one
//!   task per store right after the commit, many in one cheap transaction (see the `notifier`
//!   module). Losing such a hint (the node dies between the two) only delays the other nodes
//!   until they poll.
//! - **Deleting a job** locks the job's schedules, then the job row, refuses while one of its
//!   executions has not ended, and deletes the schedules with the job in one transaction;
//!   inserting an execution locks the same job row, so the two never cross.
//! - **Schedules** ([`ScheduleStore::fire_due_schedules`]): one transaction
//!   1. locks the due schedules no other node holds: `SELECT ... FROM schedules WHERE
//!      next_fire_time <= now ORDER BY next_fire_time LIMIT n FOR UPDATE SKIP LOCKED` (a row
//!      another node fired meanwhile is re-checked after the lock and drops out);
//!   2. applies [`runner_core::schedule::Schedule::fire`] to each (the rule lives there only);
//!   3. locks their jobs (`FOR NO KEY UPDATE`, in id order) and builds one
//!      [`Execution::scheduled`] per due time;
//!   4. inserts them with the same statement as [`ExecutionStore::insert_execution`] (job_seq numbering,
//!      queue position), which leaves out a (schedule, due time) that has an execution
//!      already: checked before numbering, so job_seq stays dense, and backed by the unique index
//!      `executions_by_fire` (`ON CONFLICT DO NOTHING`) as the second guard;
//!   5. writes each schedule's body and `next_fire_time` back, and commits; the local subscribers
//!      and the other nodes then get [`Signal::Pending`] if anything was created.
//!
//!   So however many nodes fire at once, each due time creates one execution.
//!   [`ScheduleStore::next_fire_time`] reads `min(next_fire_time)` off a partial index.
//! - **Service accounts**: inserting or updating a schedule holds its service account row
//!   (`FOR KEY SHARE`) while it writes, and deleting a service account locks the row `FOR UPDATE`
//!   before it looks for schedules using it, so a schedule never refers to a deleted account.
//!   Row locks are always taken schedule before job, job before service account, schedule before
//!   service account, so these transactions cannot deadlock each other; a deadlock or a lost
//!   connection before the commit is retried (as are reads) for [`PgStoreOptions::retry_for`].
//!
//! Tables (see `migrations/`): `jobs`, `executions` (whole records as JSON in `body`, of type
//! `json`: stored as sent and never looked into by a query, so no write pays for a `jsonb` parse;
//! plus the columns that are filtered and indexed on: status, `job_seq`, claim queue position,
//! deadline, end time, `schedule_id` and `due_time`), `service_accounts` (primary key account and alias),
//! `schedules` (the record in `body`; `next_fire_time`, job and service account as columns),
//! `key_pairs` (primary key account and name, the record, private key included, in `body`),
//! `inventory_hosts` (primary key account and host id, the record, secrets included, in `body`),
//! `execution_events` (primary key execution and sequence, the event in `body`) and `deliveries`
//! (the outbox: primary key execution, callback index and sequence; due time, hold, attempts, state
//! `pending` or `failed`, last error, the event in `body`).
//! - **Paging**: a job's executions are numbered 1, 2, 3, ... (`job_seq`), so any page of them is
//!   an index range read, as fast at page 10,000 as at page 0. Jobs page with `OFFSET`, and so do
//!   the executions of a job that retention took some from (their numbers have gaps then).
//! - **Retention** (`src/retention.rs`, migration 0010): `ended_time` (written from
//!   [`Execution::ended_time`] with every status change) and a partial index on it; a purge is
//!   one short transaction under a try-lock of the schema (`pg_try_advisory_xact_lock`: one node
//!   purges at a time, the others' calls delete nothing), picking rows `FOR UPDATE SKIP LOCKED`
//!   and deleting their events, deliveries and run logs with them; `execution_purges` counts
//!   each job's purged executions for its listing.
//! - **Durability**: every commit waits for the disk, except batches made only of BeginRun and
//!   Heartbeat transitions (`synchronous_commit = off`): a crash of the database server may forget
//!   the last of those, which the state machine tolerates (Finish applies from INITIALIZING too;
//!   the next heartbeat renews the lease). BeginRun's RUNNING status event goes with it: lost
//!   together with the transition it reports, so the feed stays consistent. Claims, outcomes,
//!   stop/kill requests, appended executor events and delivery settlements are always durable.
//!   BeginRun and Heartbeat have a write lane of their own, so they never wait for the flush of a
//!   durable batch they were queued beside.
//! - **Connection loss**: reads, claims and writes that had not reached their commit are retried
//!   for [`PgStoreOptions::retry_for`]; a claim whose commit failed is read back, so no claimed
//!   execution is left without a runner.

// Before the modules that use its macro.
#[macro_use]
mod transaction;
mod batch;
mod bounded_map;
mod claim;
mod claimed_jobs;
mod codec;
mod error;
mod inventory;
mod job_cache;
mod job_reads;
mod key_pairs;
mod listener;
// Before `writes`, which uses its `feed_inserts!`.
#[macro_use]
mod live_feed;
mod named;
mod notifier;
mod options;
mod overlap;
mod retention;
mod retry;
mod run_logs;
mod schedules;
mod sealed;
mod versions;
mod writes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use runner_core::execution::{Execution, Status};
use runner_core::executor::ExecutorEvent;
use runner_core::feed::{Delivery, DeliveryKey, Event, GivenUpDelivery, Settlement};
use runner_core::ids::{AccountAlias, ExecutionId, JobId, NodeId};
use runner_core::job::Job;
use runner_core::machine::Command;
use runner_core::overlap::Overlap;
use runner_core::page::{Page, PageRequest};
use runner_core::search::{self, ExecutionFilter};
use runner_core::store::{
    ClaimStore, ExecutionStore, FeedStore, JobStore, OutboxStore, RetentionStore, RunLogStore,
    Signal, SignalSource, StoreError, patience, tally_live,
};
#[cfg(doc)]
use runner_core::store::{ScheduleStore, Store};
use runner_core::time::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgPool};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use error::PgStoreError;
pub use options::PgStoreOptions;

use codec::{Codec, Encode};
use error::{is_connection_error, is_unique_violation, unavailable};
use retry::{GiveUp, REQUEST_RETRY, retry};

/// The migrations in `migrations/`, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// How many signals a slow subscriber may fall behind before it sees `Lagged`.
const SIGNAL_CAPACITY: usize = 1024;

/// A [`Store`] in PostgreSQL. Cheap to clone: clones share the pool, the LISTEN task and the
/// write lanes, which stop when the last clone is dropped.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("channel", &self.inner.shared.channel)
            .finish_non_exhaustive()
    }
}

struct Inner {
    shared: Arc<Shared>,
    writes: writes::Queues,
    job_reads: job_reads::JobReads,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The lanes end once the queue is dropped; the listener must be told.
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What the background tasks share with the store.
pub(crate) struct Shared {
    pool: PgPool,
    signals: broadcast::Sender<Signal>,
    /// The NOTIFY channel: one per schema, so that stores in other schemas are not woken.
    channel: String,
    /// Names this store instance in its notifications, so it can skip its own.
    origin: String,
    retry_for: Duration,
    /// Wake-ups for the other nodes, sent after the commit by the `notifier` task.
    hints: mpsc::UnboundedSender<Signal>,
    /// The last version written of each execution this store is running.
    versions: versions::Versions,
    /// The jobs read with claims, for the workers of the executions claimed.
    claimed_jobs: claimed_jobs::ClaimedJobs,
    /// Copies of the jobs read, for starts.
    job_cache: job_cache::JobCache,
    /// What a Pending hint to the other nodes would announce (see `notifier`).
    unannounced: Arc<notifier::Unannounced>,
    /// How records become JSON (and their secrets sealed).
    codec: Codec,
}

impl Shared {
    /// Runs a read, again while the database is unreachable, for up to `retry_for`.
    async fn read<T, F, Fut>(&self, query: F) -> Result<T, sqlx::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let read = retry(
            REQUEST_RETRY,
            GiveUp::after(patience::bounded(self.retry_for)),
            query,
            |error| {
                let worth_it = is_connection_error(error);
                if worth_it {
                    tracing::debug!(%error, "read failed; retrying");
                }
                worth_it
            },
        );
        // A connection attempt that hangs (an unreachable host) is bounded too, not only the
        // pauses between attempts.
        match patience::patience() {
            Some(patience) => tokio::time::timeout(patience, read)
                .await
                .unwrap_or(Err(sqlx::Error::PoolTimedOut)),
            None => read.await,
        }
    }

    /// The NOTIFY payloads that the transaction raising `signals` sends with its commit: only
    /// the ones that must not be lost with this node (see the `notifier` module).
    fn commit_payloads(&self, signals: &[Signal]) -> Vec<String> {
        listener::payloads(&self.origin, &notifier::with_commit(signals))
    }

    /// After a commit: wakes this store's own subscribers, and queues the other nodes' wake-ups
    /// that did not go with the commit.
    fn committed(&self, signals: Vec<Signal>) {
        for signal in dedup(&signals) {
            let _ = self.signals.send(signal);
            if notifier::after_commit(&signal) {
                let _ = self.hints.send(signal);
            }
        }
    }
}

fn dedup(signals: &[Signal]) -> Vec<Signal> {
    let mut unique: Vec<Signal> = Vec::with_capacity(signals.len());
    for signal in signals {
        if !unique.contains(signal) {
            unique.push(*signal);
        }
    }
    unique
}

impl PgStore {
    /// Connects with the default [`PgStoreOptions`] and applies the migrations. Needs a tokio
    /// runtime (it starts background tasks).
    pub async fn connect(url: &str) -> Result<PgStore, PgStoreError> {
        Self::connect_with(PgStoreOptions::new(url)).await
    }

    /// Connects, creates the schema if one is given and missing, applies the migrations, and
    /// starts the LISTEN task (unless [`PgStoreOptions::poll_only`]) and the write lanes.
    pub async fn connect_with(options: PgStoreOptions) -> Result<PgStore, PgStoreError> {
        let connect: PgConnectOptions = options.url.parse().map_err(PgStoreError::InvalidUrl)?;
        // Statements are logged at debug level only; a slow one is worth a warning.
        let connect = connect
            .log_statements(tracing::log::LevelFilter::Debug)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let mut channel = String::from("runner_signals");
        if let Some(schema) = &options.schema {
            if !options::valid_schema(schema) {
                return Err(PgStoreError::InvalidSchema(schema.clone()));
            }
            create_schema(&connect, schema).await?;
            channel = format!("runner_signals_{schema}");
            channel.truncate(63);
        }
        let search_path = options.schema.clone();
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(2))
            .min_connections(0)
            .acquire_timeout(options.retry_for.max(Duration::from_secs(1)))
            // A dead connection shows up as an error on first use, which we retry; pinging
            // before every use would cost a round trip per statement.
            .test_before_acquire(false)
            .after_connect(move |connection, _meta| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    // Every statement of the store is shaped for an index (a row by id, a
                    // range, a queue head), but the planner costs them with the table's
                    // statistics, which lag far behind a table that grows from empty
                    // (autoanalyze runs at most once a minute), and a prepared statement keeps
                    // the generic plan it chose while the table was small. A sequential scan
                    // chosen then, in the batched UPDATE of executions say, reads the whole
                    // table for every batch: on a fresh database that was most of the server's
                    // CPU in the throughput benchmark. Taking sequential scans off the table
                    // (they remain for a query without an index path) keeps every plan on its
                    // index; with that settled, generic plans spare the planner a custom plan
                    // for each run of the big batched statements. Set here rather than as
                    // startup parameters, which poolers such as PgBouncer refuse.
                    connection.execute("SET enable_seqscan = off").await?;
                    connection
                        .execute("SET plan_cache_mode = force_generic_plan")
                        .await?;
                    if let Some(schema) = search_path {
                        // Validated above: lowercase letters, digits and underscores only.
                        connection
                            .execute(format!("SET search_path TO \"{schema}\"").as_str())
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .map_err(PgStoreError::Connect)?;
        MIGRATOR.run(&pool).await.map_err(PgStoreError::Migrate)?;
        sealed::check_key(&pool, options.secret_keys.as_ref()).await?;

        let (hints, hint_receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pool: pool.clone(),
            signals: broadcast::channel(SIGNAL_CAPACITY).0,
            channel: channel.clone(),
            origin: Uuid::new_v4().simple().to_string()[..12].to_owned(),
            retry_for: options.retry_for,
            hints,
            versions: versions::Versions::default(),
            claimed_jobs: claimed_jobs::ClaimedJobs::default(),
            job_cache: job_cache::JobCache::default(),
            unannounced: Arc::default(),
            codec: Codec::new(options.secret_keys.clone()),
        });
        let (queue, mut tasks) = writes::start(&shared, options.write_lanes);
        let (job_reads, read_lanes) = job_reads::JobReads::start(&shared);
        tasks.extend(read_lanes);
        tasks.push(tokio::spawn(notifier::run(
            pool.clone(),
            channel.clone(),
            shared.origin.clone(),
            Arc::clone(&shared.unannounced),
            hint_receiver,
        )));
        if !options.poll_only {
            tasks.push(tokio::spawn(listener::run(
                pool,
                channel,
                shared.origin.clone(),
                shared.signals.clone(),
            )));
        }
        Ok(PgStore {
            inner: Arc::new(Inner {
                shared,
                writes: queue,
                job_reads,
                tasks,
            }),
        })
    }

    /// The connection pool, for operators' queries and tests (connections have the store's
    /// `search_path`, `enable_seqscan = off` and generic plans: an ad-hoc query that needs a
    /// sequential scan still gets one). Write to the tables only through the [`Store`] methods.
    pub fn pool(&self) -> &PgPool {
        &self.inner.shared.pool
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Runs a read, again while the database is unreachable, for up to `retry_for`.
    async fn read<T, F, Fut>(&self, query: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        self.shared().read(query).await.map_err(unavailable)
    }

    /// Reads one record of a job of `alias` (an execution, a schedule) with `sql`, which selects
    /// `body::text` by `$1` id, `$2` job id and `$3` account alias.
    async fn read_job_record<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &'static str,
        id: Uuid,
        job_id: JobId,
        alias: &AccountAlias,
    ) -> Result<Option<T>, StoreError> {
        let body: Option<String> = self
            .read(|| {
                sqlx::query_scalar(sql)
                    .bind(id)
                    .bind(job_id.0)
                    .bind(alias.as_str())
                    .fetch_optional(self.pool())
            })
            .await?;
        body.map(|body| self.shared().codec.decode(what, id, &body))
            .transpose()
    }

    /// Inserts `execution` through the insert lane; with `job_revision`, only if its job is
    /// still at that revision ([`StoreError::NotFound`] otherwise, as for a job that is gone).
    async fn insert(
        &self,
        execution: &Execution,
        job_revision: Option<i64>,
    ) -> Result<(), StoreError> {
        if execution.overlap == Overlap::Skip {
            return overlap::insert_skipping(self, execution, job_revision).await;
        }
        self.through_lane(|reply| writes::Request::Insert {
            execution: Box::new(execution.clone()),
            job_revision,
            reply,
        })
        .await
    }

    /// Queues the write `request` makes around its reply channel, and waits for the answer.
    async fn through_lane<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> writes::Request,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner.writes.send(request(reply))?;
        answer_within_patience(answer, "the store's write lane stopped").await
    }
}

/// Waits for a lane's answer, no longer than the caller's
/// [`patience`](runner_core::store::patience) (the lane goes on retrying: the write may still
/// land, as after any timeout).
pub(crate) async fn answer_within_patience<T>(
    answer: oneshot::Receiver<Result<T, StoreError>>,
    stopped: &'static str,
) -> Result<T, StoreError> {
    let answered = match patience::patience() {
        Some(patience) => tokio::time::timeout(patience, answer).await.map_err(|_| {
            StoreError::Unavailable(
                format!(
                    "the database did not answer within {} ms",
                    patience.as_millis()
                )
                .into(),
            )
        })?,
        None => answer.await,
    };
    answered.map_err(|_| StoreError::Unavailable(stopped.into()))?
}

/// Creates `schema` unless it exists; two nodes starting at once may race, which is fine.
async fn create_schema(connect: &PgConnectOptions, schema: &str) -> Result<(), PgStoreError> {
    let mut connection = connect.connect().await.map_err(PgStoreError::Connect)?;
    let created = connection
        .execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str())
        .await;
    let _ = connection.close().await;
    match created {
        Ok(_) => Ok(()),
        Err(error) if is_unique_violation(&error) => Ok(()),
        Err(error) => Err(PgStoreError::Connect(error)),
    }
}

fn decode_all<T: serde::de::DeserializeOwned>(
    codec: &Codec,
    what: &str,
    rows: Vec<(Uuid, String)>,
) -> Result<Vec<T>, StoreError> {
    rows.into_iter()
        .map(|(id, body)| codec.decode(what, id, &body))
        .collect()
}

/// Which executions a search reads: the account's, or one job's of the account. Two statement
/// shapes, so that each plans on its own index; `$5::uuid IS NULL` keeps the parameters the same
/// (the planner checks it once per statement).
fn find_owner(by_job: bool) -> &'static str {
    if by_job {
        "job_id = $5 AND account_alias = $1"
    } else {
        "account_alias = $1 AND $5::uuid IS NULL"
    }
}

/// The page statement of a search for `statuses` statuses (`$2`, in order): one ordered index
/// walk per status, `UNION ALL`ed so that PostgreSQL merges them (Merge Append) and stops after
/// `$7 + $6` (offset + size) entries, then the bodies of the page by primary key.
fn find_page_sql(statuses: usize, by_job: bool) -> String {
    let owner = find_owner(by_job);
    let walks: Vec<String> = (1..=statuses)
        .map(|n| {
            format!(
                "(SELECT id, created_time FROM executions
                   WHERE {owner} AND status = ($2::text[])[{n}]
                     AND created_time >= $3 AND created_time < $4
                   ORDER BY created_time DESC, id DESC)"
            )
        })
        .collect();
    format!(
        "SELECT e.id, e.body::text
           FROM (SELECT id, created_time FROM ({}) AS walks
                  ORDER BY created_time DESC, id DESC LIMIT $6 OFFSET $7) AS hits
           JOIN executions e ON e.id = hits.id
          ORDER BY hits.created_time DESC, hits.id DESC",
        walks.join(" UNION ALL ")
    )
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl JobStore for PgStore {
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        let body = self.shared().codec.encode("job", job)?;
        let inserted = sqlx::query(
            "INSERT INTO jobs (id, account_alias, created_time, body) VALUES ($1, $2, $3, $4::json)",
        )
        .bind(job.id.0)
        .bind(job.account_alias.as_str())
        .bind(job.created_time)
        .bind(&body)
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict(format!(
                "job {} exists already",
                job.id
            ))),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn get_job(&self, alias: &AccountAlias, id: JobId) -> Result<Option<Job>, StoreError> {
        let Some((body, revision)) = self.inner.job_reads.body(alias, id).await? else {
            return Ok(None);
        };
        let job: Job = self.shared().codec.decode("job", id.0, &body)?;
        self.shared()
            .job_cache
            .keep(Arc::new(job.clone()), revision);
        Ok(Some(job))
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        let body = self.shared().codec.encode("job", job)?;
        let revision: Option<i64> = sqlx::query_scalar(
            "UPDATE jobs SET body = $3::json, revision = revision + 1
              WHERE id = $1 AND account_alias = $2
             RETURNING revision",
        )
        .bind(job.id.0)
        .bind(job.account_alias.as_str())
        .bind(&body)
        .fetch_optional(self.pool())
        .await
        .map_err(unavailable)?;
        let revision = revision.ok_or(StoreError::NotFound)?;
        self.shared()
            .job_cache
            .keep(Arc::new(job.clone()), revision);
        Ok(())
    }

    async fn delete_job(&self, alias: &AccountAlias, id: JobId) -> Result<(), StoreError> {
        transaction!(self, |tx| async {
            // The job's schedules first, then the job: the order the firing transaction locks
            // them in, so that a fire in progress finishes before we delete (no deadlock).
            sqlx::query(
                "SELECT id FROM schedules WHERE job_id = $1 AND account_alias = $2
                  ORDER BY id FOR UPDATE",
            )
            .bind(id.0)
            .bind(alias.as_str())
            .execute(&mut **tx)
            .await?;
            // Locking the job makes inserts of its executions (and restarts, and schedule
            // inserts) wait for our decision.
            let found: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM jobs WHERE id = $1 AND account_alias = $2 FOR UPDATE",
            )
            .bind(id.0)
            .bind(alias.as_str())
            .fetch_optional(&mut **tx)
            .await?;
            if found.is_none() {
                return Err(StoreError::NotFound.into());
            }
            let busy: Option<(Uuid, String)> = sqlx::query_as(
                "SELECT id, status FROM executions
                  WHERE job_id = $1
                    AND status IN ('PENDING', 'INITIALIZING', 'RUNNING', 'STOPPING', 'KILLING')
                  LIMIT 1",
            )
            .bind(id.0)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some((execution, status)) = busy {
                return Err(StoreError::Conflict(format!(
                    "job {id} has execution {} in status {status}; stop or kill it first",
                    ExecutionId(execution)
                ))
                .into());
            }
            sqlx::query("DELETE FROM schedules WHERE job_id = $1")
                .bind(id.0)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM jobs WHERE id = $1")
                .bind(id.0)
                .execute(&mut **tx)
                .await?;
            Ok(())
        })
    }

    async fn list_jobs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        let (total, rows): (i64, Vec<(Uuid, String)>) = self
            .read(|| async {
                let total: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE account_alias = $1")
                        .bind(alias.as_str())
                        .fetch_one(self.pool())
                        .await?;
                let rows = sqlx::query_as(
                    "SELECT id, body::text FROM jobs WHERE account_alias = $1
                      ORDER BY created_time DESC, id DESC LIMIT $2 OFFSET $3",
                )
                .bind(alias.as_str())
                .bind(i64::from(page.size))
                .bind(to_i64(page.offset()))
                .fetch_all(self.pool())
                .await?;
                Ok((total, rows))
            })
            .await?;
        let jobs = decode_all(&self.shared().codec, "job", rows)?;
        Ok(Page::new(page, u64::try_from(total).unwrap_or(0), jobs))
    }
}

impl ExecutionStore for PgStore {
    async fn insert_execution(&self, execution: &Execution) -> Result<(), StoreError> {
        self.insert(execution, None).await
    }

    async fn start_execution<F>(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        mut make: F,
    ) -> Result<Execution, StoreError>
    where
        F: FnMut(&Job) -> Execution + Send,
    {
        let cache = &self.shared().job_cache;
        if let Some(copy) = cache.get(alias, job_id) {
            let execution = make(&copy.job);
            match self.insert(&execution, Some(copy.revision)).await {
                Ok(()) => return Ok(execution),
                // The job changed or went since the copy was read: read it.
                Err(StoreError::NotFound) => cache.forget(job_id),
                Err(error) => return Err(error),
            }
        }
        let job = self
            .get_job(alias, job_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let execution = make(&job);
        self.insert(&execution, None).await?;
        Ok(execution)
    }

    async fn get_execution(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
    ) -> Result<Option<Execution>, StoreError> {
        self.read_job_record(
            "execution",
            "SELECT body::text FROM executions
              WHERE id = $1 AND job_id = $2 AND account_alias = $3",
            id.0,
            job_id,
            alias,
        )
        .await
    }

    async fn list_executions(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        // job_seq numbers a job's executions 1..=n, so the newest is n. While retention has
        // deleted none of them (no gaps), n is the total and page p is the range
        // (n - offset - size, n - offset]: two index lookups, whatever p. After a purge the
        // total is n less the purged count, and a page walks the same index past its offset.
        let (total, rows): (i64, Vec<(Uuid, String)>) = self
            .read(|| async {
                // The purge count in the same round trip as the newest number.
                let newest: Option<(i64, String, i64)> = sqlx::query_as(
                    "SELECT job_seq, account_alias,
                            COALESCE((SELECT purged FROM execution_purges WHERE job_id = $1), 0)
                       FROM executions
                      WHERE job_id = $1 ORDER BY job_seq DESC LIMIT 1",
                )
                .bind(job_id.0)
                .fetch_optional(self.pool())
                .await?;
                let (newest, purged) = match newest {
                    Some((newest, owner, purged)) if owner == alias.as_str() => (newest, purged),
                    _ => return Ok((0, Vec::new())),
                };
                if purged > 0 {
                    let rows = sqlx::query_as(
                        "SELECT id, body::text FROM executions
                          WHERE job_id = $1
                          ORDER BY job_seq DESC
                         OFFSET $2 LIMIT $3",
                    )
                    .bind(job_id.0)
                    .bind(to_i64(page.offset()))
                    .bind(i64::from(page.size))
                    .fetch_all(self.pool())
                    .await?;
                    return Ok(((newest - purged).max(0), rows));
                }
                let total = newest;
                let high = total.saturating_sub(to_i64(page.offset()));
                if high <= 0 {
                    return Ok((total, Vec::new()));
                }
                let rows = sqlx::query_as(
                    "SELECT id, body::text FROM executions
                      WHERE job_id = $1 AND job_seq <= $2 AND job_seq > $3
                      ORDER BY job_seq DESC",
                )
                .bind(job_id.0)
                .bind(high)
                .bind(high - i64::from(page.size))
                .fetch_all(self.pool())
                .await?;
                Ok((total, rows))
            })
            .await?;
        let executions = decode_all(&self.shared().codec, "execution", rows)?;
        Ok(Page::new(
            page,
            u64::try_from(total).unwrap_or(0),
            executions,
        ))
    }

    async fn count_live(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        // Answered from executions_active (live statuses only): ended rows are never read.
        let rows: Vec<(String, i64)> = self
            .read(|| {
                sqlx::query_as(
                    "SELECT status, count(*) FROM executions
                      WHERE status IN ('PENDING', 'INITIALIZING', 'RUNNING', 'STOPPING', 'KILLING')
                      GROUP BY status",
                )
                .fetch_all(self.pool())
            })
            .await?;
        Ok(tally_live(rows.into_iter().filter_map(|(name, count)| {
            let status = Status::LIVE
                .into_iter()
                .find(|status| status.as_str() == name)?;
            Some((status, u64::try_from(count).unwrap_or(0)))
        })))
    }

    async fn find_executions(
        &self,
        alias: &AccountAlias,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        // One walk of executions_by_account_status (or executions_by_job_status) per wanted
        // status, merged in order (a Merge Append reads about offset + size entries in all), and
        // the bodies read for the page only; the count stops at search::count_limit. So a page
        // reads what its number asks for, whatever the table holds. See migration 0008.
        let statuses: Vec<&str> = if filter.statuses.is_empty() {
            Status::ALL.iter().map(|status| status.as_str()).collect()
        } else {
            filter
                .statuses
                .iter()
                .map(|status| status.as_str())
                .collect()
        };
        let since = filter.since.unwrap_or(Timestamp::MIN);
        let until = filter.until.unwrap_or(Timestamp::MAX);
        let job = filter.job_id.map(|job| job.0);
        let page_sql = find_page_sql(statuses.len(), job.is_some());
        let count_sql = format!(
            "SELECT count(*) FROM (
                 SELECT 1 FROM executions
                  WHERE {} AND status = ANY($2::text[])
                    AND created_time >= $3 AND created_time < $4
                  LIMIT $6) AS matches",
            find_owner(job.is_some())
        );
        let offset = to_i64(page.offset());
        let size = i64::from(page.size);
        let limit = to_i64(search::count_limit(page));
        let (total, rows): (i64, Vec<(Uuid, String)>) = self
            .read(|| async {
                let total: i64 = sqlx::query_scalar(&count_sql)
                    .bind(alias.as_str())
                    .bind(&statuses)
                    .bind(since)
                    .bind(until)
                    .bind(job)
                    .bind(limit)
                    .fetch_one(self.pool())
                    .await?;
                if total <= offset {
                    return Ok((total, Vec::new()));
                }
                let rows = sqlx::query_as(&page_sql)
                    .bind(alias.as_str())
                    .bind(&statuses)
                    .bind(since)
                    .bind(until)
                    .bind(job)
                    .bind(size)
                    .bind(offset)
                    .fetch_all(self.pool())
                    .await?;
                Ok((total, rows))
            })
            .await?;
        let executions = decode_all(&self.shared().codec, "execution", rows)?;
        Ok(search::counted(
            page,
            u64::try_from(total).unwrap_or(0),
            executions,
        ))
    }

    async fn transition(
        &self,
        id: ExecutionId,
        command: &Command,
        now: Timestamp,
    ) -> Result<Execution, StoreError> {
        self.through_lane(|reply| writes::Request::Transition {
            id,
            command: command.clone(),
            now,
            reply,
        })
        .await
    }
}

impl ClaimStore for PgStore {
    async fn claim(
        &self,
        node: &NodeId,
        limit: usize,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Execution>, StoreError> {
        claim::claim(self.shared(), node, limit, lease_until, now).await
    }

    async fn job_to_run(&self, execution: &Execution) -> Result<Option<Job>, StoreError> {
        match self.shared().claimed_jobs.take(execution) {
            Some(job) => Ok(Some(job)),
            None => {
                self.get_job(&execution.account_alias, execution.job_id)
                    .await
            }
        }
    }

    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<Execution>, StoreError> {
        let rows: Vec<(Uuid, String)> = self
            .read(|| {
                sqlx::query_as(
                    "SELECT id, body::text FROM executions
                      WHERE next_deadline <= $1 ORDER BY next_deadline LIMIT $2",
                )
                .bind(now)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.pool())
            })
            .await?;
        decode_all(&self.shared().codec, "execution", rows)
    }

    async fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|| {
            sqlx::query_scalar("SELECT min(next_deadline) FROM executions").fetch_one(self.pool())
        })
        .await
    }
}

impl FeedStore for PgStore {
    async fn append_events(
        &self,
        id: ExecutionId,
        attempt: u32,
        events: &[ExecutorEvent],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        live_feed::append_events(self, id, attempt, events, now).await
    }

    async fn list_events(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        live_feed::list_events(self, alias, job_id, id, after, limit).await
    }
}

impl OutboxStore for PgStore {
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        live_feed::claim_deliveries(self, now, hold_until, limit).await
    }

    async fn settle_delivery(
        &self,
        key: &DeliveryKey,
        settlement: &Settlement,
    ) -> Result<(), StoreError> {
        live_feed::settle_delivery(self, key, settlement).await
    }

    async fn next_delivery_at(&self) -> Result<Option<Timestamp>, StoreError> {
        live_feed::next_delivery_at(self).await
    }

    async fn given_up_deliveries(
        &self,
        id: ExecutionId,
        page: PageRequest,
    ) -> Result<Page<GivenUpDelivery>, StoreError> {
        retention::given_up_deliveries(self, id, page).await
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        // From deliveries_due, which holds pending rows only.
        let count: i64 = self
            .read(|| {
                sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'pending'")
                    .fetch_one(self.pool())
            })
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

impl RetentionStore for PgStore {
    async fn purge_ended(&self, before: Timestamp, limit: usize) -> Result<usize, StoreError> {
        retention::purge_ended(self, before, limit).await
    }
}

impl RunLogStore for PgStore {
    async fn append_log(
        &self,
        id: ExecutionId,
        attempt: u32,
        chunk: &[u8],
        cap: runner_core::run_log::LogCap,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        run_logs::append_log(self, id, attempt, chunk, cap, now).await
    }

    async fn read_log(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        read: runner_core::store::LogRead,
    ) -> Result<runner_core::run_log::LogPage, StoreError> {
        run_logs::read_log(self, alias, job_id, id, read).await
    }
}

impl SignalSource for PgStore {
    fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.shared().signals.subscribe()
    }
}
