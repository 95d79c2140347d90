//! Runner's engine beside apalis-postgres 1.x, on one PostgreSQL server in one run
//! (`DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test):
//!
//! 1. `pgbench -N -c 8 -j 2 -T 10` on a scratch database of the same server, as the yardstick.
//! 2. apalis-postgres: on a fresh database, 8 producers `push` N jobs one at a time, then one
//!    worker whose handler does nothing works them off; timed from the first push to the last
//!    job `Done` (counted in SQL). Once with `PostgresStorage::new` defaults (fetch batch 10),
//!    once with fetch batch 100.
//! 3. Runner: one engine on a `PgStore` in a fresh schema, `ScriptedExecutor` that succeeds at
//!    once; 8 callers `start_job` N executions; timed from the first start to the last SUCCESS
//!    (counted in SQL). Once with `EngineConfig::default()`, once with concurrency 64, claim
//!    batch 64, prefetch 64.
//!
//! Env: EXECUTIONS (default 12000), SKIP_PGBENCH, SKIP_APALIS, SKIP_RUNNER. Prints Markdown.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apalis::prelude::{BoxDynError, TaskSink, WorkerBuilder};
use apalis_postgres::{PgPool, PostgresStorage};
use runner_core::engine::{Engine, EngineConfig, StartRequest};
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_store_postgres::{PgStore, PgStoreOptions};

/// Producers and `start_job` callers, the same for both systems (and pgbench's `-c`).
const CLIENTS: usize = 8;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{database}")
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-qc", sql])
        .output()
        .expect("psql on PATH");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fresh_database(url: &str, name: &str) -> String {
    psql(url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    psql(url, &format!("CREATE DATABASE {name}"));
    with_database(url, name)
}

fn pgbench(url: &str) -> f64 {
    let scratch = fresh_database(url, "peers_pgbench");
    let run = |args: &[&str]| {
        let out = Command::new("pgbench")
            .args(args)
            .arg(&scratch)
            .output()
            .expect("pgbench on PATH");
        assert!(
            out.status.success(),
            "pgbench {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["-i", "-q"]);
    let text = run(&["-N", "-c", "8", "-j", "2", "-T", "10"]);
    psql(url, "DROP DATABASE IF EXISTS peers_pgbench WITH (FORCE)");
    text.lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .expect("pgbench prints tps")
}

/// N no-op jobs through one apalis worker; returns jobs per second.
async fn apalis(url: &str, jobs: usize, batch: Option<usize>) -> f64 {
    let db = fresh_database(url, "peers_apalis");
    let pool = PgPool::connect(&db).await.expect("connect");
    PostgresStorage::setup(&pool)
        .await
        .expect("apalis migrations");
    let storage = PostgresStorage::<u64>::new(&pool);
    let storage = match batch {
        // Only the fetch batch differs from what `new` sets (queue named after the job type).
        Some(size) => {
            let config = storage.config().clone().batch_size(size);
            storage.with_config(config)
        }
        None => storage,
    };

    let per_client = jobs / CLIENTS;
    let total = (per_client * CLIENTS) as i64;
    let started = Instant::now();
    let mut producers = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let mut sink = storage.clone();
        producers.spawn(async move {
            for n in 0..per_client {
                sink.push((client * per_client + n) as u64)
                    .await
                    .expect("push");
            }
        });
    }
    while producers.join_next().await.is_some() {}
    let enqueued = started.elapsed();
    // The worker starts once every job is in, as in apalis-postgres's own basic example: a
    // polling PostgresStorage worker that finds the queue empty waits for its next wake-up
    // instead of polling again (in a trial with the worker started first, 800 jobs took 30 s,
    // the default heartbeat interval), which would measure that wait, not the queue.
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let worker = WorkerBuilder::new("peers-worker")
        .backend(storage.clone())
        .build(move |_job: u64| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                Ok::<(), BoxDynError>(())
            }
        });
    let running = tokio::spawn(worker.run());

    loop {
        let done: i64 =
            apalis_sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE status = 'Done'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if done == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "apalis batch {batch:?}: enqueue {:.2} s, work-off {:.2} s ({:.0} jobs/s once enqueued)",
        enqueued.as_secs_f64(),
        (elapsed - enqueued).as_secs_f64(),
        total as f64 / (elapsed - enqueued).as_secs_f64()
    );
    let rate = total as f64 / elapsed.as_secs_f64();
    assert_eq!(
        handled.load(Ordering::Relaxed) as i64,
        total,
        "each job ran once"
    );
    running.abort();
    let _ = running.await;
    pool.close().await;
    psql(url, "DROP DATABASE IF EXISTS peers_apalis WITH (FORCE)");
    rate
}

/// N no-op executions through one Runner engine; returns executions per second.
async fn runner(url: &str, executions: usize, config: EngineConfig) -> f64 {
    let schema = format!("peers_{}", uuid::Uuid::new_v4().simple());
    let store = PgStore::connect_with(PgStoreOptions::new(url).schema(schema.clone()))
        .await
        .expect("connect");
    let engine = Engine::builder()
        .store(store.clone())
        .executor(ScriptedExecutor::with_recording(Script::Succeed, false))
        .config(config)
        .build();
    let running = engine.clone().start();
    let account = alias("BENCH");
    let job = engine
        .create_job(&account, inline_spec(&["a"]))
        .await
        .unwrap();
    let per_client = executions / CLIENTS;
    let total = (per_client * CLIENTS) as i64;
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let engine = engine.clone();
        let account = account.clone();
        clients.spawn(async move {
            for _ in 0..per_client {
                engine
                    .start_job(&account, job.id, StartRequest::default())
                    .await
                    .expect("start");
            }
        });
    }
    while clients.join_next().await.is_some() {}
    loop {
        let done: i64 =
            sqlx08::query_scalar("SELECT count(*) FROM executions WHERE status = 'SUCCESS'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        if done == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    running.shutdown().await;
    sqlx08::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(store.pool())
        .await
        .unwrap();
    rate
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = database_url();
    let jobs: usize = std::env::var("EXECUTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12_000);
    let skip = |name: &str| std::env::var_os(name).is_some();
    runtime.block_on(async {
        let tps = (!skip("SKIP_PGBENCH")).then(|| pgbench(&url));
        let ratio = |rate: f64| tps.map_or("-".to_owned(), |tps| format!("{:.2}x", rate / tps));
        let mut rows = Vec::new();
        if let Some(tps) = tps {
            rows.push(format!(
                "| pgbench | `-N -c 8 -j 2 -T 10` | - | {tps:.0} TPS | 1x |"
            ));
        }
        if !skip("SKIP_APALIS") {
            for (label, config) in [
                ("defaults (`PostgresStorage::new`, batch 10)", None),
                ("fetch batch 100 (`Config::batch_size(100)`)", Some(100)),
            ] {
                let rate = apalis(&url, jobs, config).await;
                eprintln!("apalis {label}: {rate:.0}/s");
                rows.push(format!(
                    "| apalis-postgres 1.0 | {label} | {jobs} | {rate:.0} | {} |",
                    ratio(rate)
                ));
            }
        }
        if !skip("SKIP_RUNNER") {
            // The batch settings of the throughput bench (crates/runner-store-postgres).
            let wide = EngineConfig {
                concurrency: 64,
                claim_batch: 64,
                prefetch: 64,
                poll_interval: std::time::Duration::from_millis(200),
                ..EngineConfig::default()
            };
            for (label, config) in [
                (
                    "`EngineConfig::default()` (concurrency 4)",
                    EngineConfig::default(),
                ),
                ("concurrency 64, claim batch 64, prefetch 64", wide),
            ] {
                let rate = runner(&url, jobs, config).await;
                eprintln!("runner {label}: {rate:.0}/s");
                rows.push(format!(
                    "| Runner (1 engine, PgStore) | {label} | {jobs} | {rate:.0} | {} |",
                    ratio(rate)
                ));
            }
        }
        println!("| system | config | jobs | jobs/s | vs pgbench -N TPS |");
        println!("| --- | --- | --- | --- | --- |");
        for row in rows {
            println!("{row}");
        }
    });
}
