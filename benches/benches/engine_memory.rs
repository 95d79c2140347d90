//! No-op executions per second, end to end through the engine and the memory store: enqueue
//! (start_job), claim, begin run, run (a no-op executor), finish as SUCCESS — every transition
//! goes through the store and the state machine.
//!
//! `cargo bench -p runner-benches --bench engine_memory`

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use runner_core::engine::{Engine, EngineConfig, StartRequest};
use runner_core::execution::Status;
use runner_core::notifier::{Notification, NotificationKind, Notifier};
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_store_memory::MemoryStore;
use tokio::sync::Notify;

/// Executions per measured batch.
const BATCH: usize = 20_000;

/// Counts SUCCESS notifications and rings when a target is reached.
#[derive(Clone, Default)]
struct Finished {
    count: Arc<AtomicUsize>,
    target: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Notifier for Finished {
    async fn notify(&self, notification: Notification) {
        if let NotificationKind::Status {
            status: Status::Success,
            ..
        } = notification.kind
        {
            let seen = self.count.fetch_add(1, Ordering::Relaxed) + 1;
            if seen == self.target.load(Ordering::Relaxed) {
                self.done.notify_one();
            }
        }
    }
}

/// An engine on a new memory store whose runs succeed at once, reporting to `finished`.
fn noop_engine(
    finished: &Finished,
) -> Engine<MemoryStore, ScriptedExecutor, Finished, runner_core::time::SystemClock> {
    Engine::builder()
        .store(MemoryStore::new())
        .executor(ScriptedExecutor::with_recording(Script::Succeed, false))
        .notifier(finished.clone())
        .config(EngineConfig {
            concurrency: 256,
            claim_batch: 256,
            ..EngineConfig::default()
        })
        .build()
}

fn engine_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let alias = alias("BENCH");

    let mut group = c.benchmark_group("engine_memory");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("noop_executions", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    // A fresh store and engine per batch (not timed), so every batch measures
                    // the same work rather than a store that grows through the run.
                    let finished = Finished::default();
                    finished.target.store(BATCH, Ordering::Relaxed);
                    let engine = noop_engine(&finished);
                    let job = engine
                        .create_job(&alias, inline_spec(&["a"]))
                        .await
                        .expect("job");
                    let running = engine.clone().start();

                    let started = Instant::now();
                    for _ in 0..BATCH {
                        engine
                            .start_job(&alias, job.id, StartRequest::default())
                            .await
                            .expect("start");
                    }
                    finished.done.notified().await;
                    total += started.elapsed();
                    running.shutdown().await;
                }
                total
            })
        });
    });

    // The same work on one store and engine for the whole run: the store keeps every execution,
    // so later batches pay for its growth (map resizes) as a long-running server would.
    let finished = Finished::default();
    let engine = noop_engine(&finished);
    let (job, _running) = runtime.block_on(async {
        let job = engine
            .create_job(&alias, inline_spec(&["a"]))
            .await
            .expect("job");
        (job, engine.clone().start())
    });
    group.bench_function("noop_executions_growing_store", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    finished.count.store(0, Ordering::Relaxed);
                    finished.target.store(BATCH, Ordering::Relaxed);
                    let started = Instant::now();
                    for _ in 0..BATCH {
                        engine
                            .start_job(&alias, job.id, StartRequest::default())
                            .await
                            .expect("start");
                    }
                    finished.done.notified().await;
                    total += started.elapsed();
                }
                total
            })
        });
    });
    group.finish();
}

criterion_group!(benches, engine_throughput);
criterion_main!(benches);
