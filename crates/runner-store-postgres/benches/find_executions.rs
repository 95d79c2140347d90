//! Finding executions (`ExecutionStore::find_executions`, `GET /executions/{alias}`) at 10,000,
//! 100,000 and 1,000,000 executions of one account, against a real server (`DATABASE_URL`,
//! default postgres://postgres@127.0.0.1:5432/test), in a fresh schema that is dropped afterwards.
//!
//! The load: executions of account BENCH over 100 jobs, created one second
//! apart, 90% SUCCESS, 7% FAILURE, 2% STOPPED, 1% KILLED (inserted with one `INSERT ... SELECT
//! FROM generate_series` per step, in the layout the store writes), grown in three steps to 10k,
//! 100k and 1M, plus 100,000 of another account from the start. After each step the same cases
//! run; each cell is the median (and p95) of 30 client timings of the whole store call (the count
//! of `totalSize` and the page, size 100). Time windows are fixed in rows (an hour is 3,600
//! executions), so their matches stay the same while the table grows.
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

/// The sizes measured, each a multiple of `100 * JOBS` (so every job has as many rows).
const STEPS: [i64; 3] = [10_000, 100_000, 1_000_000];
const JOBS: i64 = 100;
/// Creation time of row 0; row n is created n seconds later.
const START: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

/// Makes `jobs` jobs of `account`.
async fn make_jobs(store: &PgStore, account: &str, jobs: i64) -> Vec<JobId> {
    let mut ids = Vec::new();
    for _ in 0..jobs {
        let job = runner_core::job::Job::new(alias(account), inline_spec(&["a"]), 0);
        store.insert_job(&job).await.unwrap();
        ids.push(job.id);
    }
    ids
}

/// Inserts rows `from..to` of `account` over its jobs `ids` (row n: job `(n / 100) % jobs`,
/// created at `START + n` seconds, its status by `n % 100`, so every job has every status in
/// the same shares; `job_seq` numbers a job's rows 1, 2, ... in order of n).
async fn load(store: &PgStore, account: &str, ids: &[JobId], from: i64, to: i64) {
    let owner = alias(account);
    let jobs = i64::try_from(ids.len()).unwrap();
    let template = {
        let job = store.get_job(&owner, ids[0]).await.unwrap().unwrap();
        Execution::new(&job, None, None, 0)
    };
    let body = runner_core::secret::reveal(|| serde_json::to_string(&template)).unwrap();
    let job_ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
    sqlx::query(
        "INSERT INTO executions (id, job_id, account_alias, status, created_time, job_seq,
                                 queue_position, next_deadline, attempt, body)
         SELECT g.id, g.job, $2, g.status, g.created, (g.n / (100 * $5)) * 100 + g.n % 100 + 1, nextval('execution_queue'),
                NULL, 1,
                jsonb_set(jsonb_set(jsonb_set(jsonb_set($3::jsonb,
                    '{execution_id}', to_jsonb(g.id::text)), '{job_id}', to_jsonb(g.job::text)),
                    '{created_time}', to_jsonb(g.created)), '{status}', to_jsonb(g.status))::json
           FROM (SELECT gen_random_uuid() AS id, n, ($1::uuid[])[((n / 100) % $5)::int + 1] AS job,
                        $6 + n * 1000 AS created,
                        CASE WHEN n % 100 < 90 THEN 'SUCCESS' WHEN n % 100 < 97 THEN 'FAILURE'
                             WHEN n % 100 < 99 THEN 'STOPPED' ELSE 'KILLED' END AS status
                   FROM generate_series($7::bigint, $4::bigint - 1) AS n) AS g",
    )
    .bind(&job_ids)
    .bind(account)
    .bind(&body)
    .bind(to)
    .bind(jobs)
    .bind(START)
    .bind(from)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE jobs SET execution_seq = $1 WHERE account_alias = $2")
        .bind(to / jobs)
        .bind(account)
        .execute(store.pool())
        .await
        .unwrap();
}

/// One measured call: a label, the filter and the page.
struct Case {
    label: &'static str,
    filter: ExecutionFilter,
    page: u32,
}

fn statuses(statuses: &[Status]) -> ExecutionFilter {
    ExecutionFilter {
        statuses: statuses.to_vec(),
        ..Default::default()
    }
}

/// The cases at `rows` executions (the newest created just before `end`).
fn cases(jobs: &[JobId], rows: i64) -> Vec<Case> {
    let end = START + rows * 1000;
    let case = |label, filter, page| Case {
        label,
        filter,
        page,
    };
    vec![
        case("no filter, page 0", ExecutionFilter::default(), 0),
        case("no filter, page 99", ExecutionFilter::default(), 99),
        case("status=FAILURE, page 0", statuses(&[Status::Failure]), 0),
        case("status=FAILURE, page 6", statuses(&[Status::Failure]), 6),
        case(
            "status=FAILURE,STOPPED,KILLED, page 0",
            statuses(&[Status::Failure, Status::Stopped, Status::Killed]),
            0,
        ),
        case(
            "status=PENDING (none), page 0",
            statuses(&[Status::Pending]),
            0,
        ),
        case(
            "jobId, page 0",
            ExecutionFilter {
                job_id: Some(jobs[7]),
                ..Default::default()
            },
            0,
        ),
        case(
            "jobId + status=FAILURE, page 0",
            ExecutionFilter {
                job_id: Some(jobs[7]),
                statuses: vec![Status::Failure],
                ..Default::default()
            },
            0,
        ),
        case(
            "since/until: the last hour, page 0",
            ExecutionFilter {
                since: Some(end - HOUR),
                until: Some(end),
                ..Default::default()
            },
            0,
        ),
        case(
            "since/until: the last hour, page 30",
            ExecutionFilter {
                since: Some(end - HOUR),
                until: Some(end),
                ..Default::default()
            },
            30,
        ),
        case(
            "status=FAILURE, the second hour of the data, page 0",
            ExecutionFilter {
                statuses: vec![Status::Failure],
                since: Some(START + HOUR),
                until: Some(START + 2 * HOUR),
                ..Default::default()
            },
            0,
        ),
    ]
}

/// Runs `case` 30 times; the total it found, median and p95 in ms.
async fn measure(store: &PgStore, case: &Case) -> (u64, f64, f64) {
    let account = alias("BENCH");
    let total = std::cell::Cell::new(0);
    let (median, p95) = time(30, || {
        let total = &total;
        let account = &account;
        async move {
            let found = store
                .find_executions(
                    account,
                    &case.filter,
                    PageRequest {
                        page: case.page,
                        size: 100,
                    },
                )
                .await
                .unwrap();
            total.set(found.total_size);
            let want = found
                .total_size
                .saturating_sub(u64::from(case.page) * 100)
                .min(100);
            assert_eq!(found.results.len() as u64, want, "{}", case.label);
            assert!(
                found.results.iter().all(|e| case.filter.matches(e)),
                "{}",
                case.label
            );
            assert!(
                found
                    .results
                    .windows(2)
                    .all(|w| (w[0].created_time, w[0].execution_id)
                        > (w[1].created_time, w[1].execution_id)),
                "{}: newest first",
                case.label
            );
        }
    })
    .await;
    (total.get(), median, p95)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let schema = format!("bench_find_{}", uuid::Uuid::new_v4().simple());
        eprintln!("schema {schema} (dropped at the end)");
        let store =
            PgStore::connect_with(PgStoreOptions::new(database_url()).schema(schema.clone()))
                .await
                .unwrap_or_else(|error| {
                    panic!(
                        "cannot connect ({error}); start a server: export DATABASE_URL=$(scripts/ensure-postgres.sh)"
                    )
                });
        let jobs = make_jobs(&store, "BENCH", JOBS).await;
        let other = make_jobs(&store, "OTHER", 10).await;
        load(&store, "OTHER", &other, 0, 100_000).await;
        // results[case][step] = (total, median, p95)
        let mut results: Vec<Vec<(u64, f64, f64)>> = Vec::new();
        let mut loaded = 0;
        for rows in STEPS {
            let started = Instant::now();
            load(&store, "BENCH", &jobs, loaded, rows).await;
            loaded = rows;
            sqlx::query("VACUUM ANALYZE executions")
                .execute(store.pool())
                .await
                .unwrap();
            eprintln!(
                "loaded BENCH up to {rows} executions in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            for (n, case) in cases(&jobs, rows).iter().enumerate() {
                let measured = measure(&store, case).await;
                eprintln!("{rows} {}: {measured:?}", case.label);
                if results.len() <= n {
                    results.push(Vec::new());
                }
                results[n].push(measured);
            }
        }
        println!(
            "| find_executions, size 100 | matches at 10k / 100k / 1M | median ms at 10k / 100k / 1M | p95 ms at 10k / 100k / 1M |"
        );
        println!("| --- | --- | --- | --- |");
        for (case, steps) in cases(&jobs, loaded).iter().zip(&results) {
            let join = |cell: &dyn Fn(&(u64, f64, f64)) -> String| {
                steps.iter().map(cell).collect::<Vec<_>>().join(" / ")
            };
            println!(
                "| {} | {} | {} | {} |",
                case.label,
                join(&|s| s.0.to_string()),
                join(&|s| format!("{:.2}", s.1)),
                join(&|s| format!("{:.2}", s.2)),
            );
        }
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(store.pool())
            .await
            .unwrap();
    });
}
