//! The [`Executor`] trait: runs one execution, streams its events, honours cancellation.

use std::future::Future;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::execution::{Execution, RunReport};
use crate::job::{Job, JobSpec};
use crate::validation::ValidationErrors;

/// Everything an executor needs for one run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The job as it was when the run was claimed (with its secrets).
    pub job: Job,
    /// The execution as claimed: its inventory (`hosts`), the restart `limit`, its attempt.
    pub execution: Execution,
}

/// Runs executions. The engine calls [`Executor::run`] once per claimed run.
///
/// An implementation must end the returned future soon after a [`CancelMode::Kill`] (reporting
/// [`crate::execution::Outcome::Killed`]) and must let the task in progress finish after a
/// [`CancelMode::Graceful`] (reporting `Stopped`). It must report failures in the
/// [`RunReport`] rather than panic.
pub trait Executor: Send + Sync + 'static {
    /// Executor-specific checks of a job definition (allowed URL schemes, ...), run on create and
    /// update next to [`JobSpec::validate`].
    fn validate(&self, spec: &JobSpec) -> Result<(), ValidationErrors> {
        let _ = spec;
        Ok(())
    }

    /// Whether the executor can run executions now (its program is there, its sandbox can be
    /// made): the executor's part of a readiness probe. The error says what is missing. The
    /// default is always ready.
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send {
        std::future::ready(Ok(()))
    }

    /// Runs the execution to its end.
    fn run(
        &self,
        run: Run,
        events: EventSink,
        cancel: Cancellation,
    ) -> impl Future<Output = RunReport> + Send;
}

/// What happened during a run, as an executor reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorEvent {
    /// What kind of event.
    pub kind: EventKind,
    /// The host it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The task (or play) it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the task returned, for host results (`host_ok`, `host_failed`, `host_skipped`,
    /// `host_unreachable`, `host_retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<TaskResult>>,
}

impl ExecutorEvent {
    /// An event of `kind` with nothing else set.
    pub fn new(kind: EventKind) -> Self {
        Self {
            kind,
            host: None,
            task: None,
            message: None,
            result: None,
        }
    }

    /// Applies `edit` to every text the event carries (host, task, message and the result's
    /// texts): one list of fields for masking and for capping, so that neither misses one.
    pub fn edit_texts(&mut self, mut edit: impl FnMut(&mut String)) {
        let texts = [&mut self.host, &mut self.task, &mut self.message];
        texts.into_iter().flatten().for_each(&mut edit);
        if let Some(result) = &mut self.result {
            result.texts().flatten().for_each(&mut edit);
        }
    }

    /// Cuts every text of the event to at most `max_bytes` bytes (see [`cap_text`]) and marks
    /// the result [`TaskResult::truncated`] when one of its texts was cut.
    pub fn cap(&mut self, max_bytes: usize) {
        for text in [&mut self.host, &mut self.task, &mut self.message]
            .into_iter()
            .flatten()
        {
            cap_text(text, max_bytes);
        }
        if let Some(result) = &mut self.result {
            let mut cut = false;
            for text in result.texts().flatten() {
                cut |= cap_text(text, max_bytes);
            }
            result.truncated |= cut;
        }
    }
}

/// What a task returned on a host, as the playbook's output shows it: the part of ansible's
/// result that a reader of the feed looks for. Texts are capped by the server
/// (`--event-field-bytes`, default 16 KiB): a longer text keeps its first bytes (cut on a
/// character boundary) followed by [`TRUNCATION_MARKER`] and the full length, and the result is
/// marked `truncated`. Under `no_log: true` only `changed`, `attempts` and `retries` are kept
/// and `msg` holds ansible's own notice, as ansible's output shows it (`censored` is set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct TaskResult {
    /// The task changed something on the host.
    #[serde(default)]
    pub changed: bool,
    /// The result's `msg` (JSON text when it is not a string, as `debug: msg=` can give).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// What the command printed on its standard output (`command`, `shell`, `script`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// What the command printed on its standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// The command's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rc: Option<i64>,
    /// The loop item this result is for (its `loop_control.label` when set; JSON text when it
    /// is not a string). Each item of a loop is an event of its own; the task's overall result
    /// follows them without `item`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Attempts made so far by an `until` loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u64>,
    /// Attempts an `until` loop makes at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// The failure was rescued by the `rescue` section of its block.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rescued: bool,
    /// The failure was ignored (`ignore_errors`, `ignore_unreachable`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignored: bool,
    /// The task is a handler.
    #[serde(default, skip_serializing_if = "is_false")]
    pub handler: bool,
    /// The task ran under `no_log: true`: its output is hidden.
    #[serde(default, skip_serializing_if = "is_false")]
    pub censored: bool,
    /// At least one text was cut to the server's limit (each cut text ends in the marker).
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
}

impl TaskResult {
    /// Every text field, for masking and capping.
    fn texts(&mut self) -> impl Iterator<Item = Option<&mut String>> {
        [
            self.msg.as_mut(),
            self.stdout.as_mut(),
            self.stderr.as_mut(),
            self.item.as_mut(),
        ]
        .into_iter()
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// What follows the kept part of a text that was cut (then the full length in bytes, `]`).
pub const TRUNCATION_MARKER: &str = "\n[truncated by Runner: ";

/// Cuts `text` to at most `max_bytes` bytes, on a character boundary, and appends
/// `[truncated by Runner: N bytes in all]` on a line of its own. Returns whether it cut.
///
/// ```
/// use runner_core::executor::cap_text;
/// let mut text = "héllo".to_owned();
/// assert!(cap_text(&mut text, 2));
/// assert_eq!(text, "h\n[truncated by Runner: 6 bytes in all]");
/// let mut short = "ok".to_owned();
/// assert!(!cap_text(&mut short, 2));
/// ```
pub fn cap_text(text: &mut String, max_bytes: usize) -> bool {
    if text.len() <= max_bytes {
        return false;
    }
    let total = text.len();
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(TRUNCATION_MARKER);
    text.push_str(&format!("{total} bytes in all]"));
    true
}

/// Kinds of [`ExecutorEvent`]: what a run reports while the playbook runs. The feed records each
/// one as [`feed::EventKind::Executor`](crate::feed::EventKind::Executor), beside the status
/// changes the store records itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = ExecutorEventKind))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The playbook started.
    PlaybookStart,
    /// A play started.
    PlayStart,
    /// A task started.
    TaskStart,
    /// A host finished a task successfully.
    HostOk,
    /// A host skipped a task.
    HostSkipped,
    /// A task failed on a host.
    HostFailed,
    /// A host could not be reached.
    HostUnreachable,
    /// An `until` loop failed an attempt on a host and tries again (`result.attempts`,
    /// `result.retries`).
    HostRetry,
    /// The playbook ended; `message` holds the per-host summary.
    PlaybookEnd,
    /// A line of output worth surfacing (warnings, errors of the executor itself).
    Log,
}

/// What an executor tells the engine through its [`EventSink`], in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The workspace is ready and the playbook starts: the engine moves the execution from
    /// INITIALIZING to RUNNING, after the events reported before it. Not a feed event: the feed
    /// shows it as that status change.
    WorkspaceReady,
    /// An event for the execution's feed.
    Event(ExecutorEvent),
    /// Output for the run log (ansible's human-readable stdout and stderr), in the order it was
    /// printed. The engine gathers chunks and writes them to the store in batches.
    Log(Vec<u8>),
}

/// Where an executor sends its events. Sending never blocks the run.
#[derive(Debug, Clone)]
pub struct EventSink {
    sender: Option<mpsc::UnboundedSender<Progress>>,
}

impl EventSink {
    /// A sink and the receiver the engine reads.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Progress>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            Self {
                sender: Some(sender),
            },
            receiver,
        )
    }

    /// A sink that drops everything (for tests of an executor alone).
    pub fn discard() -> Self {
        Self { sender: None }
    }

    /// Sends an event; dropped silently once nobody listens.
    pub fn emit(&self, event: ExecutorEvent) {
        self.send(Progress::Event(event));
    }

    /// Sends a chunk of the run's human-readable output for the run log; empty chunks are dropped.
    pub fn log(&self, chunk: Vec<u8>) {
        if !chunk.is_empty() {
            self.send(Progress::Log(chunk));
        }
    }

    /// Says the workspace is ready and the playbook starts.
    pub fn workspace_ready(&self) {
        self.send(Progress::WorkspaceReady);
    }

    fn send(&self, progress: Progress) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(progress);
        }
    }
}

/// How to end a run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CancelMode {
    /// Let the task in progress finish on every host; start no new task.
    Graceful,
    /// End everything at once.
    Kill,
}

/// The executor's side of a cancellation: read it, or wait for it.
#[derive(Debug, Clone)]
pub struct Cancellation {
    receiver: watch::Receiver<Option<CancelMode>>,
}

/// The engine's side of a cancellation. A request only ever escalates (graceful, then kill).
#[derive(Debug)]
pub struct CancelHandle {
    sender: watch::Sender<Option<CancelMode>>,
}

impl Cancellation {
    /// A handle and its cancellation.
    pub fn new() -> (CancelHandle, Cancellation) {
        let (sender, receiver) = watch::channel(None);
        (CancelHandle { sender }, Cancellation { receiver })
    }

    /// A cancellation that never fires.
    pub fn never() -> Cancellation {
        // With the handle gone, `at_least` waits forever and `current` stays `None`.
        Self::new().1
    }

    /// The strongest request so far.
    pub fn current(&self) -> Option<CancelMode> {
        *self.receiver.borrow()
    }

    /// Waits until the request is at least `mode` and returns the request. Never returns if
    /// nobody asks (the engine drops the handle only after the run ended).
    pub async fn at_least(&mut self, mode: CancelMode) -> CancelMode {
        loop {
            if let Some(current) = self.current().filter(|current| *current >= mode) {
                return current;
            }
            if self.receiver.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl CancelHandle {
    /// Asks for `mode`; a weaker request than the current one is ignored.
    pub fn request(&self, mode: CancelMode) {
        self.sender.send_if_modified(|current| {
            if current.is_none_or(|current| current < mode) {
                *current = Some(mode);
                true
            } else {
                false
            }
        });
    }

    /// The strongest request so far.
    pub fn current(&self) -> Option<CancelMode> {
        *self.sender.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancellation_only_escalates() {
        let (handle, mut cancel) = Cancellation::new();
        assert_eq!(cancel.current(), None);
        handle.request(CancelMode::Kill);
        handle.request(CancelMode::Graceful);
        assert_eq!(
            cancel.at_least(CancelMode::Graceful).await,
            CancelMode::Kill
        );
    }

    #[tokio::test]
    async fn waiting_for_kill_skips_graceful() {
        let (handle, mut cancel) = Cancellation::new();
        let waiter = tokio::spawn(async move { cancel.at_least(CancelMode::Kill).await });
        handle.request(CancelMode::Graceful);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        handle.request(CancelMode::Kill);
        assert_eq!(waiter.await.unwrap(), CancelMode::Kill);
    }
}
