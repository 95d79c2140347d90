//! Operating the real `runner` binary: `GET /metrics` scraped and read with the Prometheus
//! project's own text parser (Python's `prometheus_client.parser`, installed by
//! scripts/ensure-prometheus-parser.sh) before and after a real `ansible-playbook` run, on its own
//! address and behind a token; `/readyz` ready, not ready without `ansible-playbook`, and
//! failing from SIGTERM on while the node still serves.
#![cfg(feature = "ansible")]

mod common;

use std::time::Duration;

use common::process::{
    Api, PATIENCE, Runner, SseClient, admin_token, ansible_path, is_final, localhost, playbook,
};
use serde_json::{Value, json};

const PLAY: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: say hello\n      ansible.builtin.debug: {msg: hello}\n";

/// Reads Prometheus text with `prometheus_client.parser` and prints its samples as JSON.
const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {"samples": [], "help": {}}
for family in text_string_to_metric_families(sys.stdin.read()):
    out["help"][family.name] = family.documentation
    for s in family.samples:
        out["samples"].append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// A scrape as the parser read it: every sample (a histogram's as `_bucket`, `_count` and `_sum`)
/// and the help text of each family.
struct Scrape {
    samples: Vec<Value>,
    help: serde_json::Map<String, Value>,
}

/// Parses Prometheus text; the parser's failure fails the test.
fn parse(text: &str) -> Scrape {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let python = common::process::ensure("ensure-prometheus-parser.sh", "prometheus_client");
    let mut child = Command::new(python)
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the parser starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "not Prometheus text: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut parsed: Value = serde_json::from_slice(&output.stdout).unwrap();
    Scrape {
        samples: parsed["samples"].as_array().unwrap().clone(),
        help: parsed["help"].as_object_mut().unwrap().clone(),
    }
}

async fn scrape(client: &reqwest::Client, url: &str, token: Option<&str>) -> Scrape {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&response.text().await.unwrap())
}

/// The sum of the samples named `name` with these labels (0 if none): a counter's value, a
/// gauge's, or with `_count` a histogram's count.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|sample| {
            sample["name"] == name
                && labels
                    .iter()
                    .all(|(key, value)| sample["labels"][key] == *value)
        })
        .map(|sample| sample["value"].as_f64().unwrap())
        .sum()
}

async fn until_final(api: &Api, href: &str) -> String {
    let url = format!("{}{href}/events", api.base);
    let mut stream = SseClient::connect(&api.client, &url, &api.token, None).await;
    loop {
        let event = stream.next().await;
        if is_final(&event.data) {
            return event.data["status"].as_str().unwrap().to_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_address_move_with_a_run() {
    let path = ansible_path();
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::spawn(
        dir.path(),
        &["--store", "memory", "--metrics-listen", "127.0.0.1:0"],
        &[("PATH", &path)],
    );
    let metrics_url = runner
        .printed()
        .iter()
        .find_map(|line| line.strip_prefix("runner: metrics on "))
        .expect("the server prints its metrics address")
        .to_owned();
    let api = Api::new(
        &runner.base,
        &admin_token(&dir.path().join("runner-tokens")),
    );

    // The scraper's address needs no token; the API does not serve them twice.
    let before = scrape(&api.client, &metrics_url, None).await;
    let on_api = api
        .client
        .get(format!("{}/metrics", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404);
    // The store's gauges: every live status is there, at zero on a fresh store.
    for status in ["PENDING", "INITIALIZING", "RUNNING", "STOPPING", "KILLING"] {
        assert!(
            before
                .samples
                .iter()
                .any(|sample| sample["name"] == "runner_executions"
                    && sample["labels"]["status"] == status),
            "{status} is missing"
        );
        assert_eq!(
            value(&before, "runner_executions", &[("status", status)]),
            0.0
        );
    }
    assert_eq!(value(&before, "runner_webhook_backlog", &[]), 0.0);

    let (id, href) = api
        .run(json!({"playbook": playbook(PLAY), "hosts": [localhost()]}))
        .await;
    assert_eq!(until_final(&api, &href).await, "SUCCESS");

    // The outcome's counter moves right after the outcome is recorded, which the feed shows
    // first: read until it has (bounded; each read is a real scrape).
    let ended = [("outcome", "succeeded")];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let after = loop {
        let after = scrape(&api.client, &metrics_url, None).await;
        if value(&after, "runner_executions_ended_total", &ended) >= 1.0 {
            break after;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run was never counted"
        );
        tokio::task::yield_now().await;
    };
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(moved("runner_executions_ended_total", &ended), 1.0);
    assert_eq!(moved("runner_executions_claimed_total", &[]), 1.0);
    assert_eq!(moved("runner_executions_started_total", &[]), 1.0);
    assert_eq!(moved("runner_run_duration_seconds_count", &[]), 1.0);
    assert_eq!(moved("runner_queue_wait_seconds_count", &[]), 1.0);
    assert_eq!(value(&after, "runner_executions_running", &[]), 0.0);
    assert!(moved("runner_store_call_duration_seconds_count", &[]) > 0.0);
    let start = [
        ("method", "POST"),
        ("route", "/jobs/{alias}/{jobId}/start"),
        ("status", "201"),
    ];
    assert_eq!(moved("runner_http_requests_total", &start), 1.0);
    assert_eq!(
        moved(
            "runner_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/jobs/{alias}/{jobId}/start")]
        ),
        1.0
    );
    // Bounded labels: no sample names the execution, the job or the raw path.
    let job_id = href.split('/').nth(3).unwrap();
    for sample in &after.samples {
        let labels = sample["labels"].to_string();
        assert!(
            !labels.contains(&id) && !labels.contains(job_id) && !labels.contains("ACME"),
            "{sample}"
        );
    }
    // The help lines are there for the engine's metrics (a counter's family drops `_total`).
    assert_eq!(
        after.help["runner_executions_ended"],
        "Runs this node ended, by outcome."
    );
    assert_eq!(
        after.help["runner_executions"],
        "Executions in each live status now, across every account."
    );

    // A run that is going counts as RUNNING in the store's gauge, on every scrape, until it is
    // killed.
    const SLEEPER: &str =
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: sleep 600\n";
    let (_, sleeping) = api
        .run(json!({"playbook": playbook(SLEEPER), "hosts": [localhost()]}))
        .await;
    let running = [("status", "RUNNING")];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while value(
        &scrape(&api.client, &metrics_url, None).await,
        "runner_executions",
        &running,
    ) < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never counted as RUNNING"
        );
        tokio::task::yield_now().await;
    }
    api.send(reqwest::Method::POST, &format!("{sleeping}/kill"), None)
        .await;
    assert_eq!(until_final(&api, &sleeping).await, "KILLED");
    let ended = scrape(&api.client, &metrics_url, None).await;
    for status in ["PENDING", "INITIALIZING", "RUNNING", "STOPPING", "KILLING"] {
        assert_eq!(
            value(&ended, "runner_executions", &[("status", status)]),
            0.0
        );
    }

    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success());

    // Every log line about the execution names it, its job, account and attempt as fields (the
    // worker's span, or the line's own fields): an operator can follow it through the log.
    let mut about_it = 0;
    for line in &stderr {
        if !line.contains(&id) {
            continue;
        }
        let line: Value = serde_json::from_str(line).expect("JSON log lines");
        if line["span"]["name"] == "request" {
            continue; // An HTTP request's line names its path, which holds the id.
        }
        about_it += 1;
        let fields = if line["span"]["execution_id"].is_string() {
            &line["span"]
        } else {
            &line
        };
        assert_eq!(fields["execution_id"], id.as_str(), "{line}");
        assert_eq!(fields["job_id"], job_id, "{line}");
        assert_eq!(fields["account_alias"], "ACME", "{line}");
        if fields == &line["span"] {
            assert_eq!(fields["attempt"], 1, "{line}");
        }
    }
    assert!(about_it >= 3, "the run's lines: {stderr:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_api_need_a_token_for_every_account_and_readyz_fails_on_sigterm() {
    let path = ansible_path();
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        "admin-token-0123456789abcdef *\nacme-token-0123456789abcdef ACME\n",
    )
    .unwrap();
    let runner = Runner::spawn(
        dir.path(),
        &[
            "--store",
            "memory",
            "--token-file",
            tokens.to_str().unwrap(),
            // Long enough to be seen; the test does not wait for it to pass.
            "--drain-delay-ms",
            "2000",
        ],
        &[("PATH", &path)],
    );
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", runner.base);
    let status = |token: Option<&'static str>| {
        let mut request = client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some("acme-token-0123456789abcdef")).await, 403);
    let scraped = scrape(&client, &url, Some("admin-token-0123456789abcdef")).await;
    // The scrapes before count: the 403 is in it, under its route template.
    let forbidden = [("route", "/metrics"), ("status", "403")];
    assert_eq!(
        value(&scraped, "runner_http_requests_total", &forbidden),
        1.0
    );

    let ready = client
        .get(format!("{}/readyz", runner.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body, json!({"status": "ready", "reasons": []}));

    // SIGTERM: readiness fails while the node still answers, then the node stops.
    runner.signal_terminate();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let draining = loop {
        let answer = client
            .get(format!("{}/readyz", runner.base))
            .send()
            .await
            .expect("the node still answers while readiness fails");
        if answer.status() == 503 {
            break answer.json::<Value>().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readiness did not fail"
        );
        tokio::task::yield_now().await;
    };
    assert_eq!(draining["status"], "not_ready");
    assert_eq!(draining["reasons"], json!(["draining"]));
    // Liveness still holds during the drain.
    let health = client
        .get(format!("{}/healthz", runner.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(runner.wait().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_without_ansible_playbook() {
    let dir = tempfile::tempdir().unwrap();
    // A PATH without ansible-playbook: the server starts (jobs can be defined), not ready.
    let runner = Runner::spawn(
        dir.path(),
        &["--store", "memory"],
        &[("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")],
    );
    let answer = reqwest::get(format!("{}/readyz", runner.base))
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    let reasons = body["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{body}");
    assert!(
        reasons[0].as_str().unwrap().starts_with("executor: "),
        "{body}"
    );
}
