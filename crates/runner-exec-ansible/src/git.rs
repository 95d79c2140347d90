//! Fetching a job's repository into the run's own checkout, with credentials that never appear on
//! a command line, in the environment or in the log, and a git that never prompts: a shallow
//! clone, or, with a [repository cache](crate::repository_cache), an incremental fetch into the
//! node's mirror of the URL and a shallow checkout of the exact commit it resolved.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use runner_core::execution::{Commit, RepositoryLog};
use runner_core::executor::Cancellation;
use runner_core::job::Repository;
use tokio::process::Command;

use crate::output::Output;
use crate::process::{Ended, GroupChild};
use crate::safety::{Pin, Transport};
use crate::sandbox::{SandboxConfig, sandboxed};
use crate::workspace::Workspace;

/// The askpass program git runs for a username or password: it prints the content of a 0600
/// file, so the secret never sits in an environment variable or an argument.
const ASKPASS: &str = r#"#!/bin/sh
case "$1" in
    Username*|username*) exec cat "$RUNNER_GIT_USERNAME_FILE" ;;
    Password*|password*) exec cat "$RUNNER_GIT_PASSWORD_FILE" ;;
esac
exit 1
"#;

/// Environment variables of the server process that could make git prompt, run another helper or
/// read another configuration; removed from every git command.
const CLEARED_GIT_ENV: &[&str] = &[
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_PROXY_COMMAND",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_EXEC_PATH",
    "GIT_ALLOW_PROTOCOL",
];

/// The proxy settings curl reads from the environment.
const PROXY_ENV: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// Why a git command that talks to the repository's server did not succeed.
pub(crate) enum Interrupted {
    /// A kill or stop was asked for.
    Cancelled,
    /// Git failed; the message says why (git's stderr is in the log).
    Failed(String),
}

/// How a clone ended.
pub(crate) enum Cloned {
    /// The checkout is at the returned path.
    Done(PathBuf),
    /// A kill or stop was asked for while cloning.
    Cancelled,
    /// Git failed; the message says why (git's stderr is in the log).
    Failed(String),
}

/// Builds git commands with the run's credentials and the safety settings.
pub(crate) struct Git {
    program: PathBuf,
    env: Vec<(String, String)>,
    transport: Transport,
    pin: Option<Pin>,
    /// The sandbox and the work root, when git runs sandboxed.
    sandbox: Option<(SandboxConfig, PathBuf)>,
    workspace: PathBuf,
    marker: String,
}

impl Git {
    /// Prepares credentials (files in the workspace's secrets) for cloning over `transport`.
    /// With a `pin` (see [`crate::safety::pin_host`]), git connects to the checked address only
    /// and follows no http redirect (which could lead anywhere).
    pub(crate) fn prepare(
        program: &Path,
        repository: &Repository,
        transport: Transport,
        pin: Option<Pin>,
        workspace: &mut Workspace,
        sandbox: Option<(&SandboxConfig, &Path)>,
        marker: &str,
    ) -> Result<Self, String> {
        let mut env = vec![
            ("GIT_TERMINAL_PROMPT".to_string(), "0".to_string()),
            // No system or user configuration: no credential helper, no url rewrites, no hooks.
            ("GIT_CONFIG_NOSYSTEM".to_string(), "1".to_string()),
            ("GIT_CONFIG_GLOBAL".to_string(), "/dev/null".to_string()),
        ];
        let credentials = repository.credentials.as_ref();
        let mut ssh = String::from(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes",
        );
        if let Some(key) = credentials.and_then(|c| c.ssh_private_key.as_ref()) {
            let path = workspace.write_key("repository key", key)?;
            ssh.push_str(" -i ");
            ssh.push_str(&shell_quote(&path.display().to_string()));
        }
        if let (Some(pin), Transport::Ssh) = (&pin, transport) {
            // ssh connects to the checked address; the known host entry stays the name's.
            ssh.push_str(" -o HostName=");
            ssh.push_str(&shell_quote(&pin.address.to_string()));
            ssh.push_str(" -o HostKeyAlias=");
            ssh.push_str(&shell_quote(&pin.host));
        }
        env.push(("GIT_SSH_COMMAND".to_string(), ssh));
        let askpass = workspace
            .write_secret("askpass.sh", ASKPASS.as_bytes(), 0o700)
            .map_err(|error| format!("could not write the askpass program: {error}"))?;
        env.push(("GIT_ASKPASS".to_string(), askpass.display().to_string()));
        if let Some(credentials) = credentials {
            if let (Some(username), Some(password)) = (&credentials.username, &credentials.password)
            {
                let write = |workspace: &mut Workspace, label: &str, value: &str| {
                    workspace
                        .write_secret(label, value.as_bytes(), 0o600)
                        .map_err(|error| format!("could not write the repository {label}: {error}"))
                };
                let user_file = write(workspace, "username", username)?;
                let password_file = write(workspace, "password", password.expose())?;
                env.push((
                    "RUNNER_GIT_USERNAME_FILE".to_string(),
                    user_file.display().to_string(),
                ));
                env.push((
                    "RUNNER_GIT_PASSWORD_FILE".to_string(),
                    password_file.display().to_string(),
                ));
            }
        }
        Ok(Self {
            program: program.to_path_buf(),
            env,
            transport,
            pin,
            sandbox: sandbox.map(|(sandbox, root)| (sandbox.clone(), root.to_path_buf())),
            workspace: workspace.root().to_path_buf(),
            marker: marker.to_owned(),
        })
    }

    /// The environment every git of the run gets: the run's settings, none of the server's.
    fn git_env(&self, command: &mut Command) {
        for name in CLEARED_GIT_ENV {
            command.env_remove(name);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        self.git_env(&mut command);
        command.args([
            "-c",
            "protocol.ext.allow=never",
            "-c",
            "protocol.fd.allow=never",
            "-c",
            "credential.helper=",
            "-c",
            "core.hooksPath=/dev/null",
        ]);
        if self.transport != Transport::File {
            command.args(["-c", "protocol.file.allow=never"]);
        }
        if self.pin.is_some() {
            // A proxy would resolve the name itself, past the check.
            for name in PROXY_ENV {
                command.env_remove(name);
            }
        }
        if let (Some(pin), Transport::Http) = (&self.pin, self.transport) {
            // curl resolves the host to the checked address, and nothing else.
            let address = match pin.address {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            };
            command
                .arg("-c")
                .arg(format!(
                    "http.curloptResolve={}:{}:{address}",
                    pin.host, pin.port
                ))
                .args(["-c", "http.followRedirects=false"]);
        }
        command.stdin(Stdio::null());
        command
    }

    /// `command` in the run's sandbox, when there is one, with `binds` (a mirror) writable.
    fn sandboxed(&self, command: Command, binds: &[&Path]) -> std::io::Result<Command> {
        let (sandbox, work_root) = match &self.sandbox {
            Some((sandbox, root)) => (Some(sandbox), root.as_path()),
            None => (None, self.workspace.as_path()),
        };
        sandboxed(
            sandbox,
            command,
            work_root,
            &self.workspace,
            binds,
            &self.marker,
        )
    }

    /// `git clone --depth 1 [--branch <branch>] -- <url> <workspace>/checkout`, output in the run log (see `output`).
    pub(crate) async fn clone(
        &self,
        repository: &Repository,
        workspace: &Workspace,
        output: &Output,
        cancel: &mut Cancellation,
    ) -> Cloned {
        let checkout = workspace.path("checkout");
        let mut command = self.command();
        command.args(["clone", "--depth", "1", "--no-recurse-submodules"]);
        if let Some(branch) = &repository.branch {
            command.args(["--branch", branch]);
        }
        command.arg("--").arg(repository.url.trim()).arg(&checkout);
        match self
            .run_logged(command, &[], repository, workspace, output, cancel)
            .await
        {
            Ok(()) => Cloned::Done(checkout),
            Err(Interrupted::Cancelled) => Cloned::Cancelled,
            Err(Interrupted::Failed(message)) => Cloned::Failed(message),
        }
    }

    /// Makes `mirror` (an empty directory) a bare repository that serves any commit it holds to
    /// the run's checkout. Runs outside the sandbox: it touches nothing but the new directory,
    /// which the sandbox user does not own yet.
    pub(crate) async fn init_mirror(&self, mirror: &Path) -> Result<(), String> {
        for args in [
            &["init", "--quiet", "--bare"][..],
            &["config", "uploadpack.allowReachableSHA1InWant", "true"],
            // Each fetch's pack is kept as it came: no loose objects to write one by one.
            &["config", "fetch.unpackLimit", "1"],
            // A gc that a fetch starts finishes inside the fetch's sandbox: detached, it would be
            // killed with the sandbox and leave its lock behind.
            &["config", "gc.autoDetach", "false"],
        ] {
            let mut command = self.command();
            command.arg("-C").arg(mirror).args(args);
            quiet_output(command, args)
                .await
                .map_err(|error| format!("could not make a repository mirror: {error}"))?;
        }
        Ok(())
    }

    /// Fetches the job's branch (or the remote's HEAD) and its tags into `mirror`, with the
    /// run's credentials (output in the run log); then makes the run's own checkout of the
    /// commit the fetch resolved, one commit deep, from the mirror. Returns the checkout and
    /// the commit.
    pub(crate) async fn fetch_through(
        &self,
        mirror: &Path,
        repository: &Repository,
        workspace: &Workspace,
        output: &Output,
        cancel: &mut Cancellation,
    ) -> Result<(PathBuf, String), Interrupted> {
        let (source, fetched_ref) = match repository.branch.as_deref() {
            // In a refspec these would make a pattern or a second side; git takes none of them
            // in a branch or tag name anyway (`git check-ref-format`).
            Some(branch) if branch.contains([':', '*', '?', '[', '\\', '^', '~']) => {
                return Err(Interrupted::Failed(
                    "repository.branch is not a name git takes for a branch or a tag".to_owned(),
                ));
            }
            Some(branch) => (branch, format!("refs/runner/named/{branch}")),
            None => ("HEAD", "refs/runner/head".to_owned()),
        };
        let mut command = self.command();
        command
            .arg("-C")
            .arg(mirror)
            .args(["fetch", "--force", "--tags", "--no-recurse-submodules"])
            .arg("--")
            .arg(repository.url.trim())
            .arg(format!("+{source}:{fetched_ref}"));
        self.run_logged(command, &[mirror], repository, workspace, output, cancel)
            .await?;
        let failed = Interrupted::Failed;
        let commit = fetched_commit(mirror).await.map_err(failed)?;
        let checkout = workspace.path("checkout");
        let mut command = Command::new("sh");
        self.git_env(&mut command);
        command
            .args(["-c", CHECKOUT_SCRIPT, "sh"])
            .arg(&checkout)
            .arg(mirror)
            .arg(&commit)
            .arg(&self.program);
        let command = self
            .sandboxed(command, &[mirror])
            .map_err(|error| failed(format!("could not prepare the sandbox: {error}")))?;
        quiet_output(command, &["checkout"]).await.map_err(failed)?;
        Ok((checkout, commit))
    }

    /// Runs a git command that talks to the repository's server: sandboxed (with `binds`),
    /// its output in the run log, ended by a kill or a stop.
    async fn run_logged(
        &self,
        command: Command,
        binds: &[&Path],
        repository: &Repository,
        workspace: &Workspace,
        output: &Output,
        cancel: &mut Cancellation,
    ) -> Result<(), Interrupted> {
        let mut command = self.sandboxed(command, binds).map_err(|error| {
            Interrupted::Failed(format!("could not prepare the sandbox: {error}"))
        })?;
        let (stdout, stderr, capture) = output
            .capture()
            .await
            .map_err(|error| Interrupted::Failed(format!("could not open the log: {error}")))?;
        command.stdout(stdout).stderr(stderr);
        let child = match GroupChild::spawn(command, &self.marker) {
            Ok(child) => child,
            Err(error) => {
                return Err(Interrupted::Failed(format!(
                    "could not run {}: {error}",
                    self.program.display()
                )));
            }
        };
        // A graceful stop also ends the fetch: no task of the playbook has started yet.
        let ended = child.wait(cancel, || true).await;
        capture.finish().await;
        match ended {
            Ok(Ended::Exited(status)) if status.success() => Ok(()),
            // git's own words stay in the log: they tell an open port from a closed one, and
            // can quote the server's answer. The message gives a short cause only.
            Ok(Ended::Exited(status)) => Err(Interrupted::Failed(format!(
                "git clone of {} failed: {} ({status}; git's output is in the run log)",
                repository.url.trim(),
                clone_failure_cause(&crate::workspace::tail(&workspace.log_path(), 8192))
            ))),
            Ok(Ended::Killed) => Err(Interrupted::Cancelled),
            Err(error) => Err(Interrupted::Failed(format!("git clone failed: {error}"))),
        }
    }

    /// The commit `rev` of the repository in `dir` and the tags that point at it; `binds` are
    /// what the sandbox must show (the mirror, when `dir` is one).
    pub(crate) async fn log(
        &self,
        dir: &Path,
        rev: &str,
        binds: &[&Path],
    ) -> Result<RepositoryLog, String> {
        // The tags come in the same command, as the commit's decorations limited to tags.
        let format = "--format=%H%x00%an%x00%ae%x00%aI%x00%s%x00%D";
        let head = self
            .output_in(
                dir,
                &["log", "-1", "--decorate-refs=refs/tags/", format, rev, "--"],
                binds,
            )
            .await?;
        let fields: Vec<&str> = head.trim_end_matches('\n').split('\0').collect();
        let [commit, author, author_email, date, message, decorations] = fields[..] else {
            return Err(format!("unexpected git log output: {head:?}"));
        };
        // `tag: v1, tag: v2`: ref names hold no spaces.
        let tags = decorations
            .split(", ")
            .filter_map(|decoration| decoration.strip_prefix("tag: "))
            .map(str::to_owned)
            .collect();
        Ok(RepositoryLog {
            recent_commit: vec![Commit {
                commit: commit.into(),
                author: author.into(),
                author_email: author_email.into(),
                date: date.into(),
                message: message.into(),
            }],
            tags,
        })
    }

    /// Runs git in `dir` with `args`, sandboxed with `binds`; its stdout, or its stderr in the
    /// error.
    async fn output_in(
        &self,
        dir: &Path,
        args: &[&str],
        binds: &[&Path],
    ) -> Result<String, String> {
        let mut command = self.command();
        command.arg("-C").arg(dir).args(args);
        let command = self
            .sandboxed(command, binds)
            .map_err(|error| format!("could not prepare the sandbox: {error}"))?;
        quiet_output(command, args).await
    }
}

/// Makes the run's checkout (`$1`) of commit `$3` from the mirror `$2`, one commit deep, with
/// the git `$4`: three git commands in one sandbox (each sandbox costs a few milliseconds). The
/// checkout is made without hooks (`--template=`), the fetch may use the file transport alone,
/// and the commit is checked out detached.
const CHECKOUT_SCRIPT: &str = r#"set -e
"$4" init --quiet --template= "$1"
cd "$1"
"$4" -c core.hooksPath=/dev/null -c protocol.allow=never -c protocol.file.allow=always \
    fetch --quiet --depth 1 --no-tags -- "file://$2" "$3"
"$4" -c core.hooksPath=/dev/null -c advice.detachedHead=false checkout --quiet "$3"
"#;

/// The commit the last fetch into `mirror` resolved the ref it was asked for to: the first line
/// of `FETCH_HEAD` not marked `not-for-merge` (the tags `--tags` brought are).
async fn fetched_commit(mirror: &Path) -> Result<String, String> {
    let text = tokio::fs::read_to_string(mirror.join("FETCH_HEAD"))
        .await
        .map_err(|error| format!("could not read what git fetched: {error}"))?;
    text.lines()
        .filter(|line| !line.contains("\tnot-for-merge\t"))
        .filter_map(|line| line.split('\t').next())
        .find(|id| matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .ok_or_else(|| "git fetched no commit".to_owned())
}

/// Runs `command` (git with `args`) to its end; its stdout, or its stderr in the error.
async fn quiet_output(mut command: Command, args: &[&str]) -> Result<String, String> {
    command.kill_on_drop(true);
    let output = command
        .output()
        .await
        .map_err(|error| format!("could not run git: {error}"))?;
    if !output.status.success() {
        // The subcommand, past any `-c name=value`.
        let subcommand = args
            .iter()
            .find(|arg| !arg.starts_with('-') && !arg.contains('='))
            .unwrap_or(&"");
        return Err(format!(
            "git {subcommand} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| "git printed non-UTF-8 text".to_string())
}

/// A short cause of a failed clone, read from git's output: never git's own text.
pub(crate) fn clone_failure_cause(output: &str) -> &'static str {
    let output = output.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|needle| output.contains(needle));
    if any(&["remote branch", "not found in upstream"]) {
        "branch or tag not found"
    } else if any(&[
        "authentication failed",
        "permission denied",
        "could not read username",
        "could not read password",
        "the requested url returned error: 401",
        "the requested url returned error: 403",
    ]) {
        "authentication failed"
    } else if any(&[
        "repository not found",
        "not found",
        "does not appear to be a git repository",
        "returned error: 404",
    ]) {
        "repository not found"
    } else if any(&["host key verification failed"]) {
        "host key verification failed"
    } else if any(&["could not resolve"]) {
        "the host does not resolve"
    } else {
        // Refused, timed out, closed, not speaking git: one answer, so that the message is no
        // port scanner.
        "could not connect or the server did not answer as a git server"
    }
}

/// Quotes a word for the shell that git runs GIT_SSH_COMMAND with.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use runner_core::job::Credentials;
    use runner_core::secret::Secret;

    fn repository(credentials: Credentials) -> Repository {
        Repository {
            url: "git@example.com:acme/playbooks.git".into(),
            branch: None,
            default_playbook: "site.yml".into(),
            credentials: Some(credentials),
        }
    }

    #[test]
    fn ssh_key_goes_to_a_file_named_in_git_ssh_command() {
        let root = tempfile::tempdir().unwrap();
        let mut workspace = Workspace::create(root.path(), "run", false).unwrap();
        let key = base64::engine::general_purpose::STANDARD.encode("PRIVATE KEY MATERIAL\n");
        let repository = repository(Credentials {
            username: None,
            password: None,
            ssh_private_key: Some(Secret::new(key.clone())),
            ssh_key_pair: None,
        });
        let git = Git::prepare(
            Path::new("git"),
            &repository,
            Transport::Ssh,
            None,
            &mut workspace,
            None,
            "test",
        )
        .unwrap();
        let ssh = &git
            .env
            .iter()
            .find(|(k, _)| k == "GIT_SSH_COMMAND")
            .unwrap()
            .1;
        assert!(ssh.contains("-o IdentitiesOnly=yes"), "{ssh}");
        assert!(ssh.contains("StrictHostKeyChecking=accept-new"), "{ssh}");
        let key_path = ssh.split(" -i ").nth(1).unwrap().trim_matches('\'');
        assert_eq!(
            std::fs::read_to_string(key_path).unwrap(),
            "PRIVATE KEY MATERIAL\n"
        );
        for (_, value) in &git.env {
            assert!(!value.contains("PRIVATE KEY") && !value.contains(&key));
        }
        drop(workspace);
        assert!(!Path::new(key_path).exists());
    }

    #[test]
    fn password_is_read_by_askpass_from_a_file() {
        let root = tempfile::tempdir().unwrap();
        let mut workspace = Workspace::create(root.path(), "run", false).unwrap();
        let repository = repository(Credentials {
            username: Some("deploy".into()),
            password: Some(Secret::new("s3cr3t-pw")),
            ssh_private_key: None,
            ssh_key_pair: None,
        });
        let git = Git::prepare(
            Path::new("git"),
            &repository,
            Transport::Http,
            None,
            &mut workspace,
            None,
            "test",
        )
        .unwrap();
        for (_, value) in &git.env {
            assert!(!value.contains("s3cr3t-pw"));
        }
        let env = |name: &str| git.env.iter().find(|(k, _)| k == name).unwrap().1.clone();
        let ask = |prompt: &str| {
            let output = std::process::Command::new(env("GIT_ASKPASS"))
                .arg(prompt)
                .env("RUNNER_GIT_USERNAME_FILE", env("RUNNER_GIT_USERNAME_FILE"))
                .env("RUNNER_GIT_PASSWORD_FILE", env("RUNNER_GIT_PASSWORD_FILE"))
                .output()
                .unwrap();
            String::from_utf8(output.stdout).unwrap()
        };
        assert_eq!(ask("Username for 'https://example.com': "), "deploy");
        assert_eq!(
            ask("Password for 'https://deploy@example.com': "),
            "s3cr3t-pw"
        );
        assert_eq!(env("GIT_TERMINAL_PROMPT"), "0");
    }

    #[test]
    fn a_failed_clone_is_told_in_a_few_words() {
        for (output, cause) in [
            (
                "remote: Repository not found.\nfatal: repository 'https://h/x/' not found",
                "repository not found",
            ),
            (
                "fatal: Authentication failed for 'http://h/r.git/'",
                "authentication failed",
            ),
            (
                "git@h: Permission denied (publickey).",
                "authentication failed",
            ),
            (
                "fatal: Remote branch nope not found in upstream origin",
                "branch or tag not found",
            ),
            (
                "ssh: connect to host h port 3306: Connection refused",
                "could not connect or the server did not answer as a git server",
            ),
            (
                "kex_exchange_identification: Connection closed by remote host",
                "could not connect or the server did not answer as a git server",
            ),
            (
                "fatal: unable to access 'https://h/': Failed to connect to h port 5432",
                "could not connect or the server did not answer as a git server",
            ),
            (
                "ssh: Could not resolve hostname h: Name or service not known",
                "the host does not resolve",
            ),
        ] {
            assert_eq!(clone_failure_cause(output), cause, "{output}");
        }
    }

    #[test]
    fn a_pin_reaches_git_and_ssh() {
        let root = tempfile::tempdir().unwrap();
        let mut workspace = Workspace::create(root.path(), "run", false).unwrap();
        let pin = |host: &str, port, address: &str| Pin {
            host: host.into(),
            port,
            address: address.parse().unwrap(),
        };
        let repository = repository(Credentials {
            username: None,
            password: None,
            ssh_private_key: None,
            ssh_key_pair: None,
        });
        let ssh = Git::prepare(
            Path::new("git"),
            &repository,
            Transport::Ssh,
            Some(pin("example.com", 22, "93.184.215.14")),
            &mut workspace,
            None,
            "marker",
        )
        .unwrap();
        let command = &ssh
            .env
            .iter()
            .find(|(k, _)| k == "GIT_SSH_COMMAND")
            .unwrap()
            .1;
        assert!(
            command.ends_with(" -o HostName='93.184.215.14' -o HostKeyAlias='example.com'"),
            "{command}"
        );
        let https = Git::prepare(
            Path::new("git"),
            &repository,
            Transport::Http,
            Some(pin("example.com", 443, "2606:4700::1111")),
            &mut workspace,
            None,
            "marker",
        )
        .unwrap();
        let args: Vec<String> = https
            .command()
            .as_std()
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.contains(&"http.curloptResolve=example.com:443:[2606:4700::1111]".to_string()),
            "{args:?}"
        );
        assert!(
            args.contains(&"http.followRedirects=false".to_string()),
            "{args:?}"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
