//! The OpenAPI 3.1 document of the API, generated with utoipa and served at `GET /openapi.json`.
//!
//! The domain types of `runner-core` carry no OpenAPI derive (the core has no HTTP dependency), so
//! this module declares their wire shapes as schema types. The test suite validates real
//! responses of the running server against these schemas, so a drift between a domain type and
//! its schema fails a test. Response schemas refuse undocumented fields
//! (`additionalProperties: false`) for that reason.

#![allow(dead_code)] // The schema types are only read by the derive macros.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Where a playbook comes from, when it lives in git.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Repository {
    /// The clone URL (https, ssh, or a local path when the server allows it).
    url: String,
    /// A branch or tag; the remote's default branch when absent or null.
    #[schema(nullable)]
    branch: Option<String>,
    /// The playbook file, relative to the repository root.
    default_playbook: String,
    /// For private repositories.
    credentials: Option<Credentials>,
}

/// Credentials of a private repository: username and password, or an SSH private key.
/// Secrets are write-only: responses show `"********"` when one is set.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Credentials {
    /// With `password`.
    username: Option<String>,
    /// Write-only; `"********"` in responses (send it back to keep the stored value).
    password: Option<String>,
    /// Base64; write-only; `"********"` in responses.
    ssh_private_key: Option<String>,
}

/// One inventory host.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Host {
    /// The host name the play runs against.
    id: String,
    /// Variables for this host (any JSON values).
    #[schema(value_type = Object)]
    host_vars: Option<BTreeMap<String, serde_json::Value>>,
    /// This host's SSH private key (base64); write-only, `"********"` in responses.
    ssh_private_key: Option<String>,
}

/// How much of an execution's feed a callback receives.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
enum CallbackLevel {
    Debug,
    Error,
    Result,
}

/// A webhook for an execution's live feed.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Callback {
    /// An http:// or https:// URL. One that is, or resolves to, a loopback, private or
    /// link-local address is refused unless the server allows private callbacks.
    url: String,
    /// DEBUG (default), ERROR or RESULT.
    #[schema(required = true)]
    level: Option<CallbackLevel>,
}

/// A callback as a request may give it: an object or a bare URL.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
enum CallbackInput {
    /// A bare URL (level DEBUG).
    Url(String),
    /// `{url, level}`.
    Object(Callback),
}

/// A job definition, as create and update take it. Exactly one of `repository` and `playbook`.
/// The read-only fields of a job (`id`, `accountAlias`, `status`, `createdTime`,
/// `lastUpdatedTime`, `links`) may be sent back and are ignored; any other unknown field is 400.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct JobInput {
    /// Free text.
    description: Option<String>,
    /// Minutes an execution may run before it is stopped gracefully (1 to 10080; default 180).
    #[schema(minimum = 1, maximum = 10080)]
    execution_ttl: Option<u32>,
    /// Webhooks for the live feed.
    callbacks: Option<Vec<CallbackInput>>,
    /// An inline playbook, base64-encoded.
    playbook: Option<String>,
    /// Run only the plays and tasks with these tags.
    playbook_tags: Option<Vec<String>>,
    /// The git repository that holds the playbook.
    repository: Option<Repository>,
    /// The inventory; required (may be empty).
    #[schema(required = true)]
    hosts: Option<Vec<Host>>,
    /// Extra variables for the playbook.
    #[schema(value_type = Object)]
    properties: Option<BTreeMap<String, serde_json::Value>>,
    /// The default SSH private key (base64) of every host without its own; write-only.
    ssh_private_key: Option<String>,
    /// Make every host of the account available as inventory.
    use_dynamic_inventory: Option<bool>,
}

/// A related resource.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Link {
    /// `self`, or `execution` (the execution an immediate start made).
    #[serde(rename = "ref")]
    rel: String,
    /// The linked resource's ID.
    id: String,
    /// Its root-relative path.
    href: String,
    /// The methods it answers.
    verbs: Vec<String>,
}

/// Always ACTIVE.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
enum JobStatus {
    Active,
}

/// A stored job. Secrets are shown as `"********"`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Job {
    /// Its ID.
    id: uuid::Uuid,
    /// Its account.
    account_alias: String,
    /// Free text.
    #[schema(required = true, nullable)]
    description: Option<String>,
    /// Minutes; null means 180.
    #[schema(required = true, nullable)]
    execution_ttl: Option<u32>,
    /// Webhooks.
    callbacks: Vec<Callback>,
    /// The inline playbook (base64), when the job has one.
    playbook: Option<String>,
    /// Tags to run.
    playbook_tags: Vec<String>,
    /// The git repository, or null for an inline playbook.
    #[schema(required = true, nullable)]
    repository: Option<Repository>,
    /// The inventory.
    #[schema(required = true, nullable)]
    hosts: Option<Vec<Host>>,
    /// Extra variables.
    #[schema(value_type = Object)]
    properties: BTreeMap<String, serde_json::Value>,
    /// `"********"` when a default key is set.
    ssh_private_key: Option<String>,
    /// Dynamic inventory.
    use_dynamic_inventory: bool,
    /// Always ACTIVE.
    status: JobStatus,
    /// Epoch milliseconds (UTC).
    created_time: i64,
    /// Epoch milliseconds (UTC).
    last_updated_time: i64,
    /// `self`, and `execution` after an immediate start.
    links: Vec<Link>,
}

/// The status of an execution.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
enum ExecutionStatus {
    Pending,
    Initializing,
    Running,
    Success,
    Failure,
    Stopping,
    Stopped,
    Killing,
    Killed,
}

/// One run of an execution (restart appends one).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Timer {
    /// Epoch milliseconds.
    start: i64,
    /// Epoch milliseconds; null while it runs.
    #[schema(required = true, nullable)]
    end: Option<i64>,
}

/// A commit.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Commit {
    commit: String,
    author: String,
    author_email: String,
    date: String,
    message: String,
}

/// What a repository playbook ran from.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RepositoryLog {
    recent_commit: Vec<Commit>,
    tags: Vec<String>,
}

/// An execution (snake_case fields, as the Job Service documents give them).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Execution {
    execution_id: uuid::Uuid,
    job_id: uuid::Uuid,
    account_alias: String,
    status: ExecutionStatus,
    /// Start of the first run (epoch ms); null until a node claims it.
    #[schema(required = true, nullable)]
    start: Option<i64>,
    /// End of the last run (epoch ms); null until it ends.
    #[schema(required = true, nullable)]
    end: Option<i64>,
    timers: Vec<Timer>,
    /// null for inline playbooks.
    #[schema(required = true, nullable)]
    repository_log: Option<RepositoryLog>,
    /// Host ids that failed.
    failed_hosts: Vec<String>,
    /// Always false.
    is_vpn_established: bool,
    /// Why the execution is in its status, when there is a reason.
    message: Option<String>,
}

/// A page of jobs, newest first.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JobPage {
    total_size: u64,
    page: u32,
    /// How many results this page holds.
    size: u32,
    results: Vec<Job>,
}

/// A page of executions, newest first.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExecutionPage {
    total_size: u64,
    page: u32,
    size: u32,
    results: Vec<Execution>,
}

/// Start or restart options. An empty body (or `{}`) takes the job's hosts (start) or the failed
/// hosts (restart).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartRequest {
    /// Start: replaces the job's hosts (hostVars of matching ids kept). Restart: run on these
    /// instead of the failed hosts.
    hosts: Option<Vec<Host>>,
    /// A default SSH private key (base64) for this execution; write-only.
    ssh_private_key: Option<String>,
}

/// Stop or kill options.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpiryRequest {
    /// Seconds (0 to 604800, default 0). Stop: escalate to a kill when not stopped by then.
    /// Kill: mark KILLED when no node confirmed by then.
    #[schema(minimum = 0, maximum = 604800)]
    expiry_duration: Option<f64>,
}

/// A service account as create takes it. `accountAlias` and `createdTime` may be sent back and
/// are ignored; any other unknown field is 400.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ServiceAccountInput {
    /// Its name, unique in the account: 1 to 64 of `A-Z a-z 0-9 - _ .`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$")]
    alias: String,
    /// Free text.
    description: Option<String>,
}

/// A service account: the identity schedules of an account run under.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServiceAccount {
    /// Its name, unique in the account.
    alias: String,
    /// The account it belongs to.
    account_alias: String,
    /// Free text.
    #[schema(required = true, nullable)]
    description: Option<String>,
    /// Epoch milliseconds (UTC).
    created_time: i64,
}

/// A page of service accounts, newest first.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServiceAccountPage {
    total_size: u64,
    page: u32,
    size: u32,
    results: Vec<ServiceAccount>,
}

/// The kind of a trigger.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum TriggerKind {
    Cron,
    Date,
}

/// When a schedule fires.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Trigger {
    /// `cron` or `date`.
    #[serde(rename = "type")]
    kind: TriggerKind,
    /// For `cron`: 5-field Unix cron (minute hour day-of-month month day-of-week), in UTC. For
    /// `date`: an ISO-8601 instant (UTC when no offset is given) that lies in the future.
    expression: String,
}

/// A schedule as create and update take it. The trigger goes under `trigger` or under `type`
/// (exactly one of them). The read-only fields of a schedule (`id`, `scheduleId`, `jobId`,
/// `accountAlias`, `nextFireTime`, `lastFireTime`, `createdTime`, `lastUpdatedTime`) may be sent
/// back and are ignored; any other unknown field is 400.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ScheduleInput {
    /// Free text.
    description: String,
    /// A service account of the account (see `/serviceAccounts/{alias}`); it must exist.
    service_account_alias: String,
    /// The trigger (or under `type`).
    trigger: Option<Trigger>,
    /// The trigger, as the documents' example names it (or under `trigger`).
    #[serde(rename = "type")]
    type_: Option<Trigger>,
}

/// A job schedule.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Schedule {
    /// Its ID.
    id: uuid::Uuid,
    /// The same ID.
    schedule_id: uuid::Uuid,
    /// The job it starts.
    job_id: uuid::Uuid,
    /// The job's account.
    account_alias: String,
    /// Free text.
    description: String,
    /// The service account it runs under.
    service_account_alias: String,
    /// When it fires.
    trigger: Trigger,
    /// The next due time (epoch ms), or null once a date schedule fired.
    #[schema(required = true, nullable)]
    next_fire_time: Option<i64>,
    /// The due time it last fired for (epoch ms), or null.
    #[schema(required = true, nullable)]
    last_fire_time: Option<i64>,
    /// Epoch milliseconds (UTC).
    created_time: i64,
    /// Epoch milliseconds (UTC).
    last_updated_time: i64,
}

/// A page of a job's schedules, newest first.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SchedulePage {
    total_size: u64,
    page: u32,
    size: u32,
    results: Vec<Schedule>,
}

/// What an event reports.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum EventKind {
    /// The execution changed status (`status` holds the new one). Level RESULT.
    Status,
    /// The playbook started (`message`: the playbook). Level DEBUG.
    PlaybookStart,
    /// A play started (`task`: the play). Level DEBUG.
    PlayStart,
    /// A task started (`task`). Level DEBUG.
    TaskStart,
    /// A host finished a task (`host`, `task`). Level DEBUG.
    HostOk,
    /// A host skipped a task. Level DEBUG.
    HostSkipped,
    /// A task failed on a host (`message`: the error). Level ERROR.
    HostFailed,
    /// A host could not be reached. Level ERROR.
    HostUnreachable,
    /// The playbook ended; `message` holds the per-host summary (JSON text). Level RESULT.
    PlaybookEnd,
    /// A line of the executor's own output (e.g. a stop honoured between tasks). Level DEBUG.
    Log,
}

/// One event of an execution's live feed: the body of each webhook POST, an item of
/// `GET .../events` and the `data:` of a server-sent event. `host`, `task`, `status` and
/// `message` are left out when they do not apply.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Event {
    /// The execution.
    execution_id: uuid::Uuid,
    /// Its job.
    job_id: uuid::Uuid,
    /// The job's account.
    account_alias: String,
    /// 1, 2, 3, ... per execution, without gaps, in the order things happened (1 is the
    /// creation, PENDING).
    #[schema(minimum = 1)]
    sequence: u64,
    /// When it was recorded (epoch milliseconds, UTC).
    time: i64,
    /// DEBUG, ERROR or RESULT: a callback receives the events at or above its level.
    level: CallbackLevel,
    /// What happened.
    kind: EventKind,
    /// The host, for host events.
    host: Option<String>,
    /// The task (or play) it concerns.
    task: Option<String>,
    /// The execution's new status, for `status` events.
    status: Option<ExecutionStatus>,
    /// Detail: the reason of a status, a task's error, the final per-host summary.
    message: Option<String>,
}

/// A page of an execution's events, oldest first.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventPage {
    /// Events with a sequence number above `after`, at most `size`.
    events: Vec<Event>,
    /// The sequence number of the page's last event (`after` when it is empty): the `after` of
    /// the next page.
    last_sequence: u64,
    /// Whether more events followed when the page was read.
    has_more: bool,
}

/// One wrong field.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FieldError {
    /// Its path: `hosts[2].id`, `repository.url`, `size`; empty for the body as a whole.
    field: String,
    /// What is wrong.
    message: String,
}

/// Every error response.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Error {
    /// What went wrong.
    message: String,
    /// 400 only: every wrong field at once.
    errors: Option<Vec<FieldError>>,
}

/// The health check's answer.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Health {
    /// `ok`, or `unavailable` (503).
    status: String,
}

#[utoipa::path(post, path = "/jobs/{alias}", tag = "jobs", operation_id = "createJob",
    params(("alias" = String, Path, description = "Account alias: 1 to 32 of A-Z a-z 0-9 - _"),
           ("immediate" = Option<bool>, Query, description = "Also start an execution (default false)")),
    request_body(content = JobInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; Location is the job's path", body = Job,
         headers(("Location" = String, description = "/jobs/{alias}/{id}"))),
        (status = 400, description = "Invalid body or alias", body = Error),
        (status = 401, description = "No valid bearer token", body = Error),
        (status = 403, description = "Account not in the token's scope", body = Error),
        (status = 413, description = "Body over the limit", body = Error),
        (status = 415, description = "Body is not JSON", body = Error),
        (status = 503, description = "Store unavailable", body = Error)))]
fn create_job() {}

#[utoipa::path(get, path = "/jobs/{alias}", tag = "jobs", operation_id = "listJobs",
    params(("alias" = String, Path, description = "Account alias"),
           ("page" = Option<u32>, Query, description = "From 0 (default 0)"),
           ("size" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100 (default 100)")),
    responses((status = 200, description = "A page of jobs, newest first", body = JobPage),
        (status = 400, description = "Bad page or size", body = Error),
        (status = 401, body = Error), (status = 403, body = Error), (status = 503, body = Error)))]
fn list_jobs() {}

#[utoipa::path(get, path = "/jobs/{alias}/{jobId}", tag = "jobs", operation_id = "getJob",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path)),
    responses((status = 200, body = Job),
        (status = 401, body = Error), (status = 403, body = Error),
        (status = 404, description = "No such job in this account (or a malformed ID)", body = Error)))]
fn get_job() {}

#[utoipa::path(put, path = "/jobs/{alias}/{jobId}", tag = "jobs", operation_id = "updateJob",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path),
           ("immediate" = Option<bool>, Query, description = "Also start an execution")),
    request_body(content = JobInput, content_type = "application/json",
        description = "The whole definition; \"********\" for a secret keeps the stored one"),
    responses((status = 200, body = Job), (status = 400, body = Error),
        (status = 401, body = Error), (status = 403, body = Error), (status = 404, body = Error),
        (status = 413, body = Error), (status = 415, body = Error)))]
fn update_job() {}

#[utoipa::path(delete, path = "/jobs/{alias}/{jobId}", tag = "jobs", operation_id = "deleteJob",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 401, body = Error), (status = 403, body = Error), (status = 404, body = Error),
        (status = 409, description = "An execution is still active", body = Error)))]
fn delete_job() {}

#[utoipa::path(post, path = "/jobs/{alias}/{jobId}/start", tag = "executions", operation_id = "startJob",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path)),
    request_body(content = Option<StartRequest>, content_type = "application/json",
        description = "Optional; empty or {} runs on the job's hosts"),
    responses((status = 201, description = "A PENDING execution; Location is its path", body = Execution,
         headers(("Location" = String))),
        (status = 400, body = Error), (status = 401, body = Error), (status = 403, body = Error),
        (status = 404, body = Error), (status = 415, body = Error)))]
fn start_job() {}

#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/executions", tag = "executions",
    operation_id = "listExecutions",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path),
           ("page" = Option<u32>, Query), ("size" = Option<u32>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = ExecutionPage), (status = 400, body = Error),
        (status = 401, body = Error), (status = 403, body = Error), (status = 404, body = Error)))]
fn list_executions() {}

#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/executions/{executionId}", tag = "executions",
    operation_id = "getExecution",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path), ("executionId" = uuid::Uuid, Path)),
    responses((status = 200, body = Execution), (status = 401, body = Error),
        (status = 403, body = Error), (status = 404, body = Error)))]
fn get_execution() {}

#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/executions/{executionId}/events",
    tag = "executions", operation_id = "listExecutionEvents",
    description = "The execution's live feed. Without `Accept: text/event-stream`: a page of its \
stored events, oldest first (`after`, `size`). With `Accept: text/event-stream`: a server-sent-event \
stream that replays the events after `Last-Event-ID` (or `after`) and then sends each new one as it \
is recorded; each event has `id:` its sequence number, `event:` its kind and `data:` the Event as \
JSON, and a `: keep-alive` comment is sent every 15 s when idle. The stream stays open (a restart \
adds events) until the client leaves or the server shuts down; reconnecting with `Last-Event-ID` \
resumes without gaps or repeats.",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path), ("executionId" = uuid::Uuid, Path),
           ("after" = Option<u64>, Query, description = "Events with a sequence number above this (default 0)"),
           ("size" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many (JSON pages; default 100)"),
           ("Accept" = Option<String>, Header, description = "`text/event-stream` for the live stream"),
           ("Last-Event-ID" = Option<u64>, Header, description = "Stream: resume after this sequence number (over `after`)")),
    responses(
        (status = 200, description = "A page of events, or the live stream",
         content((EventPage = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "Bad `after`, `size` or `Last-Event-ID` (the error names it)", body = Error),
        (status = 401, body = Error), (status = 403, body = Error),
        (status = 404, description = "No such execution of this job in this account", body = Error),
        (status = 503, body = Error)))]
fn list_execution_events() {}

#[utoipa::path(post, path = "/jobs/{alias}/{jobId}/executions/{executionId}/restart",
    tag = "executions", operation_id = "restartExecution",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path), ("executionId" = uuid::Uuid, Path)),
    request_body(content = Option<StartRequest>, content_type = "application/json"),
    responses((status = 200, description = "Back to PENDING", body = Execution),
        (status = 400, body = Error), (status = 401, body = Error), (status = 403, body = Error),
        (status = 404, body = Error), (status = 409, description = "Not in FAILURE", body = Error)))]
fn restart_execution() {}

#[utoipa::path(post, path = "/jobs/{alias}/{jobId}/executions/{executionId}/stop",
    tag = "executions", operation_id = "stopExecution",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path), ("executionId" = uuid::Uuid, Path)),
    request_body(content = Option<ExpiryRequest>, content_type = "application/json"),
    responses((status = 200, description = "STOPPING (or the final status)", body = Execution),
        (status = 400, body = Error), (status = 401, body = Error), (status = 403, body = Error),
        (status = 404, body = Error), (status = 409, body = Error)))]
fn stop_execution() {}

#[utoipa::path(post, path = "/jobs/{alias}/{jobId}/executions/{executionId}/kill",
    tag = "executions", operation_id = "killExecution",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path), ("executionId" = uuid::Uuid, Path)),
    request_body(content = Option<ExpiryRequest>, content_type = "application/json"),
    responses((status = 200, description = "KILLING (or KILLED)", body = Execution),
        (status = 400, body = Error), (status = 401, body = Error), (status = 403, body = Error),
        (status = 404, body = Error), (status = 409, body = Error)))]
fn kill_execution() {}

#[utoipa::path(post, path = "/serviceAccounts/{alias}", tag = "schedules",
    operation_id = "createServiceAccount",
    params(("alias" = String, Path, description = "Account alias")),
    request_body(content = ServiceAccountInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; Location is its path", body = ServiceAccount,
         headers(("Location" = String, description = "/serviceAccounts/{alias}/{serviceAccountAlias}"))),
        (status = 400, body = Error), (status = 401, body = Error), (status = 403, body = Error),
        (status = 409, description = "The name is taken in this account", body = Error),
        (status = 413, body = Error), (status = 415, body = Error)))]
fn create_service_account() {}

#[utoipa::path(get, path = "/serviceAccounts/{alias}", tag = "schedules",
    operation_id = "listServiceAccounts",
    params(("alias" = String, Path), ("page" = Option<u32>, Query),
           ("size" = Option<u32>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "Newest first", body = ServiceAccountPage),
        (status = 400, body = Error), (status = 401, body = Error), (status = 403, body = Error)))]
fn list_service_accounts() {}

#[utoipa::path(get, path = "/serviceAccounts/{alias}/{serviceAccountAlias}", tag = "schedules",
    operation_id = "getServiceAccount",
    params(("alias" = String, Path), ("serviceAccountAlias" = String, Path)),
    responses((status = 200, body = ServiceAccount), (status = 401, body = Error),
        (status = 403, body = Error), (status = 404, body = Error)))]
fn get_service_account() {}

#[utoipa::path(delete, path = "/serviceAccounts/{alias}/{serviceAccountAlias}", tag = "schedules",
    operation_id = "deleteServiceAccount",
    params(("alias" = String, Path), ("serviceAccountAlias" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = Error),
        (status = 403, body = Error), (status = 404, body = Error),
        (status = 409, description = "A schedule uses it", body = Error)))]
fn delete_service_account() {}

#[utoipa::path(post, path = "/jobs/{alias}/{jobId}/schedules", tag = "schedules",
    operation_id = "createSchedule",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path)),
    request_body(content = ScheduleInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; Location is its path", body = Schedule,
         headers(("Location" = String, description = "/jobs/{alias}/{jobId}/schedules/{scheduleId}"))),
        (status = 400, description = "Invalid body: a bad trigger (`trigger.expression` or \
             `type.expression`), a date in the past, an unknown `serviceAccountAlias`", body = Error),
        (status = 401, body = Error), (status = 403, body = Error),
        (status = 404, description = "No such job in this account", body = Error),
        (status = 413, body = Error), (status = 415, body = Error)))]
fn create_schedule() {}

#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/schedules", tag = "schedules",
    operation_id = "listSchedules",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path),
           ("page" = Option<u32>, Query), ("size" = Option<u32>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "Newest first", body = SchedulePage),
        (status = 400, body = Error), (status = 401, body = Error), (status = 403, body = Error),
        (status = 404, body = Error)))]
fn list_schedules() {}

#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/schedules/{scheduleId}", tag = "schedules",
    operation_id = "getSchedule",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path), ("scheduleId" = uuid::Uuid, Path)),
    responses((status = 200, body = Schedule), (status = 401, body = Error),
        (status = 403, body = Error), (status = 404, body = Error)))]
fn get_schedule() {}

#[utoipa::path(put, path = "/jobs/{alias}/{jobId}/schedules/{scheduleId}", tag = "schedules",
    operation_id = "updateSchedule",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path), ("scheduleId" = uuid::Uuid, Path)),
    request_body(content = ScheduleInput, content_type = "application/json",
        description = "The whole schedule; the next fire time is planned anew from now"),
    responses((status = 200, body = Schedule), (status = 400, body = Error),
        (status = 401, body = Error), (status = 403, body = Error), (status = 404, body = Error),
        (status = 413, body = Error), (status = 415, body = Error)))]
fn update_schedule() {}

#[utoipa::path(delete, path = "/jobs/{alias}/{jobId}/schedules/{scheduleId}", tag = "schedules",
    operation_id = "deleteSchedule",
    params(("alias" = String, Path), ("jobId" = uuid::Uuid, Path), ("scheduleId" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = Error),
        (status = 403, body = Error), (status = 404, body = Error)))]
fn delete_schedule() {}

#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "health", security(),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
fn healthz() {}

#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "This document", content_type = "application/json"),
        (status = 401, body = Error)))]
fn openapi_json() {}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from the token file, or a JWT (HS256/RS256) with the account \
                         aliases in its scope claim",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Runner Job Service",
          description = "Create, run, control and schedule Ansible jobs.

**Webhooks (callbacks).** For each callback of a job, the server POSTs every event of an \
execution at or above the callback's level (DEBUG: every event; ERROR: errors, failed tasks, \
unreachable hosts, and the RESULT events; RESULT: status changes and the final per-host summary). \
The body is one `Event` (see the schema) as JSON. Headers: `Content-Type: application/json`; \
`Idempotency-Key: <executionId>:<callback index>:<sequence>` (the same on every attempt of one \
delivery: drop repeats); `X-Runner-Attempt: <n>` (from 1); and, when the server has a signing \
secret, `X-Runner-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes under the secret>`. \
Any 2xx acknowledges the event; anything else (or no answer within the timeout) is retried with \
exponential backoff, up to a limit. Delivery is at least once, and in order per execution and \
callback: an event is sent only after the previous one was acknowledged (or given up). Redirects \
are not followed. Callback URLs that are or resolve to loopback, private or link-local addresses \
are refused (400 naming `callbacks[i].url`) unless the server allows them."),
    paths(create_job, list_jobs, get_job, update_job, delete_job, start_job, list_executions,
          get_execution, list_execution_events, restart_execution, stop_execution, kill_execution,
          create_service_account, list_service_accounts, get_service_account,
          delete_service_account, create_schedule, list_schedules, get_schedule, update_schedule,
          delete_schedule, healthz, openapi_json),
    components(schemas(Job, JobInput, JobPage, Execution, ExecutionPage, StartRequest,
                       ExpiryRequest, Error, FieldError, Health, Link, Host, Repository,
                       Credentials, Callback, CallbackInput, Timer, RepositoryLog, Commit,
                       ServiceAccount, ServiceAccountInput, ServiceAccountPage, Schedule,
                       ScheduleInput, SchedulePage, Trigger, TriggerKind, Event, EventKind,
                       EventPage)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "jobs", description = "Job definitions"),
         (name = "executions", description = "Runs of jobs and their control"),
         (name = "schedules", description = "Job schedules and the service accounts they run under"),
         (name = "operations", description = "Health and this document")),
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of the API.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as JSON text.
pub fn document_json() -> String {
    document()
        .to_json()
        .expect("the OpenAPI document always serializes")
}
