//! The executor the binary runs executions with.
//!
//! With the `ansible` feature, [`ServerExecutor`] is `runner_exec_ansible::AnsibleExecutor`, in
//! its bubblewrap sandbox (see `runner_exec_ansible::SandboxConfig`). Without it, [`NoExecutor`]
//! fails every run with a message naming the missing feature, so that the API still works (jobs
//! can be defined) and no execution silently "succeeds".

use std::path::PathBuf;

use runner_core::execution::RunReport;
use runner_core::executor::{Cancellation, EventSink, Executor, Run};

use super::cli::ServeArgs;
use super::serve::ServeError;

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

/// The server's files a run must not see: the data directory, the token file, the secret
/// files named on the command line, and every account's inventory sources (a run reads its own
/// account's from a copy in its workspace). Paths that do not exist are kept (the sandbox skips
/// them).
pub fn hidden_paths(args: &ServeArgs) -> Vec<PathBuf> {
    let mut hidden = Vec::new();
    if let super::any_store::StoreSpec::Sled(dir) = &args.store {
        hidden.push(dir.clone());
    }
    let jwt = args.jwt_secret_file.is_some() || args.jwt_public_key.is_some();
    match &args.token_file {
        Some(path) => hidden.push(path.clone()),
        None if !jwt => hidden.push(super::tokens::default_token_file(&args.store)),
        None => {}
    }
    hidden.extend(args.jwt_secret_file.iter().cloned());
    hidden.extend(args.jwt_public_key.iter().cloned());
    hidden.extend(args.callback_signing_secret_file.iter().cloned());
    hidden.extend(args.inventory_sources.iter().map(|(_, path)| path.clone()));
    hidden
}

/// The sandbox user: `--sandbox-user`, else `nobody` when the server runs as root, else none
/// (runs run as the server's own, unprivileged, user).
#[cfg(feature = "ansible")]
fn sandbox_user(args: &ServeArgs) -> Result<Option<runner_exec_ansible::SandboxUser>, ServeError> {
    use runner_exec_ansible::SandboxUser;
    let result = match &args.sandbox_user {
        Some(name) => SandboxUser::lookup(name).map(Some),
        None => SandboxUser::server_default(),
    };
    result.map_err(|error| format!("--sandbox-user: {error}").into())
}

/// Builds the executor: claims the work root (removing what runs of a dead incarnation left),
/// and checks that the sandbox can be made. A sandbox that cannot be made stops the server,
/// unless `--unsafe-no-sandbox`.
#[cfg(feature = "ansible")]
pub async fn build(args: &ServeArgs) -> Result<ServerExecutor, ServeError> {
    use runner_exec_ansible::{
        AnsibleConfig, AnsibleExecutor, RepositoryCacheConfig, SandboxConfig,
    };

    let sandbox = if args.unsafe_no_sandbox {
        tracing::error!(
            "UNSAFE: --unsafe-no-sandbox: playbooks run WITHOUT the sandbox; they can read the \
             server's data directory, tokens and other runs' files, and outlive a kill"
        );
        None
    } else {
        Some(SandboxConfig {
            bwrap: args.bwrap.clone(),
            user: sandbox_user(args)?,
            hidden: hidden_paths(args),
        })
    };
    let repository_cache = (args.repository_cache_bytes > 0).then(|| RepositoryCacheConfig {
        dir: args.repository_cache.clone(),
        max_bytes: args.repository_cache_bytes,
    });
    if let Some(cache) = &repository_cache {
        let absolute = |path: &std::path::Path| {
            std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
        };
        if absolute(&cache.dir).starts_with(absolute(&args.work_root)) {
            return Err(format!(
                "--repository-cache {} is inside --work-root {}, whose leftovers a starting \
                 node removes: give it a directory of its own",
                cache.dir.display(),
                args.work_root.display()
            )
            .into());
        }
    }
    let config = AnsibleConfig {
        allow_local_urls: args.allow_local_repositories,
        work_root: args.work_root.clone(),
        sandbox,
        repository_cache,
        inventory_sources: inventory_sources(args),
        ..AnsibleConfig::default()
    };
    let (executor, removed) = AnsibleExecutor::claim_work_root(config).map_err(|error| {
        format!(
            "cannot use the work root {}: {error}",
            args.work_root.display()
        )
    })?;
    if removed > 0 {
        tracing::info!(
            removed,
            work_root = %args.work_root.display(),
            "removed what runs of an earlier incarnation left behind"
        );
    }
    if let Some(sandbox) = &executor.config().sandbox {
        sandbox
            .check(&executor.config().work_root)
            .await
            .map_err(|error| {
                format!(
                    "the run sandbox cannot be made ({error}); install bubblewrap \
                     (scripts/ensure-bwrap.sh) or, at your own risk, start with --unsafe-no-sandbox"
                )
            })?;
        let user = sandbox
            .user
            .as_ref()
            .map_or("(the server's own)", |user| user.name.as_str());
        tracing::info!(user, "runs start in a bubblewrap sandbox");
        // Like a missing ansible-playbook, one the sandbox user cannot run is a warning.
        let ansible = &executor.config().ansible_playbook;
        if let Err(error) = sandbox
            .check_program(&executor.config().work_root, ansible, &["--version"])
            .await
        {
            tracing::warn!(
                %error,
                user,
                "ansible-playbook does not run in the sandbox: executions will fail (its \
                 interpreter and libraries must be readable by the sandbox user)"
            );
        }
    }
    // The API stays useful without ansible-playbook (jobs can be defined and read), so a missing
    // installation is a loud warning, not a refusal to start; each run then fails saying why.
    match executor.check_installation() {
        Ok(version) => tracing::info!(
            %version,
            allow_local_repositories = args.allow_local_repositories,
            "ansible-playbook found"
        ),
        Err(error) => {
            tracing::warn!(%error, "ansible-playbook is not usable: executions will fail");
        }
    }
    Ok(executor)
}

/// `--inventory-source` by account.
#[cfg(feature = "ansible")]
fn inventory_sources(
    args: &ServeArgs,
) -> std::collections::HashMap<runner_core::ids::AccountAlias, Vec<PathBuf>> {
    let mut sources = std::collections::HashMap::<_, Vec<PathBuf>>::new();
    for (alias, path) in &args.inventory_sources {
        sources.entry(alias.clone()).or_default().push(path.clone());
    }
    sources
}

/// Builds the executor (this build has none; see [`NoExecutor`]).
#[cfg(not(feature = "ansible"))]
pub async fn build(args: &ServeArgs) -> Result<ServerExecutor, ServeError> {
    let _ = args;
    tracing::warn!("built without the `ansible` feature: every execution will fail");
    Ok(NoExecutor)
}
