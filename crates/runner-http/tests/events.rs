//! The events endpoint (JSON pages and the live stream) and the callback URL guard, through the
//! router over a memory store.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt;
use runner_core::testkit::Script;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn finished_execution(harness: &Harness, status: &str) -> (String, String) {
    let job = harness.create_job("ACME", ACME, inline_job(&["a"])).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    let execution = harness.start("ACME", &job_id, ACME).await;
    let href = format!(
        "/jobs/ACME/{job_id}/executions/{}",
        execution["execution_id"].as_str().unwrap()
    );
    harness.wait_for(&href, ACME, status).await;
    (job_id, href)
}

fn sequences(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["sequence"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_in_pages() {
    let harness = Harness::new();
    let (job_id, href) = finished_execution(&harness, "SUCCESS").await;
    let all = harness
        .call(Method::GET, &format!("{href}/events"), ACME, None)
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let events = all.body["events"].as_array().unwrap().clone();
    let n = events.len() as u64;
    assert!(n >= 3, "{}", all.text);
    assert_eq!(sequences(&all.body), (1..=n).collect::<Vec<_>>());
    assert_eq!(all.body["lastSequence"], n);
    assert_eq!(all.body["hasMore"], false);
    assert_eq!(events[0]["status"], "PENDING");
    assert_eq!(events[n as usize - 1]["status"], "SUCCESS");
    for event in &events {
        assert_eq!(event["kind"], "status");
        assert_eq!(event["level"], "RESULT");
        assert_eq!(event["job_id"], job_id.as_str());
        assert_eq!(event["account_alias"], "ACME");
        assert!(event["time"].is_i64());
    }

    let first = harness
        .call(Method::GET, &format!("{href}/events?size=2"), ACME, None)
        .await;
    assert_eq!(sequences(&first.body), vec![1, 2]);
    assert_eq!(first.body["lastSequence"], 2);
    assert_eq!(first.body["hasMore"], true);
    let rest = harness
        .call(
            Method::GET,
            &format!("{href}/events?after=2&size=1000"),
            ACME,
            None,
        )
        .await;
    assert_eq!(sequences(&rest.body), (3..=n).collect::<Vec<_>>());
    assert_eq!(rest.body["hasMore"], false);
    let beyond = harness
        .call(Method::GET, &format!("{href}/events?after={n}"), ACME, None)
        .await;
    assert_eq!(beyond.body["events"], json!([]));
    assert_eq!(beyond.body["lastSequence"], n);
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_refuse_bad_parameters_and_other_accounts() {
    let harness = Harness::new();
    let (job_id, href) = finished_execution(&harness, "SUCCESS").await;
    let events = format!("{href}/events");
    for (query, fields) in [
        ("after=-1", vec!["after"]),
        ("after=x", vec!["after"]),
        ("size=0", vec!["size"]),
        ("size=1001", vec!["size"]),
        ("size=ten", vec!["size"]),
        ("after=1.5&size=-2", vec!["after", "size"]),
    ] {
        let reply = harness
            .call(Method::GET, &format!("{events}?{query}"), ACME, None)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.fields(), fields, "{query}: {}", reply.text);
    }
    let execution_id = href.rsplit('/').next().unwrap();
    let other_id = "01a213b8-5519-7474-8e21-000000000000";
    for path in [
        format!("/jobs/ACME/{job_id}/executions/{other_id}/events"),
        format!("/jobs/ACME/{other_id}/executions/{execution_id}/events"),
        format!("/jobs/ACME/{job_id}/executions/not-an-id/events"),
    ] {
        let reply = harness.call(Method::GET, &path, ACME, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    // Another account's token: 403; the execution under another account's path: 404.
    let forbidden = harness.call(Method::GET, &events, BETA, None).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let elsewhere = harness
        .call(
            Method::GET,
            &format!("/jobs/GAMMA/{job_id}/executions/{execution_id}/events"),
            MULTI,
            None,
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
    let anonymous = harness
        .send(Request::get(&events).body(Body::empty()).unwrap())
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // The stream checks the same, and its own header.
    let stream = |uri: String, token: &str, last: Option<&str>| {
        let mut builder = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::ACCEPT, "text/event-stream");
        if let Some(last) = last {
            builder = builder.header("last-event-id", last);
        }
        builder.body(Body::empty()).unwrap()
    };
    let bad_id = harness
        .send(stream(events.clone(), ACME, Some("seven")))
        .await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_id.fields(), vec!["Last-Event-ID"]);
    let unknown = harness
        .send(stream(
            format!("/jobs/ACME/{job_id}/executions/{other_id}/events"),
            ACME,
            None,
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let forbidden = harness.send(stream(events, BETA, None)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    harness.shutdown().await;
}

/// Reads server-sent events off a response body.
struct Frames {
    body: Body,
    buffer: String,
}

impl Frames {
    async fn next(&mut self) -> (u64, String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, None, None);
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id: ") {
                        id = Some(value.parse().unwrap());
                    } else if let Some(value) = line.strip_prefix("event: ") {
                        kind = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(value).unwrap());
                    }
                }
                if let (Some(id), Some(kind), Some(data)) = (id, kind, data) {
                    return (id, kind, data);
                }
                continue;
            }
            // The timeout only bounds a broken test.
            let frame = tokio::time::timeout(Duration::from_secs(30), self.body.frame())
                .await
                .expect("an event in time")
                .expect("the stream stays open")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }

    /// Events until (and with) the next one whose status is `status`.
    async fn until_status(&mut self, status: &str) -> Vec<(u64, String, Value)> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await;
            let done = event.2["status"] == status;
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_replays_from_last_event_id_then_goes_live() {
    let harness = Harness::with_script(Script::Fail(vec!["a".into()]));
    let (_, href) = finished_execution(&harness, "FAILURE").await;
    let request = Request::get(format!("{href}/events"))
        .header(header::AUTHORIZATION, format!("Bearer {ACME}"))
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("last-event-id", "1")
        .body(Body::empty())
        .unwrap();
    let response = harness.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut frames = Frames {
        body: response.into_body(),
        buffer: String::new(),
    };
    // The backlog after 1, up to the FAILURE.
    let backlog = frames.until_status("FAILURE").await;
    assert_eq!(backlog[0].0, 2, "starts after Last-Event-ID");

    // A restart adds events to the same feed; the open stream sends them as they come.
    let restarted = harness
        .call(Method::POST, &format!("{href}/restart"), ACME, None)
        .await;
    assert_eq!(restarted.status, StatusCode::OK, "{}", restarted.text);
    let live = frames.until_status("FAILURE").await;
    assert_eq!(live[0].2["status"], "PENDING");
    let ids: Vec<u64> = backlog.iter().chain(&live).map(|event| event.0).collect();
    assert_eq!(ids, (2..2 + ids.len() as u64).collect::<Vec<_>>());
    for (id, kind, data) in backlog.iter().chain(&live) {
        assert_eq!(data["sequence"], *id);
        assert_eq!(data["kind"], kind.as_str());
    }
    // What the stream sent is what the store holds.
    let stored = harness
        .call(Method::GET, &format!("{href}/events?after=1"), ACME, None)
        .await;
    let sent: Vec<Value> = backlog
        .into_iter()
        .chain(live)
        .map(|event| event.2)
        .collect();
    assert_eq!(stored.body["events"], Value::Array(sent));
    harness.shutdown().await;
}

fn job_with_callbacks(callbacks: Value) -> Value {
    let mut job = inline_job(&["a"]);
    job["callbacks"] = callbacks;
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_to_private_addresses_are_refused() {
    let harness = Harness::new();
    let refused = harness
        .call(
            Method::POST,
            "/jobs/ACME",
            ACME,
            Some(job_with_callbacks(json!([
                "http://127.0.0.1:9/hook",
                {"url": "http://10.1.2.3/hook", "level": "ERROR"},
                "https://93.184.215.14/public",
                "http://localhost:8080/",
                "http://[::1]/",
                "http://169.254.169.254/latest/meta-data",
                "http://192.168.0.1/",
            ]))),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(
        refused.fields(),
        vec![
            "callbacks[0].url",
            "callbacks[1].url",
            "callbacks[3].url",
            "callbacks[4].url",
            "callbacks[5].url",
            "callbacks[6].url",
        ],
        "{}",
        refused.text
    );

    // Reported with the definition's other rules; a non-http URL is reported once. A body
    // without the documented shape hears of that and of the definition's own rules first (the
    // missing hosts, the ftp URL); where a URL leads is checked once the body is whole.
    let mut job = job_with_callbacks(json!(["ftp://files.example.com/x", "http://127.0.0.1/"]));
    job.as_object_mut().unwrap().remove("hosts");
    let shape = harness
        .call(Method::POST, "/jobs/ACME", ACME, Some(job.clone()))
        .await;
    assert_eq!(shape.status, StatusCode::BAD_REQUEST);
    let mut fields = shape.fields();
    fields.sort();
    assert_eq!(fields, ["callbacks[0].url", "hosts"], "{}", shape.text);
    job["hosts"] = json!([{"id": "a"}, {"id": "a"}]);
    let rules = harness
        .call(Method::POST, "/jobs/ACME", ACME, Some(job.clone()))
        .await;
    assert_eq!(rules.status, StatusCode::BAD_REQUEST);
    let mut fields = rules.fields();
    fields.sort();
    assert_eq!(
        fields,
        ["callbacks[0].url", "hosts[1].id"],
        "{}",
        rules.text
    );
    // Once every URL is http(s), where each leads is checked with the definition's rules.
    job["callbacks"] = json!(["https://93.184.215.14/public", "http://127.0.0.1/"]);
    let both = harness
        .call(Method::POST, "/jobs/ACME", ACME, Some(job))
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    let mut fields = both.fields();
    fields.sort();
    assert_eq!(fields, ["callbacks[1].url", "hosts[1].id"], "{}", both.text);

    // Update: refused the same way, and an unknown job is still 404.
    let created = harness
        .create_job(
            "ACME",
            ACME,
            job_with_callbacks(json!(["https://93.184.215.14/ok"])),
        )
        .await;
    let job_id = created["id"].as_str().unwrap();
    let private = job_with_callbacks(json!(["http://127.0.0.1:9/hook"]));
    let update = harness
        .call(
            Method::PUT,
            &format!("/jobs/ACME/{job_id}"),
            ACME,
            Some(private.clone()),
        )
        .await;
    assert_eq!(update.status, StatusCode::BAD_REQUEST);
    assert_eq!(update.fields(), vec!["callbacks[0].url"]);
    let unknown = harness
        .call(
            Method::PUT,
            "/jobs/ACME/01a213b8-5519-7474-8e21-000000000000",
            ACME,
            Some(private.clone()),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    harness.shutdown().await;

    // A server that allows private callbacks takes them.
    let allowing = Harness::with_config(Script::Succeed, |config| {
        config.with_private_callbacks(true)
    });
    let created = allowing.create_job("ACME", ACME, private).await;
    assert_eq!(created["callbacks"][0]["url"], "http://127.0.0.1:9/hook");
    allowing.shutdown().await;
}
