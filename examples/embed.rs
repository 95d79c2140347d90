//! Embeds the Runner engine in a small program: the memory store, an in-process executor, one
//! job that runs to SUCCESS and one that is stopped while it runs. Every transition is printed
//! as it happens, and each execution's stored feed at the end.
//!
//! ```text
//! cargo run -p runner-examples --bin embed
//! ```

use std::time::Duration;

use runner_core::executor::EventKind;
use runner_core::prelude::*;
use runner_store_memory::MemoryStore;

/// An executor that "runs" a playbook in-process: a job whose description is `long` runs until
/// it is stopped; any other job reports one task per host and succeeds.
struct InProcess;

impl Executor for InProcess {
    async fn run(&self, run: Run, events: EventSink, mut cancel: Cancellation) -> RunReport {
        events.workspace_ready();
        if run.job.spec.description.as_deref() == Some("long") {
            // A graceful stop lets the "current task" finish; a kill ends it at once.
            return match cancel.at_least(CancelMode::Graceful).await {
                CancelMode::Graceful => RunReport::new(Outcome::Stopped),
                CancelMode::Kill => RunReport::new(Outcome::Killed),
            };
        }
        for host in &run.execution.hosts {
            events.emit(ExecutorEvent {
                host: Some(host.id.clone()),
                task: Some("say hello".into()),
                ..ExecutorEvent::new(EventKind::HostOk)
            });
        }
        RunReport::new(Outcome::Succeeded)
    }
}

#[tokio::main]
async fn main() -> Result<(), EngineError> {
    let notifier = ChannelNotifier::new(256);
    let mut feed = notifier.subscribe();
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .executor(InProcess)
        .notifier(notifier)
        .concurrency(2)
        .build();
    let running = engine.clone().start();

    let printer = tokio::spawn(async move {
        while let Ok(notification) = feed.recv().await {
            let id = notification.execution_id;
            match notification.kind {
                // Status changes can arrive out of order (the stop request and the worker run in
                // different tasks); the revision tells which is newer.
                NotificationKind::Status {
                    status,
                    message,
                    revision,
                } => {
                    let reason = message.map(|m| format!(" ({m})")).unwrap_or_default();
                    println!("{id} -> {status} [revision {revision}]{reason}");
                }
                NotificationKind::Event(event) => {
                    println!(
                        "{id}    {:?} on {}",
                        event.kind,
                        event.host.unwrap_or_default()
                    );
                }
            }
        }
    });

    let alias: AccountAlias = "DEMO".parse().expect("valid alias");
    // "- hosts: all\n  tasks: []\n", base64-encoded as the API expects.
    let playbook = "LSBob3N0czogYWxsCiAgdGFza3M6IFtdCg==".to_owned();
    let spec = |description: &str| JobSpec {
        description: Some(description.into()),
        playbook: Some(playbook.clone()),
        hosts: Some(vec![Host::named("web-1"), Host::named("web-2")]),
        ..JobSpec::default()
    };

    let quick = engine.create_job(&alias, spec("quick")).await?;
    let long = engine.create_job(&alias, spec("long")).await?;
    let done = engine
        .start_job(&alias, quick.id, StartRequest::default())
        .await?;
    let stopped = engine
        .start_job(&alias, long.id, StartRequest::default())
        .await?;

    wait_for(&engine, &alias, &stopped, Status::Running).await?;
    engine
        .stop(&alias, long.id, stopped.execution_id, Duration::ZERO)
        .await?;
    wait_for(&engine, &alias, &stopped, Status::Stopped).await?;
    wait_for(&engine, &alias, &done, Status::Success).await?;

    // The stored feed: what webhooks receive and the events endpoint serves, numbered without
    // gaps in the order things happened (unlike in-process notifications, which may interleave).
    for execution in [&done, &stopped] {
        println!("feed of {}:", execution.execution_id);
        let feed = engine
            .list_events(&alias, execution.job_id, execution.execution_id, 0, 100)
            .await?;
        for event in feed {
            let status = event.status.map(|s| format!(" {s}")).unwrap_or_default();
            let host = event.host.map(|h| format!(" on {h}")).unwrap_or_default();
            println!(
                "  #{} {:?} {:?}{status}{host}",
                event.sequence, event.level, event.kind
            );
        }
    }

    running.shutdown().await;
    // The last engine handle owns the notifier: dropping it ends the feed, and the printer with it.
    drop(engine);
    printer.await.expect("printer ended cleanly");
    Ok(())
}

/// Polls the engine until the execution reaches `status` (a program would use the notifier).
async fn wait_for<S: Store, E: Executor, N: Notifier, C: Clock>(
    engine: &Engine<S, E, N, C>,
    alias: &AccountAlias,
    execution: &Execution,
    status: Status,
) -> Result<(), EngineError> {
    loop {
        let current = engine
            .get_execution(alias, execution.job_id, execution.execution_id)
            .await?;
        if current.status == status {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
