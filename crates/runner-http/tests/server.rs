//! A real listening server on 127.0.0.1:0, driven with reqwest: end-to-end flows, JWT mode, and
//! every kind of response validated against the schemas of the served OpenAPI document.

mod common;

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, Method, StatusCode};
use runner_core::engine::Engine;
use runner_core::notifier::ChannelNotifier;
use runner_core::testkit::{Script, ScriptedExecutor};
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
        let executor = ScriptedExecutor::new(Script::Succeed);
        let notifier = ChannelNotifier::new(1024);
        let engine = Engine::builder()
            .store(MemoryStore::new())
            .executor(executor.clone())
            .notifier(notifier.clone())
            .poll_interval(Duration::from_millis(50))
            .shutdown_grace(Duration::from_secs(1))
            .build();
        let app = router(engine.clone(), ApiConfig::new(authenticator));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let running = engine.start();
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
        (
            "/jobs/{alias}/{jobId}/executions/{executionId}",
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
    server.stop().await;
}
