//! The run log endpoint through the router over a memory store: the cap as a reader sees it,
//! attempts, account isolation (403/404) and bad parameters. Output is appended through the
//! store as a worker would (the scripted executor prints nothing); `tests/run_log.rs` runs real
//! playbooks.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use runner_core::ids::ExecutionId;
use runner_core::run_log::{LogCap, omitted_marker};
use runner_core::store::RunLogStore;
use runner_core::testkit::Script;
use runner_core::time::{Clock, SystemClock};

/// A RUNNING execution of a job of ACME: its path, and its id.
async fn running(harness: &Harness) -> (String, ExecutionId) {
    let job = harness.create_job("ACME", ACME, inline_job(&["a"])).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    let execution = harness.start("ACME", &job_id, ACME).await;
    let id = execution["execution_id"].as_str().unwrap().to_owned();
    let href = format!("/jobs/ACME/{job_id}/executions/{id}");
    harness.wait_for(&href, ACME, "RUNNING").await;
    (href, ExecutionId(id.parse().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_log_reads_as_head_marker_tail() {
    let harness = Harness::with_script(Script::UntilCancelled);
    let (href, id) = running(&harness).await;
    let cap = LogCap::new(1024);
    let lines: Vec<String> = (0..100)
        .map(|i| format!("line {i:03} of the output\n"))
        .collect();
    for line in &lines {
        harness
            .engine
            .store()
            .append_log(id, 1, line.as_bytes(), cap, SystemClock.now())
            .await
            .unwrap();
    }
    let stream = lines.concat();

    let head = harness
        .call(Method::GET, &format!("{href}/log"), ACME, None)
        .await;
    assert_eq!(head.status, StatusCode::OK, "{}", head.text);
    assert_eq!(head.headers["x-run-log-attempt"], "1");
    assert_eq!(
        head.headers["x-run-log-total"],
        stream.len().to_string().as_str()
    );
    assert_eq!(head.headers["x-run-log-complete"], "false");
    assert_eq!(
        head.text,
        stream[..512],
        "the first page ends with the head"
    );
    let next = head.headers["x-run-log-next-offset"].to_str().unwrap();
    assert_eq!(next, "512");
    let tail = harness
        .call(Method::GET, &format!("{href}/log?offset=512"), ACME, None)
        .await;
    let omitted = (stream.len() - 1024) as u64;
    assert_eq!(
        tail.text,
        format!(
            "{}{}",
            omitted_marker(omitted, cap),
            &stream[stream.len() - 512..]
        )
    );
    let paged = harness
        .call(
            Method::GET,
            &format!("{href}/log?offset=10&limit=5"),
            ACME,
            None,
        )
        .await;
    assert_eq!(paged.text, stream[10..15]);
    assert_eq!(paged.headers["x-run-log-next-offset"], "15");

    // Once the run ended, the last page says so.
    let killed = harness
        .call(Method::POST, &format!("{href}/kill"), ACME, None)
        .await;
    assert_eq!(killed.status, StatusCode::OK, "{}", killed.text);
    harness.wait_for(&href, ACME, "KILLED").await;
    let end = harness
        .call(Method::GET, &format!("{href}/log?offset=512"), ACME, None)
        .await;
    assert_eq!(end.headers["x-run-log-complete"], "true");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_isolated_like_the_execution() {
    let harness = Harness::with_script(Script::UntilCancelled);
    let (href, id) = running(&harness).await;
    harness
        .engine
        .store()
        .append_log(id, 1, b"ok: [a]\n", LogCap::default(), SystemClock.now())
        .await
        .unwrap();
    let own = harness
        .call(Method::GET, &format!("{href}/log"), ACME, None)
        .await;
    assert_eq!(
        (own.status, own.text.as_str()),
        (StatusCode::OK, "ok: [a]\n")
    );

    // Another account's token: 403. The execution under another account or job: 404.
    let other = harness
        .call(Method::GET, &format!("{href}/log"), BETA, None)
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.text);
    let moved = href.replacen("/jobs/ACME/", "/jobs/BETA/", 1);
    let elsewhere = harness
        .call(Method::GET, &format!("{moved}/log"), ADMIN, None)
        .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::NOT_FOUND,
        "{}",
        elsewhere.text
    );
    let unknown = format!(
        "{}/{}",
        href.rsplit_once('/').unwrap().0,
        ExecutionId::new()
    );
    let missing = harness
        .call(Method::GET, &format!("{unknown}/log"), ACME, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    assert!(!missing.text.contains("ok: [a]"));

    for (query, field) in [
        ("attempt=0", "attempt"),
        ("attempt=x", "attempt"),
        ("offset=-1", "offset"),
        ("limit=0", "limit"),
        ("limit=99999999", "limit"),
    ] {
        let bad = harness
            .call(Method::GET, &format!("{href}/log?{query}"), ACME, None)
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}: {}", bad.text);
        assert_eq!(bad.fields(), [field], "{query}");
    }
    let later = harness
        .call(Method::GET, &format!("{href}/log?attempt=2"), ACME, None)
        .await;
    assert_eq!(later.status, StatusCode::NOT_FOUND, "{}", later.text);
    harness.shutdown().await;
}
