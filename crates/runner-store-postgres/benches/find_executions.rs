//! Finding executions (`ExecutionStore::find_executions`, `GET /executions/{alias}`) at one
//! million executions of one account, against a real server (`DATABASE_URL`, default
//! postgres://postgres@127.0.0.1:5432/test), in a fresh schema that is dropped afterwards.
//!
//! The load: 1,000,000 executions of account BENCH over 100 jobs, created one second apart, 90%
//! SUCCESS, 7% FAILURE, 2% STOPPED, 1% KILLED (inserted with generate_series in the layout the
//! store writes), and 100,000 of another account. Each row of the table is the median and p95 of
//! client timings of the store call (count and page, size 100).
//!
//! `cargo bench -p runner-store-postgres --bench find_executions`. Prints Markdown.

mod common;

use std::time::Instant;

use runner_core::execution::{Execution, Status};
use runner_core::ids::JobId;
use runner_core::page::PageRequest;
use runner_core::search::ExecutionFilter;
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_store_postgres::{PgStore, PgStoreOptions};

use common::{database_url, time};

const ROWS: i64 = 1_000_000;
const JOBS: i64 = 100;

/// Loads `rows` executions of `account` over `jobs` new jobs; returns the jobs.
async fn load(store: &PgStore, account: &str, rows: i64, jobs: i64) -> Vec<JobId> {
    let owner = alias(account);
    let mut ids = Vec::new();
    for _ in 0..jobs {
        let job = runner_core::job::Job::new(owner.clone(), inline_spec(&["a"]), 0);
        store.insert_job(&job).await.unwrap();
        ids.push(job.id);
    }
    let template = {
        let job = store.get_job(&owner, ids[0]).await.unwrap().unwrap();
        Execution::new(&job, None, None, 0)
    };
    let body = runner_core::secret::reveal(|| serde_json::to_string(&template)).unwrap();
    let job_ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
    // Row n: job (n / 100) % jobs, created at n seconds, its status by n % 100 (so each job has
    // every status in the same shares); job_seq numbers a job's rows 1, 2, ... in order of n.
    sqlx::query(
        "INSERT INTO executions (id, job_id, account_alias, status, created_time, job_seq,
                                 queue_position, next_deadline, attempt, body)
         SELECT g.id, g.job, $2, g.status, g.created, (g.n / (100 * $5)) * 100 + g.n % 100 + 1, nextval('execution_queue'),
                NULL, 1,
                jsonb_set(jsonb_set(jsonb_set(jsonb_set($3::jsonb,
                    '{execution_id}', to_jsonb(g.id::text)), '{job_id}', to_jsonb(g.job::text)),
                    '{created_time}', to_jsonb(g.created)), '{status}', to_jsonb(g.status))::json
           FROM (SELECT gen_random_uuid() AS id, n, ($1::uuid[])[(n / 100) % $5 + 1] AS job,
                        1700000000000 + n * 1000 AS created,
                        CASE WHEN n % 100 < 90 THEN 'SUCCESS' WHEN n % 100 < 97 THEN 'FAILURE'
                             WHEN n % 100 < 99 THEN 'STOPPED' ELSE 'KILLED' END AS status
                   FROM generate_series(0, $4::bigint - 1) AS n) AS g",
    )
    .bind(&job_ids)
    .bind(account)
    .bind(&body)
    .bind(rows)
    .bind(jobs)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE jobs SET execution_seq = $1 WHERE account_alias = $2")
        .bind(rows / jobs)
        .bind(account)
        .execute(store.pool())
        .await
        .unwrap();
    ids
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let schema = format!("bench_find_{}", uuid::Uuid::new_v4().simple());
        let store = PgStore::connect_with(PgStoreOptions::new(database_url()).schema(schema.clone()))
            .await
            .unwrap_or_else(|error| panic!("cannot connect ({error}); start a server: export DATABASE_URL=$(scripts/ensure-postgres.sh)"));
        let started = Instant::now();
        let jobs = load(&store, "BENCH", ROWS, JOBS).await;
        load(&store, "OTHER", ROWS / 10, 10).await;
        sqlx::query("VACUUM ANALYZE executions")
            .execute(store.pool())
            .await
            .unwrap();
        eprintln!("loaded {} executions in {:.1} s", ROWS + ROWS / 10, started.elapsed().as_secs_f64());

        let account = alias("BENCH");
        let day = 86_400_000;
        let end = 1_700_000_000_000 + ROWS * 1000;
        let cases: Vec<(&str, ExecutionFilter, u32, u64)> = vec![
            ("no filter, page 0", ExecutionFilter::default(), 0, 1_000_000),
            ("no filter, page 100", ExecutionFilter::default(), 100, 1_000_000),
            ("status=FAILURE, page 0", ExecutionFilter { statuses: vec![Status::Failure], ..Default::default() }, 0, 70_000),
            ("status=FAILURE,STOPPED,KILLED, page 0", ExecutionFilter { statuses: vec![Status::Failure, Status::Stopped, Status::Killed], ..Default::default() }, 0, 100_000),
            ("status=KILLED, page 50", ExecutionFilter { statuses: vec![Status::Killed], ..Default::default() }, 50, 10_000),
            ("jobId (10,000 executions), page 0", ExecutionFilter { job_id: Some(jobs[7]), ..Default::default() }, 0, 10_000),
            ("jobId + status=FAILURE, page 3", ExecutionFilter { job_id: Some(jobs[7]), statuses: vec![Status::Failure], ..Default::default() }, 3, 700),
            ("since/until: the last day, page 0", ExecutionFilter { since: Some(end - day), until: Some(end), ..Default::default() }, 0, 86_400),
            ("status=FAILURE, a day in the middle, page 5", ExecutionFilter { statuses: vec![Status::Failure], since: Some(end - 6 * day), until: Some(end - 5 * day), ..Default::default() }, 5, 0),
            ("status=PENDING (none), page 0", ExecutionFilter { statuses: vec![Status::Pending], ..Default::default() }, 0, 0),
        ];
        println!("| find_executions, 1,000,000 executions of one account (size 100) | total | median ms | p95 ms |");
        println!("| --- | --- | --- | --- |");
        for (label, filter, page, expected) in cases {
            let total = std::cell::Cell::new(0);
            let (median, p95) = time(30, || {
                let store = store.clone();
                let account = account.clone();
                let filter = filter.clone();
                let total = &total;
                async move {
                    let found = store
                        .find_executions(&account, &filter, PageRequest { page, size: 100 })
                        .await
                        .unwrap();
                    total.set(found.total_size);
                    let want = found.total_size.saturating_sub(u64::from(page) * 100).min(100);
                    assert_eq!(found.results.len() as u64, want, "{label}");
                    assert!(found.results.iter().all(|e| filter.matches(e)), "{label}");
                }
            })
            .await;
            let total = total.get();
            if expected > 0 {
                assert_eq!(total, expected, "{label}");
            }
            println!("| {label} | {total} | {median:.2} | {p95:.2} |");
        }
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(store.pool())
            .await
            .unwrap();
    });
}
