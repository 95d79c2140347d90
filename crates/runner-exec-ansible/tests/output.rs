//! What a task returned reaches the feed: `TaskResult`s (msg, stdout, stderr, rc, loop items,
//! retries, rescued, handlers), capped, censored under `no_log`, with the run's secrets masked;
//! a repository's own `ansible.cfg` callback still runs; no warning about the executor's plugins.
//! Real ansible-playbook, through a real engine on the memory store (masking and capping are the
//! engine's).

mod common;

use std::time::Duration;

use common::*;
use runner_core::engine::{Engine, EngineSignal, StartRequest};
use runner_core::execution::{Execution, Status};
use runner_core::executor::{EventKind as Reported, TRUNCATION_MARKER, TaskResult};
use runner_core::feed::{Event, EventKind};
use runner_core::job::{JobSpec, Repository};
use runner_core::secret::{MASK, Secret};
use runner_core::testkit::fixtures;
use runner_core::time::MockClock;
use runner_exec_ansible::AnsibleExecutor;
use runner_store_memory::MemoryStore;

/// The run of `spec` through an engine, to its end: the ended execution, its feed and its log.
async fn through_engine(
    executor: AnsibleExecutor,
    spec: JobSpec,
    field_bytes: Option<usize>,
) -> (Execution, Vec<Event>, String) {
    let mut builder = Engine::builder()
        .store(MemoryStore::new())
        .executor(executor.clone())
        .clock(MockClock::at(1_700_000_000_000))
        // The mock clock never moves: no heartbeat is due, the lease never lapses.
        .lease(Duration::from_secs(24 * 3600))
        .test_signals();
    if let Some(bytes) = field_bytes {
        builder = builder.event_field_bytes(bytes);
    }
    let engine = builder.build();
    let mut probe = engine.probe();
    let running = engine.clone().start();
    let alias = fixtures::alias("ACME");
    let job = engine.create_job(&alias, spec).await.unwrap();
    let started = engine
        .start_job(&alias, job.id, StartRequest::default())
        .await
        .unwrap();
    let id = started.execution_id;
    tokio::time::timeout(SCENARIO_TIMEOUT, probe.wait_for(EngineSignal::Finished(id)))
        .await
        .expect("the run did not end in time");
    let ended = engine.get_execution(&alias, job.id, id).await.unwrap();
    let events = engine
        .list_events(&alias, job.id, id, 0, 100_000)
        .await
        .unwrap();
    let read = runner_core::store::LogRead {
        attempt: None,
        offset: 0,
        limit: u64::MAX,
    };
    let log = engine.read_log(&alias, job.id, id, read).await.unwrap();
    running.shutdown().await;
    (
        ended,
        events,
        String::from_utf8_lossy(&log.data).into_owned(),
    )
}

/// The host results of task `task` (in feed order).
fn results<'a>(events: &'a [Event], task: &str) -> Vec<(&'a Event, &'a TaskResult)> {
    events
        .iter()
        .filter(|event| event.task.as_deref() == Some(task) && event.host.is_some())
        .filter_map(|event| Some((event, event.result.as_deref()?)))
        .collect()
}

fn kind(event: &Event) -> Reported {
    match event.kind {
        EventKind::Executor(kind) => kind,
        other => panic!("not an executor event: {other:?}"),
    }
}

/// No warning about the executor's own plugins reaches the user's output.
fn assert_no_deprecation(log: &str) {
    assert!(
        !log.to_lowercase().contains("deprecat"),
        "the log warns about something:\n{log}"
    );
}

const OUTPUT: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: say hello
      debug:
        msg: hello
    - name: print
      command: sh -c 'echo out; echo err >&2; exit 3'
      failed_when: false
    - name: multi
      shell: "printf 'line one\\nline two\\n'; printf 'ünïcode\\n'"
    # ansible-core refuses a module's non-UTF-8 output by default (module_strict_utf8_response).
    - name: bad bytes
      shell: "printf 'bad \\377\\376 bytes\\n'"
      ignore_errors: true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_command_and_multi_line_output_reach_the_feed() {
    let scene = Scene::new();
    let spec = inline_spec(&scene, OUTPUT, vec![local_host("h1")]);
    let (ended, events, log) = through_engine(scene.executor(), spec, None).await;
    assert_eq!(ended.status, Status::Success, "{ended:?}\n{log}");

    let start = events
        .iter()
        .find(|event| event.kind == EventKind::Executor(Reported::PlaybookStart))
        .unwrap();
    assert_eq!(
        start.message.as_deref(),
        Some("playbook.yml"),
        "never a server path"
    );

    let hello = results(&events, "say hello");
    assert_eq!(hello.len(), 1);
    assert_eq!(kind(hello[0].0), Reported::HostOk);
    assert_eq!(hello[0].1.msg.as_deref(), Some("hello"));
    assert!(!hello[0].1.changed);

    let print = results(&events, "print");
    let result = print[0].1;
    assert_eq!(
        (
            result.stdout.as_deref(),
            result.stderr.as_deref(),
            result.rc
        ),
        (Some("out"), Some("err"), Some(3))
    );
    assert!(result.changed, "command reports changed");

    let multi = results(&events, "multi")[0].1;
    assert_eq!(multi.stdout.as_deref(), Some("line one\nline two\nünïcode"));

    let (event, bad) = results(&events, "bad bytes")[0];
    assert_eq!(kind(event), Reported::HostFailed);
    assert!(bad.ignored);
    assert!(bad.msg.as_deref().unwrap().contains("UTF8"), "{bad:?}");
    assert!(event.message.as_deref().unwrap().ends_with("(ignored)"));
    assert_no_deprecation(&log);
}

const LOOPS: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: items
      debug:
        msg: "item {{ item }}"
      loop: [a, b, c]
    - name: retry
      shell: 'n=$(cat "{{ out }}/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "{{ out }}/count"; echo $n'
      register: counted
      until: counted.stdout == "2"
      retries: 3
      delay: 0
      notify: done
  handlers:
    - name: done
      debug:
        msg: handled
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_items_until_retries_and_handlers() {
    let scene = Scene::new();
    let spec = inline_spec(&scene, LOOPS, vec![local_host("h1")]);
    let (ended, events, log) = through_engine(scene.executor(), spec, None).await;
    assert_eq!(ended.status, Status::Success, "{ended:?}\n{log}");

    let items = results(&events, "items");
    let per_item: Vec<(Option<&str>, Option<&str>)> = items
        .iter()
        .filter(|(_, result)| result.item.is_some())
        .map(|(_, result)| (result.item.as_deref(), result.msg.as_deref()))
        .collect();
    assert_eq!(
        per_item,
        [
            (Some("a"), Some("item a")),
            (Some("b"), Some("item b")),
            (Some("c"), Some("item c"))
        ]
    );
    assert_eq!(items.len(), 4, "three items, then the task's own result");

    let retry = results(&events, "retry");
    let kinds: Vec<Reported> = retry.iter().map(|(event, _)| kind(event)).collect();
    assert_eq!(kinds, [Reported::HostRetry, Reported::HostOk], "{retry:?}");
    assert_eq!(
        (retry[0].1.attempts, retry[0].1.retries),
        (Some(1), Some(4))
    );
    assert_eq!(retry[1].1.attempts, Some(2));
    assert_eq!(retry[1].1.stdout.as_deref(), Some("2"));

    let handler = results(&events, "done");
    assert_eq!(handler.len(), 1, "{events:#?}");
    assert!(handler[0].1.handler);
    assert_eq!(handler[0].1.msg.as_deref(), Some("handled"));
    assert!(!results(&events, "items")[0].1.handler);
}

const RESCUE: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - block:
        - name: breaks
          fail:
            msg: broken
      rescue:
        - name: rescuer
          debug:
            msg: rescued
      always:
        - name: finally
          debug:
            msg: always
    - name: fails on h2
      fail:
        msg: h2 is down
      when: inventory_hostname == 'h2'
    - name: after
      debug:
        msg: after
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescued_failures_and_one_failing_host_among_three() {
    let scene = Scene::new();
    let hosts = vec![local_host("h1"), local_host("h2"), local_host("h3")];
    let spec = inline_spec(&scene, RESCUE, hosts);
    let (ended, events, log) = through_engine(scene.executor(), spec, None).await;
    assert_eq!(ended.status, Status::Failure, "{ended:?}\n{log}");
    assert_eq!(ended.failed_hosts, ["h2"]);

    let breaks = results(&events, "breaks");
    assert_eq!(breaks.len(), 3);
    for (event, result) in &breaks {
        assert_eq!(kind(event), Reported::HostFailed);
        assert!(result.rescued, "{event:?}");
        assert_eq!(result.msg.as_deref(), Some("broken"));
    }
    assert_eq!(results(&events, "rescuer").len(), 3);
    assert_eq!(results(&events, "finally").len(), 3);

    let down = results(&events, "fails on h2");
    let failed: Vec<&str> = down
        .iter()
        .filter(|(event, _)| kind(event) == Reported::HostFailed)
        .map(|(event, _)| event.host.as_deref().unwrap())
        .collect();
    assert_eq!(failed, ["h2"]);
    assert!(!down.iter().any(|(_, result)| result.rescued));
    let mut after: Vec<&str> = results(&events, "after")
        .iter()
        .map(|(event, _)| event.host.as_deref().unwrap())
        .collect();
    // Hosts report in the order their forks finish.
    after.sort_unstable();
    assert_eq!(after, ["h1", "h3"], "the others go on");

    let message = ended.message.unwrap();
    assert!(message.contains("h2: fails on h2: h2 is down"), "{message}");
    assert!(
        !message.contains("broken"),
        "rescued failures are no failure: {message}"
    );
}

const NO_LOG: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: shows the key
      debug:
        msg: "key is {{ lookup('file', ansible_ssh_private_key_file) }}"
    - name: hidden
      debug:
        msg: "{{ secret_var }}"
      no_log: true
    - name: hidden command
      shell: "echo {{ secret_var }}; echo {{ secret_var }} >&2"
      no_log: true
    - name: hidden loop
      debug:
        msg: "{{ secret_var }} {{ item }}"
      loop: [1, 2]
      no_log: true
    - name: hidden failure
      fail:
        msg: "failing with {{ secret_var }}"
      no_log: true
"#;

/// A `no_log` task's output appears nowhere (events, so webhook bodies too, the execution's
/// message, its last status event), and the job's key is masked where a task prints it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_results_and_secrets_appear_nowhere() {
    let scene = Scene::new();
    let mut spec = inline_spec(&scene, NO_LOG, vec![local_host("h1")]);
    spec.properties
        .insert("secret_var".into(), "topsecret-value-42".into());
    spec.ssh_private_key = Some(Secret::new(b64("KEYMATERIAL-0123456789\n")));
    let (ended, events, log) = through_engine(scene.executor(), spec, None).await;
    assert_eq!(ended.status, Status::Failure, "{ended:?}\n{log}");

    let feed = serde_json::to_string(&events).unwrap();
    assert!(!feed.contains("topsecret"), "{feed}");
    assert!(!feed.contains("KEYMATERIAL"), "{feed}");
    // The run log as ansible printed it: the tasks are there, the secrets are not.
    assert!(log.contains("TASK [hidden failure]"), "{log}");
    assert!(log.contains(&format!("key is {MASK}")), "{log}");
    assert!(!log.contains("topsecret"), "{log}");
    assert!(!log.contains("KEYMATERIAL"), "{log}");
    let key = results(&events, "shows the key")[0].1;
    assert_eq!(key.msg.as_deref(), Some(format!("key is {MASK}").as_str()));

    for task in ["hidden", "hidden command", "hidden failure"] {
        let hidden = results(&events, task);
        assert!(!hidden.is_empty(), "{task}");
        for (_, result) in hidden {
            assert!(result.censored, "{task}: {result:?}");
            assert!(result.stdout.is_none() && result.stderr.is_none());
        }
    }
    let items = results(&events, "hidden loop");
    assert_eq!(items.len(), 3, "two items and the task");
    assert!(items.iter().all(|(_, result)| result.censored));

    let message = ended.message.clone().unwrap();
    assert!(!message.contains("topsecret"), "{message}");
    assert!(message.contains("hidden failure"), "{message}");
    assert!(message.contains("no_log"), "ansible's notice: {message}");
    let last = events.last().unwrap();
    assert_eq!(last.status, Some(Status::Failure));
    assert!(
        !last
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("topsecret")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_stdout_is_capped_on_a_character_boundary() {
    let scene = Scene::new();
    // 600,000 two-byte characters: 1.2 MB; an odd limit cuts inside one.
    let playbook = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: chatty
      command: "{{ ansible_playbook_python }} -c \"import sys; sys.stdout.write('é' * 600000)\""
"#;
    let spec = inline_spec(&scene, playbook, vec![local_host("h1")]);
    let limit = 16 * 1024 + 1;
    let (ended, events, log) = through_engine(scene.executor(), spec, Some(limit)).await;
    assert_eq!(ended.status, Status::Success, "{ended:?}\n{log}");
    let result = results(&events, "chatty")[0].1;
    assert!(result.truncated);
    let stdout = result.stdout.as_deref().unwrap();
    let (kept, marker) = stdout.split_once(TRUNCATION_MARKER).unwrap();
    assert_eq!(kept.len(), limit - 1, "cut back to the character boundary");
    assert!(kept.chars().all(|c| c == 'é'));
    assert_eq!(marker, "1200000 bytes in all]");
}

/// A repository whose ansible.cfg enables its own callback plugin: it still runs next to the
/// executor's (which still streams events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_ansible_cfg_keeps_its_callback_plugin() {
    let scene = Scene::new();
    let work = scene.dir.path().join("clone");
    let bare = scene.dir.path().join("origin.git");
    std::fs::create_dir_all(work.join("callbacks")).unwrap();
    git(
        scene.dir.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(
        work.join("ansible.cfg"),
        "[defaults]\ncallback_plugins = ./callbacks\ncallbacks_enabled = own_marker\n\
         module_strict_utf8_response = False\n",
    )
    .unwrap();
    let marker = scene.marker("own-callback-ran");
    std::fs::write(
        work.join("callbacks/own_marker.py"),
        format!(
            "from ansible.plugins.callback import CallbackBase\n\
             class CallbackModule(CallbackBase):\n    \
                 CALLBACK_VERSION = 2.0\n    CALLBACK_TYPE = 'notification'\n    \
                 CALLBACK_NAME = 'own_marker'\n    CALLBACK_NEEDS_ENABLED = True\n    \
                 def v2_playbook_on_stats(self, stats):\n        \
                     open({:?}, 'w').write('ran')\n",
            marker.display().to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(work.join("plays")).unwrap();
    std::fs::write(
        work.join("plays/site.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: hi\n      debug:\n        msg: hi\n\
         \x20   - name: bad bytes\n      shell: \"printf 'bad \\\\377\\\\376 bytes'\"\n",
    )
    .unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "own callback"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);

    let mut spec = fixtures::inline_spec(&[]);
    spec.playbook = None;
    spec.hosts = Some(vec![local_host("h1")]);
    spec.repository = Some(Repository {
        url: format!("file://{}", bare.display()),
        branch: None,
        default_playbook: "plays/site.yml".into(),
        credentials: None,
    });
    let (ended, events, log) = through_engine(scene.executor(), spec, None).await;
    assert_eq!(ended.status, Status::Success, "{ended:?}\n{log}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran", "{log}");
    let start = events
        .iter()
        .find(|event| event.kind == EventKind::Executor(Reported::PlaybookStart))
        .unwrap();
    assert_eq!(start.message.as_deref(), Some("plays/site.yml"));
    assert_eq!(results(&events, "hi")[0].1.msg.as_deref(), Some("hi"));
    // With the strict check off (the repository's own setting), undecodable bytes arrive as
    // U+FFFD rather than losing the event.
    let bad = results(&events, "bad bytes")[0].1;
    let stdout = bad.stdout.as_deref().unwrap();
    assert!(
        stdout.starts_with("bad ") && stdout.ends_with(" bytes"),
        "{stdout:?}"
    );
    assert!(stdout.contains('\u{fffd}'), "{stdout:?}");
    assert_no_deprecation(&log);
}
