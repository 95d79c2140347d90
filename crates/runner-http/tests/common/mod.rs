//! A test harness: the real router over a memory store, a scripted executor and a channel
//! notifier; requests go through `tower::ServiceExt::oneshot`.

#![allow(dead_code)] // Each test binary uses a part of it.

pub(crate) mod process;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use runner_core::engine::{Engine, RunningEngine};
use runner_core::notifier::ChannelNotifier;
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_core::time::SystemClock;
use runner_http::{ApiConfig, TokenFile, router};
use runner_store_memory::MemoryStore;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Every account.
pub(crate) const ADMIN: &str = "admin-token-0123456789abcdef";
/// Account ACME only.
pub(crate) const ACME: &str = "acme-token-0123456789abcdef";
/// Account BETA only.
pub(crate) const BETA: &str = "beta-token-0123456789abcdef";
/// Accounts ACME and GAMMA.
pub(crate) const MULTI: &str = "multi-token-0123456789abcdef";

pub(crate) fn token_file() -> TokenFile {
    TokenFile::parse(&format!(
        "# test tokens\n{ADMIN} *\n{ACME} ACME\n{BETA} BETA\n{MULTI} ACME,GAMMA\n"
    ))
    .expect("test token file parses")
}

pub(crate) type TestEngine = Engine<MemoryStore, ScriptedExecutor, ChannelNotifier, SystemClock>;

pub(crate) struct Harness {
    pub engine: TestEngine,
    pub executor: ScriptedExecutor,
    pub notifier: ChannelNotifier,
    pub app: Router,
    running: Option<RunningEngine<MemoryStore, ScriptedExecutor, ChannelNotifier, SystemClock>>,
}

pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The field paths of a 400 body.
    pub(crate) fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_script(Script::Succeed)
    }

    pub(crate) fn with_script(default: Script) -> Self {
        Self::with_config(default, |config| config)
    }

    /// With the router's configuration adjusted (e.g. private callbacks allowed).
    pub(crate) fn with_config(
        default: Script,
        configure: impl FnOnce(ApiConfig) -> ApiConfig,
    ) -> Self {
        let executor = ScriptedExecutor::new(default);
        let notifier = ChannelNotifier::new(1024);
        let engine = Engine::builder()
            .store(MemoryStore::new())
            .executor(executor.clone())
            .notifier(notifier.clone())
            .concurrency(8)
            // A short fallback poll keeps the suite quick; signals do the real waking.
            .poll_interval(Duration::from_millis(50))
            .shutdown_grace(Duration::from_secs(1))
            .build();
        let app = router(
            engine.clone(),
            configure(ApiConfig::new(Arc::new(token_file()))),
        );
        let running = Some(engine.clone().start());
        Self {
            engine,
            executor,
            notifier,
            app,
            running,
        }
    }

    pub(crate) async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    /// Sends a raw request through the router.
    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body reads")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // Every response is JSON but the run log's text pages and the console's HTML, script and
        // style, which are all `text/...`.
        let text_type = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/"));
        let body = if bytes.is_empty() || text_type {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("every response is JSON, got {status}: {text}"))
        };
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// A JSON request with a bearer token (`None` body: no body, no content type).
    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }

    /// A request with a raw body and content type.
    pub(crate) async fn raw(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        self.send(builder.body(body.into()).unwrap()).await
    }

    /// Creates a job (201) and returns its body.
    pub(crate) async fn create_job(&self, alias: &str, token: &str, spec: Value) -> Value {
        let reply = self
            .call(Method::POST, &format!("/jobs/{alias}"), token, Some(spec))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body
    }

    /// Starts a job (201) and returns the execution.
    pub(crate) async fn start(&self, alias: &str, job_id: &str, token: &str) -> Value {
        let reply = self
            .call(
                Method::POST,
                &format!("/jobs/{alias}/{job_id}/start"),
                token,
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body
    }

    /// Polls the execution until it has `status`, waking on the notifier between reads.
    pub(crate) async fn wait_for(&self, href: &str, token: &str, status: &str) -> Value {
        let mut notifications = self.notifier.subscribe();
        for _ in 0..200 {
            let reply = self.call(Method::GET, href, token, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            if reply.body["status"] == status {
                return reply.body;
            }
            // Wake on the next notification; the timeout only bounds a broken test.
            match tokio::time::timeout(Duration::from_secs(10), notifications.recv()).await {
                Ok(_) => {}
                Err(_) => panic!(
                    "no notification for 10 s while waiting for {status}: {}",
                    reply.text
                ),
            }
        }
        panic!("{href} never reached {status}");
    }
}

/// A valid inline-playbook job body.
pub(crate) fn inline_job(hosts: &[&str]) -> Value {
    use base64::Engine as _;
    let playbook = base64::engine::general_purpose::STANDARD.encode("- hosts: all\n  tasks: []\n");
    json!({
        "description": "test job",
        "playbook": playbook,
        "hosts": hosts.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
    })
}

/// A repository job with every kind of secret.
pub(crate) fn secret_job() -> Value {
    json!({
        "description": "with secrets",
        "repository": {
            "url": "https://git.example.com/playbooks.git",
            "branch": "main",
            "defaultPlaybook": "site.yml",
            "credentials": {"username": "deploy", "password": "repo-password-S3CRET"}
        },
        "hosts": [{"id": "web1", "hostVars": {"a": 1}, "sshPrivateKey": "aG9zdC1rZXktUzNDUkVU",
                   "sshPassword": "host-password-S3CRET"}],
        "sshPrivateKey": "ZGVmYXVsdC1rZXktUzNDUkVU",
        "callbacks": ["https://93.184.215.14/x", {"url": "https://93.184.215.14/y", "level": "ERROR"}],
        "properties": {"k": "v", "n": [1, 2]},
        "executionTtl": 30,
        "playbookTags": ["deploy"]
    })
}

/// The substrings a response must never contain for [`secret_job`].
pub(crate) const SECRET_VALUES: &[&str] = &[
    "repo-password-S3CRET",
    "aG9zdC1rZXktUzNDUkVU",
    "host-password-S3CRET",
    "ZGVmYXVsdC1rZXktUzNDUkVU",
];
