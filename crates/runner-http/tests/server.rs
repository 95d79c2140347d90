//! A real listening server on 127.0.0.1:0, driven with reqwest: end-to-end flows, JWT mode, and
//! every kind of response validated against the schemas of the served OpenAPI document.

mod common;

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, Method, StatusCode};
use runner_core::engine::Engine;
use runner_core::execution::Status;
use runner_core::notifier::{ChannelNotifier, Notification, NotificationKind};
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_core::time::{Clock, MockClock, SystemClock};
use runner_http::auth::SharedAuthenticator;
use runner_http::{ApiConfig, JwtAuthenticator, router};
use runner_store_memory::MemoryStore;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use common::{ACME, ADMIN, BETA, inline_job, secret_job, token_file};

struct Server {
    base: String,
    client: Client,
    token: String,
    notifier: ChannelNotifier,
    executor: ScriptedExecutor,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Server {
    async fn start(authenticator: SharedAuthenticator, token: &str) -> Self {
        Self::launch(authenticator, token, SystemClock, false).await
    }

    /// A server on a mock clock whose engine also fires schedules.
    async fn with_scheduler(
        authenticator: SharedAuthenticator,
        token: &str,
        clock: MockClock,
    ) -> Self {
        Self::launch(authenticator, token, clock, true).await
    }

    async fn launch<C: Clock>(
        authenticator: SharedAuthenticator,
        token: &str,
        clock: C,
        scheduler: bool,
    ) -> Self {
        let executor = ScriptedExecutor::new(Script::Succeed);
        let notifier = ChannelNotifier::new(1024);
        let mut builder = Engine::builder()
            .store(MemoryStore::new())
            .executor(executor.clone())
            .notifier(notifier.clone())
            .clock(clock)
            .poll_interval(Duration::from_millis(50))
            .shutdown_grace(Duration::from_secs(1));
        if scheduler {
            // The mock clock jumps a minute at a time: no lease may lapse over a jump.
            builder = builder.lease(Duration::from_secs(24 * 3600));
        }
        let engine = builder.build();
        let app = router(engine.clone(), ApiConfig::new(authenticator));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let mut running = engine.start();
        if scheduler {
            running = running.with_scheduler();
        }
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            running.shutdown().await;
        });
        Self {
            base,
            client: Client::new(),
            token: token.to_owned(),
            notifier,
            executor,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }

    async fn call_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(&self.token, method, path, body).await
    }

    async fn wait_for(&self, href: &str, status: &str) -> Value {
        let mut notifications = self.notifier.subscribe();
        for _ in 0..200 {
            let reply = self.call(Method::GET, href, None).await;
            if reply.body["status"] == status {
                return reply.body;
            }
            tokio::time::timeout(Duration::from_secs(10), notifications.recv())
                .await
                .unwrap_or_else(|_| panic!("no notification while waiting for {status}"))
                .ok();
        }
        panic!("{href} never reached {status}");
    }
}

/// Validates instances against a component schema of the document.
struct Schemas {
    document: Value,
}

impl Schemas {
    fn check(&self, component: &str, instance: &Value) {
        // The whole document is the root, so "#/components/schemas/..." references resolve.
        let mut schema = self.document.clone();
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        schema["$ref"] = json!(format!("#/components/schemas/{component}"));
        let validator =
            jsonschema::draft202012::new(&schema).expect("the document is a valid schema");
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|error| format!("{} at {}", error, error.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{component} does not match its schema: {errors:?}\n{instance:#}"
        );
    }

    /// The check must be able to fail: a wrong instance is refused.
    fn refuses(&self, component: &str, instance: &Value) {
        let mut schema = self.document.clone();
        schema["$ref"] = json!(format!("#/components/schemas/{component}"));
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        assert!(
            !validator.is_valid(instance),
            "{component} accepted {instance}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_flow_over_tcp() {
    let server = Server::start(Arc::new(token_file()), ACME).await;
    let created = server
        .call(Method::POST, "/jobs/ACME", Some(secret_job()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let job_id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"].to_str().unwrap(),
        format!("/jobs/ACME/{job_id}")
    );
    assert_eq!(created.body["sshPrivateKey"], "********");

    let started = server
        .call(Method::POST, &format!("/jobs/ACME/{job_id}/start"), None)
        .await;
    assert_eq!(started.status, StatusCode::CREATED);
    let href = started.headers["location"].to_str().unwrap().to_owned();
    let done = server.wait_for(&href, "SUCCESS").await;
    assert_eq!(done["job_id"], job_id.as_str());
    assert_eq!(server.executor.runs().len(), 1);

    let listed = server
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/executions"),
            None,
        )
        .await;
    assert_eq!(listed.body["totalSize"], 1);
    let deleted = server
        .call(Method::DELETE, &format!("/jobs/ACME/{job_id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    // Isolation over the wire too.
    let forbidden = server.call_as(BETA, Method::GET, "/jobs/ACME", None).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    // A body far over the limit is refused with 413 before it is read.
    let huge = vec![b' '; 10 * 1024 * 1024];
    let response = server
        .client
        .post(format!("{}/jobs/ACME", server.base))
        .bearer_auth(ACME)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    match response {
        Ok(response) => assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE),
        // The server may close the connection while the client still writes; the oneshot
        // suite checks the 413 body. Nothing may have been created either way.
        Err(error) => assert!(error.is_request() || error.is_body(), "{error}"),
    }
    let after = server.call(Method::GET, "/jobs/ACME", None).await;
    assert_eq!(after.body["totalSize"], 0);

    let health = server
        .client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_end_to_end() {
    let secret = b"test-only-server-secret-0123456789";
    let verifier = JwtAuthenticator::hs256(secret)
        .unwrap()
        .with_aliases_claim("accounts");
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let key = EncodingKey::from_secret(secret);
    let acme = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": exp, "accounts": ["ACME"]}),
        &key,
    )
    .unwrap();
    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": exp - 7200, "accounts": ["ACME"]}),
        &key,
    )
    .unwrap();
    let server = Server::start(Arc::new(verifier), &acme).await;
    let created = server
        .call(Method::POST, "/jobs/ACME", Some(inline_job(&["a"])))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let other = server.call(Method::GET, "/jobs/BETA", None).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let old = server
        .call_as(&expired, Method::GET, "/jobs/ACME", None)
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert!(old.body["message"].as_str().unwrap().contains("expired"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_match_the_openapi_document() {
    let server = Server::start(Arc::new(token_file()), ADMIN).await;
    let document = server.call(Method::GET, "/openapi.json", None).await;
    assert_eq!(document.status, StatusCode::OK);
    let document = document.body;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // Every route and method is documented.
    for (path, methods) in [
        ("/jobs/{alias}", &["post", "get"][..]),
        ("/jobs/{alias}/{jobId}", &["get", "put", "delete"][..]),
        ("/jobs/{alias}/{jobId}/start", &["post"][..]),
        ("/jobs/{alias}/{jobId}/executions", &["get"][..]),
        ("/executions/{alias}", &["get"][..]),
        (
            "/jobs/{alias}/{jobId}/executions/{executionId}",
            &["get"][..],
        ),
        (
            "/jobs/{alias}/{jobId}/executions/{executionId}/events",
            &["get"][..],
        ),
        (
            "/jobs/{alias}/{jobId}/executions/{executionId}/restart",
            &["post"][..],
        ),
        (
            "/jobs/{alias}/{jobId}/executions/{executionId}/stop",
            &["post"][..],
        ),
        (
            "/jobs/{alias}/{jobId}/executions/{executionId}/kill",
            &["post"][..],
        ),
        ("/jobs/{alias}/{jobId}/schedules", &["post", "get"][..]),
        (
            "/jobs/{alias}/{jobId}/schedules/{scheduleId}",
            &["get", "put", "delete"][..],
        ),
        ("/serviceAccounts/{alias}", &["post", "get"][..]),
        (
            "/serviceAccounts/{alias}/{serviceAccountAlias}",
            &["get", "delete"][..],
        ),
        ("/healthz", &["get"][..]),
        ("/openapi.json", &["get"][..]),
    ] {
        for method in methods {
            assert!(
                document["paths"][path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
    }
    assert_eq!(document["paths"]["/healthz"]["get"]["security"], json!([]));

    let schemas = Schemas { document };

    // Jobs: created (plain and immediate, with secrets), read, updated, listed.
    let created = server
        .call(Method::POST, "/jobs/ACME", Some(secret_job()))
        .await;
    schemas.check("Job", &created.body);
    let job_id = created.body["id"].as_str().unwrap().to_owned();
    let immediate = server
        .call(
            Method::POST,
            "/jobs/ACME?immediate=true",
            Some(inline_job(&["a", "b"])),
        )
        .await;
    schemas.check("Job", &immediate.body);
    let got = server
        .call(Method::GET, &format!("/jobs/ACME/{job_id}"), None)
        .await;
    schemas.check("Job", &got.body);
    let updated = server
        .call(
            Method::PUT,
            &format!("/jobs/ACME/{job_id}?immediate=true"),
            Some(got.body.clone()),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    schemas.check("Job", &updated.body);
    let page = server.call(Method::GET, "/jobs/ACME?size=10", None).await;
    schemas.check("JobPage", &page.body);

    // Executions: pending, ended, failed, restarted, stopped, killed; listed.
    let inline_id = immediate.body["id"].as_str().unwrap().to_owned();
    let inline_job_id = inline_id.parse().unwrap();
    server
        .executor
        .script(inline_job_id, Script::Fail(vec!["b".into()]));
    let started = server
        .call(
            Method::POST,
            &format!("/jobs/ACME/{inline_id}/start"),
            Some(json!({"hosts": [{"id": "b"}]})),
        )
        .await;
    schemas.check("Execution", &started.body);
    let href = started.headers["location"].to_str().unwrap().to_owned();
    let failed = server.wait_for(&href, "FAILURE").await;
    schemas.check("Execution", &failed);
    server
        .executor
        .script(inline_job_id, Script::UntilCancelled);
    let restarted = server
        .call(Method::POST, &format!("{href}/restart"), None)
        .await;
    assert_eq!(restarted.status, StatusCode::OK);
    schemas.check("Execution", &restarted.body);
    let running = server.wait_for(&href, "RUNNING").await;
    schemas.check("Execution", &running);
    let stopping = server
        .call(
            Method::POST,
            &format!("{href}/stop"),
            Some(json!({"expiryDuration": 30})),
        )
        .await;
    schemas.check("Execution", &stopping.body);
    schemas.check("Execution", &server.wait_for(&href, "STOPPED").await);

    let second = server
        .call(Method::POST, &format!("/jobs/ACME/{inline_id}/start"), None)
        .await;
    let second_href = second.headers["location"].to_str().unwrap().to_owned();
    server.wait_for(&second_href, "RUNNING").await;
    let killing = server
        .call(Method::POST, &format!("{second_href}/kill"), None)
        .await;
    schemas.check("Execution", &killing.body);
    schemas.check("Execution", &server.wait_for(&second_href, "KILLED").await);
    let executions = server
        .call(
            Method::GET,
            &format!("/jobs/ACME/{inline_id}/executions"),
            None,
        )
        .await;
    assert!(executions.body["totalSize"].as_u64().unwrap() >= 3);
    schemas.check("ExecutionPage", &executions.body);
    let found = server
        .call(
            Method::GET,
            "/executions/ACME?status=FAILURE,STOPPED,KILLED&size=5",
            None,
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert!(found.body["totalSize"].as_u64().unwrap() >= 1);
    schemas.check("ExecutionPage", &found.body);

    // The feed of those executions: status events with and without a message.
    for execution in [&href, &second_href] {
        let events = server
            .call(Method::GET, &format!("{execution}/events"), None)
            .await;
        assert_eq!(events.status, StatusCode::OK);
        assert!(events.body["events"].as_array().unwrap().len() >= 4);
        schemas.check("EventPage", &events.body);
        let mut event = events.body["events"][0].clone();
        schemas.check("Event", &event);
        event["undocumented"] = json!(1);
        schemas.refuses("Event", &event);
    }
    // A host result with every field of what the task returned (the executor of this server
    // never runs a real playbook, so the instance is written here, as the executor sends it).
    let mut host_event = server
        .call(Method::GET, &format!("{href}/events"), None)
        .await
        .body["events"][0]
        .clone();
    host_event.as_object_mut().unwrap().remove("status");
    host_event["kind"] = json!("host_retry");
    host_event["host"] = json!("h1");
    host_event["task"] = json!("wait");
    host_event["result"] = json!({
        "changed": true, "msg": "m", "stdout": "out", "stderr": "err", "rc": 1, "item": "a",
        "attempts": 1, "retries": 4, "rescued": true, "ignored": true, "handler": true,
        "censored": true, "truncated": true,
    });
    schemas.check("Event", &host_event);
    host_event["result"]["undocumented"] = json!(1);
    schemas.refuses("Event", &host_event);
    let bad_size = server
        .call(Method::GET, &format!("{href}/events?size=0"), None)
        .await;
    assert_eq!(bad_size.status, StatusCode::BAD_REQUEST);
    schemas.check("Error", &bad_size.body);

    // Service accounts and schedules: created, read, updated, listed; their errors.
    let account = server
        .call(
            Method::POST,
            "/serviceAccounts/ACME",
            Some(json!({"alias": "svc", "description": "robot"})),
        )
        .await;
    assert_eq!(account.status, StatusCode::CREATED);
    schemas.check("ServiceAccount", &account.body);
    let bare = server
        .call(
            Method::POST,
            "/serviceAccounts/ACME",
            Some(json!({"alias": "bare"})),
        )
        .await;
    schemas.check("ServiceAccount", &bare.body);
    schemas.check(
        "ServiceAccount",
        &server
            .call(Method::GET, "/serviceAccounts/ACME/svc", None)
            .await
            .body,
    );
    schemas.check(
        "ServiceAccountPage",
        &server
            .call(Method::GET, "/serviceAccounts/ACME", None)
            .await
            .body,
    );
    let schedules = format!("/jobs/ACME/{job_id}/schedules");
    let cron = server
        .call(
            Method::POST,
            &schedules,
            Some(json!({"description": "d", "serviceAccountAlias": "svc",
                        "trigger": {"type": "cron", "expression": "0 3 * * *"}})),
        )
        .await;
    assert_eq!(cron.status, StatusCode::CREATED);
    schemas.check("Schedule", &cron.body);
    let schedule_href = cron.headers["location"].to_str().unwrap().to_owned();
    let date = server
        .call(
            Method::POST,
            &schedules,
            Some(json!({"description": "d", "serviceAccountAlias": "bare",
                        "type": {"type": "date", "expression": "2999-01-01T00:00:00Z"}})),
        )
        .await;
    assert_eq!(date.status, StatusCode::CREATED);
    schemas.check("Schedule", &date.body);
    let got = server.call(Method::GET, &schedule_href, None).await;
    schemas.check("Schedule", &got.body);
    let mut changed = got.body.clone();
    changed["description"] = json!("changed");
    let put = server
        .call(Method::PUT, &schedule_href, Some(changed))
        .await;
    assert_eq!(put.status, StatusCode::OK);
    schemas.check("Schedule", &put.body);
    let listed = server.call(Method::GET, &schedules, None).await;
    assert_eq!(listed.body["totalSize"], 2);
    schemas.check("SchedulePage", &listed.body);
    let bad_trigger = server
        .call(
            Method::POST,
            &schedules,
            Some(json!({"description": "d", "serviceAccountAlias": "svc",
                        "trigger": {"type": "cron", "expression": "often"}})),
        )
        .await;
    assert_eq!(bad_trigger.status, StatusCode::BAD_REQUEST);
    schemas.check("Error", &bad_trigger.body);
    let in_use = server
        .call(Method::DELETE, "/serviceAccounts/ACME/svc", None)
        .await;
    assert_eq!(in_use.status, StatusCode::CONFLICT);
    schemas.check("Error", &in_use.body);
    // The request bodies the tests send are valid inputs too.
    schemas.check(
        "ScheduleInput",
        &json!({"description": "d", "serviceAccountAlias": "svc",
                "type": {"type": "cron", "expression": "* * * * *"}}),
    );
    schemas.check("ServiceAccountInput", &json!({"alias": "a.b-c_d"}));

    // Errors of every kind.
    let invalid = server
        .call(
            Method::POST,
            "/jobs/ACME",
            Some(json!({"hosts": [{"id": 1}]})),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    schemas.check("Error", &invalid.body);
    let unauthorized = server
        .call_as("nope-nope-nope-nope-nope", Method::GET, "/jobs/ACME", None)
        .await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    schemas.check("Error", &unauthorized.body);
    let forbidden = server.call_as(ACME, Method::GET, "/jobs/BETA", None).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    schemas.check("Error", &forbidden.body);
    let missing = server.call(Method::GET, "/jobs/ACME/not-an-id", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    schemas.check("Error", &missing.body);
    let conflict = server
        .call(Method::POST, &format!("{second_href}/restart"), None)
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    schemas.check("Error", &conflict.body);
    let media = server
        .client
        .post(format!("{}/jobs/ACME", server.base))
        .bearer_auth(ADMIN)
        .header("content-type", "text/yaml")
        .body("hosts: []")
        .send()
        .await
        .unwrap();
    assert_eq!(media.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    schemas.check("Error", &media.json().await.unwrap());

    let health: Value = server
        .client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    schemas.check("Health", &health);

    // The schemas are strict enough to catch drift.
    let mut extra = got.body.clone();
    extra["undocumented"] = json!(1);
    schemas.refuses("Job", &extra);
    let mut wrong = failed.clone();
    wrong["status"] = json!("DONE");
    schemas.refuses("Execution", &wrong);
    schemas.refuses("JobPage", &json!({"totalSize": 1, "page": 0, "size": 1}));
    schemas.refuses("Error", &json!({"error": "x"}));
    let mut extra = put.body.clone();
    extra["links"] = json!([]);
    schemas.refuses("Schedule", &extra);
    let mut weekly = put.body.clone();
    weekly["trigger"]["type"] = json!("weekly");
    schemas.refuses("Schedule", &weekly);
    let mut no_next = put.body.clone();
    no_next.as_object_mut().unwrap().remove("nextFireTime");
    schemas.refuses("Schedule", &no_next);
    let mut extra = account.body.clone();
    extra["secret"] = json!("x");
    schemas.refuses("ServiceAccount", &extra);
    schemas.refuses("ServiceAccountInput", &json!({"alias": "has space"}));
    server.stop().await;
}

/// The next execution that reaches SUCCESS, by its notification (bounded only to fail a broken
/// test instead of hanging).
async fn next_success(
    notifications: &mut tokio::sync::broadcast::Receiver<Notification>,
) -> runner_core::ids::ExecutionId {
    let wait = async {
        loop {
            let notification = notifications.recv().await.expect("the notifier is open");
            if let NotificationKind::Status {
                status: Status::Success,
                ..
            } = notification.kind
            {
                return notification.execution_id;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("a scheduled execution succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_fire_over_tcp_on_a_mock_clock() {
    const MINUTE: i64 = 60_000;
    // 2026-11-25T00:00:30Z: half a minute before the first due time of "* * * * *".
    let start = 1_795_564_830_000;
    let clock = MockClock::at(start);
    let server = Server::with_scheduler(Arc::new(token_file()), ACME, clock.clone()).await;
    let mut notifications = server.notifier.subscribe();
    let document = server.call(Method::GET, "/openapi.json", None).await.body;
    let schemas = Schemas { document };

    let job = server
        .call(Method::POST, "/jobs/ACME", Some(inline_job(&["a"])))
        .await;
    assert_eq!(job.status, StatusCode::CREATED);
    let job_id = job.body["id"].as_str().unwrap().to_owned();
    let account = server
        .call(
            Method::POST,
            "/serviceAccounts/ACME",
            Some(json!({"alias": "svc", "description": "robot"})),
        )
        .await;
    assert_eq!(account.status, StatusCode::CREATED);
    let created = server
        .call(
            Method::POST,
            &format!("/jobs/ACME/{job_id}/schedules"),
            Some(json!({
                "description": "every minute",
                "serviceAccountAlias": "svc",
                "type": {"type": "cron", "expression": "* * * * *"}
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let href = created.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(created.body["nextFireTime"], start + 30_000);
    assert_eq!(created.body["lastFireTime"], Value::Null);

    // Three minutes, one at a time: one execution per due time, and the schedule moves on.
    let mut due = start + 30_000;
    let mut fired = std::collections::HashSet::new();
    for _ in 0..3 {
        clock.advance(Duration::from_secs(60));
        let execution = next_success(&mut notifications).await;
        assert!(fired.insert(execution.to_string()), "a new execution");
        let schedule = server.call(Method::GET, &href, None).await;
        assert_eq!(schedule.status, StatusCode::OK);
        assert_eq!(schedule.body["lastFireTime"], due, "{}", schedule.body);
        assert_eq!(
            schedule.body["nextFireTime"],
            due + MINUTE,
            "{}",
            schedule.body
        );
        schemas.check("Schedule", &schedule.body);
        due += MINUTE;
    }
    let executions = server
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/executions"),
            None,
        )
        .await;
    assert_eq!(executions.body["totalSize"], 3, "{}", executions.body);
    let results = executions.body["results"].as_array().unwrap();
    let listed: std::collections::HashSet<String> = results
        .iter()
        .map(|execution| {
            assert_eq!(execution["status"], "SUCCESS", "{execution}");
            execution["execution_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(listed, fired);
    assert_eq!(server.executor.runs().len(), 3);

    // A date schedule: it fires once, then has no next fire time.
    let deleted = server.call(Method::DELETE, &href, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // Now 00:03:30; the date is 00:05:00.
    let at = start + 270_000;
    let once = server
        .call(
            Method::POST,
            &format!("/jobs/ACME/{job_id}/schedules"),
            Some(json!({
                "description": "once",
                "serviceAccountAlias": "svc",
                "trigger": {"type": "date", "expression": "2026-11-25T00:05:00Z"}
            })),
        )
        .await;
    assert_eq!(once.status, StatusCode::CREATED, "{}", once.body);
    assert_eq!(once.body["nextFireTime"], at);
    let once_href = once.headers["location"].to_str().unwrap().to_owned();
    clock.advance(Duration::from_secs(120));
    let execution = next_success(&mut notifications).await;
    assert!(fired.insert(execution.to_string()));
    let after = server.call(Method::GET, &once_href, None).await;
    assert_eq!(after.body["nextFireTime"], Value::Null, "{}", after.body);
    assert_eq!(after.body["lastFireTime"], at);
    schemas.check("Schedule", &after.body);
    let executions = server
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/executions"),
            None,
        )
        .await;
    assert_eq!(executions.body["totalSize"], 4, "{}", executions.body);
    assert_eq!(
        executions.body["results"][0]["execution_id"],
        execution.to_string(),
        "the date schedule's execution is the newest"
    );
    assert_eq!(executions.body["results"][0]["status"], "SUCCESS");
    server.stop().await;
}
