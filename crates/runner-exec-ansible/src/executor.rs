//! [`AnsibleExecutor`]: one run of a job's playbook, from an empty work directory to a
//! [`RunReport`]. See the crate docs for the whole story.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use runner_core::execution::{
    Execution, HostStats, HostStatsMap, Outcome, RepositoryLog, RunReport,
};
use runner_core::executor::{CancelMode, Cancellation, EventSink, Executor, Run};
use runner_core::job::{JobSpec, Repository};
use runner_core::validation::ValidationErrors;
use tokio::process::Command;

use crate::ansible_cfg;
use crate::config::{AnsibleConfig, find_on_path, is_executable};
use crate::error::ExecutorSetupError;
use crate::events::{EventStream, Tally};
use crate::git::{Cloned, Git, Interrupted};
use crate::inventory;
use crate::output::Output;
use crate::process::{Ended, GroupChild};
use crate::repository_cache::RepositoryCache;
use crate::safety::{Transport, check_playbook_path, check_url, resolve_playbook};
use crate::sandbox::sandboxed;
use crate::workspace::{NodeRoot, Workspace, tail};

/// The repository cache of `config`, if it has one; its directory joins what the sandbox hides
/// from runs.
fn open_cache(mut config: AnsibleConfig) -> (AnsibleConfig, Option<Arc<RepositoryCache>>) {
    let Some(mut cache) = config.repository_cache.clone() else {
        return (config, None);
    };
    // Absolute: git runs in the run's workspace, in the sandbox.
    if let Ok(dir) = std::path::absolute(&cache.dir) {
        cache.dir = dir;
    }
    let owner = config
        .sandbox
        .as_ref()
        .and_then(|sandbox| sandbox.user.clone());
    // Made now, so that the sandbox hides it from the first run on (a path that is missing when
    // a run starts is not hidden); a failure here is told by the first run that needs it.
    let _ = crate::repository_cache::create_dir(&cache.dir);
    if let Some(sandbox) = &mut config.sandbox {
        sandbox.hidden.push(cache.dir.clone());
    }
    config.repository_cache = Some(cache.clone());
    (config, Some(Arc::new(RepositoryCache::new(cache, owner))))
}

/// The callback plugin that streams events and holds the graceful stop (see
/// `plugins/runner_events.py`).
const CALLBACK_PLUGIN: &str = include_str!("plugins/runner_events.py");

/// How long `ansible-playbook --version` may take in [`AnsibleExecutor::check_installation`].
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs executions with `ansible-playbook`. See the crate docs.
#[derive(Debug, Clone)]
pub struct AnsibleExecutor {
    config: AnsibleConfig,
    /// The node directory this executor's runs work in, after [`AnsibleExecutor::claim_work_root`].
    _node: Option<Arc<NodeRoot>>,
    /// The last readiness check and when it was made: a probe every few seconds must not start
    /// `ansible-playbook` (about a second of CPU) each time.
    last_check: Arc<tokio::sync::Mutex<Option<ReadyCheck>>>,
    /// The node's repository mirrors, with [`AnsibleConfig::repository_cache`].
    cache: Option<Arc<RepositoryCache>>,
}

impl AnsibleExecutor {
    /// An executor with `config`. Its runs work directly under `config.work_root`; a server
    /// calls [`AnsibleExecutor::claim_work_root`] instead.
    pub fn new(config: AnsibleConfig) -> Self {
        let (config, cache) = open_cache(config);
        Self {
            config,
            _node: None,
            last_check: Arc::default(),
            cache,
        }
    }

    /// An executor whose runs work in a directory of their own node under `config.work_root`
    /// (held for as long as the executor or a clone of it lives), after removing what nodes that
    /// are gone left there: the workspaces and key files of runs a crash or `kill -9` cut short.
    /// Other live nodes sharing the work root are left alone. Returns how many leftovers went.
    /// With a sandbox, the whole work root is hidden from runs but for their own workspace.
    pub fn claim_work_root(mut config: AnsibleConfig) -> std::io::Result<(Self, usize)> {
        let work_root = std::path::absolute(&config.work_root)?;
        let (node, removed) = NodeRoot::claim(&work_root)?;
        config.work_root = node.dir().to_path_buf();
        if let Some(sandbox) = &mut config.sandbox {
            sandbox.hidden.push(work_root);
        }
        let (config, cache) = open_cache(config);
        Ok((
            Self {
                config,
                _node: Some(Arc::new(node)),
                last_check: Arc::default(),
                cache,
            },
            removed,
        ))
    }

    /// Its configuration.
    pub fn config(&self) -> &AnsibleConfig {
        &self.config
    }

    /// The work directory of the current attempt of `execution` (removed after the run unless
    /// [`AnsibleConfig::keep_work_dirs`]).
    pub fn work_dir(&self, execution: &Execution) -> PathBuf {
        self.config.work_root.join(work_dir_name(execution))
    }

    /// The node-local log of the current attempt of `execution` (git's and ansible-playbook's
    /// output) while it runs; removed with the work directory at the end unless it is kept.
    pub fn log_path(&self, execution: &Execution) -> PathBuf {
        self.work_dir(execution).join(crate::workspace::LOG_FILE)
    }

    /// Checks that ansible-playbook runs, and returns its version (`2.19.4`), for a startup
    /// warning. Blocks for as long as `ansible-playbook --version` takes (about a second).
    pub fn check_installation(&self) -> Result<String, ExecutorSetupError> {
        let path = self.config.ansible_playbook.clone();
        let program = resolve_program(&path)
            .ok_or_else(|| ExecutorSetupError::Missing { path: path.clone() })?;
        let mut child = std::process::Command::new(&program)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ExecutorSetupError::Spawn {
                path: path.clone(),
                source,
            })?;
        let started = std::time::Instant::now();
        // std has no wait-with-timeout; the output is small, so polling does not block a pipe.
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if started.elapsed() < VERSION_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ExecutorSetupError::TimedOut {
                        path,
                        seconds: VERSION_TIMEOUT.as_secs(),
                    });
                }
            }
        }
        let output = child
            .wait_with_output()
            .map_err(|source| ExecutorSetupError::Spawn {
                path: path.clone(),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(ExecutorSetupError::VersionFailed {
                path,
                status: output.status,
                output: format!("{stdout}{}", String::from_utf8_lossy(&output.stderr))
                    .trim()
                    .to_owned(),
            });
        }
        Ok(parse_version(&stdout))
    }

    async fn execute(&self, run: Run, events: EventSink, mut cancel: Cancellation) -> RunReport {
        let config = &self.config;
        let mut workspace = match Workspace::create(
            &config.work_root,
            &work_dir_name(&run.execution),
            config.keep_work_dirs,
        ) {
            Ok(workspace) => workspace,
            Err(error) => {
                return RunReport::failed(format!(
                    "could not create the work directory under {}: {error}",
                    config.work_root.display()
                ));
            }
        };
        let Some(ansible) = resolve_program(&config.ansible_playbook) else {
            return RunReport::failed(
                ExecutorSetupError::Missing {
                    path: config.ansible_playbook.clone(),
                }
                .to_string(),
            );
        };
        if let Some(report) = cancelled(&cancel, None) {
            return report;
        }

        let output = Output::new(
            events.clone(),
            workspace.log_path(),
            config.event_drain_timeout,
        );
        let spec = &run.job.spec;
        let source = match (&spec.repository, &spec.playbook) {
            (Some(repository), _) => {
                let marker = run_marker(&run.execution);
                self.checkout(repository, &marker, &mut workspace, &output, &mut cancel)
                    .await
            }
            (None, Some(encoded)) => inline_playbook(encoded, &workspace),
            (None, None) => Err(RunReport::failed(
                "the job has neither a repository nor an inline playbook",
            )),
        };
        let source = match source {
            Ok(source) => source,
            Err(report) => return report,
        };
        if let Some(report) = cancelled(&cancel, source.repository_log.clone()) {
            return report;
        }

        let prepared = match self.prepare(&run, &source, &mut workspace).await {
            Ok(prepared) => prepared,
            Err(message) => return source.failed(message),
        };
        let socket = workspace.path("events.sock");
        let stream = match EventStream::listen(&socket, events.clone(), source.label.clone()) {
            Ok(stream) => stream,
            Err(message) => return source.failed(message),
        };
        let (stdout, stderr, capture) = match output.capture().await {
            Ok(pipe) => pipe,
            Err(error) => return source.failed(format!("could not open the log: {error}")),
        };
        let mut inner = Command::new(&ansible);
        inner
            .args(&prepared.args)
            .envs(prepared.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&source.cwd);
        let marker = run_marker(&run.execution);
        let sandbox = config.sandbox.as_ref();
        let mut command = match sandboxed(
            sandbox,
            inner,
            &config.work_root,
            workspace.root(),
            &[],
            &marker,
        ) {
            Ok(command) => command,
            Err(error) => {
                stream.abort();
                return source.failed(format!("could not prepare the sandbox: {error}"));
            }
        };
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        if let Some(report) = cancelled(&cancel, source.repository_log.clone()) {
            stream.abort();
            return report;
        }
        events.workspace_ready();
        let child = match GroupChild::spawn(command, &marker) {
            Ok(child) => child,
            Err(error) => {
                stream.abort();
                return source.failed(format!("could not run {}: {error}", ansible.display()));
            }
        };
        let stop_file = workspace.path("stop");
        let ended = child
            .wait(&mut cancel, || {
                // The strategy plugin looks for this file before each task.
                if let Err(error) = std::fs::write(&stop_file, b"stop\n") {
                    tracing::error!(%error, "could not write the stop file; killing the run");
                    return true;
                }
                false
            })
            .await;
        workspace.remove_secrets();
        capture.finish().await;
        let status = match ended {
            Ok(Ended::Exited(status)) => status,
            Ok(Ended::Killed) => {
                stream.abort();
                return source.report(Outcome::Killed);
            }
            Err(error) => {
                stream.abort();
                return source.failed(format!("waiting for ansible-playbook failed: {error}"));
            }
        };
        let tally = stream.finish(config.event_drain_timeout).await;
        let with_stats = |report: RunReport| RunReport {
            host_stats: host_stats(&tally),
            ..report
        };
        let graceful = cancel.current().is_some();
        if tally.stopped || (graceful && !status.success()) {
            return with_stats(source.report(Outcome::Stopped));
        }
        if status.success() {
            return with_stats(source.report(Outcome::Succeeded));
        }
        let mut report = source.failed(self.failure_message(&status, &tally, &workspace));
        report.failed_hosts = failed_hosts(&tally, &prepared.targets);
        with_stats(report)
    }

    /// Clones the repository and finds its playbook.
    async fn checkout(
        &self,
        repository: &Repository,
        marker: &str,
        workspace: &mut Workspace,
        output: &Output,
        cancel: &mut Cancellation,
    ) -> Result<Source, RunReport> {
        let config = &self.config;
        let url = repository.url.trim();
        let transport = check_url(url, config.allow_local_urls)
            .map_err(|message| RunReport::failed(format!("repository.url {message}")))?;
        check_playbook_path(&repository.default_playbook).map_err(|message| {
            RunReport::failed(format!("repository.defaultPlaybook {message}"))
        })?;
        // Checked again at connect time: the name may lead elsewhere now than when it was saved.
        let pin = match (config.allow_local_urls, transport) {
            (true, _) | (_, Transport::File) => None,
            _ => crate::safety::pin_host(url)
                .await
                .map_err(|message| RunReport::failed(format!("repository.url {message}")))?,
        };
        let sandbox = config
            .sandbox
            .as_ref()
            .map(|sandbox| (sandbox, &*config.work_root));
        let git = Git::prepare(
            &config.git,
            repository,
            transport,
            pin,
            workspace,
            sandbox,
            marker,
        )
        .map_err(RunReport::failed)?;
        let cancelled_report = |cancel: &Cancellation| {
            cancelled(cancel, None).unwrap_or_else(|| RunReport::new(Outcome::Killed))
        };
        let (checkout, repository_log) = match &self.cache {
            None => {
                let checkout = match git.clone(repository, workspace, output, cancel).await {
                    Cloned::Done(checkout) => checkout,
                    Cloned::Cancelled => return Err(cancelled_report(cancel)),
                    Cloned::Failed(message) => return Err(RunReport::failed(message)),
                };
                // The credentials are not needed any more.
                workspace.remove_secrets();
                let log = git
                    .log(&checkout, "HEAD", &[])
                    .await
                    .map_err(RunReport::failed)?;
                (checkout, log)
            }
            Some(cache) => {
                let git = &git;
                // Another run may hold the mirror for a long fetch: a stop or kill ends the wait.
                let hold = tokio::select! {
                    hold = cache.hold(url, |mirror| async move { git.init_mirror(&mirror).await }) => {
                        hold.map_err(RunReport::failed)?
                    }
                    _ = cancel.at_least(CancelMode::Graceful) => return Err(cancelled_report(cancel)),
                };
                let mirror = hold.path();
                let (checkout, commit) = match git
                    .fetch_through(mirror, repository, workspace, output, cancel)
                    .await
                {
                    Ok(done) => done,
                    Err(Interrupted::Cancelled) => return Err(cancelled_report(cancel)),
                    Err(Interrupted::Failed(message)) => return Err(RunReport::failed(message)),
                };
                workspace.remove_secrets();
                let log = git
                    .log(mirror, &commit, &[mirror])
                    .await
                    .map_err(RunReport::failed)?;
                let mirror = mirror.to_path_buf();
                drop(hold);
                let cache = Arc::clone(cache);
                // Never fails the run: a mirror that cannot go now goes at a later run's pass.
                let evicted = tokio::task::spawn_blocking(move || cache.evict(&mirror)).await;
                if let Ok(Err(error)) = evicted {
                    tracing::warn!(%error, "could not trim the repository cache");
                }
                (checkout, log)
            }
        };
        let failed = |message: String| RunReport {
            repository_log: Some(repository_log.clone()),
            ..RunReport::failed(message)
        };
        let playbook = resolve_playbook(&checkout, &repository.default_playbook)
            .map_err(|message| failed(format!("repository.defaultPlaybook {message}")))?;
        Ok(Source {
            playbook,
            label: repository
                .default_playbook
                .trim()
                .trim_start_matches("./")
                .to_owned(),
            cwd: checkout,
            repository_log: Some(repository_log),
        })
    }

    /// Writes the inventory, keys, extra vars, limit and plugins; returns the arguments and
    /// environment of ansible-playbook.
    async fn prepare(
        &self,
        run: &Run,
        source: &Source,
        workspace: &mut Workspace,
    ) -> Result<Prepared, String> {
        let spec = &run.job.spec;
        let execution = &run.execution;
        // For `useDynamicInventory`, the engine has merged the account's inventory into the
        // execution's hosts; the operator's sources for the account come on top.
        let hosts = execution.hosts.clone();
        let sources = if spec.use_dynamic_inventory {
            self.config.inventory_sources_of(&execution.account_alias)
        } else {
            &[]
        };
        if spec.use_dynamic_inventory && hosts.is_empty() && sources.is_empty() {
            // Asked for the account's hosts and given none: running on nothing would end in a
            // SUCCESS that did nothing.
            return Err(format!(
                "useDynamicInventory is set, but the account {} has no hosts in its inventory, \
                 no inventory source, and the job has no hosts of its own: there is nothing to \
                 run on",
                execution.account_alias
            ));
        }
        let sources = inventory::copy_sources(sources, &workspace.path("inventory-sources"))?;

        let default_key = execution
            .ssh_private_key
            .as_ref()
            .or(spec.ssh_private_key.as_ref())
            .filter(|key| !key.is_mask());
        let default_key = match default_key {
            Some(key) => Some(workspace.write_key("default ssh key", key)?),
            None => None,
        };
        let mut logins = HashMap::new();
        for (index, host) in hosts.iter().enumerate() {
            let own = host.ssh_private_key.as_ref().filter(|key| !key.is_mask());
            let key = match own {
                Some(key) => Some(workspace.write_key(&format!("host {index} ssh key"), key)?),
                None => default_key.clone(),
            };
            let password = host
                .ssh_password
                .as_ref()
                .filter(|password| !password.is_mask());
            let password = match password {
                Some(password) => Some(
                    workspace
                        .write_secret(
                            &format!("host-{index}.password"),
                            password.expose().as_bytes(),
                            0o600,
                        )
                        .map_err(|error| {
                            format!("could not write the password of host {index}: {error}")
                        })?,
                ),
                None => None,
            };
            logins.insert(host.id.clone(), inventory::LoginFiles { key, password });
        }
        let document = inventory::document(&hosts, &logins, default_key.as_deref());
        let write_json = |workspace: &mut Workspace, label: &str, value: &serde_json::Value| {
            let bytes = serde_json::to_vec_pretty(value).map_err(|error| error.to_string())?;
            workspace
                .write_secret(label, &bytes, 0o600)
                .map_err(|error| format!("could not write the {label}: {error}"))
        };
        let inventory_path = write_json(workspace, "inventory.json", &document)?;
        let extra_vars = write_json(
            workspace,
            "extra-vars.json",
            &serde_json::Value::Object(execution.launch.properties(&run.job)),
        )?;

        // Sources first: a later inventory wins, and the job's own hosts win over a source's.
        let mut args: Vec<OsString> = Vec::new();
        for source in sources {
            args.extend(["-i".into(), source.into()]);
        }
        args.extend(["-i".into(), inventory_path.into()]);
        let mut extra = OsString::from("@");
        extra.push(&extra_vars);
        args.extend(["-e".into(), extra]);
        let launch = &execution.launch;
        let tags = launch.playbook_tags(&run.job);
        if !tags.is_empty() {
            args.extend(["--tags".into(), tags.join(",").into()]);
        }
        if let Some(skip) = launch.skip_tags.as_ref().filter(|skip| !skip.is_empty()) {
            args.extend(["--skip-tags".into(), skip.join(",").into()]);
        }
        if launch.check {
            args.push("--check".into());
        }
        if launch.diff {
            args.push("--diff".into());
        }
        // A restart's failed hosts, else the start's host patterns. Through a file, so that no
        // pattern is read as a flag.
        let limit = execution.limit.as_ref().or(launch.limit.as_ref());
        let targets: Vec<String> = match limit {
            Some(limit) => {
                let mut text = limit.join("\n");
                text.push('\n');
                let path = workspace
                    .write("limit.txt", text.as_bytes(), 0o600)
                    .map_err(|error| format!("could not write the limit: {error}"))?;
                let mut limit_arg = OsString::from("@");
                limit_arg.push(&path);
                args.extend(["--limit".into(), limit_arg]);
                if execution.limit.is_some() {
                    limit.clone()
                } else {
                    // A start's patterns may name groups: the hosts it names by id are the
                    // ones that must reach the recap.
                    hosts
                        .iter()
                        .filter(|host| limit.contains(&host.id))
                        .map(|host| host.id.clone())
                        .collect()
                }
            }
            None => hosts.iter().map(|host| host.id.clone()).collect(),
        };
        args.push(source.playbook.clone().into());

        let plugin = |workspace: &Workspace, name: &str, text: &str| {
            workspace
                .write(name, text.as_bytes(), 0o600)
                .map_err(|error| format!("could not write {name}: {error}"))
        };
        plugin(
            workspace,
            "plugins/callback/runner_events.py",
            CALLBACK_PLUGIN,
        )?;

        let root = workspace.root();
        // Added to the callbacks of the ansible.cfg ansible would read, not replacing them.
        let mut env = ansible_cfg::callback_env(
            &source.cwd,
            &root.join("plugins/callback"),
            "runner_events",
            |name| std::env::var_os(name),
        );
        env.extend([
            (
                "RUNNER_EVENTS_SOCKET".into(),
                root.join("events.sock").into_os_string(),
            ),
            (
                "RUNNER_STOP_FILE".into(),
                root.join("stop").into_os_string(),
            ),
            ("ANSIBLE_NOCOLOR".into(), "1".into()),
            ("ANSIBLE_FORCE_COLOR".into(), "0".into()),
            ("ANSIBLE_RETRY_FILES_ENABLED".into(), "0".into()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
        ]);
        Ok(Prepared { args, env, targets })
    }

    /// The message of a FAILURE: the exit code and the first failures as the structured
    /// results give them (masked by the engine, censored under `no_log`). Never the end of
    /// ansible's raw output once the playbook started: that is where a `no_log` task's failure
    /// text would come from. Only when the playbook never started (a syntax error, a missing
    /// file), and so no task printed anything, does it quote the end of the log, which then
    /// holds ansible's error.
    fn failure_message(
        &self,
        status: &std::process::ExitStatus,
        tally: &Tally,
        workspace: &Workspace,
    ) -> String {
        let mut message = match status.code() {
            Some(code) => format!("ansible-playbook failed (exit code {code})"),
            None => format!("ansible-playbook ended abnormally ({status})"),
        };
        if !tally.started {
            message.push_str(" before the playbook started:\n");
            message.push_str(tail(&workspace.log_path(), self.config.log_tail_bytes).trim_end());
            return message;
        }
        if tally.failure_messages.is_empty() {
            message.push_str(": no task reported a failure; ansible's own error is in the run log");
        }
        for failure in &tally.failure_messages {
            message.push_str("\n  ");
            message.push_str(failure);
        }
        message
    }
}

impl Executor for AnsibleExecutor {
    fn validate(&self, spec: &JobSpec) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if let Some(repository) = &spec.repository {
            let url = repository.url.trim();
            // Empty URLs and leading dashes are already refused by JobSpec::validate.
            if !url.is_empty() && !url.starts_with('-') {
                if let Err(message) = check_url(url, self.config.allow_local_urls) {
                    errors.add("repository.url", message);
                }
            }
        }
        errors.into_result()
    }

    /// `ansible-playbook --version` runs, in the sandbox when there is one (which proves the
    /// sandbox can be made too). The answer is kept for 30 seconds, so that frequent probes do
    /// not each start ansible-playbook.
    async fn ready(&self) -> Result<(), String> {
        let mut last = self.last_check.lock().await;
        if let Some((at, result)) = &*last {
            if at.elapsed() < READY_CHECK_TTL {
                return result.clone();
            }
        }
        let result = self.check_ready().await;
        *last = Some((std::time::Instant::now(), result.clone()));
        result
    }

    async fn run(&self, run: Run, events: EventSink, cancel: Cancellation) -> RunReport {
        self.execute(run, events, cancel).await
    }
}

/// A readiness check of [`AnsibleExecutor`]: when it was made, and what it found.
type ReadyCheck = (std::time::Instant, Result<(), String>);

/// How long a readiness check of [`AnsibleExecutor`] holds.
const READY_CHECK_TTL: Duration = Duration::from_secs(30);

impl AnsibleExecutor {
    async fn check_ready(&self) -> Result<(), String> {
        let config = &self.config;
        match &config.sandbox {
            Some(sandbox) => sandbox
                .check_program(&config.work_root, &config.ansible_playbook, &["--version"])
                .await
                .map_err(|error| format!("ansible-playbook does not run in the sandbox: {error}")),
            None => {
                let executor = self.clone();
                tokio::task::spawn_blocking(move || executor.check_installation())
                    .await
                    .map_err(|error| format!("the check did not finish: {error}"))?
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            }
        }
    }
}

/// Where the playbook is and where ansible-playbook runs.
struct Source {
    playbook: PathBuf,
    /// How events name the playbook: its path in the repository, or `playbook.yml` (inline);
    /// never a path of the server.
    label: String,
    cwd: PathBuf,
    repository_log: Option<RepositoryLog>,
}

impl Source {
    fn report(&self, outcome: Outcome) -> RunReport {
        RunReport {
            repository_log: self.repository_log.clone(),
            ..RunReport::new(outcome)
        }
    }

    fn failed(&self, message: String) -> RunReport {
        RunReport {
            message: Some(message),
            ..self.report(Outcome::Failed)
        }
    }
}

/// What ansible-playbook gets.
struct Prepared {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    /// The hosts this run is for: the limit, else the inventory.
    targets: Vec<String>,
}

// The error is the run's final report, made once per run: its size costs nothing.
#[allow(clippy::result_large_err)]
fn inline_playbook(encoded: &str, workspace: &Workspace) -> Result<Source, RunReport> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| RunReport::failed("playbook is not valid base64"))?;
    let playbook = workspace
        .write("playbook.yml", &bytes, 0o600)
        .map_err(|error| RunReport::failed(format!("could not write the playbook: {error}")))?;
    Ok(Source {
        playbook,
        label: "playbook.yml".into(),
        cwd: workspace.root().to_path_buf(),
        repository_log: None,
    })
}

/// The report for a cancellation asked for before ansible-playbook started, if any.
fn cancelled(cancel: &Cancellation, repository_log: Option<RepositoryLog>) -> Option<RunReport> {
    let outcome = match cancel.current()? {
        CancelMode::Graceful => Outcome::Stopped,
        CancelMode::Kill => Outcome::Killed,
    };
    Some(RunReport {
        repository_log,
        ..RunReport::new(outcome)
    })
}

/// The play recap per host, as the execution records it.
fn host_stats(tally: &Tally) -> HostStatsMap {
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    tally
        .stats
        .iter()
        .map(|(host, stats)| {
            let stats = HostStats {
                ok: count(stats.ok),
                changed: count(stats.changed),
                failed: count(stats.failures),
                skipped: count(stats.skipped),
                unreachable: count(stats.unreachable),
                rescued: count(stats.rescued),
                ignored: count(stats.ignored),
            };
            (host.clone(), stats)
        })
        .collect()
}

/// Failed and unreachable hosts, hosts a play aborted, and targets that never reached the
/// recap (the playbook ended before getting to them).
fn failed_hosts(tally: &Tally, targets: &[String]) -> Vec<String> {
    let mut failed: BTreeSet<String> = tally.failed_hosts.clone();
    for target in targets {
        if !tally.stats.contains_key(target) {
            failed.insert(target.clone());
        }
    }
    failed.into_iter().collect()
}

/// Marks every process of a run (see [`crate::process`]); one attempt runs once at a time.
pub(crate) fn run_marker(execution: &Execution) -> String {
    format!("{}-{}", execution.execution_id, execution.attempt)
}

fn work_dir_name(execution: &Execution) -> String {
    format!("{}-{}", execution.execution_id, execution.attempt)
}

/// A program path: used as is when it has a directory part, else looked up on `PATH`.
fn resolve_program(path: &Path) -> Option<PathBuf> {
    if path.components().count() > 1 || path.is_absolute() {
        is_executable(path).then(|| path.to_path_buf())
    } else {
        find_on_path(path.to_str()?)
    }
}

/// `2.19.4` from `ansible-playbook [core 2.19.4]`; the first line otherwise.
fn parse_version(output: &str) -> String {
    let first = output.lines().next().unwrap_or_default().trim();
    first
        .split_once("[core ")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or_else(|| first.to_owned(), |(version, _)| version.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use runner_core::testkit::fixtures;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("ansible-playbook [core 2.19.14]\n  config file = None\n"),
            "2.19.14"
        );
        assert_eq!(
            parse_version("ansible-playbook 2.9.6\n"),
            "ansible-playbook 2.9.6"
        );
    }

    #[test]
    fn never_reached_targets_count_as_failed() {
        let mut tally = Tally::default();
        tally.stats.insert("h1".into(), Default::default());
        tally.failed_hosts.insert("h2".into());
        tally.stats.insert("h2".into(), Default::default());
        let targets = ["h1", "h2", "h3"].map(String::from);
        assert_eq!(failed_hosts(&tally, &targets), ["h2", "h3"]);
    }

    #[test]
    fn validate_names_the_url_field() {
        let executor = AnsibleExecutor::new(AnsibleConfig::default());
        let mut spec = fixtures::job_with_secrets("ACME", 0).spec;
        assert!(executor.validate(&spec).is_ok());
        for url in [
            "ext::sh -c touch% /tmp/x",
            "file:///srv/repo.git",
            "http://h/r.git",
        ] {
            spec.repository.as_mut().unwrap().url = url.into();
            let errors = executor.validate(&spec).unwrap_err();
            assert_eq!(errors.errors[0].field, "repository.url", "{url}");
        }
        let local = AnsibleExecutor::new(AnsibleConfig {
            allow_local_urls: true,
            ..AnsibleConfig::default()
        });
        assert!(local.validate(&spec).is_ok());
    }
}
