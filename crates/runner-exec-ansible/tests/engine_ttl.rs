//! The executor inside a runner-core engine: an execution whose TTL passes is stopped gracefully
//! (the task in progress finishes, nothing else starts) and ends STOPPED.

mod common;

use std::time::Duration;

use common::*;
use runner_core::engine::{Engine, StartRequest};
use runner_core::execution::Status;
use runner_core::executor::EventKind;
use runner_core::notifier::{ChannelNotifier, Notification, NotificationKind};
use runner_core::testkit::fixtures;
use runner_core::time::MockClock;
use runner_store_memory::MemoryStore;
use tokio::sync::broadcast::Receiver;

const WAITS_FOR_STOP: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: wait for the stop
      shell: 'while [ ! -e "$STOP" ]; do sleep 0.1; done; touch "{{ out }}/{{ inventory_hostname }}.first"'
      environment:
        STOP: "{{ lookup('env', 'RUNNER_STOP_FILE') }}"
    - name: second
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.second"
        content: "x"
"#;

/// Waits for the first notification that `wanted` accepts.
async fn wait_for(
    notifications: &mut Receiver<Notification>,
    wanted: impl Fn(&Notification) -> bool,
) {
    let wait = async {
        loop {
            let notification = notifications.recv().await.expect("notifier open");
            if wanted(&notification) {
                return;
            }
        }
    };
    tokio::time::timeout(SCENARIO_TIMEOUT, wait)
        .await
        .expect("the notification never came");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_stops_the_run_between_tasks() {
    let scene = Scene::new();
    let clock = MockClock::at(1_700_000_000_000);
    let notifier = ChannelNotifier::new(1024);
    let mut notifications = notifier.subscribe();
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .executor(scene.executor())
        .notifier(notifier)
        .clock(clock.clone())
        .lease(Duration::from_secs(24 * 3600))
        .build();
    let running = engine.clone().start();
    let alias = fixtures::alias("ACME");
    let mut spec = inline_spec(
        &scene,
        WAITS_FOR_STOP,
        vec![local_host("h1"), local_host("h2")],
    );
    spec.execution_ttl = Some(1);
    let job = engine.create_job(&alias, spec).await.unwrap();
    let execution = engine
        .start_job(&alias, job.id, StartRequest::default())
        .await
        .unwrap();
    let id = execution.execution_id;

    wait_for(&mut notifications, |n| {
        n.execution_id == id
            && matches!(&n.kind, NotificationKind::Event(event)
                if event.kind == EventKind::TaskStart && event.task.as_deref() == Some("wait for the stop"))
    })
    .await;
    clock.advance(Duration::from_secs(61 * 60));
    wait_for(&mut notifications, |n| {
        n.execution_id == id
            && matches!(&n.kind, NotificationKind::Status { status, .. } if status.is_terminal())
    })
    .await;

    let ended = engine.get_execution(&alias, job.id, id).await.unwrap();
    assert_eq!(ended.status, Status::Stopped, "{ended:?}");
    assert_eq!(scene.markers(), ["h1.first", "h2.first"]);
    running.shutdown().await;
}
