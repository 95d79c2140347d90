//! The run log end to end: the real `runner` binary on a sled data directory and real
//! `ansible-playbook` runs; `GET .../log` as text pages and followed over SSE, and the recap on
//! the execution. Waits wake on what they wait for (a server-sent event, a status); the
//! timeouts only bound a broken test.
#![cfg(all(feature = "sled", feature = "ansible"))]

mod common;

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Bytes;
use common::process::{Api, Runner, admin_token, ansible_path, localhost, playbook, sled_dir};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(180);

/// One event of a followed log.
#[derive(Debug, Clone)]
struct LogEvent {
    id: String,
    event: String,
    data: String,
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A followed log, read event by event (text data, `attempt:offset` ids).
struct LogStream {
    stream: ByteStream,
    buffer: String,
    ready: VecDeque<LogEvent>,
}

impl LogStream {
    async fn connect(client: &reqwest::Client, url: &str, token: &str, last: Option<&str>) -> Self {
        let mut request = client
            .get(url)
            .bearer_auth(token)
            .header("accept", "text/event-stream");
        if let Some(id) = last {
            request = request.header("last-event-id", id);
        }
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the stream answers in time")
            .expect("the stream connects");
        assert_eq!(response.status(), 200);
        Self {
            stream: Box::pin(response.bytes_stream()),
            buffer: String::new(),
            ready: VecDeque::new(),
        }
    }

    /// The next event; `None` once the server ended the stream.
    async fn next(&mut self) -> Option<LogEvent> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("an event arrives in time")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk.expect("the stream reads")).unwrap());
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, Vec::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                    }
                }
                if let (Some(id), Some(event)) = (id, event) {
                    self.ready.push_back(LogEvent {
                        id,
                        event,
                        data: data.join("\n"),
                    });
                }
            }
        }
    }

    /// Text of `log` events until `until` holds for the text so far (or the `end` event).
    async fn read_until(&mut self, text: &mut String, until: impl Fn(&str) -> bool) -> LogEvent {
        loop {
            let event = self.next().await.expect("the stream stays open");
            if event.event == "end" {
                return event;
            }
            assert_eq!(event.event, "log", "{event:?}");
            text.push_str(&event.data);
            if until(text) {
                return event;
            }
        }
    }
}

/// Extra reads of the run log over the shared [`Api`].
trait LogApi {
    async fn text(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String);
    async fn paged(&self, href: &str, limit: u64) -> String;
}

impl LogApi for Api {
    /// `GET path` as text: the status, the headers and the body.
    async fn text(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }

    /// Reads a whole attempt's log in pages of `limit` bytes, following the next offsets.
    async fn paged(&self, href: &str, limit: u64) -> String {
        let mut text = String::new();
        let mut offset = 0;
        loop {
            let (status, headers, page) = self
                .text(&format!("{href}/log?offset={offset}&limit={limit}"))
                .await;
            assert_eq!(status, 200, "{page}");
            text.push_str(&page);
            let header = |name: &str| headers[name].to_str().unwrap().to_owned();
            let next: u64 = header("x-run-log-next-offset").parse().unwrap();
            if header("x-run-log-complete") == "true" {
                return text;
            }
            assert!(next > offset, "pages move on");
            offset = next;
        }
    }
}

/// A run followed live: output arrives while the playbook waits; after the end, the text pages,
/// the stream and a resumed stream agree; the recap is on the execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_followed_live_and_read_in_pages() {
    let path = ansible_path();
    let dir = tempfile::tempdir().unwrap();
    let (store, tokens) = sled_dir(dir.path());
    let runner = Runner::spawn(dir.path(), &["--store", &store], &[("PATH", &path)]);
    let api = Api::new(&runner.base, &admin_token(&tokens));
    // Not in `dir` (under /tmp): each run has a /tmp of its own.
    let shared = common::process::seen_by_runs();
    let go = shared.path().join("go");
    let play = format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: greet\n      ansible.builtin.debug: {{msg: hello}}\n    - name: wait for go\n      ansible.builtin.wait_for: {{path: '{}', timeout: 600}}\n    - name: print\n      ansible.builtin.command: \"sh -c 'echo to-stdout; echo to-stderr >&2'\"\n",
        go.display()
    );
    let (_, href) = api
        .run(json!({"playbook": playbook(&play), "hosts": [localhost()]}))
        .await;
    // `/jobs/ACME/{job}/executions/{id}`
    let job_id = href.split('/').nth(3).unwrap().to_owned();
    let url = format!("{}{href}/log", api.base);

    // Followed from the start: the greeting and the waiting task arrive while the run waits.
    let mut live = LogStream::connect(&api.client, &url, &api.token, None).await;
    let mut followed = String::new();
    let waiting = live
        .read_until(&mut followed, |text| text.contains("TASK [wait for go]"))
        .await;
    assert_eq!(waiting.event, "log");
    assert!(followed.contains("ok: [localhost] => {"), "{followed}");
    assert!(followed.contains("\"msg\": \"hello\""), "{followed}");
    let running = api.send(reqwest::Method::GET, &href, None).await;
    assert_eq!(running["status"], "RUNNING", "lines came before the end");
    let (_, headers, so_far) = api.text(&format!("{href}/log")).await;
    assert_eq!(headers["x-run-log-complete"], "false");
    assert_eq!(headers["x-run-log-attempt"], "1");
    assert!(so_far.contains("\"msg\": \"hello\""), "{so_far}");

    std::fs::write(&go, b"go").unwrap();
    let end = live.read_until(&mut followed, |_| false).await;
    assert_eq!(end.event, "end");
    let end_data: Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(end_data["status"], "SUCCESS", "{end_data}");
    assert_eq!(end_data["attempt"], 1);
    assert!(live.next().await.is_none(), "the stream ends after `end`");
    for line in ["changed: [localhost]", "PLAY RECAP", "ok=3", "changed=1"] {
        assert!(followed.contains(line), "{line:?} not in:\n{followed}");
    }

    // The whole log as text, in one page and in small pages, is what was followed.
    let (status, headers, whole) = api.text(&format!("{href}/log")).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(headers["x-run-log-complete"], "true");
    assert_eq!(
        headers["x-run-log-next-offset"].to_str().unwrap(),
        whole.len().to_string()
    );
    assert_eq!(whole, followed);
    assert_eq!(api.paged(&href, 100).await, whole);

    // Resuming from the event of the waiting task gives the rest, then the end.
    let mut resumed = LogStream::connect(&api.client, &url, &api.token, Some(&waiting.id)).await;
    let mut rest = String::new();
    let end = resumed.read_until(&mut rest, |_| false).await;
    assert_eq!(end.event, "end");
    let cut: usize = waiting.id.split_once(':').unwrap().1.parse().unwrap();
    assert_eq!(rest, whole[cut..]);

    // The recap per host, on the execution and in the list.
    let ended = api.send(reqwest::Method::GET, &href, None).await;
    assert_eq!(ended["status"], "SUCCESS");
    let stats = &ended["host_stats"]["localhost"];
    assert_eq!(stats["ok"], 3, "{ended}");
    assert_eq!(stats["changed"], 1, "{ended}");
    assert_eq!(stats["failed"], 0, "{ended}");
    let list = api
        .send(
            reqwest::Method::GET,
            &format!("/jobs/ACME/{job_id}/executions"),
            None,
        )
        .await;
    assert_eq!(
        list["results"][0]["host_stats"], ended["host_stats"],
        "{list}"
    );

    // Bad requests name the parameter; attempts the execution never had are not found.
    let (status, _, body) = api.text(&format!("{href}/log?attempt=0")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("attempt"), "{body}");
    let (status, _, body) = api.text(&format!("{href}/log?limit=0")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("limit"), "{body}");
    let (status, _, _) = api.text(&format!("{href}/log?attempt=2")).await;
    assert_eq!(status, 404);

    let (exit, _, _) = runner.terminate();
    assert!(exit.success());
}
