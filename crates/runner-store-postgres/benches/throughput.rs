//! Benchmarks of the PostgreSQL store, against a real server (`DATABASE_URL`, default
//! postgres://postgres@127.0.0.1:5432/test):
//!
//! 1. `pgbench -N -c 8 -j 2 -T 10` on a scratch database of the same server, as the yardstick.
//! 2. No-op executions per second end to end (start_job -> PENDING -> claim -> RUNNING ->
//!    SUCCESS) through one and through three engines, each engine with its own PgStore.
//! 3. Listing latency of page 0 and page 9,999 (size 100) of a job with 1,000,000 executions,
//!    beside the same page read with OFFSET.
//!
//! `cargo bench -p runner-store-postgres --bench throughput` (env: EXECUTIONS, default 20000;
//! SKIP_PGBENCH, SKIP_ENGINES, SKIP_LISTING=1 skip parts 1, 2, 3;
//! PGBENCH_EACH=1 runs pgbench again before every engine row and rates the row against it;
//! ONLY_WIDE=1 runs only concurrency 64, ONLY_DEFAULTS=1 only the defaults; ENGINE_COUNTS, default
//! `1,3`, the numbers of engines; POOL_SIZE and WRITE_LANES change the store options;
//! JOB_PER_CLIENT=1 gives each of the 8 clients per engine its own job instead of one job for
//! all). Prints Markdown.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use runner_core::engine::{Engine, EngineConfig, StartRequest};
use runner_core::execution::Execution;
use runner_core::page::PageRequest;
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_store_postgres::{PgStore, PgStoreOptions};

use common::{database_url, time};

fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{database}")
}

async fn connect(options: PgStoreOptions) -> PgStore {
    PgStore::connect_with(options).await.unwrap_or_else(|error| {
        panic!("cannot connect ({error}); start a server: export DATABASE_URL=$(scripts/ensure-postgres.sh)")
    })
}

fn pgbench(url: &str) -> f64 {
    let scratch = with_database(url, "runner_pgbench");
    let admin = |sql: &str| {
        let out = Command::new("psql")
            .args([url, "-qc", sql])
            .output()
            .expect("psql on PATH");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    admin("DROP DATABASE IF EXISTS runner_pgbench");
    admin("CREATE DATABASE runner_pgbench");
    let init = Command::new("pgbench")
        .args(["-i", "-q", &scratch])
        .output()
        .expect("pgbench on PATH");
    assert!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let run = Command::new("pgbench")
        .args(["-N", "-c", "8", "-j", "2", "-T", "10", &scratch])
        .output()
        .expect("pgbench");
    assert!(
        run.status.success(),
        "pgbench: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = String::from_utf8_lossy(&run.stdout);
    let tps = text
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .expect("pgbench prints tps");
    admin("DROP DATABASE IF EXISTS runner_pgbench");
    tps
}

/// Waits until no execution of the row is unfinished (all were inserted before). Reads the small
/// partial index of unfinished executions: counting SUCCESS rows every 10 ms would scan the whole
/// growing table and take CPU from what is measured.
async fn wait_all_ended(store: &PgStore) {
    loop {
        // Each row has its own schema, so every execution in it is the row's.
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM executions
                WHERE status IN ('PENDING', 'INITIALIZING', 'RUNNING', 'STOPPING', 'KILLING')",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        if unfinished == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `executions` no-op executions through `engines` engines; returns executions per second.
async fn engines(url: &str, engines: usize, executions: usize, config: &EngineConfig) -> f64 {
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let mut options = PgStoreOptions::new(url).schema(schema.clone());
    if let Some(size) = std::env::var("POOL_SIZE").ok().and_then(|n| n.parse().ok()) {
        options = options.pool_size(size);
    }
    if let Some(lanes) = std::env::var("WRITE_LANES")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        options = options.write_lanes(lanes);
    }
    let executor = ScriptedExecutor::with_recording(Script::Succeed, false);
    let mut nodes = Vec::new();
    for n in 0..engines {
        let store = connect(options.clone()).await;
        let engine = Engine::builder()
            .store(store)
            .executor(executor.clone())
            .config(EngineConfig {
                node_id: format!("bench-{n}"),
                ..config.clone()
            })
            .build();
        nodes.push((engine, None));
    }
    // PHASED=1: enqueue everything first, then start the engines and time the work-off alone.
    let phased = std::env::var_os("PHASED").is_some();
    if !phased {
        for (engine, running) in &mut nodes {
            *running = Some(engine.clone().start());
        }
    }
    let account = alias("BENCH");
    // JOB_PER_CLIENT=1: each client starts executions of its own job, as pgbench -N's clients
    // spread over many accounts. Otherwise every client starts the same job, whose row lock
    // (it numbers the job's executions) every start then waits for.
    let job_per_client = std::env::var_os("JOB_PER_CLIENT").is_some();
    let mut jobs = Vec::new();
    for _ in 0..if job_per_client { engines * 8 } else { 1 } {
        let job = nodes[0]
            .0
            .create_job(&account, inline_spec(&["a"]))
            .await
            .unwrap();
        jobs.push(job.id);
    }
    let store = nodes[0].0.store().clone();
    let started = Instant::now();
    // Clients start executions through every node, 8 at a time per node.
    let mut clients = tokio::task::JoinSet::new();
    let per_client = executions / (engines * 8);
    let mut client_jobs = jobs.iter().copied().cycle();
    for (engine, _) in &nodes {
        for _ in 0..8 {
            let engine = engine.clone();
            let account = account.clone();
            let job = client_jobs.next().expect("a job per client");
            clients.spawn(async move {
                for _ in 0..per_client {
                    engine
                        .start_job(&account, job, StartRequest::default())
                        .await
                        .expect("start");
                }
            });
        }
    }
    let total = (per_client * engines * 8) as i64;
    while clients.join_next().await.is_some() {}
    let enqueued = started.elapsed().as_secs_f64();
    if phased {
        let work_off = Instant::now();
        for (engine, running) in &mut nodes {
            *running = Some(engine.clone().start());
        }
        wait_all_ended(&store).await;
        eprintln!(
            "{engines} engine(s), concurrency {}: work-off of {total} after the enqueue: {:.0}/s",
            config.concurrency,
            total as f64 / work_off.elapsed().as_secs_f64()
        );
    }
    let done_then: i64 =
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE status = 'SUCCESS'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    wait_all_ended(&store).await;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let succeeded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE status = 'SUCCESS'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(succeeded, total, "every execution ends in SUCCESS");
    eprintln!(
        "{engines} engine(s), concurrency {}: {total} started in {enqueued:.2} s ({:.0}/s), \
         {done_then} of them SUCCESS by then; all SUCCESS after {:.2} s",
        config.concurrency,
        total as f64 / enqueued,
        started.elapsed().as_secs_f64()
    );
    for (_, running) in nodes {
        running.expect("started").shutdown().await;
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(store.pool())
        .await
        .unwrap();
    rate
}

async fn listing(url: &str) {
    const ROWS: i64 = 1_000_000;
    let store = connect(PgStoreOptions::new(url).schema("bench_listing")).await;
    let account = alias("BENCH");
    let existing: Option<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT id, execution_seq FROM jobs LIMIT 1")
            .fetch_optional(store.pool())
            .await
            .unwrap();
    let job_id = match existing {
        Some((id, seq)) if seq == ROWS => runner_core::ids::JobId(id),
        _ => {
            sqlx::query("TRUNCATE jobs, executions")
                .execute(store.pool())
                .await
                .unwrap();
            let job = runner_core::job::Job::new(account.clone(), inline_spec(&["a", "b"]), 0);
            store.insert_job(&job).await.unwrap();
            let template = Execution::new(&job, None, None, 0);
            let body = runner_core::secret::reveal(|| serde_json::to_string(&template)).unwrap();
            let load = Instant::now();
            // The layout the store writes: job_seq 1..n, ids of the same shape, the record in body.
            sqlx::query(
                "INSERT INTO executions (id, job_id, account_alias, status, created_time, job_seq,
                                         queue_position, next_deadline, attempt, body)
                 SELECT g.id, $1, $2, 'SUCCESS', g.n, g.n, nextval('execution_queue'), NULL, 1,
                        jsonb_set(jsonb_set(jsonb_set($3::jsonb, '{execution_id}', to_jsonb(g.id::text)),
                                  '{created_time}', to_jsonb(g.n)), '{status}', '\"SUCCESS\"')::json
                   FROM (SELECT gen_random_uuid() AS id, n FROM generate_series(1, $4::bigint) AS n) AS g",
            )
            .bind(job.id.0)
            .bind(account.as_str())
            .bind(&body)
            .bind(ROWS)
            .execute(store.pool())
            .await
            .unwrap();
            sqlx::query("UPDATE jobs SET execution_seq = $1")
                .bind(ROWS)
                .execute(store.pool())
                .await
                .unwrap();
            sqlx::query("VACUUM ANALYZE executions")
                .execute(store.pool())
                .await
                .unwrap();
            eprintln!(
                "loaded {ROWS} executions in {:.1} s",
                load.elapsed().as_secs_f64()
            );
            job.id
        }
    };
    let last_page = u32::try_from(ROWS / 100 - 1).unwrap();
    println!("| query (1,000,000 executions of one job, size 100) | median ms | p95 ms |");
    println!("| --- | --- | --- |");
    for page in [0, last_page / 2, last_page] {
        let (median, p95) = time(50, || {
            let store = store.clone();
            let account = account.clone();
            async move {
                let listed = store
                    .list_executions(&account, job_id, PageRequest { page, size: 100 })
                    .await
                    .unwrap();
                assert_eq!(listed.results.len(), 100);
                assert_eq!(listed.total_size, ROWS as u64);
            }
        })
        .await;
        println!(
            "| PgStore::list_executions page {page} (job_seq range) | {median:.2} | {p95:.2} |"
        );
    }
    for page in [0, last_page] {
        let (median, p95) = time(10, || {
            let pool = store.pool().clone();
            async move {
                let rows: Vec<String> = sqlx::query_scalar(
                    "SELECT body::text FROM executions WHERE job_id = $1
                      ORDER BY job_seq DESC LIMIT 100 OFFSET $2",
                )
                .bind(job_id.0)
                .bind(i64::from(page) * 100)
                .fetch_all(&pool)
                .await
                .unwrap();
                assert_eq!(rows.len(), 100);
                let _: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM executions WHERE job_id = $1")
                        .bind(job_id.0)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
            }
        })
        .await;
        println!(
            "| for comparison: LIMIT 100 OFFSET {} + count(*) | {median:.2} | {p95:.2} |",
            u64::from(page) * 100
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = database_url();
    let executions: usize = std::env::var("EXECUTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    runtime.block_on(async {
        let pgbench_tps = if std::env::var_os("SKIP_PGBENCH").is_none() {
            let tps = pgbench(&url);
            println!("pgbench -N -c 8 -j 2 -T 10: {tps:.0} TPS\n");
            Some(tps)
        } else {
            None
        };
        let mut defaults = EngineConfig::default();
        // PREFETCH: a diagnostic override of the default prefetch (then the row is not "defaults").
        if let Some(prefetch) = std::env::var("PREFETCH").ok().and_then(|n| n.parse().ok()) {
            defaults.prefetch = prefetch;
        }
        let wide = EngineConfig {
            concurrency: 64,
            prefetch: 64,
            poll_interval: Duration::from_millis(200),
            ..EngineConfig::default()
        };
        if std::env::var_os("SKIP_ENGINES").is_some() {
            listing(&url).await;
            return;
        }
        // PGBENCH_EACH=1: pgbench again right before every row, and the row's ratio against that
        // one (on a shared machine the load moves within a run; a neighbour is a fairer yardstick).
        let each = pgbench_tps.is_some() && std::env::var_os("PGBENCH_EACH").is_some();
        println!(
            "| engines | engine config | executions | executions/s | pgbench -N TPS just before | vs pgbench -N TPS |"
        );
        println!("| --- | --- | --- | --- | --- | --- |");
        let counts: Vec<usize> = std::env::var("ENGINE_COUNTS")
            .unwrap_or_else(|_| "1,3".to_owned())
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        let mut configs = Vec::new();
        if std::env::var_os("ONLY_WIDE").is_none() {
            configs.push(("defaults", &defaults));
        }
        if std::env::var_os("ONLY_DEFAULTS").is_none() {
            configs.push(("concurrency 64, prefetch 64", &wide));
        }
        for (label, config) in configs {
            for &count in &counts {
                let yardstick = if each { Some(pgbench(&url)) } else { pgbench_tps };
                let rate = engines(&url, count, executions, config).await;
                let ratio = yardstick.map_or("-".to_owned(), |tps| format!("{:.2}x", rate / tps));
                let tps = yardstick.map_or("-".to_owned(), |tps| format!("{tps:.0}"));
                println!("| {count} | {label} | {executions} | {rate:.0} | {tps} | {ratio} |");
            }
        }
        println!();
        if std::env::var_os("SKIP_LISTING").is_none() {
            listing(&url).await;
        }
    });
}
