//! Executions: one run (and its restarts) of a job, with its status, timers and outcome.
//!
//! [`Execution`] is the stored record, including what only the engine needs (lease, attempt,
//! deadlines, the run's inventory with its secrets). [`ExecutionView`] is what the API shows, with
//! the snake_case field names of the Job Service documents.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{AccountAlias, ExecutionId, JobId, NodeId};
use crate::job::{Callback, Host, Job};
use crate::launch::LaunchOptions;
use crate::overlap::Overlap;
use crate::secret::Secret;
use crate::time::Timestamp;

/// The nine statuses of an execution. See [`crate::machine`] for how they change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(
    as = ExecutionStatus,
    description = "The status of an execution."
))]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Waiting for a node to claim it.
    Pending,
    /// Claimed by a node that prepares the workspace.
    Initializing,
    /// The playbook runs.
    Running,
    /// Ended: every host succeeded.
    Success,
    /// Ended: a host failed or was unreachable, or the node running it was lost. Can be restarted.
    Failure,
    /// A graceful stop was asked for: the task in progress finishes, no new task starts.
    Stopping,
    /// Ended by a stop.
    Stopped,
    /// A kill was asked for.
    Killing,
    /// Ended by a kill.
    Killed,
}

impl Status {
    /// The statuses an execution is in until it ends: waiting, or held by a node.
    pub const LIVE: [Status; 5] = [
        Status::Pending,
        Status::Initializing,
        Status::Running,
        Status::Stopping,
        Status::Killing,
    ];

    /// Every status, in the order the documents list them.
    pub const ALL: [Status; 9] = [
        Status::Pending,
        Status::Initializing,
        Status::Running,
        Status::Success,
        Status::Failure,
        Status::Stopping,
        Status::Stopped,
        Status::Killing,
        Status::Killed,
    ];

    /// True once the execution has ended (only a FAILURE can be restarted).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Success | Status::Failure | Status::Stopped | Status::Killed
        )
    }

    /// True while a node holds (or may hold) the execution: it has a lease.
    pub fn is_claimed(self) -> bool {
        matches!(
            self,
            Status::Initializing | Status::Running | Status::Stopping | Status::Killing
        )
    }

    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Initializing => "INITIALIZING",
            Status::Running => "RUNNING",
            Status::Success => "SUCCESS",
            Status::Failure => "FAILURE",
            Status::Stopping => "STOPPING",
            Status::Stopped => "STOPPED",
            Status::Killing => "KILLING",
            Status::Killed => "KILLED",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run of an execution: the first run, then one per restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Timer {
    /// When the run started (claim of the first run; the restart request for later ones), in
    /// milliseconds since the Unix epoch.
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub start: Timestamp,
    /// When it ended (epoch ms); `null` while it runs.
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<i64>, required = true))]
    pub end: Option<Timestamp>,
}

/// The commit a repository playbook ran from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Commit {
    /// The full hash.
    pub commit: String,
    /// Author name.
    pub author: String,
    /// Author e-mail.
    pub author_email: String,
    /// Author date, as git prints it.
    pub date: String,
    /// The subject line.
    pub message: String,
}

/// `repository_log`: what was checked out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct RepositoryLog {
    /// The checked-out commit (one entry).
    pub recent_commit: Vec<Commit>,
    /// Tags that point at it.
    pub tags: Vec<String>,
}

/// A node's hold on a claimed execution. It must be renewed before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The node that holds it.
    pub node: NodeId,
    /// When it lapses unless renewed.
    pub expires_at: Timestamp,
}

/// How a run ended, as the executor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Every host succeeded.
    Succeeded,
    /// A host failed, or the playbook could not run.
    Failed,
    /// Ended early by a graceful cancellation.
    Stopped,
    /// Ended by a kill.
    Killed,
}

/// What one host did in a run, as the play recap counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct HostStats {
    /// Tasks that succeeded without a change.
    pub ok: u32,
    /// Tasks that changed something.
    pub changed: u32,
    /// Tasks that failed.
    pub failed: u32,
    /// Tasks skipped.
    pub skipped: u32,
    /// Times the host could not be reached.
    pub unreachable: u32,
    /// Failures a `rescue` section handled.
    pub rescued: u32,
    /// Failures `ignore_errors` let pass.
    pub ignored: u32,
}

/// Per host (its name in the inventory), what it did in a run, ordered by name.
pub type HostStatsMap = std::collections::BTreeMap<String, HostStats>;

/// What an executor reports at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Failed and unreachable hosts, and hosts never reached because the play aborted.
    pub failed_hosts: Vec<String>,
    /// Why it failed, for a person to read.
    pub message: Option<String>,
    /// The commit a repository playbook ran from.
    pub repository_log: Option<RepositoryLog>,
    /// The play recap per host; empty if the playbook never got to it.
    #[serde(default)]
    pub host_stats: HostStatsMap,
}

impl RunReport {
    /// A report with only an outcome.
    pub fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            failed_hosts: Vec::new(),
            message: None,
            repository_log: None,
            host_stats: HostStatsMap::new(),
        }
    }

    /// A failure with a message and no failed hosts (the playbook could not run at all).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::new(Outcome::Failed)
        }
    }
}

/// The stored record of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Its ID.
    pub execution_id: ExecutionId,
    /// The job it runs.
    pub job_id: JobId,
    /// The job's account.
    pub account_alias: AccountAlias,
    /// Where it is in its life.
    pub status: Status,
    /// One entry per run.
    pub timers: Vec<Timer>,
    /// The commit that ran, for repository playbooks.
    pub repository_log: Option<RepositoryLog>,
    /// Hosts that failed; set only on FAILURE.
    pub failed_hosts: Vec<String>,
    /// Why it is in its status (node lost, TTL passed, the executor's error), if there is a reason.
    pub message: Option<String>,
    /// When it was created; orders listings.
    pub created_time: Timestamp,
    /// The inventory of this execution: the job's hosts, or the hosts of the start request.
    pub hosts: Vec<Host>,
    /// After a restart: run only against these hosts.
    pub limit: Option<Vec<String>>,
    /// The default SSH key given on start or restart, over the job's.
    pub ssh_private_key: Option<Secret>,
    /// The key pair given on start or restart as the default key instead (resolved into the
    /// run's `ssh_private_key` when it starts, as the job's `sshKeyPair` fields are).
    #[serde(default)]
    pub ssh_key_pair: Option<String>,
    /// Minutes a run may take before it is stopped.
    pub ttl_minutes: u32,
    /// Incremented by each claim; worker commands must carry the current one (fencing).
    pub attempt: u32,
    /// Held while a node runs it.
    pub lease: Option<Lease>,
    /// When the TTL of the current run passes.
    pub ttl_deadline: Option<Timestamp>,
    /// When a graceful stop escalates to a kill.
    pub stop_escalate_at: Option<Timestamp>,
    /// When a kill that no node confirmed is marked KILLED anyway.
    pub kill_force_at: Option<Timestamp>,
    /// Counts the changes [`crate::machine::apply`] made. Notifications carry it, so a consumer
    /// can order status changes that reached it from different tasks or nodes.
    #[serde(default)]
    pub revision: u64,
    /// The schedule and due time that created this execution; unique per store, so a due time
    /// fires once however many nodes see it.
    #[serde(default)]
    pub scheduled: Option<ScheduledFire>,
    /// The job's callbacks when the execution was created: its feed goes there even if the job
    /// is edited meanwhile.
    #[serde(default)]
    pub callbacks: Vec<Callback>,
    /// How many [`crate::feed::Event`]s it has: the sequence number of the latest. Counted in the
    /// same atomic section that records them, so sequence numbers have no gaps.
    #[serde(default)]
    pub events: u64,
    /// The play recap of the latest run that ended, per host.
    #[serde(default)]
    pub host_stats: HostStatsMap,
    /// What the start varied (extra vars, tags, limit, check mode); every run of it, restarts
    /// included, runs with them.
    #[serde(default, skip_serializing_if = "LaunchOptions::is_default")]
    pub launch: LaunchOptions,
    /// Its job's policy for overlapping runs when it was created (see [`crate::overlap`]): the
    /// claim and start rules read it here, so an edit of the job does not change the turn of
    /// executions already waiting.
    #[serde(default, skip_serializing_if = "Overlap::is_allow")]
    pub overlap: Overlap,
}

/// Which schedule created an execution, for which due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScheduledFire {
    /// The schedule.
    pub schedule_id: crate::ids::ScheduleId,
    /// The due time it fired for.
    pub due_time: Timestamp,
}

impl Execution {
    /// A new PENDING execution of `job`. `hosts`, when given, replaces the job's inventory for
    /// this execution, keeping each host's hostVars from the job when the id matches.
    pub fn new(
        job: &Job,
        hosts: Option<Vec<Host>>,
        ssh_private_key: Option<Secret>,
        now: Timestamp,
    ) -> Self {
        let hosts = match hosts {
            None => job.hosts().to_vec(),
            Some(hosts) => merge_hosts(hosts, job.hosts()),
        };
        Self {
            execution_id: ExecutionId::new(),
            job_id: job.id,
            account_alias: job.account_alias.clone(),
            status: Status::Pending,
            timers: Vec::new(),
            repository_log: None,
            failed_hosts: Vec::new(),
            message: None,
            created_time: now,
            hosts,
            limit: None,
            ssh_private_key,
            ssh_key_pair: None,
            ttl_minutes: job.execution_ttl_minutes(),
            attempt: 0,
            lease: None,
            ttl_deadline: None,
            stop_escalate_at: None,
            kill_force_at: None,
            revision: 0,
            scheduled: None,
            callbacks: job.spec.callbacks.clone(),
            // The creation event (see `feed::created`).
            events: 1,
            host_stats: HostStatsMap::new(),
            launch: LaunchOptions::default(),
            overlap: job.spec.overlap,
        }
    }

    /// A new PENDING execution of `job` for a schedule's due time, with the schedule's launch
    /// options.
    pub fn scheduled(
        job: &Job,
        fire: ScheduledFire,
        launch: &LaunchOptions,
        now: Timestamp,
    ) -> Self {
        Self {
            scheduled: Some(fire),
            launch: launch.clone(),
            ..Self::new(job, None, None, now)
        }
    }

    /// The earliest time at which a timed command ([`crate::machine::due_command`]) may apply;
    /// stores index it so that the engine finds due executions without a scan.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let lease = self
            .lease
            .as_ref()
            .filter(|_| self.status.is_claimed())
            .map(|lease| lease.expires_at);
        let ttl = self
            .ttl_deadline
            .filter(|_| matches!(self.status, Status::Initializing | Status::Running));
        let escalate = self
            .stop_escalate_at
            .filter(|_| self.status == Status::Stopping);
        let force = self
            .kill_force_at
            .filter(|_| self.status == Status::Killing);
        [lease, ttl, escalate, force].into_iter().flatten().min()
    }

    /// When it ended, once it has: the end of its latest run, or its creation time for one that
    /// ended without running (stopped or killed while PENDING). `None` while it has not ended,
    /// and again after a restart until the new run ends. What retention counts the age of an
    /// execution from; stores index it.
    pub fn ended_time(&self) -> Option<Timestamp> {
        self.status.is_terminal().then(|| {
            self.timers
                .last()
                .and_then(|timer| timer.end)
                .unwrap_or(self.created_time)
        })
    }

    /// The API's view of this execution.
    pub fn view(&self) -> ExecutionView {
        ExecutionView {
            execution_id: self.execution_id,
            job_id: self.job_id,
            account_alias: self.account_alias.clone(),
            status: self.status,
            start: self.timers.first().map(|timer| timer.start),
            end: if self.status.is_terminal() {
                self.timers.last().and_then(|timer| timer.end)
            } else {
                None
            },
            timers: self.timers.clone(),
            repository_log: self.repository_log.clone(),
            failed_hosts: self.failed_hosts.clone(),
            is_vpn_established: false,
            message: self.message.clone(),
            host_stats: self.host_stats.clone(),
            launch_options: self.launch.clone(),
        }
    }
}

/// Hosts of a start or restart request, completed with the job's hostVars, key (or key pair)
/// and password for matching ids.
pub(crate) fn merge_hosts(mut hosts: Vec<Host>, known: &[Host]) -> Vec<Host> {
    for host in &mut hosts {
        if let Some(known) = known.iter().find(|known| known.id == host.id) {
            if host.host_vars.is_empty() {
                host.host_vars = known.host_vars.clone();
            }
            if host.ssh_private_key.is_none() && host.ssh_key_pair.is_none() {
                host.ssh_private_key = known.ssh_private_key.clone();
                host.ssh_key_pair = known.ssh_key_pair.clone();
            }
            if host.ssh_password.is_none() {
                host.ssh_password = known.ssh_password.clone();
            }
        }
    }
    hosts
}

/// An execution as the API shows it (snake_case, as the documents give it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = Execution))]
pub struct ExecutionView {
    /// Its ID.
    pub execution_id: ExecutionId,
    /// The job it runs.
    pub job_id: JobId,
    /// The job's account.
    pub account_alias: AccountAlias,
    /// Current status.
    pub status: Status,
    /// Start of the first run (epoch ms); `null` until a node claims it.
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<i64>, required = true))]
    pub start: Option<Timestamp>,
    /// End of the last run (epoch ms); `null` until it ends.
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<i64>, required = true))]
    pub end: Option<Timestamp>,
    /// One entry per run.
    pub timers: Vec<Timer>,
    /// The commit that ran, or `null` for inline playbooks.
    #[cfg_attr(feature = "utoipa", schema(required = true))]
    pub repository_log: Option<RepositoryLog>,
    /// Host ids that failed (FAILURE only).
    pub failed_hosts: Vec<String>,
    /// Always `false`: there is no VPN service.
    pub is_vpn_established: bool,
    /// Why the execution is in its status, when there is a reason to give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The play recap of the latest run that ended, per host name: `ok`, `changed`, `failed`,
    /// `skipped`, `unreachable`, `rescued`, `ignored`. Empty until a run reached its recap.
    #[serde(default)]
    pub host_stats: HostStatsMap,
    /// What the start varied (`properties`, `playbookTags`, `skipTags`, `limit`, `check`,
    /// `diff`, as the start request gave them); left out when it varied nothing. Restarts run
    /// with them too.
    #[serde(default, skip_serializing_if = "LaunchOptions::is_default")]
    pub launch_options: LaunchOptions,
}
