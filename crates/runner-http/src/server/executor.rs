//! The executor the binary runs executions with.
//!
//! With the `ansible` feature, [`ServerExecutor`] is `runner_exec_ansible::AnsibleExecutor`.
//! Without it, [`NoExecutor`] fails every run with a message naming the missing feature, so that
//! the API still works (jobs can be defined) and no execution silently "succeeds".

use runner_core::execution::RunReport;
use runner_core::executor::{Cancellation, EventSink, Executor, Run};

/// An executor that refuses to run anything: this binary was built without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExecutor;

impl Executor for NoExecutor {
    async fn run(&self, _run: Run, _events: EventSink, _cancel: Cancellation) -> RunReport {
        RunReport::failed("this runner was built without an executor (cargo feature `ansible`)")
    }
}

/// The executor type of this build.
#[cfg(feature = "ansible")]
pub type ServerExecutor = runner_exec_ansible::AnsibleExecutor;

/// The executor type of this build.
#[cfg(not(feature = "ansible"))]
pub type ServerExecutor = NoExecutor;

/// Builds the executor. `allow_local_repositories` lets jobs use `file://` and `http://`
/// repositories.
#[cfg(feature = "ansible")]
pub fn build(allow_local_repositories: bool) -> ServerExecutor {
    let config = runner_exec_ansible::AnsibleConfig {
        allow_local_urls: allow_local_repositories,
        ..runner_exec_ansible::AnsibleConfig::default()
    };
    let executor = runner_exec_ansible::AnsibleExecutor::new(config);
    // The API stays useful without ansible-playbook (jobs can be defined and read), so a missing
    // installation is a loud warning, not a refusal to start; each run then fails saying why.
    match executor.check_installation() {
        Ok(version) => tracing::info!(%version, allow_local_repositories, "ansible-playbook found"),
        Err(error) => {
            tracing::warn!(%error, "ansible-playbook is not usable: executions will fail");
        }
    }
    executor
}

/// Builds the executor (this build has none; see [`NoExecutor`]).
#[cfg(not(feature = "ansible"))]
pub fn build(allow_local_repositories: bool) -> ServerExecutor {
    let _ = allow_local_repositories;
    tracing::warn!("built without the `ansible` feature: every execution will fail");
    NoExecutor
}
