//! The live feed end to end: the real `runner` binary on a sled data directory, real
//! `ansible-playbook` runs, and webhook receivers on 127.0.0.1. Every wait wakes on what it waits
//! for (a POST, a server-sent event); the timeouts in `common::process` only bound a broken test.
#![cfg(all(feature = "sled", feature = "ansible"))]

mod common;

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use common::process::{
    Api, Receiver, Runner, Silent, SseClient, SseEvent, admin_token, ansible_path, hmac_sha256_hex,
    is_final, localhost, playbook, sled_dir,
};
use serde_json::{Value, json};

/// Quick retries for tests, callbacks to 127.0.0.1 allowed, and no give-up in sight.
const DELIVERY: &[&str] = &[
    "--allow-private-callbacks",
    "--callback-retry-base-ms",
    "20",
    "--callback-retry-max-ms",
    "300",
    "--callback-max-attempts",
    "100000",
];

/// A host that refuses SSH at once (nothing listens on port 1 of 127.0.0.1): UNREACHABLE.
fn unreachable_host() -> Value {
    json!({"id": "unreachable-host", "hostVars": {"ansible_host": "127.0.0.1", "ansible_port": 1,
           "ansible_connection": "ssh", "ansible_user": "nobody"}})
}

const SIMPLE_PLAY: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: say hello\n      ansible.builtin.debug: {msg: hello}\n    - name: reach the host\n      ansible.builtin.ping:\n";

fn stream_url(api: &Api, href: &str) -> String {
    format!("{}{href}/events", api.base)
}

/// Reads the live stream from the start until the execution's final status event.
async fn until_final(api: &Api, href: &str) -> Vec<SseEvent> {
    let mut stream =
        SseClient::connect(&api.client, &stream_url(api, href), &api.token, None).await;
    let mut seen = Vec::new();
    loop {
        let event = stream.next().await;
        let done = is_final(&event.data);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn sequences(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|event| event["sequence"].as_u64().unwrap())
        .collect()
}

/// Asserts that a receiver took `expected` exactly: each event once per idempotency key, in
/// order, with the body the events endpoint shows.
fn assert_delivered_once_in_order(
    taken: &[common::process::Received],
    expected: &[Value],
    execution: &str,
    callback: u32,
) {
    let keys: Vec<&str> = taken.iter().map(|received| received.key.as_str()).collect();
    let unique: HashSet<&str> = keys.iter().copied().collect();
    assert_eq!(
        unique.len(),
        keys.len(),
        "a key was delivered twice: {keys:?}"
    );
    let bodies: Vec<Value> = taken.iter().map(|received| received.body.clone()).collect();
    assert_eq!(
        sequences(&bodies),
        sequences(expected),
        "every event, in order"
    );
    assert_eq!(bodies, expected, "the POST bodies are the stored events");
    for received in taken {
        assert_eq!(
            received.key,
            format!("{execution}:{callback}:{}", received.sequence())
        );
        assert_eq!(received.content_type.as_deref(), Some("application/json"));
    }
}

/// The level of each kind, as the README documents it.
fn level_of(kind: &str) -> &'static str {
    match kind {
        "status" | "playbook_end" => "RESULT",
        "host_failed" | "host_unreachable" | "log" => "ERROR",
        _ => "DEBUG",
    }
}

fn rank(level: &str) -> u8 {
    match level {
        "DEBUG" => 0,
        "ERROR" => 1,
        "RESULT" => 2,
        other => panic!("unknown level {other}"),
    }
}

fn no_secret_printed(stdout: &[String], stderr: &[String], secret: &str) {
    let everything = format!("{}\n{}", stdout.join("\n"), stderr.join("\n"));
    assert!(
        !everything.contains(secret),
        "the signing secret was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_receive_the_events_at_or_above_their_level() {
    let path = ansible_path();
    let dir = tempfile::tempdir().unwrap();
    let (store, tokens) = sled_dir(dir.path());
    const SECRET: &str = "feed-test-signing-key-S3CRET";
    let secret_file = dir.path().join("signing-key");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let mut args = vec!["--store", store.as_str()];
    args.extend_from_slice(DELIVERY);
    args.extend([
        "--callback-signing-secret-file",
        secret_file.to_str().unwrap(),
    ]);
    let runner = Runner::spawn(dir.path(), &args, &[("PATH", &path)]);
    let api = Api::new(&runner.base, &admin_token(&tokens));
    let mut receiver = Receiver::start(0).await;

    let play = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: reach the host\n      ansible.builtin.ping:\n    - name: fail on purpose\n      ansible.builtin.fail: {msg: planned failure}\n      when: inventory_hostname == 'localhost'\n";
    let (execution, href) = api
        .run(json!({
            "playbook": playbook(play),
            "hosts": [localhost(), unreachable_host()],
            "callbacks": [
                {"url": format!("{}/debug", receiver.base), "level": "DEBUG"},
                {"url": format!("{}/error", receiver.base), "level": "ERROR"},
                {"url": format!("{}/result", receiver.base), "level": "RESULT"},
            ],
        }))
        .await;

    // Every callback ends with the final status event; wait for all three.
    let mut taken: HashMap<String, Vec<common::process::Received>> = HashMap::new();
    let mut finished = HashSet::new();
    while finished.len() < 3 {
        let received = receiver.next().await;
        if is_final(&received.body) {
            finished.insert(received.path.clone());
        }
        taken
            .entry(received.path.clone())
            .or_default()
            .push(received);
    }
    let events = api.events(&href).await;
    assert_eq!(
        sequences(&events),
        (1..=events.len() as u64).collect::<Vec<_>>()
    );
    let last = events.last().unwrap();
    assert_eq!(last["status"], "FAILURE", "{last}");
    for event in &events {
        let kind = event["kind"].as_str().unwrap();
        assert_eq!(event["level"], level_of(kind), "{event}");
        assert_eq!(event["execution_id"], execution.as_str());
        assert_eq!(event["account_alias"], "ACME");
    }
    let kinds = |events: &[Value]| -> Vec<(String, String)> {
        events
            .iter()
            .map(|event| {
                (
                    event["kind"].as_str().unwrap().to_owned(),
                    event["host"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let all_kinds = kinds(&events);
    for wanted in [
        ("host_ok", "localhost"),
        ("host_failed", "localhost"),
        ("host_unreachable", "unreachable-host"),
        ("playbook_end", ""),
    ] {
        assert!(
            all_kinds
                .iter()
                .any(|(kind, host)| (kind.as_str(), host.as_str()) == wanted),
            "{wanted:?} in {all_kinds:?}"
        );
    }

    for (index, (path, level)) in [
        ("/debug", "DEBUG"),
        ("/error", "ERROR"),
        ("/result", "RESULT"),
    ]
    .into_iter()
    .enumerate()
    {
        let expected: Vec<Value> = events
            .iter()
            .filter(|event| rank(event["level"].as_str().unwrap()) >= rank(level))
            .cloned()
            .collect();
        let got = &taken[path];
        assert_delivered_once_in_order(got, &expected, &execution, index as u32);
        for received in got {
            assert_eq!(received.attempt.as_deref(), Some("1"));
            let signature = received.signature.as_deref().expect("signed");
            assert_eq!(
                signature,
                format!(
                    "sha256={}",
                    hmac_sha256_hex(SECRET.as_bytes(), &received.raw)
                ),
                "the signature is the HMAC-SHA256 of the exact body"
            );
        }
    }
    let error_kinds = kinds(
        &taken["/error"]
            .iter()
            .map(|r| r.body.clone())
            .collect::<Vec<_>>(),
    );
    assert!(error_kinds.iter().any(|(kind, _)| kind == "host_failed"));
    assert!(
        error_kinds
            .iter()
            .any(|(kind, _)| kind == "host_unreachable")
    );
    assert!(!error_kinds.iter().any(|(kind, _)| kind == "host_ok"));
    let result_kinds = kinds(
        &taken["/result"]
            .iter()
            .map(|r| r.body.clone())
            .collect::<Vec<_>>(),
    );
    assert!(
        result_kinds
            .iter()
            .all(|(kind, _)| kind == "status" || kind == "playbook_end"),
        "{result_kinds:?}"
    );

    let (exit, stdout, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    no_secret_printed(&stdout, &stderr, SECRET);
    assert!(receiver.drain().is_empty(), "nothing more was delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_comes_back_gets_every_event_once_in_order() {
    let path = ansible_path();
    let dir = tempfile::tempdir().unwrap();
    let (store, tokens) = sled_dir(dir.path());
    let mut args = vec!["--store", store.as_str()];
    args.extend_from_slice(DELIVERY);
    let runner = Runner::spawn(dir.path(), &args, &[("PATH", &path)]);
    let api = Api::new(&runner.base, &admin_token(&tokens));
    // Down for its first five POSTs.
    let mut receiver = Receiver::start(5).await;
    let (execution, href) = api
        .run(json!({
            "playbook": playbook(SIMPLE_PLAY),
            "hosts": [localhost()],
            "callbacks": [format!("{}/hook", receiver.base)],
        }))
        .await;

    let taken = receiver.until_final("/hook").await;
    let mut refused = Vec::new();
    for _ in 0..5 {
        refused.push(receiver.next_refused().await);
    }
    let first_key = format!("{execution}:0:1");
    assert!(
        refused.iter().all(|key| *key == first_key),
        "while the head of the queue fails, nothing behind it is sent: {refused:?}"
    );
    assert_eq!(
        taken[0].attempt.as_deref(),
        Some("6"),
        "five failed attempts before"
    );
    let events = api.events(&href).await;
    assert_eq!(events.last().unwrap()["status"], "SUCCESS");
    assert!(events.len() > 4, "status and playbook events: {events:#?}");
    assert_delivered_once_in_order(&taken, &events, &execution, 0);

    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    assert!(receiver.drain().is_empty(), "no event was delivered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_delivery_loses_nothing() {
    let path = ansible_path();
    let dir = tempfile::tempdir().unwrap();
    let (store, tokens) = sled_dir(dir.path());
    let mut args = vec!["--store", store.as_str()];
    args.extend_from_slice(DELIVERY);
    let mut receiver = Receiver::start(0).await;
    receiver.set_down(true);

    let runner = Runner::spawn(dir.path(), &args, &[("PATH", &path)]);
    let token = admin_token(&tokens);
    let api = Api::new(&runner.base, &token);
    let (execution, href) = api
        .run(json!({
            "playbook": playbook(SIMPLE_PLAY),
            "hosts": [localhost()],
            "callbacks": [
                format!("{}/hook", receiver.base),
                {"url": format!("{}/result", receiver.base), "level": "RESULT"},
            ],
        }))
        .await;
    // The execution ends while the receiver is down, and delivery was attempted.
    let seen = until_final(&api, &href).await;
    assert_eq!(seen.last().unwrap().data["status"], "SUCCESS");
    receiver.next_refused().await;
    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    assert!(receiver.drain().is_empty(), "nothing was taken while down");

    // Same data directory, receiver back up: the outbox survived.
    receiver.set_down(false);
    let runner = Runner::spawn(dir.path(), &args, &[("PATH", &path)]);
    let api = Api::new(&runner.base, &token);
    let mut taken: HashMap<String, Vec<common::process::Received>> = HashMap::new();
    let mut finished = HashSet::new();
    while finished.len() < 2 {
        let received = receiver.next().await;
        if is_final(&received.body) {
            finished.insert(received.path.clone());
        }
        taken
            .entry(received.path.clone())
            .or_default()
            .push(received);
    }
    let events = api.events(&href).await;
    assert_eq!(
        events,
        seen.iter()
            .map(|event| event.data.clone())
            .collect::<Vec<_>>(),
        "the feed is the same after the restart"
    );
    assert_delivered_once_in_order(&taken["/hook"], &events, &execution, 0);
    let results: Vec<Value> = events
        .iter()
        .filter(|event| event["level"] == "RESULT")
        .cloned()
        .collect();
    assert_delivered_once_in_order(&taken["/result"], &results, &execution, 1);

    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    assert!(receiver.drain().is_empty(), "no event was delivered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_delays_nothing() {
    let path = ansible_path();
    let dir = tempfile::tempdir().unwrap();
    let (store, tokens) = sled_dir(dir.path());
    let mut args = vec!["--store", store.as_str()];
    args.extend_from_slice(DELIVERY);
    // Longer than the whole run: the silent receiver's first POST stays unanswered throughout.
    args.extend(["--callback-timeout-ms", "600000"]);
    let runner = Runner::spawn(dir.path(), &args, &[("PATH", &path)]);
    let api = Api::new(&runner.base, &admin_token(&tokens));
    let mut silent = Silent::start().await;
    let mut receiver = Receiver::start(0).await;
    let (execution, href) = api
        .run(json!({
            "playbook": playbook(SIMPLE_PLAY),
            "hosts": [localhost()],
            "callbacks": [format!("{}/hook", silent.base), format!("{}/hook", receiver.base)],
        }))
        .await;

    let taken = receiver.until_final("/hook").await;
    silent.connected().await;
    let done = api.send(reqwest::Method::GET, &href, None).await;
    assert_eq!(done["status"], "SUCCESS", "{done}");
    let events = api.events(&href).await;
    assert_delivered_once_in_order(&taken, &events, &execution, 1);
    // The silent receiver still holds its POST: the server is killed (dropped), not drained.
    drop(runner);
}

/// A receiver that refuses everything, one attempt per delivery: every event is given up, and
/// the execution lists them (after a restart too: they are in the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_up_deliveries_are_listed_with_their_last_error() {
    let path = ansible_path();
    let dir = tempfile::tempdir().unwrap();
    let (store, tokens) = sled_dir(dir.path());
    let args = [
        "--store",
        store.as_str(),
        "--allow-private-callbacks",
        "--callback-max-attempts",
        "1",
    ];
    let runner = Runner::spawn(dir.path(), &args, &[("PATH", &path)]);
    let token = admin_token(&tokens);
    let api = Api::new(&runner.base, &token);
    let mut receiver = Receiver::start(usize::MAX).await;
    let hook = format!("{}/hook", receiver.base);
    let (execution, href) = api
        .run(json!({
            "playbook": playbook(SIMPLE_PLAY),
            "hosts": [localhost()],
            "callbacks": [hook],
        }))
        .await;
    let streamed = until_final(&api, &href).await;
    let last = streamed.last().unwrap().id;
    // Each queue is attempted in order, so once the final event was refused every one was.
    let final_key = format!("{execution}:0:{last}");
    while receiver.next_refused().await != final_key {}
    // A graceful stop waits for the settlement of the attempts in flight.
    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");

    let runner = Runner::spawn(dir.path(), &args, &[("PATH", &path)]);
    let api = Api::new(&runner.base, &token);
    let listed = api
        .send(reqwest::Method::GET, &format!("{href}/deliveries"), None)
        .await;
    assert_eq!(listed["totalSize"], last, "{listed:#}");
    let results = listed["results"].as_array().unwrap();
    assert_eq!(results.len() as u64, last.min(100));
    for (i, delivery) in results.iter().enumerate() {
        let sequence = i as u64 + 1;
        assert_eq!(delivery["sequence"], sequence, "{delivery:#}");
        assert_eq!(delivery["callback"], 0);
        assert_eq!(delivery["url"], hook);
        assert_eq!(delivery["attempts"], 1);
        assert!(
            delivery["lastError"].as_str().unwrap().contains("503"),
            "the receiver's answer: {delivery:#}"
        );
        assert_eq!(delivery["event"]["sequence"], sequence);
        assert_eq!(delivery["event"]["execution_id"], execution);
    }
    let second = api
        .send(
            reqwest::Method::GET,
            &format!("{href}/deliveries?page=1&size=2"),
            None,
        )
        .await;
    let sequences: Vec<u64> = second["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|delivery| delivery["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [3, 4]);

    let unknown = href.replace(&execution, &uuid::Uuid::now_v7().to_string());
    let missing = api
        .client
        .get(format!("{}{unknown}/deliveries", api.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let bad_page = api
        .client
        .get(format!("{}{href}/deliveries?size=0", api.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_page.status(), 400);
    drop(runner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_resumes_after_a_dropped_connection() {
    let path = ansible_path();
    let dir = tempfile::tempdir().unwrap();
    let (store, tokens) = sled_dir(dir.path());
    let runner = Runner::spawn(dir.path(), &["--store", &store], &[("PATH", &path)]);
    let token = admin_token(&tokens);
    let api = Api::new(&runner.base, &token);
    // Not in `dir` (under /tmp): each run has a /tmp of its own.
    let shared = common::process::seen_by_runs();
    let go1 = shared.path().join("go1");
    let go2 = shared.path().join("go2");
    let play = format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: before\n      ansible.builtin.debug: {{msg: before}}\n    - name: wait for go1\n      ansible.builtin.wait_for: {{path: '{}', timeout: 600}}\n    - name: middle\n      ansible.builtin.debug: {{msg: middle}}\n    - name: wait for go2\n      ansible.builtin.wait_for: {{path: '{}', timeout: 600}}\n    - name: after\n      ansible.builtin.debug: {{msg: after}}\n",
        go1.display(),
        go2.display()
    );
    let (_, href) = api
        .run(json!({"playbook": playbook(&play), "hosts": [localhost()]}))
        .await;
    let url = stream_url(&api, &href);
    let mut observer = SseClient::connect(&api.client, &url, &token, None).await;
    let mut observed = Vec::new();

    // Live until the playbook blocks on go1, then the connection drops.
    let mut first = SseClient::connect(&api.client, &url, &token, None).await;
    let mut before_drop = Vec::new();
    loop {
        let event = first.next().await;
        let blocked = is_task_start(&event, "wait for go1");
        before_drop.push(event);
        if blocked {
            break;
        }
    }
    drop(first);
    let last_id = before_drop.last().unwrap().id;

    // Events recorded while nobody listens on that connection: the observer sees them.
    std::fs::write(&go1, "go").unwrap();
    loop {
        let event = observer.next().await;
        let blocked = is_task_start(&event, "wait for go2");
        observed.push(event);
        if blocked {
            break;
        }
    }

    // Reconnect where it left off: the backlog, then live again.
    let mut second = SseClient::connect(&api.client, &url, &token, Some(last_id)).await;
    let mut after_reconnect = Vec::new();
    loop {
        let event = second.next().await;
        let blocked = is_task_start(&event, "wait for go2");
        after_reconnect.push(event);
        if blocked {
            break;
        }
    }
    std::fs::write(&go2, "go").unwrap();
    loop {
        let event = second.next().await;
        let done = is_final(&event.data);
        after_reconnect.push(event);
        if done {
            break;
        }
    }
    assert!(
        after_reconnect
            .iter()
            .any(|event| event.event == "host_ok" && event.data["task"] == "wait for go1"),
        "the events recorded after the drop came after the reconnect: {after_reconnect:#?}"
    );
    assert!(
        after_reconnect
            .iter()
            .any(|event| event.event == "host_ok" && event.data["task"] == "after"),
        "and the live ones after them"
    );

    let all: Vec<&SseEvent> = before_drop.iter().chain(&after_reconnect).collect();
    let ids: Vec<u64> = all.iter().map(|event| event.id).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "1..=N, each once"
    );
    for event in &all {
        assert_eq!(event.data["sequence"], event.id);
        assert_eq!(event.data["kind"], event.event.as_str());
    }
    let stored = api.events(&href).await;
    assert_eq!(
        stored,
        all.iter()
            .map(|event| event.data.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(all.last().unwrap().data["status"], "SUCCESS");

    loop {
        let event = observer.next().await;
        let done = is_final(&event.data);
        observed.push(event);
        if done {
            break;
        }
    }
    assert_eq!(
        observed.iter().map(|event| event.id).collect::<Vec<_>>(),
        ids,
        "the observer, connected throughout, saw the same feed"
    );
    // A stream on an ended execution stays open; the server still shuts down promptly.
    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    assert!(
        observer.try_next().await.is_none(),
        "the stream ended at shutdown"
    );
}

fn is_task_start(event: &SseEvent, task: &str) -> bool {
    event.event == "task_start" && event.data["task"] == task
}

/// A `no_log` task's secret and the job's key reach no webhook body, no event, not the run log
/// and no line of the server's output: the whole way from ansible to every reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_secrets_and_job_keys_reach_no_reader() {
    const SECRET: &str = "topsecret-value-42";
    const KEY: &str = "KEYMATERIAL-0123456789";
    let path = ansible_path();
    let dir = tempfile::tempdir().unwrap();
    let (store, tokens) = sled_dir(dir.path());
    let mut args = vec!["--store", store.as_str()];
    args.extend_from_slice(DELIVERY);
    let runner = Runner::spawn(dir.path(), &args, &[("PATH", &path)]);
    let api = Api::new(&runner.base, &admin_token(&tokens));
    let mut receiver = Receiver::start(0).await;
    let play = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: shows the key\n      ansible.builtin.debug:\n        msg: \"key is {{ lookup('file', ansible_ssh_private_key_file) }}\"\n    - name: hidden command\n      ansible.builtin.shell: \"echo {{ secret_var }}; echo {{ secret_var }} >&2\"\n      no_log: true\n    - name: hidden failure\n      ansible.builtin.fail:\n        msg: \"failing with {{ secret_var }}\"\n      no_log: true\n";
    let key = base64::engine::general_purpose::STANDARD.encode(format!("{KEY}\n"));
    let (_, href) = api
        .run(json!({
            "playbook": playbook(play),
            "hosts": [localhost()],
            "properties": {"secret_var": SECRET},
            "sshPrivateKey": key,
            "callbacks": [{"url": format!("{}/debug", receiver.base), "level": "DEBUG"}],
        }))
        .await;
    let mut bodies = Vec::new();
    loop {
        let received = receiver.next().await;
        let last = is_final(&received.body);
        bodies.push(String::from_utf8_lossy(&received.raw).into_owned());
        if last {
            break;
        }
    }
    let events = serde_json::to_string(&api.events(&href).await).unwrap();
    let log = api.run_log(&href).await;
    let (exit, stdout, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    // Each reader got the run: the assertions below are not about empty texts.
    assert!(log.contains("TASK [hidden failure]"), "{log}");
    assert!(log.contains("key is ********"), "{log}");
    assert!(events.contains("hidden failure"), "{events}");
    assert!(bodies.iter().any(|body| body.contains("hidden failure")));
    let server = format!("{}\n{}", stdout.join("\n"), stderr.join("\n"));
    for (reader, text) in [
        ("webhook bodies", bodies.join("\n")),
        ("events", events),
        ("run log", log),
        ("server output", server),
    ] {
        assert!(!text.contains(SECRET), "{reader}: {text}");
        assert!(!text.contains(KEY), "{reader}: {text}");
    }
}
