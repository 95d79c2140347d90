//! The differential suite: each playbook of `tests/differential/` runs once with bare
//! `ansible-playbook` and once through the server (the real router, engine and Ansible
//! executor), and the two runs must agree on the outcome, the per-host recap, the order of the
//! tasks, and the lines the default callback printed (the server's run log).
//!
//! Lines are compared after what must differ is taken out: the result bodies after ` => ` (they
//! hold times and paths), the directories of included files, the banner's row of asterisks; and
//! within each task, the order of the hosts' lines (forks finish in any order).
#![cfg(feature = "ansible")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use http_body_util::BodyExt;
use runner_core::engine::{Engine, RunningEngine};
use runner_exec_ansible::{AnsibleConfig, AnsibleExecutor};
use runner_http::{ApiConfig, TokenFile, router};
use runner_store_memory::MemoryStore;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "admin-token-0123456789abcdef";
const HOSTS: [&str; 3] = ["h1", "h2", "h3"];
/// The longest one playbook may take through the server before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(180);

type Running = RunningEngine<
    MemoryStore,
    AnsibleExecutor,
    runner_core::notifier::NoopNotifier,
    runner_core::time::SystemClock,
>;

fn ansible_playbook() -> PathBuf {
    std::env::var_os("RUNNER_ANSIBLE_PLAYBOOK")
        .map(PathBuf::from)
        .or_else(|| runner_exec_ansible::find_on_path("ansible-playbook"))
        .expect(
            "ansible-playbook is required: run scripts/ensure-ansible.sh (RUNNER_ANSIBLE_PLAYBOOK)",
        )
}

fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A git repository holding a copy of `tests/differential/<name>`.
fn repository(root: &Path, name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/differential")
        .join(name);
    let copy = root.join(name);
    let status = Command::new("cp")
        .arg("-a")
        .arg(&source)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    git(&copy, &["init", "-q", "-b", "main"]);
    git(&copy, &["add", "."]);
    git(&copy, &["commit", "-q", "-m", "corpus"]);
    copy
}

fn host_vars() -> Value {
    json!({
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    })
}

/// What a run came to, as the suite compares it.
#[derive(Debug, PartialEq)]
struct Outcome {
    succeeded: bool,
    /// `host: ok=.. changed=.. ...` as the recap prints it.
    recap: Vec<String>,
    /// Task (and handler) names in the order they started.
    tasks: Vec<String>,
}

/// Runs `playbook` of `repo` with bare ansible-playbook; returns the outcome and its stdout.
fn bare_run(repo: &Path, playbook: &str, scratch: &Path) -> (Outcome, String) {
    let hosts: serde_json::Map<String, Value> = HOSTS
        .iter()
        .map(|host| ((*host).to_owned(), host_vars()))
        .collect();
    let inventory = scratch.join(format!("{}-inventory.json", playbook.replace('/', "_")));
    std::fs::write(&inventory, json!({"all": {"hosts": hosts}}).to_string()).unwrap();
    let output = Command::new(ansible_playbook())
        .arg("-i")
        .arg(&inventory)
        .arg(playbook)
        .current_dir(repo)
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .expect("ansible-playbook runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let outcome = Outcome {
        succeeded: output.status.success(),
        recap: recap_of(&stdout),
        tasks: banners(&stdout),
    };
    (outcome, stdout)
}

/// The recap lines of the default callback, spaces normalised.
fn recap_of(output: &str) -> Vec<String> {
    output
        .lines()
        .skip_while(|line| !line.starts_with("PLAY RECAP"))
        .skip(1)
        .filter(|line| line.contains(" : ok="))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The names in the `TASK [..]` and `RUNNING HANDLER [..]` banners, in order.
fn banners(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            line.strip_prefix("TASK [")
                .or_else(|| line.strip_prefix("RUNNING HANDLER ["))
        })
        .map(|rest| {
            rest.rsplit_once(']')
                .map_or(rest, |(name, _)| name)
                .to_owned()
        })
        .collect()
}

/// The default callback's lines with what must differ between two runs taken out, sorted within
/// each banner's section.
fn comparable_lines(output: &str) -> Vec<String> {
    let mut sections: Vec<Vec<String>> = vec![Vec::new()];
    // What comes before the first play is not the default callback's (the server's log starts
    // with git's clone).
    let start = output.find("PLAY [").unwrap_or(0);
    for line in output[start..].lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let is_banner = ["PLAY [", "TASK [", "RUNNING HANDLER [", "PLAY RECAP"]
            .iter()
            .any(|prefix| line.starts_with(prefix));
        if is_banner {
            sections.push(vec![line.trim_end_matches('*').trim_end().to_owned()]);
            continue;
        }
        let kept = if let Some(origin) = line.strip_prefix("Origin: ") {
            // `Origin: /abs/path/blocks.yml:6:11`: the directory differs.
            let file = Path::new(origin)
                .file_name()
                .map_or(origin.into(), |name| name.to_string_lossy());
            format!("Origin: {file}")
        } else if let Some(rest) = line.strip_prefix("included: ") {
            // `included: /abs/path/tasks/x.yml for h1, h2`: the directory differs.
            let (path, hosts) = rest.split_once(" for ").unwrap_or((rest, ""));
            let file = Path::new(path)
                .file_name()
                .map_or(path.into(), |name| name.to_string_lossy());
            // Hosts in the order they finished: sorted.
            let mut hosts: Vec<&str> = hosts.split(", ").collect();
            hosts.sort_unstable();
            format!("included: {file} for {}", hosts.join(", "))
        } else if line.contains(" : ok=") {
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        } else if let Some((head, _body)) = line.split_once(" => ") {
            head.to_owned()
        } else if line.starts_with(' ') || line == "{" || line == "}" {
            // The inside of a result body: kept only for a debug message, which is stable.
            match line.trim_start().strip_prefix("\"msg\": ") {
                Some(message) => format!("msg: {message}"),
                None => continue,
            }
        } else {
            line.to_owned()
        };
        sections.last_mut().unwrap().push(kept);
    }
    sections
        .into_iter()
        .flat_map(|mut section| {
            if section.len() > 1 {
                section[1..].sort();
            }
            section
        })
        .collect()
}

struct Server {
    app: axum::Router,
    running: Option<Running>,
    _work: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let work = tempfile::tempdir().unwrap();
        let config = AnsibleConfig {
            ansible_playbook: ansible_playbook(),
            work_root: work.path().join("runs"),
            allow_local_urls: true,
            ..AnsibleConfig::default()
        };
        let engine = Engine::builder()
            .store(MemoryStore::new())
            .executor(AnsibleExecutor::new(config))
            .concurrency(4)
            .poll_interval(Duration::from_millis(50))
            .build();
        let tokens = TokenFile::parse(&format!("{TOKEN} *\n")).unwrap();
        let app = router(engine.clone(), ApiConfig::new(Arc::new(tokens)));
        Self {
            app,
            running: Some(engine.start()),
            _work: work,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Vec<u8>) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, bytes) = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Runs `playbook` of the repository at `url` through the API; returns the outcome and the
    /// run log.
    async fn run(&self, url: &str, playbook: &str) -> (Outcome, String) {
        let hosts: Vec<Value> = HOSTS
            .iter()
            .map(|host| json!({"id": host, "hostVars": host_vars()}))
            .collect();
        let job = self
            .json(
                "POST",
                "/jobs/DIFF",
                Some(json!({
                    "description": playbook,
                    "repository": {"url": url, "branch": "main", "defaultPlaybook": playbook},
                    "hosts": hosts,
                })),
            )
            .await;
        let job = job["id"].as_str().unwrap().to_owned();
        let started = self
            .json("POST", &format!("/jobs/DIFF/{job}/start"), Some(json!({})))
            .await;
        let execution = started["execution_id"].as_str().unwrap().to_owned();
        let base = format!("/jobs/DIFF/{job}/executions/{execution}");
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            let current = self.json("GET", &base, None).await;
            let status = current["status"].as_str().unwrap().to_owned();
            if ["SUCCESS", "FAILURE", "STOPPED", "KILLED"].contains(&status.as_str()) {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{playbook} did not end: {current}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut events = Vec::new();
        loop {
            let after = events.len();
            let page = self
                .json(
                    "GET",
                    &format!("{base}/events?after={after}&size=1000"),
                    None,
                )
                .await;
            events.extend(page["events"].as_array().cloned().unwrap_or_default());
            if page["hasMore"] != true {
                break;
            }
        }
        let tasks = events
            .iter()
            .filter(|event| event["kind"] == "task_start")
            .filter_map(|event| event["task"].as_str().map(str::to_owned))
            .collect();
        let ended = self.json("GET", &base, None).await;
        let recap = ended["host_stats"]
            .as_object()
            .map(|hosts| {
                hosts
                    .iter()
                    .map(|(host, s)| {
                        format!(
                            "{host} : ok={} changed={} unreachable={} failed={} skipped={} rescued={} ignored={}",
                            s["ok"], s["changed"], s["unreachable"], s["failed"], s["skipped"],
                            s["rescued"], s["ignored"]
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (log_status, log) = self.call("GET", &format!("{base}/log"), None).await;
        assert_eq!(log_status, 200, "GET {base}/log");
        let outcome = Outcome {
            succeeded: status == "SUCCESS",
            recap,
            tasks,
        };
        (outcome, String::from_utf8_lossy(&log).into_owned())
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// Runs `playbook` both ways and asserts they agree; returns the bare outcome, the bare output
/// and the server's run log.
async fn compare(
    server: &Server,
    repo: &Path,
    playbook: &str,
    scratch: &Path,
) -> (Outcome, String, String) {
    let url = format!("file://{}", repo.display());
    let (bare, bare_output) = bare_run(repo, playbook, scratch);
    let (served, log) = server.run(&url, playbook).await;
    assert_eq!(
        &served, &bare,
        "{playbook}: outcome, recap or task order\nbare:\n{bare_output}\nserver log:\n{log}"
    );
    let (served_lines, bare_lines) = (comparable_lines(&log), comparable_lines(&bare_output));
    if served_lines != bare_lines {
        let only_served: Vec<&String> = served_lines
            .iter()
            .filter(|l| !bare_lines.contains(l))
            .collect();
        let only_bare: Vec<&String> = bare_lines
            .iter()
            .filter(|l| !served_lines.contains(l))
            .collect();
        panic!(
            "{playbook}: the default callback's lines differ\nonly in the server's log: {only_served:#?}\n\
             only in bare output: {only_bare:#?}\nbare:\n{bare_output}\nserver log:\n{log}"
        );
    }
    (bare, bare_output, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_each_playbook_as_bare_ansible_does() {
    let scratch = tempfile::tempdir().unwrap();
    let corpus = repository(scratch.path(), "corpus");
    let server = Server::start();
    let playbooks = [
        ("blocks.yml", true),
        ("loops.yml", true),
        ("handlers.yml", true),
        ("includes.yml", true),
        ("roles.yml", true),
        ("serial.yml", true),
        ("delegate.yml", true),
        ("run_once.yml", true),
        ("any_errors_fatal.yml", false),
        ("ignore_errors.yml", false),
        ("failed_when.yml", false),
    ];
    for (playbook, succeeds) in playbooks {
        let (bare, bare_output, _) = compare(&server, &corpus, playbook, scratch.path()).await;
        assert!(!bare.recap.is_empty(), "{playbook} printed a recap");
        assert_eq!(bare.succeeded, succeeds, "{playbook}: {bare_output}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_callback_plugin_runs_under_the_server_too() {
    let scratch = tempfile::tempdir().unwrap();
    let repo = repository(scratch.path(), "with_cfg");
    let server = Server::start();
    let (_, bare_output, log) = compare(&server, &repo, "site.yml", scratch.path()).await;
    for output in [&bare_output, &log] {
        assert!(
            output.contains("repo_marker: the repository's callback ran"),
            "{output}"
        );
        assert!(
            output.contains("repo_marker: task the repository's own callback sees this task"),
            "{output}"
        );
    }
    server.stop().await;
}

#[test]
fn comparable_lines_drop_what_differs_and_keep_what_matters() {
    let output = "\nPLAY [all] *****\n\nTASK [t] *****\nok: [h2] => {\n    \"msg\": \"hi\"\n}\n\
                  changed: [h1]\nincluded: /tmp/x/tasks/a.yml for h1, h2\n\nPLAY RECAP ***\n\
                  h1   : ok=1    changed=1 \n";
    assert_eq!(
        comparable_lines(output),
        [
            "PLAY [all]",
            "TASK [t]",
            "changed: [h1]",
            "included: a.yml for h1, h2",
            "msg: \"hi\"",
            "ok: [h2]",
            "PLAY RECAP",
            "h1 : ok=1 changed=1",
        ]
    );
    assert_eq!(banners(output), ["t"]);
    assert_eq!(recap_of(output), ["h1 : ok=1 changed=1"]);
}
