//! An in-process executor whose runs follow scripts, for engine tests, examples and benchmarks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::execution::{Outcome, RunReport};
use crate::executor::{
    CancelMode, Cancellation, EventKind, EventSink, Executor, ExecutorEvent, Run,
};
use crate::ids::{ExecutionId, JobId};

/// What a scripted run does.
#[derive(Debug, Clone)]
pub enum Script {
    /// Succeed at once.
    Succeed,
    /// Fail at once on these hosts.
    Fail(Vec<String>),
    /// Run until cancelled: a graceful stop ends it `Stopped`, a kill `Killed`.
    UntilCancelled,
    /// Ignore graceful stops; only a kill ends it.
    IgnoreStop,
    /// Wait until the gate lets one run through, then succeed (a kill still ends it at once).
    Gated(Gate),
}

impl Script {
    /// [`Script::Succeed`].
    pub fn succeed() -> Self {
        Script::Succeed
    }
}

/// Holds scripted runs until the test opens it, one run per [`Gate::open`] permit.
#[derive(Debug, Clone)]
pub struct Gate(Arc<Semaphore>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Gate(Arc::new(Semaphore::new(0)))
    }

    /// Lets `runs` more runs through.
    pub fn open(&self, runs: usize) {
        self.0.add_permits(runs);
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

/// One run, as the executor saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRun {
    /// The execution.
    pub execution_id: ExecutionId,
    /// The claim's attempt.
    pub attempt: u32,
    /// The hosts the run was limited to (restart), if any.
    pub limit: Option<Vec<String>>,
    /// The inventory's host ids.
    pub hosts: Vec<String>,
    /// The execution's default SSH key as the run got it (a key pair's, once resolved).
    pub ssh_private_key: Option<crate::secret::Secret>,
    /// The launch options the run got.
    pub launch: crate::launch::LaunchOptions,
}

/// Runs [`Script`]s: one per job, or the default.
#[derive(Debug, Clone)]
pub struct ScriptedExecutor {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    default: Script,
    per_job: Mutex<HashMap<JobId, Script>>,
    runs: Mutex<Vec<RecordedRun>>,
    running: AtomicUsize,
    most_running: AtomicUsize,
    record: bool,
}

impl ScriptedExecutor {
    /// Runs `default` for every job without a script of its own, and records every run.
    pub fn new(default: Script) -> Self {
        Self::with_recording(default, true)
    }

    /// Like [`ScriptedExecutor::new`]; `record: false` skips the run log (for benchmarks).
    pub fn with_recording(default: Script, record: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                default,
                per_job: Mutex::new(HashMap::new()),
                runs: Mutex::new(Vec::new()),
                running: AtomicUsize::new(0),
                most_running: AtomicUsize::new(0),
                record,
            }),
        }
    }

    /// Sets the script of one job.
    pub fn script(&self, job: JobId, script: Script) {
        self.shared
            .per_job
            .lock()
            .expect("poisoned")
            .insert(job, script);
    }

    /// Every run so far, in start order.
    pub fn runs(&self) -> Vec<RecordedRun> {
        self.shared.runs.lock().expect("poisoned").clone()
    }

    /// The most runs that were in progress at once.
    pub fn most_running(&self) -> usize {
        self.shared.most_running.load(Ordering::SeqCst)
    }

    /// Runs in progress now.
    pub fn running(&self) -> usize {
        self.shared.running.load(Ordering::SeqCst)
    }
}

struct RunningGuard<'a>(&'a Shared);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Executor for ScriptedExecutor {
    async fn run(&self, run: Run, events: EventSink, mut cancel: Cancellation) -> RunReport {
        let shared = &*self.shared;
        let now_running = shared.running.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = RunningGuard(shared);
        shared.most_running.fetch_max(now_running, Ordering::SeqCst);
        if shared.record {
            shared.runs.lock().expect("poisoned").push(RecordedRun {
                execution_id: run.execution.execution_id,
                attempt: run.execution.attempt,
                limit: run.execution.limit.clone(),
                launch: run.execution.launch.clone(),
                hosts: run
                    .execution
                    .hosts
                    .iter()
                    .map(|host| host.id.clone())
                    .collect(),
                ssh_private_key: run.execution.ssh_private_key.clone(),
            });
        }
        let script = shared
            .per_job
            .lock()
            .expect("poisoned")
            .get(&run.job.id)
            .cloned()
            .unwrap_or_else(|| shared.default.clone());
        events.workspace_ready();
        match script {
            Script::Succeed => RunReport::new(Outcome::Succeeded),
            Script::Fail(hosts) => {
                for host in &hosts {
                    events.emit(ExecutorEvent {
                        host: Some(host.clone()),
                        ..ExecutorEvent::new(EventKind::HostFailed)
                    });
                }
                RunReport {
                    failed_hosts: hosts,
                    message: Some("scripted failure".into()),
                    ..RunReport::new(Outcome::Failed)
                }
            }
            Script::UntilCancelled => match cancel.at_least(CancelMode::Graceful).await {
                CancelMode::Graceful => RunReport::new(Outcome::Stopped),
                CancelMode::Kill => RunReport::new(Outcome::Killed),
            },
            Script::IgnoreStop => {
                cancel.at_least(CancelMode::Kill).await;
                RunReport::new(Outcome::Killed)
            }
            Script::Gated(gate) => {
                tokio::select! {
                    permit = gate.0.acquire() => {
                        permit.expect("gate never closes").forget();
                        RunReport::new(Outcome::Succeeded)
                    }
                    _ = cancel.at_least(CancelMode::Kill) => RunReport::new(Outcome::Killed),
                }
            }
        }
    }
}
