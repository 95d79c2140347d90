//! # runner-exec-ansible
//!
//! The [`Executor`](runner_core::executor::Executor) of Runner that runs a job's playbook with
//! the real `ansible-playbook`.
//!
//! ```no_run
//! use runner_exec_ansible::{AnsibleConfig, AnsibleExecutor};
//!
//! let executor = AnsibleExecutor::new(AnsibleConfig::default());
//! match executor.check_installation() {
//!     Ok(version) => println!("ansible-core {version}"),
//!     Err(error) => eprintln!("warning: {error}"),
//! }
//! // Engine::builder().store(store).executor(executor).build() ...
//! ```
//!
//! ## How a run works
//!
//! 1. **Work directory.** `<work_root>/<execution id>-<attempt>/` is created (0700). A restart
//!    gets a new attempt and so a new directory.
//! 2. **Playbook.** An inline playbook (`playbook`, base64) is written to `playbook.yml`. A
//!    repository is cloned with `git clone --depth 1 [--branch <branch or tag>] -- <url> checkout`
//!    (the remote's default branch when none is given). With a
//!    [repository cache](AnsibleConfig::repository_cache) (the server's default) it is fetched
//!    instead into the node's mirror of the URL (`git fetch --tags -- <url> +<branch or
//!    HEAD>:refs/runner/...`, only what is new since the last run), and the commit that fetch
//!    resolved is checked out one commit deep from the mirror into `checkout`: each run has a
//!    working tree of its own, on the exact commit it resolved, whatever the branch does
//!    meanwhile (see [`RepositoryCacheConfig`] and ARCHITECTURE.md, "Repository cache"). The
//!    checked-out commit and the tags pointing at it become the report's `repository_log`.
//!    `defaultPlaybook` is resolved inside the checkout.
//! 3. **Inventory and variables.** The execution's hosts (with their `hostVars`, in their
//!    `groups`; for `useDynamicInventory` jobs the engine has merged the account's inventory
//!    into them) go into a JSON inventory file, after the account's inventory sources
//!    ([`AnsibleConfig::inventory_sources`], copied into the workspace) so that the job's own
//!    hosts win. Private keys (the
//!    execution's default key, else the job's, and each host's own key) are decoded into 0600
//!    files, referenced per host as `ansible_ssh_private_key_file`. `properties` go into a JSON
//!    file passed as `-e @file`; `playbookTags` as `--tags`; a restart's host limit as
//!    `--limit @file`. Nothing passes through a shell.
//! 4. **Workspace ready.** The executor calls
//!    [`EventSink::workspace_ready`](runner_core::executor::EventSink::workspace_ready) (the
//!    execution turns RUNNING) and starts `ansible-playbook` in its own process group, stdin
//!    closed, stdout and stderr in one pipe, read by `output.rs`: each chunk (cut at line ends)
//!    goes to the run log ([`EventSink::log`](runner_core::executor::EventSink::log)) and to
//!    the node-local `ansible.log`. git's output during a clone goes the same way.
//! 5. **Events.** The callback plugin `runner_events` (shipped in this crate, next to the normal
//!    stdout callback) writes one JSON line per playbook start, play start, task start, host
//!    result (ok, failed, unreachable, skipped; one per loop item too, and one per retry of an
//!    `until` loop) and playbook end (the recap) to a unix socket in the work directory. A host
//!    result carries a [`TaskResult`](runner_core::executor::TaskResult): `changed`, `msg`,
//!    `stdout`, `stderr`, `rc`, the item, the attempts, the rescued, ignored and handler markers.
//!    Under `no_log: true` the plugin sends only what ansible's own output shows (the censored
//!    result), never the raw one. The executor turns the lines into
//!    [`ExecutorEvent`](runner_core::executor::ExecutorEvent)s as they arrive; the engine then
//!    masks the run's secrets in them and caps their texts. Events name the playbook by its path
//!    in the repository (`playbook.yml` for an inline one). Nothing is parsed out of ansible's
//!    human output.
//! 6. **Report.** Exit code 0 is `Succeeded`. Otherwise `Failed`, with `failed_hosts` = hosts
//!    with failures or unreachable in the recap, hosts that a play aborted (`any_errors_fatal`,
//!    `max_fail_percentage`, as ansible reports them after each play), and target hosts that
//!    never got into the recap (the playbook ended before reaching them, e.g. on a syntax error);
//!    the message gives the exit code and the first failures (not rescued, not ignored) from the
//!    structured results. It never quotes ansible's raw output once the playbook started (a
//!    `no_log` task's failure text would come from there); only when it never started (a syntax
//!    error) does it quote the end of the log, which then holds ansible's error.
//! 7. **Clean-up.** Secret files go as soon as they are not needed (git credentials after the
//!    clone, the rest when ansible-playbook exits) and in every case when the run ends; then
//!    the whole work directory, `ansible.log` included, is removed (unless
//!    [`AnsibleConfig::keep_work_dirs`], which keeps all but the secrets), whether the run
//!    succeeded, failed, was stopped or killed. A node that dies cannot clean up:
//!    [`AnsibleExecutor::claim_work_root`] gives each node a directory of its own under the work
//!    root, held by a `flock`, and removes at start-up what nodes that are gone left there
//!    (workspaces, key files).
//!
//! ## Sandbox
//!
//! With [`AnsibleConfig::sandbox`] (the `runner` server sets it), git and ansible-playbook start
//! inside bubblewrap: the host read-only, a private `/tmp` (also `HOME`), only the run's own
//! workspace writable and the rest of the work root absent, the server's data directory, token
//! and secret files covered, a PID namespace of its own with `--die-with-parent` (no process of a
//! run outlives its node, even after `kill -9`), a cleared environment, the network kept, and an
//! unprivileged user (`nobody` when the server is root). See [`SandboxConfig`] and the
//! ARCHITECTURE.md section "What a run can and cannot see".
//!
//! ## Files in the work directory
//!
//! | path | what | lifetime |
//! |---|---|---|
//! | `ansible.log` | git's and ansible-playbook's stdout and stderr (a copy of the run log) | run |
//! | `checkout/` | the repository (repository jobs) | run |
//! | `playbook.yml` | the decoded inline playbook (inline jobs) | run |
//! | `secrets/` (0700) | `N-inventory.json`, `N-extra-vars.json`, `N-*.key`, git `askpass.sh`, `username`, `password` (0600) | removed when no longer needed |
//! | `limit.txt` | restart host limit, one host per line | run |
//! | `inventory-sources/N/` | a copy of the account's N-th inventory source (`useDynamicInventory`) | run |
//! | `plugins/callback/runner_events.py` | the callback plugin | run |
//! | `events.sock` | the event socket | run |
//! | `stop` | created on a graceful stop | run |
//!
//! The run log lives in the store ([`RunLogStore`](runner_core::store::RunLogStore)); while the
//! run goes, [`AnsibleExecutor::log_path`] tells where its node-local copy is. The play recap per
//! host goes into the report (`RunReport::host_stats`).
//!
//! ## Stop and kill
//!
//! - **Graceful stop** ([`CancelMode::Graceful`](runner_core::executor::CancelMode)): the
//!   executor creates the `stop` file. The `runner_events` callback plugin holds the stop: every
//!   strategy asks ansible's play iterator for each host's next task, and asks only once the
//!   previous task ended on the hosts it waits for; once the file exists, the plugin's hook on the
//!   iterator answers "no task" (not rescue, always or handlers either), so the task in progress
//!   finishes on every host and nothing else starts, and the remaining plays are skipped. The
//!   report says `Stopped`. SIGINT is not used: ansible-playbook aborts the running task on
//!   SIGINT. A stop during the git clone ends the clone (no task has started). Earlier versions
//!   used a strategy plugin for this; ansible-core 2.19 prints a deprecation notice for every
//!   strategy plugin outside `ansible.builtin`, into the user's output, so the executor ships
//!   none, and plays keep whatever strategy they name. Under `free` (hosts do not wait for each
//!   other) a host that had not started the current task yet does not start it.
//! - **Kill** ([`CancelMode::Kill`](runner_core::executor::CancelMode)): SIGKILL to the whole
//!   process group at once (ansible-playbook, its forked workers, the modules and commands they
//!   run), during the clone as well. The executor returns `Killed` only once no process of the
//!   group is alive. Processes that leave the group on purpose (`setsid`, `async` tasks that
//!   daemonize) are out of reach. When ansible-playbook exits normally, what it left behind in
//!   its group is killed too.
//!
//! ## Safety rules
//!
//! - Repository URLs: `https://`, `ssh://` or scp-like `user@host:path` only; `file://` and
//!   `http://` only with [`AnsibleConfig::allow_local_urls`]. URLs starting with `-`, hosts
//!   starting with `-`, and remote-helper transports (`ext::`, `fd::`, anything with `::`) are
//!   refused, by [`Executor::validate`](runner_core::executor::Executor::validate) (field
//!   `repository.url`) and again before cloning. Git runs with `protocol.ext.allow=never`,
//!   `protocol.fd.allow=never`, `protocol.file.allow=never` (unless local URLs are allowed), no
//!   credential helper, no system or global configuration, `GIT_TERMINAL_PROMPT=0`, SSH in
//!   `BatchMode`, stdin closed: it never prompts.
//! - Repository hosts: unless [`AnsibleConfig::allow_local_urls`], a host must be globally
//!   reachable by the rules of [`runner_core::net`]: IP literals and `localhost` names are
//!   refused at validation; before the clone the name is resolved, checked, and git is pinned to
//!   the checked address (`http.curloptResolve`, no redirects; ssh `HostName`/`HostKeyAlias`).
//!   URLs over 2048 bytes, and URLs with credentials in them, are refused always.
//! - A failed clone's message gives a short cause only (`authentication failed`, `repository
//!   not found`, `could not connect ...`); git's own text stays in the log.
//! - `defaultPlaybook` must stay inside the checkout: no absolute path, no `..`, and its
//!   canonical path (symlinks followed) must be under the checkout's; otherwise the run fails
//!   with a message naming `repository.defaultPlaybook`.
//! - Credentials never appear on a command line, in an environment variable or in the log: the
//!   git password is read by a 0700 `GIT_ASKPASS` script from a 0600 file; the repository key is
//!   a 0600 file named in `GIT_SSH_COMMAND` (`-i <file> -o IdentitiesOnly=yes -o
//!   StrictHostKeyChecking=accept-new`); host keys are 0600 files named in the inventory.
//! - A missing `ansible-playbook` fails the run at once with a message saying so;
//!   [`AnsibleExecutor::check_installation`] reports it at startup.
//!
//! ## Environment
//!
//! Sandboxed, ansible-playbook and git get only the variables below and `PATH`, `HOME`, `LANG`
//! (and git its own settings). Without a sandbox, ansible-playbook inherits the server's
//! environment. Either way it gets `ANSIBLE_CALLBACK_PLUGINS` and `ANSIBLE_CALLBACKS_ENABLED`,
//! `ANSIBLE_NOCOLOR=1`, `ANSIBLE_RETRY_FILES_ENABLED=0`, `RUNNER_EVENTS_SOCKET` and
//! `RUNNER_STOP_FILE`. It runs in the checkout (repository jobs, so an `ansible.cfg` there
//! applies) or in the work directory (inline jobs). The two callback variables add to the user's
//! configuration rather than replace it: the executor reads the `ansible.cfg` ansible would read
//! (`ANSIBLE_CONFIG`, the working directory's unless it is world-writable, `~/.ansible.cfg`,
//! `/etc/ansible/ansible.cfg`), or the server's own variables when set, and passes their
//! `callback_plugins` and `callbacks_enabled` with its own plugin in front (ansible's default
//! plugin path when none is set), so a repository's own callback plugins keep running.

mod ansible_cfg;
mod config;
mod error;
mod events;
mod executor;
mod git;
mod inventory;
mod output;
mod process;
mod repository_cache;
mod safety;
mod sandbox;
mod workspace;

pub use config::{AnsibleConfig, default_ansible_playbook, find_on_path};
pub use error::ExecutorSetupError;
pub use executor::AnsibleExecutor;
pub use repository_cache::RepositoryCacheConfig;
pub use sandbox::{SandboxConfig, SandboxUser};
pub use workspace::LOG_FILE;
