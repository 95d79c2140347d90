//! The execution state machine: the one table of transitions that every store and handler uses.
//!
//! ```text
//!             start                claim             begin run
//!   (new) ──────────► PENDING ─────────► INITIALIZING ─────────► RUNNING ──► SUCCESS
//!                       ▲  │ stop/kill        │  release ▲           │ └────► FAILURE ──┐
//!                       │  ▼                  │  (shutdown)          │                  │
//!                       │ STOPPED / KILLED    └──── stop, ttl ───────┤                  │
//!                       │                                            ▼                  │
//!                       │              STOPPING ── finish ──► STOPPED                   │
//!                       │                 │ expiryDuration passed / kill                │
//!                       │                 ▼                                             │
//!                       │              KILLING ── finish, kill deadline ──► KILLED      │
//!                       └────────────────────── restart ────────────────────────────────┘
//!   lease lost: INITIALIZING / RUNNING / STOPPING ──► FAILURE;  KILLING ──► KILLED
//! ```
//!
//! [`apply`] is the only function that changes an execution's status. A store calls it inside
//! its atomic section (a mutex, a sled transaction, a PostgreSQL row lock), so the rule is the same
//! whatever the backend. Worker commands carry the attempt number of their claim and are refused
//! once the execution was claimed again or rescued (fencing); timed commands are refused before
//! their deadline, so two nodes rescuing the same execution cannot both succeed.
//!
//! A lapsed lease is an invitation to rescue, not a verdict: until a node applies
//! [`Command::LoseLease`], the holder's heartbeat and outcome are still taken. That is what lets
//! a run that went on through a store outage record its outcome once the store is back; the
//! engine decides when a lapsed lease means a dead node (it waits for the store to have been
//! reachable for a whole lease, see [`LeaseLoss`]).

use std::fmt;

use crate::execution::{Execution, Lease, Outcome, RunReport, Status, Timer, merge_hosts};
use crate::ids::NodeId;
use crate::job::Host;
use crate::secret::Secret;
use crate::time::Timestamp;

/// Something that asks an execution to change.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A node takes a PENDING execution, with a lease until `lease_until`.
    Claim {
        /// The claiming node.
        node: NodeId,
        /// When its lease lapses unless renewed.
        lease_until: Timestamp,
    },
    /// The workspace is ready; the playbook starts.
    BeginRun {
        /// The attempt of the claim.
        attempt: u32,
    },
    /// The node still runs it: renew the lease.
    Heartbeat {
        /// The attempt of the claim.
        attempt: u32,
        /// The new end of the lease.
        lease_until: Timestamp,
    },
    /// The run ended.
    Finish {
        /// The attempt of the claim.
        attempt: u32,
        /// What the executor reported.
        report: RunReport,
    },
    /// The node shuts down before the run ended: hand the execution back to PENDING.
    Release {
        /// The attempt of the claim.
        attempt: u32,
    },
    /// A user asks for a graceful stop.
    Stop {
        /// When to escalate to a kill if not stopped by then (`expiryDuration` > 0).
        escalate_at: Option<Timestamp>,
    },
    /// A user asks for a kill.
    Kill {
        /// When to mark it KILLED if no node confirmed by then (`expiryDuration` > 0).
        force_at: Option<Timestamp>,
    },
    /// The stop's `expiryDuration` passed.
    EscalateStop,
    /// The kill's `expiryDuration` passed without a confirmation.
    ForceKill,
    /// The run's `executionTtl` passed.
    ExpireTtl,
    /// The lease lapsed and the rescuing node concluded that the node running it is gone.
    LoseLease {
        /// How the rescuing node came to that conclusion (it goes into the message).
        cause: LeaseLoss,
    },
    /// Run a FAILURE again, against `hosts` (ids given in the request) or the failed hosts.
    Restart {
        /// The hosts given in the request, if any.
        hosts: Option<Vec<Host>>,
        /// A default SSH key given in the request.
        ssh_private_key: Option<Secret>,
        /// A key pair given in the request as the default key, instead of `ssh_private_key`.
        ssh_key_pair: Option<String>,
    },
}

/// The name of a [`Command`], for messages and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum CommandKind {
    Claim,
    BeginRun,
    Heartbeat,
    Finish,
    Release,
    Stop,
    Kill,
    EscalateStop,
    ForceKill,
    ExpireTtl,
    LoseLease,
    Restart,
}

impl Command {
    /// Its name.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Claim { .. } => CommandKind::Claim,
            Command::BeginRun { .. } => CommandKind::BeginRun,
            Command::Heartbeat { .. } => CommandKind::Heartbeat,
            Command::Finish { .. } => CommandKind::Finish,
            Command::Release { .. } => CommandKind::Release,
            Command::Stop { .. } => CommandKind::Stop,
            Command::Kill { .. } => CommandKind::Kill,
            Command::EscalateStop => CommandKind::EscalateStop,
            Command::ForceKill => CommandKind::ForceKill,
            Command::ExpireTtl => CommandKind::ExpireTtl,
            Command::LoseLease { .. } => CommandKind::LoseLease,
            Command::Restart { .. } => CommandKind::Restart,
        }
    }

    /// The attempt a worker command was issued under.
    fn attempt(&self) -> Option<u32> {
        match self {
            Command::BeginRun { attempt }
            | Command::Heartbeat { attempt, .. }
            | Command::Finish { attempt, .. }
            | Command::Release { attempt } => Some(*attempt),
            _ => None,
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            CommandKind::Claim => "claim",
            CommandKind::BeginRun => "begin run",
            CommandKind::Heartbeat => "heartbeat",
            CommandKind::Finish => "finish",
            CommandKind::Release => "release",
            CommandKind::Stop => "stop",
            CommandKind::Kill => "kill",
            CommandKind::EscalateStop => "stop escalation",
            CommandKind::ForceKill => "kill deadline",
            CommandKind::ExpireTtl => "ttl expiry",
            CommandKind::LoseLease => "lease loss",
            CommandKind::Restart => "restart",
        };
        f.write_str(name)
    }
}

/// Why a rescuing node holds the node of a lapsed lease for gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseLoss {
    /// The store was reachable for the whole lease and the node did not renew it.
    NodeGone,
    /// The store was unreachable during the lease; once it came back, the node still did not
    /// renew the lease for a whole lease.
    SilentAfterOutage,
}

/// Why the state machine refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The command is not allowed in the current status.
    #[error("cannot {command} an execution that is {status}")]
    NotAllowed {
        /// The current status.
        status: Status,
        /// The refused command.
        command: CommandKind,
    },
    /// A worker command from an attempt that no longer holds the execution.
    #[error("attempt {given} no longer holds the execution (now at attempt {current}, {status})")]
    StaleAttempt {
        /// The attempt the command carried.
        given: u32,
        /// The execution's attempt.
        current: u32,
        /// The current status.
        status: Status,
    },
    /// A timed command before its deadline.
    #[error("{command} is not due yet")]
    NotDue {
        /// The command.
        command: CommandKind,
    },
}

/// The status a command leads to from `from`, or `None` where the table has no row.
///
/// This is the transition table; [`apply`] adds the guards (fencing, deadlines) and the effects
/// (timers, lease, failed hosts).
pub fn next_status(from: Status, command: &Command) -> Option<Status> {
    use Status::*;
    let to = match (command, from) {
        (Command::Claim { .. }, Pending) => Initializing,
        (Command::BeginRun { .. }, Initializing) => Running,
        (Command::Heartbeat { .. }, Initializing | Running | Stopping | Killing) => from,
        (Command::Finish { report, .. }, Initializing | Running) => match report.outcome {
            Outcome::Succeeded => Success,
            Outcome::Failed => Failure,
            Outcome::Stopped => Stopped,
            Outcome::Killed => Killed,
        },
        (Command::Finish { report, .. }, Stopping) => match report.outcome {
            Outcome::Killed => Killed,
            _ => Stopped,
        },
        (Command::Finish { .. }, Killing) => Killed,
        (Command::Release { .. }, Initializing | Running) => Pending,
        (Command::Stop { .. }, Pending) => Stopped,
        (Command::Stop { .. }, Initializing | Running | Stopping) => Stopping,
        (Command::Stop { .. }, Stopped) => Stopped,
        (Command::Kill { .. }, Pending) => Killed,
        (Command::Kill { .. }, Initializing | Running | Stopping | Killing) => Killing,
        (Command::Kill { .. }, Killed) => Killed,
        (Command::EscalateStop, Stopping) => Killing,
        (Command::ForceKill, Killing) => Killed,
        (Command::ExpireTtl, Initializing | Running) => Stopping,
        (Command::LoseLease { .. }, Initializing | Running | Stopping) => Failure,
        (Command::LoseLease { .. }, Killing) => Killed,
        (Command::Restart { .. }, Failure) => Pending,
        _ => return None,
    };
    Some(to)
}

/// Applies `command` to `execution` at `now`, or says why it is refused. `execution` is left
/// untouched on refusal.
///
/// ```
/// use runner_core::machine::{apply, Command};
/// use runner_core::execution::Status;
/// # use runner_core::{job::{Job, JobSpec}, execution::Execution};
/// # let job = Job::new("ACME".parse().unwrap(), JobSpec::default(), 0);
/// let mut execution = Execution::new(&job, None, None, 0);
/// apply(&mut execution, &Command::Claim { node: "node-1".into(), lease_until: 30_000 }, 0).unwrap();
/// assert_eq!(execution.status, Status::Initializing);
/// let restart = Command::Restart { hosts: None, ssh_private_key: None, ssh_key_pair: None };
/// let refused = apply(&mut execution, &restart, 1);
/// assert_eq!(refused.unwrap_err().to_string(), "cannot restart an execution that is INITIALIZING");
/// ```
pub fn apply(
    execution: &mut Execution,
    command: &Command,
    now: Timestamp,
) -> Result<(), TransitionError> {
    check_fencing(execution, command)?;
    let from = execution.status;
    let to = next_status(from, command).ok_or(TransitionError::NotAllowed {
        status: from,
        command: command.kind(),
    })?;
    check_due(execution, command, now)?;

    match command {
        Command::Claim { node, lease_until } => {
            execution.attempt += 1;
            execution.lease = Some(Lease {
                node: node.clone(),
                expires_at: *lease_until,
            });
            execution.ttl_deadline = Some(crate::time::after(
                now,
                std::time::Duration::from_secs(u64::from(execution.ttl_minutes) * 60),
            ));
            execution.message = None;
            // The first run's timer opens here; a restart opened its own already.
            if execution
                .timers
                .last()
                .is_none_or(|timer| timer.end.is_some())
            {
                execution.timers.push(Timer {
                    start: now,
                    end: None,
                });
            }
        }
        Command::Heartbeat { lease_until, .. } => {
            if let Some(lease) = &mut execution.lease {
                lease.expires_at = lease.expires_at.max(*lease_until);
            }
        }
        Command::Finish { report, .. } => {
            execution.failed_hosts = if to == Status::Failure {
                report.failed_hosts.clone()
            } else {
                Vec::new()
            };
            if report.repository_log.is_some() {
                execution.repository_log = report.repository_log.clone();
            }
            execution.host_stats = report.host_stats.clone();
            if report.message.is_some() || to == Status::Success {
                execution.message = report.message.clone();
            }
        }
        Command::Release { .. } => {
            execution.lease = None;
            execution.ttl_deadline = None;
        }
        Command::Stop { escalate_at } if to == Status::Stopping => {
            execution.stop_escalate_at = earliest(execution.stop_escalate_at, *escalate_at);
            execution
                .message
                .get_or_insert_with(|| "stop requested".into());
        }
        Command::Kill { force_at } if to == Status::Killing => {
            execution.kill_force_at = earliest(execution.kill_force_at, *force_at);
            execution.message = Some("kill requested".into());
        }
        Command::Stop { .. } | Command::Kill { .. } if from != to => {
            execution.message = Some(format!("{} before a node claimed it", command.kind()));
        }
        Command::EscalateStop => {
            execution.message =
                Some("the stop did not finish within its expiryDuration; killing".into());
        }
        Command::ForceKill => {
            execution.message = Some("no node confirmed the kill within its expiryDuration".into());
        }
        Command::ExpireTtl => {
            execution.ttl_deadline = None;
            execution.message = Some(format!(
                "executionTtl of {} minutes passed; stopping",
                execution.ttl_minutes
            ));
        }
        Command::LoseLease { cause } => {
            let node = execution
                .lease
                .as_ref()
                .map_or("unknown", |lease| lease.node.as_str());
            execution.message = Some(match cause {
                LeaseLoss::NodeGone => {
                    format!("node gone: the node running it ({node}) stopped renewing its lease")
                }
                LeaseLoss::SilentAfterOutage => format!(
                    "node gone: the store was unreachable, and once it was back the node running \
                     it ({node}) did not renew its lease for a whole lease"
                ),
            });
        }
        Command::Restart {
            hosts,
            ssh_private_key,
            ssh_key_pair,
        } => {
            let limit = match hosts {
                Some(hosts) => {
                    let given = merge_hosts(hosts.clone(), &execution.hosts);
                    for host in given {
                        match execution.hosts.iter_mut().find(|known| known.id == host.id) {
                            Some(known) => *known = host,
                            None => execution.hosts.push(host),
                        }
                    }
                    Some(hosts.iter().map(|host| host.id.clone()).collect())
                }
                None if execution.failed_hosts.is_empty() => None,
                None => Some(execution.failed_hosts.clone()),
            };
            execution.limit = limit;
            // A default key given replaces the one before it, whichever form either took.
            if ssh_private_key.is_some() || ssh_key_pair.is_some() {
                execution.ssh_private_key = ssh_private_key.clone();
                execution.ssh_key_pair = ssh_key_pair.clone();
            }
            execution.failed_hosts.clear();
            execution.message = None;
            execution.timers.push(Timer {
                start: now,
                end: None,
            });
        }
        _ => {}
    }

    let repeated_end = from.is_terminal() && from == to;
    execution.status = to;
    if to.is_terminal() && !from.is_terminal() {
        close_run(execution, now);
    }
    if !repeated_end {
        execution.revision += 1;
    }
    Ok(())
}

/// The timed command due for `execution` at `now`, if any. The engine's maintenance loop applies
/// it through [`apply`], whose guards make a second node's attempt fail harmlessly.
pub fn due_command(execution: &Execution, now: Timestamp) -> Option<Command> {
    let lease_lapsed = execution
        .lease
        .as_ref()
        .is_some_and(|lease| lease.expires_at <= now);
    let candidates = [
        (
            lease_lapsed,
            Command::LoseLease {
                cause: LeaseLoss::NodeGone,
            },
        ),
        (
            execution.kill_force_at.is_some_and(|at| at <= now),
            Command::ForceKill,
        ),
        (
            execution.stop_escalate_at.is_some_and(|at| at <= now),
            Command::EscalateStop,
        ),
        (
            execution.ttl_deadline.is_some_and(|at| at <= now),
            Command::ExpireTtl,
        ),
    ];
    candidates
        .into_iter()
        .find(|(due, command)| *due && next_status(execution.status, command).is_some())
        .map(|(_, command)| command)
}

fn check_fencing(execution: &Execution, command: &Command) -> Result<(), TransitionError> {
    match command.attempt() {
        Some(given) => fence(execution, given),
        None => Ok(()),
    }
}

/// The fencing rule of worker commands: `given` must be the execution's current attempt, and the
/// attempt must still hold its lease, lapsed or not: only a rescue ([`Command::LoseLease`]), an
/// outcome or a release takes it. [`apply`] checks it for every worker command; stores check it
/// for writes a worker makes outside the table, such as appending executor events.
pub fn fence(execution: &Execution, given: u32) -> Result<(), TransitionError> {
    if given != execution.attempt || execution.lease.is_none() {
        return Err(TransitionError::StaleAttempt {
            given,
            current: execution.attempt,
            status: execution.status,
        });
    }
    Ok(())
}

fn check_due(
    execution: &Execution,
    command: &Command,
    now: Timestamp,
) -> Result<(), TransitionError> {
    let deadline = match command {
        Command::EscalateStop => execution.stop_escalate_at,
        Command::ForceKill => execution.kill_force_at,
        Command::ExpireTtl => execution.ttl_deadline,
        Command::LoseLease { .. } => execution.lease.as_ref().map(|lease| lease.expires_at),
        _ => return Ok(()),
    };
    match deadline {
        Some(at) if at <= now => Ok(()),
        _ => Err(TransitionError::NotDue {
            command: command.kind(),
        }),
    }
}

fn close_run(execution: &mut Execution, now: Timestamp) {
    execution.lease = None;
    execution.ttl_deadline = None;
    execution.stop_escalate_at = None;
    execution.kill_force_at = None;
    if let Some(timer) = execution
        .timers
        .last_mut()
        .filter(|timer| timer.end.is_none())
    {
        timer.end = Some(now.max(timer.start));
    }
}

fn earliest(current: Option<Timestamp>, new: Option<Timestamp>) -> Option<Timestamp> {
    match (current, new) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
