//! [`AnsibleConfig`]: where ansible-playbook is, where runs work, what the executor allows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runner_core::ids::AccountAlias;

use crate::repository_cache::RepositoryCacheConfig;
use crate::sandbox::SandboxConfig;

/// How an [`AnsibleExecutor`](crate::AnsibleExecutor) runs playbooks. `Default` suits a server.
#[derive(Clone)]
pub struct AnsibleConfig {
    /// The `ansible-playbook` program. Default: the one on `PATH`, else `./.venv/bin/ansible-playbook`.
    pub ansible_playbook: PathBuf,
    /// The `git` program. Default: `git` (looked up on `PATH`).
    pub git: PathBuf,
    /// Each run works in its own directory under this one. Default: `<temp dir>/runner-work`.
    pub work_root: PathBuf,
    /// Also allow `file://` and `http://` repository URLs, and hosts that are not globally
    /// reachable (loopback, private, link-local, ...: see [`runner_core::net`]), for tests and
    /// air-gapped mirrors. Default: false.
    pub allow_local_urls: bool,
    /// The operator's inventory sources per account (`--inventory-source ALIAS=PATH`): ansible
    /// inventory files, directories, plugin configurations or executable scripts, which a
    /// `useDynamicInventory` run of the account reads (copied into its workspace at each run)
    /// beside the account's inventory hosts. Default: none.
    pub inventory_sources: HashMap<AccountAlias, Vec<PathBuf>>,
    /// Keep a run's work directory (log, checkout, inventory, plugins) after the run instead of
    /// removing it. Secret files are removed either way. Default: false.
    pub keep_work_dirs: bool,
    /// How many bytes of the end of the log a failure message quotes when the playbook never
    /// started (a syntax error: no task has printed anything yet). Default: 2000.
    pub log_tail_bytes: usize,
    /// How long to wait, after ansible-playbook ended, for the last events to arrive. Default: 10 s.
    pub event_drain_timeout: Duration,
    /// The bubblewrap sandbox git and ansible-playbook run in (see [`SandboxConfig`]). Default:
    /// none, for embedding and tests; the `runner` server sets one unless told not to.
    pub sandbox: Option<SandboxConfig>,
    /// The node's repository cache (see [`RepositoryCacheConfig`]): repository runs fetch into a
    /// mirror of their URL and check their commit out from it. Default: none, each run clones
    /// one commit deep; the `runner` server sets one.
    pub repository_cache: Option<RepositoryCacheConfig>,
}

impl Default for AnsibleConfig {
    fn default() -> Self {
        Self {
            ansible_playbook: default_ansible_playbook(),
            git: PathBuf::from("git"),
            work_root: std::env::temp_dir().join("runner-work"),
            allow_local_urls: false,
            inventory_sources: HashMap::new(),
            keep_work_dirs: false,
            log_tail_bytes: 2000,
            event_drain_timeout: Duration::from_secs(10),
            sandbox: None,
            repository_cache: None,
        }
    }
}

impl AnsibleConfig {
    /// The inventory sources of `account` (see [`AnsibleConfig::inventory_sources`]).
    pub fn inventory_sources_of(&self, account: &AccountAlias) -> &[PathBuf] {
        self.inventory_sources
            .get(account)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for AnsibleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnsibleConfig")
            .field("ansible_playbook", &self.ansible_playbook)
            .field("git", &self.git)
            .field("work_root", &self.work_root)
            .field("allow_local_urls", &self.allow_local_urls)
            .field("inventory_sources", &self.inventory_sources)
            .field("keep_work_dirs", &self.keep_work_dirs)
            .field("log_tail_bytes", &self.log_tail_bytes)
            .field("event_drain_timeout", &self.event_drain_timeout)
            .field("sandbox", &self.sandbox)
            .field("repository_cache", &self.repository_cache)
            .finish_non_exhaustive()
    }
}

/// `ansible-playbook` on `PATH`, else `./.venv/bin/ansible-playbook` (which may not exist:
/// [`AnsibleExecutor::check_installation`](crate::AnsibleExecutor::check_installation) says so).
pub fn default_ansible_playbook() -> PathBuf {
    find_on_path("ansible-playbook").unwrap_or_else(|| PathBuf::from(".venv/bin/ansible-playbook"))
}

/// The first executable file called `name` in a directory of `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// True for a regular file with an execute bit.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
