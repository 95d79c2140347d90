//! A private repository cloned over SSH with the job's private key, end to end: a real sshd on
//! 127.0.0.1 (started by the test, with a throwaway configuration), the executor's own
//! `GIT_SSH_COMMAND`, the real ansible-playbook.
//!
//! The executor's ssh trusts a new host key (`StrictHostKeyChecking=accept-new`) and records it in
//! the server user's `~/.ssh/known_hosts` (ssh takes the home directory from the password
//! database, not from `HOME`). So that the test neither writes to the real `~/.ssh` nor depends on
//! it (a reused port with another host key would fail), the executor's `git` is a wrapper that
//! puts an `ssh` first on `PATH` which only adds `-o UserKnownHostsFile=<temp>` and
//! `-o GlobalKnownHostsFile=/dev/null`; every option the executor passes still applies. The test
//! then checks that the host key was accepted into that file.
//!
//! Needs `/usr/sbin/sshd` (or `RUNNER_SSHD`): run `scripts/ensure-sshd.sh`.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::*;
use runner_core::execution::Outcome;
use runner_core::job::{Credentials, JobSpec, Repository};
use runner_core::secret::Secret;
use runner_exec_ansible::{AnsibleConfig, AnsibleExecutor};

/// How long sshd may take to print a line the test waits for before the test fails.
const SSHD_TIMEOUT: Duration = Duration::from_secs(60);

/// The sshd to test with: `RUNNER_SSHD`, else `/usr/sbin/sshd`. Panics when there is none.
fn sshd_program() -> PathBuf {
    let path = std::env::var_os("RUNNER_SSHD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"));
    assert!(
        path.is_file(),
        "sshd not found at {} (RUNNER_SSHD, else /usr/sbin/sshd): run scripts/ensure-sshd.sh",
        path.display()
    );
    path
}

/// Runs a program, panicking with its output on failure; returns stdout.
fn stdout_of(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{program} does not run: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// An ed25519 key pair generated without a passphrase.
struct KeyPair {
    private: String,
    public: String,
    /// `SHA256:...`, as sshd logs it.
    fingerprint: String,
}

impl KeyPair {
    fn generate(dir: &Path, name: &str) -> Self {
        let path = dir.join(name);
        let file = path.to_str().unwrap();
        stdout_of(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file],
        );
        let listing = stdout_of("ssh-keygen", &["-l", "-f", &format!("{file}.pub")]);
        Self {
            private: std::fs::read_to_string(&path).unwrap(),
            public: std::fs::read_to_string(format!("{file}.pub")).unwrap(),
            fingerprint: listing.split_whitespace().nth(1).unwrap().to_owned(),
        }
    }

    /// The key as a job carries it (base64 of the key file).
    fn base64(&self) -> String {
        b64(&self.private)
    }

    /// Fails if the key, in any form a leak would take, is in `text`.
    fn assert_not_in(&self, text: &str, what: &str) {
        // The longest base64 line of the PEM body: part of the key material itself.
        let body = self
            .private
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .max_by_key(|line| line.len())
            .unwrap();
        assert!(
            !text.contains(body) && !text.contains(&self.base64()),
            "the private key is in {what}"
        );
    }
}

/// An sshd on 127.0.0.1 with a throwaway configuration: a fresh host key, one authorized client
/// key, public keys only. Killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    /// sshd's log (`-e`), one line at a time, as it writes it.
    lines: Receiver<String>,
    /// The lines received so far, for failure messages.
    seen: Vec<String>,
    host_public_key: String,
}

impl Sshd {
    fn start(dir: &Path, authorized: &KeyPair) -> Self {
        let program = sshd_program();
        let host_key = KeyPair::generate(dir, "host_ed25519");
        let authorized_keys = dir.join("authorized_keys");
        std::fs::write(&authorized_keys, &authorized.public).unwrap();
        // The free port is found by binding and releasing it; should another process take it
        // in between, sshd says so and we try another one.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1:{port}\n\
                     HostKey {host_key}\n\
                     AuthorizedKeysFile {authorized_keys}\n\
                     PidFile {pid}\n\
                     AuthenticationMethods publickey\n\
                     PubkeyAuthentication yes\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     PermitRootLogin prohibit-password\n\
                     UsePAM no\n\
                     StrictModes no\n\
                     LogLevel VERBOSE\n",
                    host_key = dir.join("host_ed25519").display(),
                    authorized_keys = authorized_keys.display(),
                    pid = dir.join("sshd.pid").display(),
                ),
            )
            .unwrap();
            let mut child = Command::new(&program)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|error| panic!("{} does not run: {error}", program.display()));
            let stderr = child.stderr.take().unwrap();
            let (sender, lines) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
            let mut sshd = Self {
                child,
                port,
                lines,
                seen: Vec::new(),
                host_public_key: host_key.public.clone(),
            };
            match sshd.next_line_with(&format!("Server listening on 127.0.0.1 port {port}")) {
                Ok(_) => return sshd,
                Err(_)
                    if sshd
                        .seen
                        .iter()
                        .any(|l| l.contains("Address already in use")) =>
                {
                    continue;
                }
                Err(why) => panic!(
                    "sshd ({}) did not start ({why}); its log:\n{}\n(run scripts/ensure-sshd.sh)",
                    program.display(),
                    sshd.seen.join("\n")
                ),
            }
        }
        panic!("sshd found no free port on 127.0.0.1 in five tries");
    }

    /// Waits for sshd's next log line containing `needle` and returns it; an error when sshd
    /// ended or was silent for [`SSHD_TIMEOUT`].
    fn next_line_with(&mut self, needle: &str) -> Result<String, &'static str> {
        let deadline = Instant::now() + SSHD_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err("timed out"),
                Err(RecvTimeoutError::Disconnected) => return Err("sshd exited"),
            }
        }
    }

    /// Like [`Self::next_line_with`], panicking with sshd's log on failure.
    fn expect_line(&mut self, needle: &str) -> String {
        self.next_line_with(needle).unwrap_or_else(|why| {
            panic!(
                "sshd never logged {needle:?} ({why}); its log:\n{}",
                self.seen.join("\n")
            )
        })
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare repository `origin.git` with one commit whose `site.yml` writes `ssh` to
/// `{{ out }}/repo.txt`; returns its path and the commit.
fn origin(dir: &Path) -> (PathBuf, String) {
    let bare = dir.join("origin.git");
    let work = dir.join("clone");
    std::fs::create_dir_all(&work).unwrap();
    git(
        dir,
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(
        work.join("site.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: write\n      copy:\n        dest: \"{{ out }}/repo.txt\"\n        content: ssh\n",
    )
    .unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "Playbook over SSH"]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    (bare, commit)
}

/// An executor whose git sees an `ssh` that keeps known hosts in `dir/known_hosts` (see the
/// module docs); the work directories are kept, to show the key file is gone from them.
fn executor(scene: &Scene, dir: &Path) -> AnsibleExecutor {
    let real_git = runner_exec_ansible::find_on_path("git").expect("git on PATH");
    let real_ssh = runner_exec_ansible::find_on_path("ssh").expect("ssh on PATH");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = |path: &Path, text: String| {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    script(
        &bin.join("ssh"),
        format!(
            "#!/bin/sh\nexec '{}' -o UserKnownHostsFile='{}' -o GlobalKnownHostsFile=/dev/null \"$@\"\n",
            real_ssh.display(),
            dir.join("known_hosts").display()
        ),
    );
    let wrapper = dir.join("git");
    script(
        &wrapper,
        format!(
            "#!/bin/sh\nPATH='{}':\"$PATH\" exec '{}' \"$@\"\n",
            bin.display(),
            real_git.display()
        ),
    );
    AnsibleExecutor::new(AnsibleConfig {
        git: wrapper,
        keep_work_dirs: true,
        ..scene.config()
    })
}

/// A job cloning `url` with `key` and running `site.yml` on a local host.
fn spec_with_key(scene: &Scene, url: &str, key: &KeyPair) -> JobSpec {
    let mut spec = inline_spec(scene, "-", vec![local_host("h1")]);
    spec.playbook = None;
    spec.repository = Some(Repository {
        url: url.into(),
        branch: Some("main".into()),
        default_playbook: "site.yml".into(),
        credentials: Some(Credentials {
            username: None,
            password: None,
            ssh_private_key: Some(Secret::new(key.base64())),
            ssh_key_pair: None,
        }),
    });
    spec
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files.extend(files_under(&entry.path()));
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    files
}

/// The job's key reaches ssh through the executor's `GIT_SSH_COMMAND`: sshd accepts exactly that
/// key, the playbook from the repository runs, the commit is reported, the unknown host key is
/// accepted without a prompt, and the key file is gone after the run and never in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_repository_over_ssh_with_a_private_key() {
    let scene = Scene::new();
    let dir = scene.dir.path();
    let client = KeyPair::generate(dir, "client_ed25519");
    let (bare, commit) = origin(dir);
    let mut sshd = Sshd::start(dir, &client);
    let user = stdout_of("id", &["-un"]);
    let url = format!("ssh://{user}@127.0.0.1:{}{}", sshd.port, bare.display());
    let executor = executor(&scene, dir);

    let run = run_of(spec_with_key(&scene, &url, &client));
    let log_path = executor.log_path(&run.execution);
    let (report, _) = run_to_end(&executor, run).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    let repository_log = report.repository_log.as_ref().unwrap();
    assert_eq!(repository_log.recent_commit[0].commit, commit);
    assert_eq!(repository_log.recent_commit[0].message, "Playbook over SSH");
    assert_eq!(
        std::fs::read_to_string(scene.marker("repo.txt")).unwrap(),
        "ssh"
    );
    // sshd let the clone in with the job's key (its fingerprint is in the log line).
    let accepted = sshd.expect_line("Accepted publickey");
    assert!(
        accepted.contains(&format!("for {user} from 127.0.0.1"))
            && accepted.contains(&client.fingerprint),
        "{accepted}"
    );
    // The unknown host key was accepted (accept-new) into the isolated known_hosts, and only
    // there. ssh-keygen -F finds the entry even when ssh hashed the host name (Debian's default).
    let host = format!("[127.0.0.1]:{}", sshd.port);
    let known_hosts = dir.join("known_hosts");
    let found = stdout_of(
        "ssh-keygen",
        &["-F", &host, "-f", known_hosts.to_str().unwrap()],
    );
    let host_key_blob = sshd.host_public_key.split_whitespace().nth(1).unwrap();
    assert!(found.contains(host_key_blob), "{found}");
    let home = stdout_of("sh", &["-c", "getent passwd \"$(id -u)\" | cut -d: -f6"]);
    let real = Path::new(&home).join(".ssh/known_hosts");
    if real.exists() {
        let output = Command::new("ssh-keygen")
            .args(["-F", &host, "-f"])
            .arg(&real)
            .output()
            .unwrap();
        assert!(
            output.stdout.is_empty(),
            "{host} was added to {}",
            real.display()
        );
    }

    // The work directory is kept (checkout included), but no file in it holds the key.
    let work_dir = log_path.parent().unwrap();
    assert!(work_dir.join("checkout/site.yml").is_file());
    assert!(!work_dir.join("secrets").exists());
    for file in files_under(&scene.work) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        client.assert_not_in(&text, &file.display().to_string());
    }
    let log = std::fs::read_to_string(&log_path).unwrap();
    client.assert_not_in(&log, "the log");
    client.assert_not_in(&format!("{report:?}"), "the report");
}

/// A key that sshd does not accept fails the run at once (BatchMode: no prompt) with a message
/// saying the clone failed and why, without the key; the playbook never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_fails_the_clone() {
    let scene = Scene::new();
    let dir = scene.dir.path();
    let client = KeyPair::generate(dir, "client_ed25519");
    let wrong = KeyPair::generate(dir, "wrong_ed25519");
    let (bare, _) = origin(dir);
    let mut sshd = Sshd::start(dir, &client);
    let user = stdout_of("id", &["-un"]);
    let url = format!("ssh://{user}@127.0.0.1:{}{}", sshd.port, bare.display());
    let executor = executor(&scene, dir);

    let run = run_of(spec_with_key(&scene, &url, &wrong));
    let log_path = executor.log_path(&run.execution);
    let (report, events) = run_to_end(&executor, run).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    let message = report.message.as_deref().unwrap();
    assert!(
        message.contains(&format!("git clone of {url} failed")),
        "{message}"
    );
    // A short cause, not ssh's own words (those stay in the log).
    assert!(message.contains("authentication failed"), "{message}");
    assert!(!message.contains("Permission denied"), "{message}");
    assert!(
        std::fs::read_to_string(&log_path)
            .unwrap()
            .contains("Permission denied (publickey)")
    );
    assert!(report.repository_log.is_none());
    // Only git's output came: the workspace never became ready.
    assert!(
        events
            .iter()
            .all(|progress| matches!(progress, runner_core::executor::Progress::Log(_))),
        "the workspace must not become ready: {events:?}"
    );
    assert!(log_of(&events).contains("Permission denied (publickey)"));
    wrong.assert_not_in(&log_of(&events), "the run log");
    assert!(!scene.marker("repo.txt").exists());
    wrong.assert_not_in(message, "the report message");
    wrong.assert_not_in(&std::fs::read_to_string(&log_path).unwrap(), "the log");
    assert!(!log_path.parent().unwrap().join("secrets").exists());
    // sshd saw the connection end without a login.
    sshd.expect_line("Connection closed by authenticating user");
    assert!(
        !sshd.seen.iter().any(|line| line.contains("Accepted")),
        "{:?}",
        sshd.seen
    );
}
