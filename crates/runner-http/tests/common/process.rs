//! The real `runner` binary in a child process, with ansible on its `PATH`; webhook receivers
//! (small axum servers on 127.0.0.1) that record what they accept; and a server-sent-event
//! client over reqwest.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc as tokio_mpsc;

/// Bounds a broken test, never paces a working one: every wait below wakes on what it waits for.
pub(crate) const PATIENCE: Duration = Duration::from_secs(180);

/// Runs `scripts/SCRIPT` (an `ensure-*.sh` that finds or installs something a test needs) and
/// returns what it printed, trimmed; its failure fails the test, saying `what` is required.
pub(crate) fn ensure(script: &str, what: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(script);
    let found = Command::new("bash")
        .arg(&script)
        .output()
        .expect("bash runs");
    assert!(
        found.status.success(),
        "{what} is required: {}",
        String::from_utf8_lossy(&found.stderr)
    );
    String::from_utf8(found.stdout).unwrap().trim().to_owned()
}

/// The directory of `ansible-playbook` (scripts/ensure-ansible.sh finds or installs it); its
/// absence fails the test.
pub(crate) fn ansible_path() -> String {
    let ansible = ensure("ensure-ansible.sh", "ansible-playbook");
    let bin_dir = Path::new(&ansible).parent().unwrap().to_owned();
    format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Lets the sandbox user of runs (`nobody` when the tests run as root) pass through `dir` (a
/// temp dir is 0700) to the work root under it, without listing it.
pub(crate) fn reachable_by_runs(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
}

/// A directory a sandboxed run can see (read only): outside `/tmp`, which is private to each
/// run, and reachable by the sandbox user. For files a playbook waits for.
pub(crate) fn seen_by_runs() -> tempfile::TempDir {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    reachable_by_runs(dir.path());
    dir
}

/// A `runner serve` child process.
pub(crate) struct Runner {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stdout_seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<Vec<String>>>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Runner {
    /// Starts `runner serve --listen 127.0.0.1:0 --log-format json ARGS` in `dir`, with `RUST_LOG`
    /// at trace (so that a leaked secret would show) and `env`, and waits until it listens.
    pub(crate) fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_with(Command::new(env!("CARGO_BIN_EXE_runner")), dir, args, env)
    }

    /// [`Runner::spawn`] in a network namespace of its own that has only a loopback interface
    /// (as root, with `unshare`): whatever the server tries to reach beyond 127.0.0.1 is
    /// unreachable at once. Enter it with [`Runner::in_network`].
    pub(crate) fn spawn_isolated(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new("unshare");
        command.args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_runner"),
        ]);
        Self::spawn_with(command, dir, args, env)
    }

    /// `program` run in this server's network namespace (see [`Runner::spawn_isolated`]).
    pub(crate) fn in_network(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/proc/{}/ns/net", self.pid()))
            .arg(program);
        command
    }

    fn spawn_with(mut command: Command, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        reachable_by_runs(dir);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars() {
            if key.starts_with("RUNNER_") {
                command.env_remove(key);
            }
        }
        command.env("RUST_LOG", "trace");
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("runner starts");
        let (send, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            BufReader::new(err)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        let mut runner = Self {
            child,
            stdout,
            stdout_seen: Vec::new(),
            stderr: Some(stderr),
            base: String::new(),
        };
        loop {
            let line = runner
                .stdout
                .recv_timeout(Duration::from_secs(60))
                .expect("runner prints its address");
            runner.stdout_seen.push(line.clone());
            if let Some(address) = line.strip_prefix("runner: listening on ") {
                runner.base = address.to_owned();
                break;
            }
        }
        runner
    }

    /// The lines the server printed on stdout up to its `listening on` line.
    pub(crate) fn printed(&self) -> &[String] {
        &self.stdout_seen
    }

    /// Sends SIGTERM and returns at once: the server drains while the test looks at it.
    pub(crate) fn signal_terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end (after [`Runner::signal_terminate`]); its exit status.
    pub(crate) fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the exit status and everything printed (stdout, stderr).
    pub(crate) fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        self.stdout_seen.extend(self.stdout.try_iter());
        (exit, std::mem::take(&mut self.stdout_seen), stderr)
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // A failed test must not leave its server running; after `terminate` this is a no-op.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin token that `runner serve` wrote into a token file.
pub(crate) fn admin_token(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|line| !line.starts_with('#') && !line.trim().is_empty())
        .unwrap();
    line.split_once(' ').unwrap().0.to_owned()
}

/// A sled data directory and its token file.
pub(crate) fn sled_dir(dir: &Path) -> (String, PathBuf) {
    let data = dir.join("data");
    (format!("sled:{}", data.display()), data.join("tokens"))
}

/// One POST a receiver took (answered 2xx).
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The request path (which callback of the job).
    pub path: String,
    /// `Idempotency-Key`.
    pub key: String,
    /// `X-Runner-Attempt`.
    pub attempt: Option<String>,
    /// `X-Runner-Signature`.
    pub signature: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// The exact body.
    pub raw: Bytes,
    /// The body as JSON.
    pub body: Value,
}

impl Received {
    /// The event's sequence number.
    pub(crate) fn sequence(&self) -> u64 {
        self.body["sequence"].as_u64().expect("a sequence number")
    }
}

struct ReceiverState {
    down: AtomicBool,
    fail_next: AtomicUsize,
    accepted: tokio_mpsc::UnboundedSender<Received>,
    refused: tokio_mpsc::UnboundedSender<String>,
}

/// A webhook receiver on 127.0.0.1: answers 503 while down or for its first failures, else 204,
/// and reports each taken POST on a channel (and each refused one on another).
pub(crate) struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<ReceiverState>,
    accepted: tokio_mpsc::UnboundedReceiver<Received>,
    refused: tokio_mpsc::UnboundedReceiver<String>,
    server: tokio::task::JoinHandle<()>,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

impl Receiver {
    /// A receiver that answers 503 to its first `failures` POSTs.
    pub(crate) async fn start(failures: usize) -> Self {
        let (accepted_tx, accepted) = tokio_mpsc::unbounded_channel();
        let (refused_tx, refused) = tokio_mpsc::unbounded_channel();
        let state = Arc::new(ReceiverState {
            down: AtomicBool::new(false),
            fail_next: AtomicUsize::new(failures),
            accepted: accepted_tx,
            refused: refused_tx,
        });
        let shared = Arc::clone(&state);
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let state = Arc::clone(&shared);
                async move {
                    let key = header(&headers, "idempotency-key").unwrap_or_default();
                    let failing = state.down.load(Ordering::SeqCst)
                        || state
                            .fail_next
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                                left.checked_sub(1)
                            })
                            .is_ok();
                    if failing {
                        let _ = state.refused.send(key);
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let body_json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let _ = state.accepted.send(Received {
                        path: uri.path().to_owned(),
                        key,
                        attempt: header(&headers, "x-runner-attempt"),
                        signature: header(&headers, "x-runner-signature"),
                        content_type: header(&headers, "content-type"),
                        raw: body,
                        body: body_json,
                    });
                    StatusCode::NO_CONTENT
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base: format!("http://{address}"),
            state,
            accepted,
            refused,
            server,
        }
    }

    /// Answers 503 to everything until [`Receiver::set_down`] with false.
    pub(crate) fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// The next POST taken.
    pub(crate) async fn next(&mut self) -> Received {
        tokio::time::timeout(PATIENCE, self.accepted.recv())
            .await
            .expect("the receiver got a POST in time")
            .expect("the receiver runs")
    }

    /// The next POST refused (its idempotency key).
    pub(crate) async fn next_refused(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.refused.recv())
            .await
            .expect("the receiver refused a POST in time")
            .expect("the receiver runs")
    }

    /// The POSTs taken and not yet read, without waiting.
    pub(crate) fn drain(&mut self) -> Vec<Received> {
        std::iter::from_fn(|| self.accepted.try_recv().ok()).collect()
    }

    /// Takes POSTs until one on `path` carries an execution's final status; returns every POST
    /// taken meanwhile, on any path.
    pub(crate) async fn until_final(&mut self, path: &str) -> Vec<Received> {
        let mut taken = Vec::new();
        loop {
            let received = self.next().await;
            let done = received.path == path && is_final(&received.body);
            taken.push(received);
            if done {
                return taken;
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A receiver that accepts connections and never answers; it reports each connection.
pub(crate) struct Silent {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    connections: tokio_mpsc::UnboundedReceiver<()>,
    server: tokio::task::JoinHandle<()>,
}

impl Silent {
    /// Listens on 127.0.0.1.
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (send, connections) = tokio_mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                // Held open, never read, never answered.
                held.push(socket);
                let _ = send.send(());
            }
        });
        Self {
            base: format!("http://{address}"),
            connections,
            server,
        }
    }

    /// Waits for a connection.
    pub(crate) async fn connected(&mut self) {
        tokio::time::timeout(PATIENCE, self.connections.recv())
            .await
            .expect("the silent receiver got a connection in time")
            .expect("the silent receiver runs");
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Whether an event is the status event of an ended execution.
pub(crate) fn is_final(event: &Value) -> bool {
    event["kind"] == "status"
        && matches!(
            event["status"].as_str(),
            Some("SUCCESS" | "FAILURE" | "STOPPED" | "KILLED")
        )
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub(crate) struct SseEvent {
    /// `id:` (the sequence number).
    pub id: u64,
    /// `event:` (the kind).
    pub event: String,
    /// `data:` (the JSON event).
    pub data: Value,
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A `text/event-stream` response read event by event.
pub(crate) struct SseClient {
    stream: ByteStream,
    buffer: String,
    ready: VecDeque<SseEvent>,
    /// Comment lines seen (keep-alives).
    pub comments: usize,
}

impl SseClient {
    /// `GET url` with `Accept: text/event-stream` (and `Last-Event-ID` when given); asserts a
    /// 200 stream.
    pub(crate) async fn connect(
        client: &reqwest::Client,
        url: &str,
        token: &str,
        last_event_id: Option<u64>,
    ) -> Self {
        let mut request = client
            .get(url)
            .bearer_auth(token)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the stream answers in time")
            .expect("the stream connects");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            stream: Box::pin(response.bytes_stream()),
            buffer: String::new(),
            ready: VecDeque::new(),
            comments: 0,
        }
    }

    /// The next event; `None` when the server ended the stream.
    pub(crate) async fn try_next(&mut self) -> Option<SseEvent> {
        // One deadline for the event: keep-alive comments must not extend it.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("an event arrives in time");
            match chunk {
                None => return None,
                Some(chunk) => {
                    let chunk = chunk.expect("the stream reads");
                    self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
                    self.parse();
                }
            }
        }
    }

    /// The next event; the stream must not end.
    pub(crate) async fn next(&mut self) -> SseEvent {
        self.try_next().await.expect("the stream stays open")
    }

    fn parse(&mut self) {
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, None, String::new());
            for line in block.lines() {
                if line.starts_with(':') {
                    self.comments += 1;
                } else if let Some(value) = line.strip_prefix("id:") {
                    id = Some(value.trim().parse::<u64>().expect("numeric ids"));
                } else if let Some(value) = line.strip_prefix("event:") {
                    event = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            if let (Some(id), Some(event)) = (id, event) {
                self.ready.push_back(SseEvent {
                    id,
                    event,
                    data: serde_json::from_str(&data).expect("data is JSON"),
                });
            }
        }
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`, in lowercase hex: what
/// `X-Runner-Signature: sha256=...` must carry.
pub(crate) fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A playbook as the API takes it: base64 of its YAML.
pub(crate) fn playbook(yaml: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(yaml)
}

/// The host the end-to-end tests run on: local, and the Python that runs ansible-playbook runs
/// the modules too (no interpreter discovery).
pub(crate) fn localhost() -> Value {
    serde_json::json!({"id": "localhost", "hostVars": {"ansible_connection": "local",
           "ansible_python_interpreter": "{{ ansible_playbook_python }}"}})
}

/// The JSON API of one running server, under one bearer token.
pub(crate) struct Api {
    pub client: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub token: String,
}

impl Api {
    pub(crate) fn new(base: &str, token: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: base.to_owned(),
            token: token.to_owned(),
        }
    }

    /// `method path` with a JSON body; panics unless the answer is a success. Returns its body.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// The run log of the execution at `href`, as text.
    pub(crate) async fn run_log(&self, href: &str) -> String {
        self.client
            .get(format!("{}{href}/log", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Creates `job` in account ACME and starts it; returns (execution id, execution path).
    pub(crate) async fn run(&self, job: Value) -> (String, String) {
        let created = self
            .send(reqwest::Method::POST, "/jobs/ACME", Some(job))
            .await;
        let job_id = created["id"].as_str().unwrap().to_owned();
        let execution = self
            .send(
                reqwest::Method::POST,
                &format!("/jobs/ACME/{job_id}/start"),
                None,
            )
            .await;
        let id = execution["execution_id"].as_str().unwrap().to_owned();
        (id.clone(), format!("/jobs/ACME/{job_id}/executions/{id}"))
    }

    /// Every stored event of an execution, read in JSON pages.
    pub(crate) async fn events(&self, href: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .send(
                    reqwest::Method::GET,
                    &format!("{href}/events?after={after}&size=7"),
                    None,
                )
                .await;
            events.extend(page["events"].as_array().unwrap().iter().cloned());
            after = page["lastSequence"].as_u64().unwrap();
            if page["hasMore"] == false {
                return events;
            }
        }
    }
}
