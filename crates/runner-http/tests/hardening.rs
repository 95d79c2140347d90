//! What a hostile tenant tried (issue 17) and now gets refused: callbacks and repository URLs
//! into every block of addresses that is not globally reachable, credentials and over-long
//! repository URLs, git's error text as a port scanner, JSON that is not plain JSON; and the
//! server's own files, private from their first write; JSON log lines with one `message`.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use axum::http::{Method, StatusCode};
use common::process::{Runner, SseClient, admin_token, ansible_path, is_final, sled_dir};
use common::{ACME, Harness, inline_job};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Value, json};

/// One address in each block that is not globally reachable, as a URL host.
const REFUSED_HOSTS: &[&str] = &[
    "0.0.0.1",
    "10.1.2.3",
    "100.64.0.1",
    "127.0.0.1",
    "169.254.169.254",
    "172.16.0.1",
    "192.0.0.1",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "[::]",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[64:ff9b::a00:1]",
    "[64:ff9b:1::1]",
    "[100::1]",
    "[2001::1]",
    "[2001:2::1]",
    "[2001:db8::1]",
    "[2002:7f00:1::1]",
    "[fc00::1]",
    "[fe80::1]",
    "[ff02::1]",
    // Number forms that resolvers read as 127.0.0.1.
    "2130706433",
    "0x7f.1",
];

/// The field paths of a 400 body.
fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn other_json_media_types_are_415() {
    let h = Harness::new();
    let body = inline_job(&["a"]).to_string();
    for content_type in [
        "application/json-patch+json",
        "application/vnd.api+json",
        "application/merge-patch+json",
        "application/jsonx",
        "text/json",
    ] {
        let reply = h
            .raw(
                Method::POST,
                "/jobs/ACME",
                ACME,
                Some(content_type),
                body.clone(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}: {}",
            reply.text
        );
    }
    for content_type in [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
    ] {
        let reply = h
            .raw(
                Method::POST,
                "/jobs/ACME",
                ACME,
                Some(content_type),
                body.clone(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{content_type}: {}",
            reply.text
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn callbacks_into_every_non_global_block_are_refused() {
    let h = Harness::new();
    // The number forms are not hosts the document takes: refused as the value they are, before
    // any address is looked at.
    let (numbers, names): (Vec<&str>, Vec<&str>) = REFUSED_HOSTS
        .iter()
        .partition(|host| host.starts_with("0x") || host.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(numbers, ["2130706433", "0x7f.1"]);
    let mut job = inline_job(&["a"]);
    job["callbacks"] = json!(
        numbers
            .iter()
            .map(|host| format!("http://{host}/hook"))
            .collect::<Vec<_>>()
    );
    let reply = h.call(Method::POST, "/jobs/ACME", ACME, Some(job)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(
        fields(&reply.body),
        ["callbacks[0]", "callbacks[1]"],
        "{}",
        reply.text
    );

    let mut urls: Vec<String> = names
        .iter()
        .map(|host| format!("http://{host}/hook"))
        .collect();
    // A name that does not resolve shows nothing of where it will lead: refused too.
    urls.push("http://localhost./hook".into());
    urls.push("https://hooks.invalid/hook".into());
    let mut job = inline_job(&["a"]);
    job["callbacks"] = json!(urls);
    let reply = h.call(Method::POST, "/jobs/ACME", ACME, Some(job)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let expected: Vec<String> = (0..urls.len())
        .map(|index| format!("callbacks[{index}].url"))
        .collect();
    assert_eq!(fields(&reply.body), expected, "{}", reply.text);

    // A public literal is taken.
    let mut job = inline_job(&["a"]);
    job["callbacks"] = json!(["https://93.184.215.14/hook"]);
    let reply = h.call(Method::POST, "/jobs/ACME", ACME, Some(job)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    h.shutdown().await;
}

fn repository_job(url: &str) -> Value {
    json!({
        "repository": {"url": url, "defaultPlaybook": "site.yml"},
        "hosts": [{"id": "localhost", "hostVars": {"ansible_connection": "local"}}]
    })
}

/// The real binary: a small client for one account.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(runner: &Runner, token: String) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: runner.base.clone(),
            token,
        }
    }

    async fn post(&self, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates and starts a job; returns its execution's path once it has ended.
    async fn run_to_end(&self, job: &Value) -> Value {
        let (status, created) = self.post("/jobs/ACME", Some(job)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let job_id = created["id"].as_str().unwrap().to_owned();
        let (status, execution) = self.post(&format!("/jobs/ACME/{job_id}/start"), None).await;
        assert_eq!(status, StatusCode::CREATED, "{execution}");
        let id = execution["execution_id"].as_str().unwrap();
        let href = format!("/jobs/ACME/{job_id}/executions/{id}");
        let mut stream = SseClient::connect(
            &self.client,
            &format!("{}{href}/events", self.base),
            &self.token,
            None,
        )
        .await;
        while !is_final(&stream.next().await.data) {}
        self.client
            .get(format!("{}{href}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_urls_to_non_global_hosts_are_refused_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = ansible_path();
    let runner = Runner::spawn(dir.path(), &["--store", "memory"], &[("PATH", &path)]);
    let api = Api::new(&runner, admin_token(&dir.path().join("runner-tokens")));
    let mut urls: Vec<String> = Vec::new();
    for host in REFUSED_HOSTS {
        urls.push(format!("https://{host}/r.git"));
        urls.push(format!("ssh://git@{host}:3306/r.git"));
    }
    urls.extend(
        [
            "https://localhost/r.git",
            "ssh://git@localhost:5432/r.git",
            "git@localhost:r.git",
            "git@10.0.0.5:r.git",
            "https://db.localhost./r.git",
        ]
        .map(String::from),
    );
    for url in &urls {
        let (status, body) = api.post("/jobs/ACME", Some(&repository_job(url))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(fields(&body), ["repository.url"], "{url}: {body}");
    }
    // Credentials in the URL: refused, pointing at repository.credentials, never repeated.
    for url in [
        "https://deploy:PASSWORD-S3CRET@git.example.com/r.git",
        "https://TOKEN-S3CRET@git.example.com/r.git",
    ] {
        let (status, body) = api.post("/jobs/ACME", Some(&repository_job(url))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(fields(&body), ["repository.url"], "{body}");
        let text = body.to_string();
        assert!(text.contains("repository.credentials"), "{text}");
        assert!(!text.contains("S3CRET"), "{text}");
    }
    let long = format!("https://git.example.com/{}.git", "a".repeat(2048));
    let (status, body) = api.post("/jobs/ACME", Some(&repository_job(&long))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("2048 characters"), "{body}");

    // A public name is taken at save time, and checked when git connects: one that does not
    // resolve ends the run before git starts.
    let execution = api
        .run_to_end(&repository_job("https://git.invalid/r.git"))
        .await;
    assert_eq!(execution["status"], "FAILURE", "{execution}");
    let message = execution["message"].as_str().unwrap();
    assert!(
        message.contains("repository.url names a host that does not resolve"),
        "{message}"
    );
    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success());
    for line in &stderr {
        assert!(!line.contains("S3CRET"), "a secret in the log: {line}");
    }
}

/// The keys of one JSON object, duplicates kept (serde_json's `Value` keeps only the last).
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_map(KeysVisitor)
    }
}

/// With local repositories allowed (the tests' setting), a clone from a closed port and one
/// from a port that answers but is no git server end with the same short message: git's
/// words, which tell them apart, stay in the run's log. And every JSON log line of the
/// server has exactly one `message`, the status text being `detail`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_errors_tell_no_port_state_and_json_logs_have_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = ansible_path();
    let runner = Runner::spawn(
        dir.path(),
        &["--store", "memory", "--allow-local-repositories"],
        &[("PATH", &path)],
    );
    let api = Api::new(&runner, admin_token(&dir.path().join("runner-tokens")));

    // An open port that closes every connection at once, and a closed one.
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for connection in open.incoming() {
            drop(connection);
        }
    });
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut messages = HashMap::new();
    for (name, port) in [("open", open_port), ("closed", closed_port)] {
        for url in [
            format!("ssh://git@127.0.0.1:{port}/r.git"),
            format!("http://127.0.0.1:{port}/r.git"),
        ] {
            let execution = api.run_to_end(&repository_job(&url)).await;
            assert_eq!(execution["status"], "FAILURE", "{execution}");
            let message = execution["message"].as_str().unwrap().to_owned();
            for raw in [
                "Connection refused",
                "Connection closed",
                "kex_exchange",
                "fatal:",
                "Failed to connect",
                "Empty reply",
            ] {
                assert!(!message.contains(raw), "{url}: git's text in {message}");
            }
            let scheme = url.split_once(':').unwrap().0.to_owned();
            messages.insert((name, scheme), message.replace(&port.to_string(), "PORT"));
        }
    }
    for scheme in ["ssh", "http"] {
        assert_eq!(
            messages[&("open", scheme.to_owned())],
            messages[&("closed", scheme.to_owned())],
            "{scheme}: the messages tell the ports apart"
        );
    }
    // Credentials in the URL are refused with local repositories allowed too.
    let (status, body) = api
        .post(
            "/jobs/ACME",
            Some(&repository_job("http://u:pw@127.0.0.1:1/r.git")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success());
    let mut status_lines = 0;
    for line in stderr.iter().filter(|line| line.starts_with('{')) {
        let Keys(keys) = serde_json::from_str(line).unwrap();
        let count = keys.iter().filter(|key| *key == "message").count();
        assert_eq!(count, 1, "{line}");
        let value: Value = serde_json::from_str(line).unwrap();
        if value["message"] == "execution status" && value["status"] == "FAILURE" {
            status_lines += 1;
            assert!(
                value["detail"].as_str().unwrap().contains("git clone of"),
                "{line}"
            );
        }
    }
    assert_eq!(status_lines, 4, "{stderr:#?}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir` is private to its owner: directories 0700, files without any group
/// or other bit.
fn assert_private_tree(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_private_tree(&path);
        } else {
            let mode = mode(&path);
            assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_files_are_private_from_the_first_write() {
    let dir = tempfile::tempdir().unwrap();
    // A fresh data directory, in a parent others may read.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (store, tokens) = sled_dir(dir.path());
    let runner = Runner::spawn(dir.path(), &["--store", &store], &[]);
    let data = dir.path().join("data");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&tokens), 0o600);
    assert_private_tree(&data);
    // A job with a secret lands in the sled files: still private after it is written.
    let api = Api::new(&runner, admin_token(&tokens));
    let mut job = inline_job(&["a"]);
    job["sshPrivateKey"] = json!("c2VjcmV0LWtleQ==");
    let (status, body) = api.post("/jobs/ACME", Some(&job)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{exit:?} {stderr:#?}");
    assert_private_tree(&data);

    // A data directory an earlier version left 0755 is narrowed at start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runner = Runner::spawn(dir.path(), &["--store", &store], &[]);
    assert_eq!(mode(&data), 0o700);
    // At once after "listening": the shutdown handler is already installed, so SIGTERM drains.
    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{exit:?} {stderr:#?}");
}
