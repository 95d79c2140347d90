//! Launch-time options change what the real ansible-playbook runs: extra vars over the job's,
//! tags, skipped tags, a host limit, check mode and diff.

mod common;

use common::*;
use runner_core::execution::Outcome;
use runner_core::launch::LaunchOptions;
use serde_json::json;

const TAGGED: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: tagged a
      copy:
        content: "{{ greeting }}\n"
        dest: "{{ out }}/a-{{ inventory_hostname }}"
      tags: [a]
    - name: tagged b
      file:
        path: "{{ out }}/b-{{ inventory_hostname }}"
        state: touch
      tags: [b]
    - name: untagged
      file:
        path: "{{ out }}/plain-{{ inventory_hostname }}"
        state: touch
"#;

fn spec(scene: &Scene) -> runner_core::job::JobSpec {
    let mut spec = inline_spec(scene, TAGGED, vec![local_host("h1"), local_host("h2")]);
    spec.properties
        .insert("greeting".into(), json!("from the job"));
    spec
}

fn tasks_run(progress: &[runner_core::executor::Progress]) -> Vec<String> {
    let mut tasks: Vec<String> = events_of(progress)
        .iter()
        .filter(|event| event.host.is_some())
        .filter_map(|event| event.task.clone())
        .collect();
    tasks.dedup();
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_limit_skipped_tags_and_diff_change_the_run() {
    let scene = Scene::new();
    let mut run = run_of(spec(&scene));
    run.execution.launch = LaunchOptions {
        properties: Some(vars(json!({"greeting": "from the launch"}))),
        skip_tags: Some(vec!["b".into()]),
        limit: Some(vec!["h2".into()]),
        diff: true,
        ..LaunchOptions::default()
    };
    let (report, progress) = run_to_end(&scene.executor(), run).await;
    let log = log_of(&progress);
    assert_eq!(report.outcome, Outcome::Succeeded, "{log}");
    assert!(
        report.failed_hosts.is_empty(),
        "h1 was left out, not failed"
    );
    assert_eq!(
        scene.markers(),
        ["a-h2", "plain-h2"],
        "h2 only, without tag b"
    );
    let written = std::fs::read_to_string(scene.marker("a-h2")).unwrap();
    assert_eq!(written, "from the launch\n", "the launch's extra var wins");
    assert!(
        log.contains("+from the launch"),
        "--diff shows the change: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_replace_the_jobs_and_check_mode_changes_nothing() {
    let scene = Scene::new();
    let mut job_spec = spec(&scene);
    job_spec.playbook_tags = vec!["a".into()];
    let mut run = run_of(job_spec);
    run.execution.launch = LaunchOptions {
        playbook_tags: Some(vec!["b".into()]),
        check: true,
        ..LaunchOptions::default()
    };
    let (report, progress) = run_to_end(&scene.executor(), run).await;
    let log = log_of(&progress);
    assert_eq!(report.outcome, Outcome::Succeeded, "{log}");
    assert_eq!(
        tasks_run(&progress),
        ["tagged b"],
        "only the launch's tag ran"
    );
    assert!(
        scene.markers().is_empty(),
        "check mode wrote nothing: {:?}",
        scene.markers()
    );
    let stats = &report.host_stats["h1"];
    assert_eq!(
        stats.changed, 1,
        "check mode still reports what would change: {stats:?}"
    );

    // Without options the job's own tag applies, and files are written.
    let scene = Scene::new();
    let mut job_spec = spec(&scene);
    job_spec.playbook_tags = vec!["a".into()];
    let (report, _) = run_to_end(&scene.executor(), run_of(job_spec)).await;
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(scene.markers(), ["a-h1", "a-h2"]);
}
