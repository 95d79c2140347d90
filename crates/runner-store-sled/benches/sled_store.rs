//! Throughput of the sled store: raw acknowledged writes, and durable no-op executions end to end
//! through the engine.
//!
//! `cargo bench -p runner-store-sled --bench sled_store` (optionally `-- <executions>`; default
//! 20000). Each figure is one timed run on a fresh data directory in the system temp dir.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runner_core::engine::{Engine, StartRequest};
use runner_core::execution::{Execution, Status};
use runner_core::notifier::{Notification, NotificationKind, Notifier};
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, inline_spec, job};
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_store_sled::{Durability, SledStore};
use tokio::sync::Notify;

/// Counts SUCCESS notifications and wakes the benchmark when all have arrived.
#[derive(Clone)]
struct Finished {
    count: Arc<AtomicUsize>,
    target: usize,
    done: Arc<Notify>,
}

impl Notifier for Finished {
    async fn notify(&self, notification: Notification) {
        if let NotificationKind::Status {
            status: Status::Success,
            ..
        } = notification.kind
        {
            if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.target {
                self.done.notify_one();
            }
        }
    }
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// `writers` tasks insert `total` executions of one job between them; each insert is
/// acknowledged (durable, per `durability`) before the next.
async fn raw_writes(durability: Durability, writers: usize, total: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), durability).unwrap();
    let job = job("ACME", 0);
    store.insert_job(&job).await.unwrap();
    let flushes_before = store.flush_count();
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let store = store.clone();
            let job = job.clone();
            tokio::spawn(async move {
                for n in (writer..total).step_by(writers) {
                    let execution = Execution::new(&job, None, None, n as i64);
                    store.insert_execution(&execution).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let flushes = store.flush_count() - flushes_before;
    println!(
        "raw writes   {durability:>8?} writers={writers:<3} {total} in {:>6.2} s = {:>8.0} acknowledged writes/s, {flushes} flushes ({:.1} writes/flush)",
        elapsed.as_secs_f64(),
        rate(total, elapsed),
        total as f64 / flushes.max(1) as f64,
    );
}

/// `total` no-op executions through an engine on sled: started by 32 concurrent callers,
/// claimed, run by a scripted executor that succeeds at once, and recorded SUCCESS.
async fn engine_end_to_end(durability: Durability, total: usize, concurrency: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with(dir.path(), durability).unwrap();
    let finished = Finished {
        count: Arc::new(AtomicUsize::new(0)),
        target: total,
        done: Arc::new(Notify::new()),
    };
    let engine = Engine::builder()
        .store(store.clone())
        .executor(ScriptedExecutor::with_recording(Script::Succeed, false))
        .notifier(finished.clone())
        .concurrency(concurrency)
        .build();
    let acme = alias("ACME");
    let job = engine
        .create_job(&acme, inline_spec(&["a", "b"]))
        .await
        .unwrap()
        .id;
    let running = engine.clone().start();
    let flushes_before = store.flush_count();
    let started = Instant::now();
    let done = finished.done.notified();
    let starters: Vec<_> = (0..32)
        .map(|starter| {
            let engine = engine.clone();
            let acme = acme.clone();
            tokio::spawn(async move {
                for _ in (starter..total).step_by(32) {
                    engine
                        .start_job(&acme, job, StartRequest::default())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for starter in starters {
        starter.await.unwrap();
    }
    done.await;
    let elapsed = started.elapsed();
    let flushes = store.flush_count() - flushes_before;
    running.shutdown().await;
    println!(
        "engine e2e   {durability:>8?} concurrency={concurrency:<3} {total} executions in {:>6.2} s = {:>7.0} executions/s, {flushes} flushes",
        elapsed.as_secs_f64(),
        rate(total, elapsed),
    );
}

fn main() {
    let total: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for durability in [Durability::Flush, Durability::Sync, Durability::Deferred] {
            for writers in [1, 16, 64] {
                let count = if writers == 1 && durability != Durability::Deferred {
                    total / 10
                } else {
                    total
                };
                raw_writes(durability, writers, count).await;
            }
        }
        for durability in [Durability::Flush, Durability::Sync, Durability::Deferred] {
            engine_end_to_end(durability, total, 64).await;
        }
        engine_end_to_end(Durability::Flush, total, 16).await;
    });
}
