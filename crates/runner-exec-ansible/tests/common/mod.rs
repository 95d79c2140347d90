//! Shared helpers of the executor tests: they run the real ansible-playbook on localhost.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use runner_core::execution::{Execution, RunReport};
use runner_core::executor::{
    CancelHandle, Cancellation, EventKind, EventSink, Executor, ExecutorEvent, Progress, Run,
};
use runner_core::job::{Host, Job, JobSpec};
use runner_core::testkit::fixtures;
use runner_exec_ansible::{AnsibleConfig, AnsibleExecutor};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

/// The longest any single scenario may take before the test fails instead of hanging.
pub(crate) const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

/// The ansible-playbook to test with: `RUNNER_ANSIBLE_PLAYBOOK`, else `PATH`, else
/// `<repo>/.venv/bin/ansible-playbook`. Panics (loudly) when there is none.
pub(crate) fn ansible_playbook() -> PathBuf {
    if let Some(path) = std::env::var_os("RUNNER_ANSIBLE_PLAYBOOK") {
        return PathBuf::from(path);
    }
    if let Some(path) = runner_exec_ansible::find_on_path("ansible-playbook") {
        return path;
    }
    let venv = repo_root().join(".venv/bin/ansible-playbook");
    assert!(
        venv.is_file(),
        "ansible-playbook not found (RUNNER_ANSIBLE_PLAYBOOK, PATH, {}): run scripts/ensure-ansible.sh",
        venv.display()
    );
    venv
}

/// The repository root.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A test's directories: `work` (the executor's work root) and `out` (markers the playbooks write).
pub(crate) struct Scene {
    pub dir: tempfile::TempDir,
    pub work: PathBuf,
    pub out: PathBuf,
}

impl Scene {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let work = dir.path().join("work");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        Self { dir, work, out }
    }

    pub(crate) fn config(&self) -> AnsibleConfig {
        AnsibleConfig {
            ansible_playbook: ansible_playbook(),
            work_root: self.work.clone(),
            allow_local_urls: true,
            ..AnsibleConfig::default()
        }
    }

    pub(crate) fn executor(&self) -> AnsibleExecutor {
        AnsibleExecutor::new(self.config())
    }

    /// A marker file's path.
    pub(crate) fn marker(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    /// The names of the marker files, sorted.
    pub(crate) fn markers(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

/// A host reached with the local connection, run by the same python as ansible-playbook.
pub(crate) fn local_host(id: &str) -> Host {
    let mut host = Host::named(id);
    host.host_vars = vars(json!({
        "ansible_connection": "local",
        "ansible_host": "127.0.0.1",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }));
    host
}

pub(crate) fn vars(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub(crate) fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A job spec with an inline playbook, its hosts and `out` as the extra var `out`.
pub(crate) fn inline_spec(scene: &Scene, playbook: &str, hosts: Vec<Host>) -> JobSpec {
    let mut spec = fixtures::inline_spec(&[]);
    spec.playbook = Some(b64(playbook));
    spec.hosts = Some(hosts);
    spec.properties = vars(json!({ "out": scene.out }));
    spec
}

/// A run of `spec` as the engine would hand it over (first attempt).
pub(crate) fn run_of(spec: JobSpec) -> Run {
    spec.validate().expect("test job is valid");
    let job = Job::new(fixtures::alias("ACME"), spec, 1);
    let mut execution = Execution::new(&job, None, None, 1);
    execution.attempt = 1;
    Run { job, execution }
}

/// Runs to the end with no cancellation; returns the report and everything the run reported
/// (the workspace being ready, the events), in order.
pub(crate) async fn run_to_end(executor: &AnsibleExecutor, run: Run) -> (RunReport, Vec<Progress>) {
    let (sink, mut receiver) = EventSink::channel();
    let report = tokio::time::timeout(
        SCENARIO_TIMEOUT,
        executor.run(run, sink, Cancellation::never()),
    )
    .await
    .expect("the run did not end in time");
    let mut progress = Vec::new();
    while let Ok(reported) = receiver.try_recv() {
        progress.push(reported);
    }
    (report, progress)
}

/// The feed events among what a run reported.
pub(crate) fn events_of(progress: &[Progress]) -> Vec<&ExecutorEvent> {
    progress
        .iter()
        .filter_map(|reported| match reported {
            Progress::Event(event) => Some(event),
            Progress::WorkspaceReady | Progress::Log(_) => None,
        })
        .collect()
}

/// The run log among what a run reported: its chunks in order, as text.
pub(crate) fn log_of(progress: &[Progress]) -> String {
    let bytes: Vec<u8> = progress
        .iter()
        .filter_map(|reported| match reported {
            Progress::Log(chunk) => Some(chunk.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A run started in the background, with its cancel handle and event receiver.
pub(crate) struct Background {
    pub handle: CancelHandle,
    pub events: UnboundedReceiver<Progress>,
    pub report: tokio::task::JoinHandle<RunReport>,
}

pub(crate) fn start(executor: &AnsibleExecutor, run: Run) -> Background {
    let (sink, events) = EventSink::channel();
    let (handle, cancel) = Cancellation::new();
    let executor = executor.clone();
    let report = tokio::spawn(async move { executor.run(run, sink, cancel).await });
    Background {
        handle,
        events,
        report,
    }
}

impl Background {
    /// Waits for the start of the task called `name`; panics if the run ends first.
    pub(crate) async fn wait_for_task(&mut self, name: &str) {
        let wait = async {
            while let Some(reported) = self.events.recv().await {
                if let Progress::Event(event) = reported {
                    if event.kind == EventKind::TaskStart && event.task.as_deref() == Some(name) {
                        return;
                    }
                }
            }
            panic!("the run ended before task {name:?} started");
        };
        tokio::time::timeout(SCENARIO_TIMEOUT, wait)
            .await
            .expect("the task did not start in time");
    }

    pub(crate) async fn report(self) -> RunReport {
        tokio::time::timeout(SCENARIO_TIMEOUT, self.report)
            .await
            .expect("the run did not end in time")
            .expect("the run panicked")
    }
}

/// Runs git, panicking with its output on failure; returns stdout.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Pids (with their command lines) of live processes whose command line contains `needle`.
pub(crate) fn processes_with(needle: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().into_string().unwrap_or_default();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let rest = stat[stat.rfind(')')? + 1..].trim_start().to_owned();
                rest.chars().next()
            });
        let alive = !matches!(state, Some('Z') | Some('X') | None);
        if alive && cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}
