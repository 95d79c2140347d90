//! Runs of the real ansible-playbook on localhost, one invocation per scenario.

mod common;

use common::*;
use runner_core::execution::Outcome;
use runner_core::executor::{CancelMode, EventKind, Progress};
use runner_core::secret::Secret;
use runner_exec_ansible::{AnsibleConfig, AnsibleExecutor};
use serde_json::json;

const TAGS_VARS_KEYS: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: write marker
      tags: [deploy]
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.txt"
        content: "{{ greeting }} {{ nested.n }} {{ color | default('none') }}"
    - name: look at the key
      tags: [deploy]
      stat:
        path: "{{ ansible_ssh_private_key_file }}"
      register: key
    - name: write key mode
      tags: [deploy]
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.key"
        content: "{{ key.stat.mode }} {{ ansible_ssh_private_key_file }}"
    - name: never
      tags: [deploy]
      debug:
        msg: skipped
      when: false
    - name: untagged
      tags: [other]
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.other"
        content: "x"
"#;

/// Success, tags, extra vars, hostVars, default and per-host keys, dynamic inventory and events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_playbook_with_tags_vars_host_vars_keys_and_dynamic_inventory() {
    let scene = Scene::new();
    let mut h1 = local_host("h1");
    h1.host_vars.insert("color".into(), "red".into());
    h1.ssh_private_key = Some(Secret::new(b64("HOST-ONE-KEY-MATERIAL")));
    let h2 = local_host("h2");
    // h3 comes from an inventory source of the account: an executable script, as ansible
    // reads one (`--list`), which puts it in a group of its own.
    let mut dynamic = local_host("h3").host_vars;
    dynamic.insert("color".into(), "blue".into());
    let listing = json!({"_meta": {"hostvars": {"h3": dynamic}}, "scripted": {"hosts": ["h3"]}});
    let script = scene.dir.path().join("hosts.sh");
    std::fs::write(&script, format!("#!/bin/sh\ncat <<'EOF'\n{listing}\nEOF\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut spec = inline_spec(&scene, TAGS_VARS_KEYS, vec![h1, h2]);
    spec.playbook_tags = vec!["deploy".into()];
    spec.properties.insert("greeting".into(), "hello".into());
    spec.properties.insert("nested".into(), json!({"n": 7}));
    spec.ssh_private_key = Some(Secret::new(b64("DEFAULT-KEY-MATERIAL")));
    spec.use_dynamic_inventory = true;
    let executor = AnsibleExecutor::new(AnsibleConfig {
        inventory_sources: [(runner_core::testkit::fixtures::alias("ACME"), vec![script])].into(),
        // Kept, to read the log after the run; the secrets go all the same.
        keep_work_dirs: true,
        ..scene.config()
    });
    let run = run_of(spec);
    let log_path = executor.log_path(&run.execution);
    let (report, progress) = run_to_end(&executor, run).await;

    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert!(report.failed_hosts.is_empty());
    assert_eq!(report.repository_log, None);
    let read = |name: &str| std::fs::read_to_string(scene.marker(name)).unwrap();
    assert_eq!(read("h1.txt"), "hello 7 red");
    assert_eq!(read("h2.txt"), "hello 7 none");
    assert_eq!(read("h3.txt"), "hello 7 blue");
    // Keys: 0600 files, h1 its own, h2 and h3 the default one; all gone after the run.
    let key = |host: &str| {
        let text = read(&format!("{host}.key"));
        let (mode, path) = text.split_once(' ').unwrap();
        assert_eq!(mode, "0600", "{host}");
        std::path::PathBuf::from(path)
    };
    let (k1, k2, k3) = (key("h1"), key("h2"), key("h3"));
    assert_ne!(k1, k2);
    assert_eq!(k2, k3);
    for path in [&k1, &k2] {
        assert!(!path.exists(), "{} was not removed", path.display());
    }
    // Tags: the untagged task did not run.
    assert!(!scene.markers().iter().any(|name| name.ends_with(".other")));
    // The secrets are gone from the kept work directory, and the keys are not in the log.
    let work_dir = log_path.parent().unwrap();
    assert!(work_dir.join(runner_exec_ansible::LOG_FILE).is_file());
    assert!(!work_dir.join("secrets").exists());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("PLAY RECAP"), "{log}");
    assert!(log.contains("ok: [h1]"), "{log}");
    assert!(!log.contains("KEY-MATERIAL"));
    // The recap per host is on the report.
    assert_eq!(
        report.host_stats.keys().collect::<Vec<_>>(),
        ["h1", "h2", "h3"]
    );
    assert!(
        report
            .host_stats
            .values()
            .all(|stats| stats.ok > 0 && stats.failed == 0)
    );

    // Events: workspace ready first, then the playbook's, in order (and its output).
    assert_eq!(progress[0], Progress::WorkspaceReady);
    let events = events_of(&progress);
    let ready = progress
        .iter()
        .filter(|p| **p == Progress::WorkspaceReady)
        .count();
    assert_eq!(ready, 1, "ready once");
    let kinds: Vec<EventKind> = events.iter().map(|event| event.kind).collect();
    assert_eq!(kinds[0], EventKind::PlaybookStart);
    assert_eq!(kinds[1], EventKind::PlayStart);
    assert_eq!(*kinds.last().unwrap(), EventKind::PlaybookEnd);
    let has = |kind: EventKind, host: &str, task: &str| {
        events.iter().any(|event| {
            event.kind == kind
                && event.host.as_deref() == Some(host)
                && event.task.as_deref() == Some(task)
        })
    };
    assert!(
        events.iter().any(|event| event.kind == EventKind::TaskStart
            && event.task.as_deref() == Some("write marker"))
    );
    for host in ["h1", "h2", "h3"] {
        assert!(has(EventKind::HostOk, host, "write marker"), "{host}");
        assert!(has(EventKind::HostSkipped, host, "never"), "{host}");
    }
    assert!(
        !events
            .iter()
            .any(|event| event.task.as_deref() == Some("untagged"))
    );
    let recap: serde_json::Value =
        serde_json::from_str(events.last().unwrap().message.as_deref().unwrap()).unwrap();
    assert_eq!(recap["h1"]["skipped"], 1);
}

const FAILS_ON_H2: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: break h2 until fixed
      fail:
        msg: "h2 is broken"
      when: inventory_hostname == 'h2' and not ((out ~ '/fixed') is exists)
    - name: mark
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.ran"
        content: "x"
"#;

/// A failure on one host (and one unreachable host), then a restart limited to the failed host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_on_one_host_then_restart_on_that_host_only() {
    let scene = Scene::new();
    let mut unreachable = runner_core::job::Host::named("h4");
    unreachable.host_vars = vars(json!({
        "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1,
    }));
    let hosts = vec![
        local_host("h1"),
        local_host("h2"),
        local_host("h3"),
        unreachable,
    ];
    let executor = scene.executor();
    let mut run = run_of(inline_spec(&scene, FAILS_ON_H2, hosts));
    let (report, progress) = run_to_end(&executor, run.clone()).await;
    let events = events_of(&progress);
    assert!(
        !executor.work_dir(&run.execution).exists(),
        "the whole work directory goes when the run ends"
    );

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.failed_hosts, ["h2", "h4"]);
    let message = report.message.unwrap();
    assert!(message.contains("h2 is broken"), "{message}");
    // From the structured results, never from the log (nor naming a path of the server).
    assert!(
        !message.contains(runner_exec_ansible::LOG_FILE),
        "{message}"
    );
    assert!(!message.contains("PLAY RECAP"), "{message}");
    assert!(events.iter().any(|event| {
        event.kind == EventKind::HostFailed
            && event.host.as_deref() == Some("h2")
            && event
                .message
                .as_deref()
                .is_some_and(|m| m.contains("h2 is broken"))
    }));
    assert!(events.iter().any(
        |event| event.kind == EventKind::HostUnreachable && event.host.as_deref() == Some("h4")
    ));
    assert_eq!(scene.markers(), ["h1.ran", "h3.ran"]);

    // The restart: fix h2, clear the markers, run again limited to h2.
    std::fs::write(scene.marker("fixed"), "").unwrap();
    for name in ["h1.ran", "h3.ran"] {
        std::fs::remove_file(scene.marker(name)).unwrap();
    }
    run.execution.limit = Some(vec!["h2".into()]);
    run.execution.attempt += 1;
    let (report, _) = run_to_end(&executor, run).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(scene.markers(), ["fixed", "h2.ran"]);
}

const WAITS_FOR_STOP: &str = r#"
- hosts: all
  gather_facts: false
  strategy: linear
  tasks:
    - name: wait for the stop
      shell: 'while [ ! -e "$STOP" ]; do sleep 0.1; done; touch "{{ out }}/{{ inventory_hostname }}.first"'
      environment:
        STOP: "{{ lookup('env', 'RUNNER_STOP_FILE') }}"
    - name: second
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.second"
        content: "x"
- hosts: all
  gather_facts: false
  tasks:
    - name: next play
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.play2"
        content: "x"
"#;

/// A graceful stop while a task sleeps: the task finishes on every host, nothing else starts.
/// The task waits for the stop file itself, so the stop always lands while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_lets_the_running_task_finish_and_starts_no_other() {
    let scene = Scene::new();
    let hosts = vec![local_host("h1"), local_host("h2"), local_host("h3")];
    let executor = scene.executor();
    let mut background = start(
        &executor,
        run_of(inline_spec(&scene, WAITS_FOR_STOP, hosts)),
    );
    background.wait_for_task("wait for the stop").await;
    background.handle.request(CancelMode::Graceful);
    let report = background.report().await;

    assert_eq!(report.outcome, Outcome::Stopped, "{report:?}");
    assert_eq!(scene.markers(), ["h1.first", "h2.first", "h3.first"]);
}

/// A kill while a task sleeps: Killed, and no process of the run is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_every_process_of_the_run() {
    let scene = Scene::new();
    // A sleep duration nobody else uses marks the task's processes (sh -c and sleep).
    let nap = format!("3000.{}", std::process::id());
    let playbook = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: sleep
      shell: "sleep {{ nap }}"
    - name: after
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.after"
        content: "x"
"#;
    let mut spec = inline_spec(&scene, playbook, vec![local_host("h1"), local_host("h2")]);
    spec.properties.insert("nap".into(), nap.clone().into());
    let executor = scene.executor();
    let mut background = start(&executor, run_of(spec));
    background.wait_for_task("sleep").await;
    // Wait until both hosts' sleeps run (a condition, polled; bounded by the deadline).
    let deadline = std::time::Instant::now() + SCENARIO_TIMEOUT;
    while processes_with(&format!("sleep {nap}")).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sleeps never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    background.handle.request(CancelMode::Kill);
    let report = background.report().await;

    assert_eq!(report.outcome, Outcome::Killed, "{report:?}");
    assert_eq!(processes_with(&nap), Vec::<(String, String)>::new());
    let work = scene.work.display().to_string();
    assert_eq!(processes_with(&work), Vec::<(String, String)>::new());
    assert!(scene.markers().is_empty());
    assert_eq!(
        std::fs::read_dir(&scene.work).unwrap().count(),
        0,
        "nothing of the killed run is left"
    );
}

/// Malformed YAML: Failed, with ansible's parse error in the message (the playbook never started,
/// so the end of the log is all there is to quote) and the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_yaml_fails_with_the_parse_error() {
    let scene = Scene::new();
    // Kept, to read the log after the run.
    let executor = AnsibleExecutor::new(AnsibleConfig {
        keep_work_dirs: true,
        ..scene.config()
    });
    let run = run_of(inline_spec(
        &scene,
        "- hosts: all\n  tasks: [\n",
        vec![local_host("h1")],
    ));
    let log_path = executor.log_path(&run.execution);
    let (report, progress) = run_to_end(&executor, run).await;

    assert_eq!(report.outcome, Outcome::Failed);
    let message = report.message.unwrap();
    assert!(message.contains("YAML parsing failed"), "{message}");
    assert!(message.contains("before the playbook started"), "{message}");
    assert!(
        !message.contains(&log_path.display().to_string()),
        "no path of the server: {message}"
    );
    assert!(log_of(&progress).contains("YAML parsing failed"));
    // Never reached: the host counts as failed, so a restart runs it again.
    assert_eq!(report.failed_hosts, ["h1"]);
}

/// The stop lives in the callback plugin, not in a strategy: a play with the `free` strategy
/// stops between tasks too, and the log carries no warning about the executor's plugins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_works_under_the_free_strategy() {
    let scene = Scene::new();
    let hosts = vec![local_host("h1"), local_host("h2")];
    // The work directory (with the node-local log) is kept, so the whole log can be read after.
    let executor = AnsibleExecutor::new(AnsibleConfig {
        keep_work_dirs: true,
        ..scene.config()
    });
    let playbook = WAITS_FOR_STOP.replace("strategy: linear", "strategy: free");
    let run = run_of(inline_spec(&scene, &playbook, hosts));
    let log_path = executor.log_path(&run.execution);
    let mut background = start(&executor, run);
    background.wait_for_task("wait for the stop").await;
    background.handle.request(CancelMode::Graceful);
    let report = background.report().await;

    assert_eq!(report.outcome, Outcome::Stopped, "{report:?}");
    // Under `free` hosts do not wait for each other: the stop may come before the second host
    // started the task, and then it never starts it. What started finished; nothing else began.
    let markers = scene.markers();
    assert!(markers.contains(&"h1.first".to_owned()), "{markers:?}");
    assert!(
        markers.iter().all(|name| name.ends_with(".first")),
        "{markers:?}"
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.to_lowercase().contains("deprecat"), "{log}");
}

const OUTPUT: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: say hello
      debug:
        msg: "hello from {{ inventory_hostname }}"
    - name: print
      command: sh -c 'echo to-stdout; echo to-stderr >&2'
    - name: fail on h2
      fail:
        msg: h2 gives up
      when: inventory_hostname == 'h2'
"#;

/// ansible-playbook's own output (stdout and stderr, as its default callback prints it) comes
/// out as the run log, and the recap per host lands on the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_goes_to_the_run_log_and_the_recap_to_host_stats() {
    let scene = Scene::new();
    let executor = scene.executor();
    let run = run_of(inline_spec(
        &scene,
        OUTPUT,
        vec![local_host("h1"), local_host("h2")],
    ));
    let (report, progress) = run_to_end(&executor, run).await;

    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    let log = log_of(&progress);
    for line in [
        "TASK [say hello]",
        "ok: [h1] => {",
        "\"msg\": \"hello from h1\"",
        "changed: [h1]",
        "fatal: [h2]: FAILED!",
        "PLAY RECAP",
    ] {
        assert!(log.contains(line), "{line:?} not in the log:\n{log}");
    }
    let h1 = report.host_stats["h1"];
    let h2 = report.host_stats["h2"];
    assert_eq!((h1.changed, h1.failed, h1.skipped), (1, 0, 1), "{h1:?}");
    assert_eq!((h2.changed, h2.failed), (1, 1), "{h2:?}");
    assert!(h1.ok >= 2, "{h1:?}");
    // Every chunk but maybe the last ends a line.
    let chunks: Vec<&Vec<u8>> = progress
        .iter()
        .filter_map(|p| match p {
            Progress::Log(chunk) => Some(chunk),
            _ => None,
        })
        .collect();
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.ends_with(b"\n"))
    );
}

/// A `useDynamicInventory` job whose account has no hosts, and that has none of its own, fails
/// saying so instead of succeeding on nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_inventory_without_any_host_fails_saying_so() {
    let scene = Scene::new();
    let mut spec = inline_spec(
        &scene,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: {dest: \"{{ out }}/ran\", content: x}\n",
        vec![],
    );
    spec.use_dynamic_inventory = true;
    let (report, _) = run_to_end(&scene.executor(), run_of(spec)).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    let message = report.message.unwrap();
    assert!(
        message.contains("useDynamicInventory is set, but the account ACME has no hosts"),
        "{message}"
    );
    assert!(scene.markers().is_empty(), "nothing ran");
}
