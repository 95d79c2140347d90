//! [`ExecutorSetupError`]: what [`AnsibleExecutor::check_installation`](crate::AnsibleExecutor::check_installation) finds wrong.

use std::path::PathBuf;

/// Why ansible-playbook cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorSetupError {
    /// No executable at the configured path (or on `PATH` for a bare name).
    #[error(
        "ansible-playbook is missing: {path} is not an executable file (install ansible-core, e.g. with scripts/ensure-ansible.sh, or set AnsibleConfig::ansible_playbook)"
    )]
    Missing {
        /// The configured program.
        path: PathBuf,
    },
    /// It could not be started.
    #[error("could not run {path}: {source}")]
    Spawn {
        /// The program.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `ansible-playbook --version` failed.
    #[error("{path} --version failed ({status}): {output}")]
    VersionFailed {
        /// The program.
        path: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        output: String,
    },
    /// `ansible-playbook --version` did not answer in time.
    #[error("{path} --version did not answer within {seconds} s")]
    TimedOut {
        /// The program.
        path: PathBuf,
        /// How long it was given.
        seconds: u64,
    },
}
