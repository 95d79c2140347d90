//! Repository playbooks (branch, tag, default branch, credentials) and the safety rules.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use runner_core::execution::Outcome;
use runner_core::executor::Executor;
use runner_core::job::{Credentials, Repository};
use runner_core::secret::Secret;
use runner_exec_ansible::{
    AnsibleConfig, AnsibleExecutor, ExecutorSetupError, RepositoryCacheConfig,
};

/// A bare repository with three commits:
/// - A on main, tagged v1;
/// - B on main (its head), adding `evil.yml`, a symlink to /etc/passwd;
/// - C on branch feature, from A.
///
/// `site.yml` writes the commit's letter to `{{ out }}/repo.txt`.
struct Origin {
    url: String,
    a: String,
    b: String,
    c: String,
    bare: PathBuf,
}

fn site(letter: &str) -> String {
    format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: write\n      copy:\n        dest: \"{{{{ out }}}}/repo.txt\"\n        content: \"{letter}\"\n"
    )
}

fn origin(dir: &Path) -> Origin {
    let bare = dir.join("origin.git");
    let work = dir.join("clone");
    std::fs::create_dir_all(&work).unwrap();
    git(
        dir,
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("site.yml"), site("A")).unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "Commit A"]);
    let a = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "v1"]);
    std::fs::write(work.join("site.yml"), site("B")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", work.join("evil.yml")).unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "Commit B"]);
    let b = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "-b", "feature", &a]);
    std::fs::write(work.join("site.yml"), site("C")).unwrap();
    git(&work, &["commit", "-q", "-am", "Commit C"]);
    let c = git(&work, &["rev-parse", "HEAD"]);
    git(
        &work,
        &[
            "push",
            "-q",
            bare.to_str().unwrap(),
            "main",
            "feature",
            "v1",
        ],
    );
    Origin {
        url: format!("file://{}", bare.display()),
        a,
        b,
        c,
        bare,
    }
}

fn repository_spec(
    scene: &Scene,
    url: &str,
    branch: Option<&str>,
    playbook: &str,
) -> runner_core::job::JobSpec {
    let mut spec = inline_spec(scene, "-", vec![local_host("h1")]);
    spec.playbook = None;
    spec.repository = Some(Repository {
        url: url.into(),
        branch: branch.map(Into::into),
        default_playbook: playbook.into(),
        credentials: None,
    });
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_on_a_branch_and_on_a_tag() {
    let scene = Scene::new();
    let origin = origin(scene.dir.path());
    for config in [scene.config(), with_cache(&scene, scene.config())] {
        on_a_branch_and_on_a_tag(&scene, &origin, &AnsibleExecutor::new(config)).await;
    }
}

/// `config` with a repository cache in the scene's directory.
fn with_cache(scene: &Scene, config: AnsibleConfig) -> AnsibleConfig {
    AnsibleConfig {
        repository_cache: Some(RepositoryCacheConfig::new(scene.dir.path().join("cache"))),
        ..config
    }
}

async fn on_a_branch_and_on_a_tag(scene: &Scene, origin: &Origin, executor: &AnsibleExecutor) {
    let spec = repository_spec(scene, &origin.url, Some("feature"), "site.yml");
    let (report, _) = run_to_end(executor, run_of(spec)).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(
        std::fs::read_to_string(scene.marker("repo.txt")).unwrap(),
        "C"
    );
    let log = report.repository_log.unwrap();
    let commit = &log.recent_commit[0];
    assert_eq!(commit.commit, origin.c);
    assert_eq!(commit.author, "Ada Lovelace");
    assert_eq!(commit.author_email, "ada@example.com");
    assert_eq!(commit.message, "Commit C");
    assert!(!commit.date.is_empty());
    assert!(log.tags.is_empty());

    let spec = repository_spec(scene, &origin.url, Some("v1"), "./site.yml");
    let (report, _) = run_to_end(executor, run_of(spec)).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(
        std::fs::read_to_string(scene.marker("repo.txt")).unwrap(),
        "A"
    );
    let log = report.repository_log.unwrap();
    assert_eq!(log.recent_commit[0].commit, origin.a);
    assert_eq!(log.tags, ["v1"]);
}

/// Hostile `defaultPlaybook`s are refused; the symlink one after cloning the default branch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playbooks_outside_the_checkout_are_refused() {
    let scene = Scene::new();
    let origin = origin(scene.dir.path());
    let executor = scene.executor();
    for path in ["../x.yml", "/etc/passwd"] {
        let spec = repository_spec(&scene, &origin.url, None, path);
        let (report, _) = run_to_end(&executor, run_of_unchecked(spec)).await;
        assert_eq!(report.outcome, Outcome::Failed);
        let message = report.message.unwrap();
        assert!(
            message.contains("repository.defaultPlaybook"),
            "{path}: {message}"
        );
    }
    let spec = repository_spec(&scene, &origin.url, None, "evil.yml");
    let (report, _) = run_to_end(&executor, run_of(spec)).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let message = report.message.unwrap();
    assert!(message.contains("outside the repository"), "{message}");
    // The default branch (main) was cloned.
    assert_eq!(
        report.repository_log.unwrap().recent_commit[0].commit,
        origin.b
    );
    assert!(!scene.marker("repo.txt").exists());
}

/// A run of a spec that JobSpec::validate would refuse (to show the executor refuses it too).
fn run_of_unchecked(spec: runner_core::job::JobSpec) -> runner_core::executor::Run {
    let job = runner_core::job::Job::new(runner_core::testkit::fixtures::alias("ACME"), spec, 1);
    let execution = runner_core::execution::Execution::new(&job, None, None, 1);
    runner_core::executor::Run { job, execution }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_urls_are_refused_and_never_run() {
    let scene = Scene::new();
    let pwned = scene.marker("pwned");
    let origin = origin(scene.dir.path());
    let strict = AnsibleExecutor::new(AnsibleConfig {
        allow_local_urls: false,
        ..scene.config()
    });
    let hostile = [
        format!("-oProxyCommand=touch {}", pwned.display()),
        format!("ext::sh -c touch% {}", pwned.display()),
        format!("ssh://-oProxyCommand=touch%20{}/repo", pwned.display()),
        origin.url.clone(),
    ];
    for url in &hostile {
        let spec = repository_spec(&scene, url, None, "site.yml");
        if !url.starts_with('-') {
            let errors = strict.validate(&spec).unwrap_err();
            assert_eq!(errors.errors[0].field, "repository.url", "{url}");
        }
        let (report, events) = run_to_end(&strict, run_of_unchecked(spec)).await;
        assert_eq!(report.outcome, Outcome::Failed, "{url}");
        assert!(
            report
                .message
                .as_deref()
                .unwrap()
                .contains("repository.url"),
            "{url}: {report:?}"
        );
        assert!(
            events.is_empty(),
            "{url}: the workspace must not become ready"
        );
    }
    assert!(!pwned.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_ansible_playbook_fails_at_once() {
    let scene = Scene::new();
    let executor = AnsibleExecutor::new(AnsibleConfig {
        ansible_playbook: scene.dir.path().join("no/ansible-playbook"),
        ..scene.config()
    });
    let error = executor.check_installation().unwrap_err();
    assert!(
        matches!(error, ExecutorSetupError::Missing { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("missing"));
    let spec = inline_spec(
        &scene,
        "- hosts: all\n  tasks: []\n",
        vec![local_host("h1")],
    );
    let (report, _) = run_to_end(&executor, run_of(spec)).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report
            .message
            .unwrap()
            .contains("ansible-playbook is missing")
    );

    let version = scene.executor().check_installation().unwrap();
    assert!(
        version.starts_with(|c: char| c.is_ascii_digit()),
        "{version}"
    );
}

/// Username and password reach git through GIT_ASKPASS: a clone over http with basic auth works
/// with the right password, fails (without hanging on a prompt) with a wrong one, and the
/// password is in neither the log nor the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_repository_with_username_and_password() {
    let scene = Scene::new();
    let origin = origin(scene.dir.path());
    let port = serve_with_basic_auth(&origin.bare, "deploy", "pa55-w0rd-xyz");
    let url = format!("http://127.0.0.1:{port}/origin.git");
    // Kept, to read the logs after the runs.
    let config = AnsibleConfig {
        keep_work_dirs: true,
        ..scene.config()
    };
    for config in [config.clone(), with_cache(&scene, config)] {
        with_username_and_password(&scene, &origin, &url, &AnsibleExecutor::new(config)).await;
    }
    // The mirror keeps neither the password nor a remote.
    let cache = scene.dir.path().join("cache");
    for entry in std::fs::read_dir(&cache).unwrap() {
        let mirror = entry.unwrap().path();
        if mirror.is_dir() {
            let config = std::fs::read_to_string(mirror.join("config")).unwrap();
            assert!(
                !config.contains("pa55") && !config.contains("[remote"),
                "{config}"
            );
        }
    }
}

async fn with_username_and_password(
    scene: &Scene,
    origin: &Origin,
    url: &str,
    executor: &AnsibleExecutor,
) {
    let with_password = |password: &str| {
        let mut spec = repository_spec(scene, url, Some("main"), "site.yml");
        spec.repository.as_mut().unwrap().credentials = Some(Credentials {
            username: Some("deploy".into()),
            password: Some(Secret::new(password)),
            ssh_private_key: None,
            ssh_key_pair: None,
        });
        run_of(spec)
    };
    let refused = |report: runner_core::execution::RunReport, progress: Vec<_>| {
        assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
        let message = report.message.unwrap();
        // A short cause, not git's own words (those stay in the log).
        assert!(
            message.contains("failed: authentication failed"),
            "{message}"
        );
        assert!(!message.contains("fatal:"), "{message}");
        let log = log_of(&progress);
        assert!(
            log.contains("Authentication failed"),
            "git's output is in the run log: {log}"
        );
        assert!(!log.contains("wrong-password"));
    };

    let (report, progress) = run_to_end(executor, with_password("wrong-password")).await;
    refused(report, progress);

    let (report, progress) = run_to_end(executor, with_password("pa55-w0rd-xyz")).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(
        report.repository_log.unwrap().recent_commit[0].commit,
        origin.b
    );
    assert!(!log_of(&progress).contains("pa55-w0rd-xyz"));
    assert_eq!(
        std::fs::read_to_string(scene.marker("repo.txt")).unwrap(),
        "B"
    );

    // What an earlier run fetched is no way in: every run's fetch asks the server.
    std::fs::remove_file(scene.marker("repo.txt")).unwrap();
    let (report, progress) = run_to_end(executor, with_password("wrong-password")).await;
    refused(report, progress);
    assert!(!scene.marker("repo.txt").exists());
}

/// A smart-HTTP git server on 127.0.0.1 (git http-backend as CGI) that wants basic auth.
fn serve_with_basic_auth(bare: &Path, user: &str, password: &str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let root = bare.parent().unwrap().to_path_buf();
    let expected = format!("Basic {}", b64(&format!("{user}:{password}")));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (root, expected) = (root.clone(), expected.clone());
            std::thread::spawn(move || {
                let _ = handle(stream, &root, &expected);
            });
        }
    });
    port
}

fn handle(mut stream: std::net::TcpStream, root: &Path, expected: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut parts = request.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut body = vec![0; header("content-length").parse().unwrap_or(0)];
    reader.read_exact(&mut body)?;
    if header("authorization") != expected {
        return stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cgi = Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", "deploy")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    cgi.stdin.take().unwrap().write_all(&body)?;
    let output = cgi.wait_with_output()?;
    let split = output
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            output
                .stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        })
        .unwrap_or((output.stdout.len(), 0));
    let head = String::from_utf8_lossy(&output.stdout[..split.0]).into_owned();
    let payload = &output.stdout[split.0 + split.1..];
    let mut status = "200 OK".to_owned();
    let mut response = String::new();
    for line in head.lines() {
        match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => {
                status = value.trim().to_owned()
            }
            Some(_) => response.push_str(&format!("{line}\r\n")),
            None => {}
        }
    }
    stream.write_all(
        format!(
            "HTTP/1.1 {status}\r\n{response}Content-Length: {}\r\nConnection: close\r\n\r\n",
            payload.len()
        )
        .as_bytes(),
    )?;
    stream.write_all(payload)
}

/// A stop while git is cloning (from a server that never answers) ends the clone at once: the
/// run is Stopped, the playbook never starts and no git process is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_during_the_clone_ends_git() {
    let scene = Scene::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts connections and never answers them.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let url = format!("http://127.0.0.1:{port}/silent.git");
    let spec = repository_spec(&scene, &url, None, "site.yml");
    let mut background = start(&scene.executor(), run_of(spec));
    let deadline = std::time::Instant::now() + SCENARIO_TIMEOUT;
    while processes_with(&url).is_empty() {
        assert!(std::time::Instant::now() < deadline, "git never started");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    background
        .handle
        .request(runner_core::executor::CancelMode::Graceful);
    let events = &mut background.events;
    let report = tokio::time::timeout(SCENARIO_TIMEOUT, &mut background.report)
        .await
        .expect("the run did not end")
        .unwrap();
    assert_eq!(report.outcome, Outcome::Stopped, "{report:?}");
    assert_eq!(processes_with(&url), Vec::<(String, String)>::new());
    // git's output may have come; the workspace must not have become ready.
    while let Ok(progress) = events.try_recv() {
        assert!(
            matches!(progress, runner_core::executor::Progress::Log(_)),
            "the workspace must not become ready: {progress:?}"
        );
    }
}
