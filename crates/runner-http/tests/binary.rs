//! The `runner` binary as an operator runs it: generated token file, requests, SIGTERM.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::process::Runner;
use serde_json::{Value, json};

fn admin_token(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|line| !line.starts_with('#') && !line.trim().is_empty())
        .unwrap();
    let (token, scope) = line.split_once(' ').unwrap();
    assert_eq!(scope, "*");
    assert_eq!(token.len(), 64);
    token.to_owned()
}

fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
}

const SECRET: &str = "binary-test-password-S3CRET";

fn secret_job() -> Value {
    json!({
        "repository": {
            "url": "https://git.example.com/p.git",
            "defaultPlaybook": "site.yml",
            "credentials": {"username": "u", "password": SECRET}
        },
        "hosts": []
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_token_bootstrap_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::spawn(
        dir.path(),
        &["--store", "memory", "--concurrency", "2"],
        &[],
    );
    let token_path = dir.path().join("runner-tokens");
    assert_private(&token_path);
    let token = admin_token(&token_path);
    let client = reqwest::Client::new();

    let health: Value = client
        .get(format!("{}/healthz", runner.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    let unauthorized = client
        .get(format!("{}/jobs/ACME", runner.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let created = client
        .post(format!("{}/jobs/ACME", runner.base))
        .bearer_auth(&token)
        .json(&secret_job())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let text = created.text().await.unwrap();
    assert!(!text.contains(SECRET));

    let (exit, stdout, stderr) = runner.terminate();
    assert!(exit.success(), "{exit:?}\n{stderr:#?}");
    let stdout = stdout.join("\n");
    assert!(stdout.contains("runner-tokens"), "{stdout}");
    assert!(stdout.contains("mode 0600"), "{stdout}");
    for line in &stderr {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "--log-format json writes JSON lines: {line}"
        );
    }
    let everything = format!("{stdout}\n{}", stderr.join("\n"));
    assert!(!everything.contains(&token), "the token was printed");
    assert!(!everything.contains(SECRET), "a secret was logged");
    assert!(everything.contains("/jobs/ACME"), "requests are logged");
    assert!(everything.contains("stopped"), "{everything}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_token_file_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("my-tokens");
    std::fs::write(&tokens, "acme-only-token-0123456789 ACME\n").unwrap();
    let runner = Runner::spawn(
        dir.path(),
        &[
            "--store",
            "memory",
            "--token-file",
            tokens.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!dir.path().join("runner-tokens").exists());
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("{}/jobs/ACME", runner.base))
        .bearer_auth("acme-only-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let other = client
        .get(format!("{}/jobs/BETA", runner.base))
        .bearer_auth("acme-only-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    let (exit, _, _) = runner.terminate();
    assert!(exit.success());

    // Bad arguments fail at once with a message, without a panic.
    for args in [
        vec!["--store", "mysql://x"],
        vec!["--store", "memory", "--token-file", "/nonexistent/tokens"],
        vec!["--store", "memory", "--concurrency", "0"],
        vec![
            "--store",
            "memory",
            "--jwt-public-key",
            "/nonexistent/key.pem",
        ],
        vec![
            "--store",
            "memory",
            "--callback-signing-secret-file",
            "/nonexistent/signing-key",
        ],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_runner"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.trim().is_empty(), "{args:?} says why");
    }
}

#[cfg(feature = "sled")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_store_keeps_jobs_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = format!("sled:{}", data.display());
    let runner = Runner::spawn(dir.path(), &["--store", &store], &[]);
    let token_path = data.join("tokens");
    assert_private(&token_path);
    let token = admin_token(&token_path);
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/jobs/ACME", runner.base))
        .bearer_auth(&token)
        .json(&secret_job())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (exit, _, _) = runner.terminate();
    assert!(exit.success());
    // The secret key was made at first start, private, and the password is sealed in the files.
    let key_path = data.join("secret.key");
    assert_private(&key_path);
    assert_eq!(files_holding(&data, SECRET), Vec::<String>::new());

    // Second start: the same token file (not regenerated) and the job is still there.
    let runner = Runner::spawn(dir.path(), &["--store", &store], &[]);
    assert_eq!(admin_token(&token_path), token);
    let job_id = created["id"].as_str().unwrap();
    let job: Value = get_job(&runner, &token, job_id).await.json().await.unwrap();
    assert_eq!(job["id"], created["id"]);
    assert_eq!(job["repository"]["credentials"]["password"], "********");
    let (exit, _, _) = runner.terminate();
    assert!(exit.success());

    // A rotation: a new key, every secret re-sealed with it, the default key file replaced.
    let old_key = dir.path().join("old.key");
    std::fs::copy(&key_path, &old_key).unwrap();
    let new_key = dir.path().join("new.key");
    let made = runner_command(
        dir.path(),
        &["secrets", "new-key", new_key.to_str().unwrap()],
    );
    assert!(made.status.success(), "{made:?}");
    assert_private(&new_key);
    let again = runner_command(
        dir.path(),
        &["secrets", "new-key", new_key.to_str().unwrap()],
    );
    assert!(
        !again.status.success(),
        "an existing key file is not overwritten"
    );
    let rotated = runner_command(
        dir.path(),
        &[
            "secrets",
            "rotate",
            "--store",
            &store,
            "--new-key-file",
            new_key.to_str().unwrap(),
        ],
    );
    let said = String::from_utf8_lossy(&rotated.stdout);
    assert!(rotated.status.success(), "{rotated:?}");
    assert!(said.contains("1 record(s) sealed"), "{said}");
    assert_eq!(
        std::fs::read(&key_path).unwrap(),
        std::fs::read(&new_key).unwrap()
    );
    assert_private(&key_path);
    let runner = Runner::spawn(dir.path(), &["--store", &store], &[]);
    let read = get_job(&runner, &token, job_id).await;
    assert_eq!(read.status(), 200, "the job opens with the new key");
    let (exit, _, _) = runner.terminate();
    assert!(exit.success());

    // The old key no longer opens the store: a clear refusal at start, naming the keys.
    let stderr = refused_start(
        dir.path(),
        &[
            "--store",
            &store,
            "--secret-key-file",
            old_key.to_str().unwrap(),
        ],
    );
    assert!(stderr.contains("sealed with key"), "{stderr}");
}

/// `GET /jobs/ACME/{id}`.
#[cfg(feature = "sled")]
async fn get_job(runner: &Runner, token: &str, id: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/jobs/ACME/{id}", runner.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Runs `runner serve` with `args`, which must refuse to start without a panic; its stderr.
fn refused_start(dir: &Path, args: &[&str]) -> String {
    let mut line = vec!["serve", "--listen", "127.0.0.1:0"];
    line.extend_from_slice(args);
    let output = runner_command(dir, &line);
    assert!(!output.status.success(), "{args:?} started");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Runs the binary to its end with `args`.
fn runner_command(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runner"));
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("RUNNER_")) {
        command.env_remove(key);
    }
    command.args(args).current_dir(dir).output().unwrap()
}

/// The files under `dir` that hold `text`.
#[cfg(feature = "sled")]
fn files_holding(dir: &Path, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_holding(&path, text));
        } else if std::fs::read(&path)
            .unwrap()
            .windows(text.len())
            .any(|window| window == text.as_bytes())
        {
            found.push(path.display().to_string());
        }
    }
    found
}

/// The whole product: the binary with the Ansible executor runs an inline playbook on localhost.
/// Needs ansible-playbook (scripts/ensure-ansible.sh installs it); its absence fails the test.
#[cfg(feature = "ansible")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansible_runs_an_inline_playbook_through_the_binary() {
    use base64::Engine as _;
    let path = common::process::ansible_path();

    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::spawn(dir.path(), &["--store", "memory"], &[("PATH", &path)]);
    let token = admin_token(&dir.path().join("runner-tokens"));
    let playbook = base64::engine::general_purpose::STANDARD.encode(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: msg=hello\n",
    );
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/jobs/ACME?immediate=true", runner.base))
        .bearer_auth(&token)
        .json(&json!({
            "playbook": playbook,
            "hosts": [{"id": "localhost", "hostVars": {"ansible_connection": "local",
                       "ansible_python_interpreter": "auto_silent"}}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let href = created["links"][1]["href"]
        .as_str()
        .expect("immediate start link")
        .to_owned();
    let mut last = Value::Null;
    // A separate process has no notifier to wait on: poll, bounded (ansible takes seconds).
    for _ in 0..600 {
        last = client
            .get(format!("{}{href}", runner.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if matches!(last["status"].as_str(), Some("SUCCESS" | "FAILURE")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "SUCCESS", "{last:#}");
    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
}

/// `runner serve` fires schedules: a date schedule a few seconds ahead creates its execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_binary_fires_schedules() {
    use chrono::{SecondsFormat, TimeZone, Utc};
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::spawn(dir.path(), &["--store", "memory"], &[]);
    let token = admin_token(&dir.path().join("runner-tokens"));
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{}{path}", runner.base))
            .bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, job) = call(
        reqwest::Method::POST,
        "/jobs/ACME".into(),
        Some(json!({"playbook": "LQ==", "hosts": []})),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    let job_id = job["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        reqwest::Method::POST,
        "/serviceAccounts/ACME".into(),
        Some(json!({"alias": "svc"})),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);

    // A date three seconds ahead (to the second). Should the create itself take longer than
    // that on a loaded machine, the date is refused as past: try again with a fresh one.
    let mut schedule = Value::Null;
    for _ in 0..10 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let at = Utc
            .timestamp_millis_opt(now + 3_000)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let (status, body) = call(
            reqwest::Method::POST,
            format!("/jobs/ACME/{job_id}/schedules"),
            Some(json!({"description": "soon", "serviceAccountAlias": "svc",
                        "trigger": {"type": "date", "expression": at}})),
        )
        .await;
        if status == reqwest::StatusCode::CREATED {
            schedule = body;
            break;
        }
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
        assert!(body.to_string().contains("past"), "{body}");
    }
    let schedule_id = schedule["id"].as_str().expect("a schedule was created");
    assert!(schedule["nextFireTime"].is_i64());

    // A separate process has no notifier to wait on: poll, bounded.
    let executions = format!("/jobs/ACME/{job_id}/executions");
    let mut listed = Value::Null;
    for _ in 0..600 {
        listed = call(reqwest::Method::GET, executions.clone(), None).await.1;
        if listed["totalSize"] != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        listed["totalSize"], 1,
        "the schedule fired once: {listed:#}"
    );
    let (_, fired) = call(
        reqwest::Method::GET,
        format!("/jobs/ACME/{job_id}/schedules/{schedule_id}"),
        None,
    )
    .await;
    assert_eq!(fired["nextFireTime"], Value::Null, "{fired:#}");
    assert_eq!(fired["lastFireTime"], schedule["nextFireTime"]);
    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    assert!(
        stderr.iter().any(|line| line.contains("schedule fired")),
        "the scheduler logged the fire"
    );
}

/// `--store postgres://...`: the binary talks to a real PostgreSQL (scripts/ensure-postgres.sh
/// finds or starts one; its absence fails the test) and a job outlives the process.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_through_the_binary() {
    let url = common::process::ensure("ensure-postgres.sh", "PostgreSQL");
    let dir = tempfile::tempdir().unwrap();
    // A fresh alias, so that other suites sharing the database do not matter.
    let alias = format!("http-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    // Its own schema too (`--pg-schema`), so that tables another checkout migrated in the shared
    // database cannot refuse this binary's migrations.
    let schema = format!(
        "binary_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    // Without a key file a PostgreSQL node refuses to start, saying what to do.
    let stderr = refused_start(
        dir.path(),
        &["--store", url.as_str(), "--pg-schema", schema.as_str()],
    );
    assert!(stderr.contains("needs --secret-key-file"), "{stderr}");
    let key = dir.path().join("secret.key");
    let made = runner_command(dir.path(), &["secrets", "new-key", key.to_str().unwrap()]);
    assert!(made.status.success(), "{made:?}");
    let store_args = [
        "--store",
        url.as_str(),
        "--pg-schema",
        schema.as_str(),
        "--secret-key-file",
        key.to_str().unwrap(),
    ];
    let runner = Runner::spawn(dir.path(), &store_args, &[]);
    let token = admin_token(&dir.path().join("runner-tokens"));
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/jobs/{alias}", runner.base))
        .bearer_auth(&token)
        .json(&secret_job())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A service account and a schedule go through AnyStore's PostgreSQL arm too.
    let job_id = created["id"].as_str().unwrap().to_owned();
    let account = client
        .post(format!("{}/serviceAccounts/{alias}", runner.base))
        .bearer_auth(&token)
        .json(&json!({"alias": "svc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 201);
    let schedule = client
        .post(format!("{}/jobs/{alias}/{job_id}/schedules", runner.base))
        .bearer_auth(&token)
        .json(&json!({"description": "d", "serviceAccountAlias": "svc",
                      "trigger": {"type": "cron", "expression": "0 4 * * *"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(schedule.status(), 201);
    let schedule: Value = schedule.json().await.unwrap();
    let health = client
        .get(format!("{}/healthz", runner.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (exit, stdout, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    let everything = format!("{}\n{}", stdout.join("\n"), stderr.join("\n"));
    assert!(!everything.contains(SECRET));
    // The password is sealed in the row.
    let rows = Command::new("psql")
        .args([
            url.as_str(),
            "-At",
            "-c",
            &format!("SELECT body::text FROM {schema}.jobs"),
        ])
        .output()
        .expect("psql runs");
    let rows = String::from_utf8_lossy(&rows.stdout);
    assert!(rows.contains("$sealed$v1$"), "{rows}");
    assert!(!rows.contains(SECRET));

    let runner = Runner::spawn(dir.path(), &store_args, &[]);
    let listed: Value = client
        .get(format!("{}/jobs/{alias}", runner.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["totalSize"], 1);
    assert_eq!(listed["results"][0]["id"], created["id"]);
    let schedules: Value = client
        .get(format!("{}/jobs/{alias}/{job_id}/schedules", runner.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        schedules["results"],
        json!([schedule]),
        "the schedule outlived the process"
    );
    let in_use = client
        .delete(format!("{}/serviceAccounts/{alias}/svc", runner.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(in_use.status(), 409);
    let (exit, _, _) = runner.terminate();
    assert!(exit.success());

    let dropped = Command::new("psql")
        .args([url.as_str(), "-c", &format!("DROP SCHEMA {schema} CASCADE")])
        .output()
        .expect("psql runs");
    assert!(
        dropped.status.success(),
        "the binary created its schema: {}",
        String::from_utf8_lossy(&dropped.stderr)
    );
}
