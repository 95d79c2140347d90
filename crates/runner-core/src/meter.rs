//! What the engine counts and times, through the [`metrics`] facade.
//!
//! The engine only records; whoever embeds it chooses the exporter (the `runner` binary installs
//! a Prometheus recorder and serves `/metrics`). Without a recorder every call here is a no-op on
//! a global that is not set, so an embedder that wants no metrics pays next to nothing, and the
//! core stays free of HTTP and of any exporter.
//!
//! The facade, rather than engine signals that the HTTP crate would turn into metrics: the
//! engine is where claims, rescues, run durations and queue waits are known, and a facade call
//! at each of those places is one line, where a signal would need a channel, a consumer task
//! and a copy of each fact in another crate.
//!
//! Labels are bounded: an outcome, never an execution id, job id or account.

use std::time::Duration;

use crate::execution::{Execution, Outcome};
use crate::time::Timestamp;

/// Executions this node claimed (counter).
pub const CLAIMS: &str = "runner_executions_claimed_total";
/// Runs this node began: the executor is called (counter).
pub const STARTED: &str = "runner_executions_started_total";
/// Runs this node ended, by `outcome` (`succeeded`, `failed`, `stopped`, `killed`) (counter).
pub const ENDED: &str = "runner_executions_ended_total";
/// Runs running on this node now (gauge).
pub const RUNNING: &str = "runner_executions_running";
/// How long a run took, from its start to its recorded outcome, in seconds (histogram).
pub const RUN_DURATION: &str = "runner_run_duration_seconds";
/// How long an execution waited between its creation (or restart) and its claim, in seconds
/// (histogram).
pub const QUEUE_WAIT: &str = "runner_queue_wait_seconds";
/// Executions whose lapsed lease this node rescued (counter).
pub const LEASE_RESCUES: &str = "runner_lease_rescues_total";
/// Executions the scheduler created for due schedules on this node (counter).
pub const SCHEDULE_FIRES: &str = "runner_schedule_fires_total";
/// Ended executions the retention service of this node deleted (counter).
pub const PURGED: &str = "runner_executions_purged_total";

/// The metric names that are histograms of seconds, for an exporter that needs buckets set.
pub const SECONDS_HISTOGRAMS: [&str; 2] = [RUN_DURATION, QUEUE_WAIT];

/// Describes every metric of the engine to the installed recorder (its `# HELP` lines). Call it
/// once after installing one; without a recorder it does nothing.
pub fn describe() {
    metrics::describe_counter!(CLAIMS, "Executions this node claimed.");
    metrics::describe_counter!(STARTED, "Runs this node began.");
    metrics::describe_counter!(ENDED, "Runs this node ended, by outcome.");
    metrics::describe_gauge!(RUNNING, "Runs running on this node now.");
    metrics::describe_histogram!(
        RUN_DURATION,
        metrics::Unit::Seconds,
        "How long a run took, from its start to its recorded outcome."
    );
    metrics::describe_histogram!(
        QUEUE_WAIT,
        metrics::Unit::Seconds,
        "How long an execution waited between its creation (or restart) and its claim."
    );
    metrics::describe_counter!(LEASE_RESCUES, "Lapsed leases this node rescued.");
    metrics::describe_counter!(SCHEDULE_FIRES, "Executions created for due schedules.");
    metrics::describe_counter!(PURGED, "Ended executions this node's retention deleted.");
}

/// This node claimed `execution` at `now`.
pub(crate) fn claimed(execution: &Execution, now: Timestamp) {
    metrics::counter!(CLAIMS).increment(1);
    // The first run's timer starts at the claim: its wait began at the creation. A restart's
    // timer starts at the restart request.
    let queued_at = match execution.timers.as_slice() {
        [] | [_] => execution.created_time,
        [.., last] => last.start,
    };
    metrics::histogram!(QUEUE_WAIT).record(seconds(now.saturating_sub(queued_at)));
}

/// A worker began a run.
pub(crate) fn run_started() {
    metrics::counter!(STARTED).increment(1);
    metrics::gauge!(RUNNING).increment(1.0);
}

/// A worker ended (recorded, handed back, or given up); pairs with [`run_started`].
pub(crate) fn run_left() {
    metrics::gauge!(RUNNING).decrement(1.0);
}

/// The outcome of a run that began at `started` was recorded at `now`.
pub(crate) fn run_ended(outcome: Outcome, started: Option<Timestamp>, now: Timestamp) {
    let outcome = match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::Stopped => "stopped",
        Outcome::Killed => "killed",
    };
    metrics::counter!(ENDED, "outcome" => outcome).increment(1);
    if let Some(started) = started {
        metrics::histogram!(RUN_DURATION).record(seconds(now.saturating_sub(started)));
    }
}

/// This node rescued a lapsed lease.
pub(crate) fn lease_rescued() {
    metrics::counter!(LEASE_RESCUES).increment(1);
}

/// The scheduler created `count` executions.
pub(crate) fn schedules_fired(count: usize) {
    if count > 0 {
        metrics::counter!(SCHEDULE_FIRES).increment(count as u64);
    }
}

/// The retention service deleted `count` executions.
pub(crate) fn purged(count: u64) {
    metrics::counter!(PURGED).increment(count);
}

fn seconds(millis: i64) -> f64 {
    Duration::from_millis(u64::try_from(millis).unwrap_or(0)).as_secs_f64()
}
