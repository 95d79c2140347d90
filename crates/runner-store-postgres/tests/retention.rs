//! Retention on a real PostgreSQL: purging 100,000 ended executions in batches does not hold up
//! starts of other executions meanwhile.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use runner_core::execution::Execution;
use runner_core::machine::Command;
use runner_core::page::PageRequest;
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, job};

const BULK: i64 = 100_000;
const BATCH: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_100k_executions_does_not_block_starts() {
    let store = Arc::new(common::fresh_store().await);
    let acme = alias("ACME");
    let old_job = job("ACME", 0);
    store.insert_job(&old_job).await.unwrap();
    let first = Execution::new(&old_job, None, None, 1_000);
    store.insert_execution(&first).await.unwrap();
    store
        .transition(first.execution_id, &Command::Kill { force_at: None }, 1_000)
        .await
        .unwrap();
    // 100,000 copies of the ended row, each with one event, numbered on after it.
    sqlx::query(
        "INSERT INTO executions (id, job_id, account_alias, status, created_time, job_seq,
                                 queue_position, next_deadline, attempt, body, ended_time)
         SELECT gen_random_uuid(), job_id, account_alias, status, created_time + g, job_seq + g,
                queue_position, NULL, attempt, body, ended_time + g
           FROM executions, generate_series(1, $2::int8) AS g
          WHERE id = $1",
    )
    .bind(first.execution_id.0)
    .bind(BULK)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO execution_events (execution_id, sequence, body)
         SELECT e.id, 2, v.body FROM executions AS e, execution_events AS v
          WHERE e.id <> $1 AND v.execution_id = $1 AND v.sequence = 1",
    )
    .bind(first.execution_id.0)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE jobs SET execution_seq = execution_seq + $2 WHERE id = $1")
        .bind(old_job.id.0)
        .bind(BULK)
        .execute(store.pool())
        .await
        .unwrap();
    let listed = store
        .list_executions(&acme, old_job.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.total_size, BULK as u64 + 1);

    let new_job = job("ACME", 5_000_000);
    store.insert_job(&new_job).await.unwrap();
    let purged = Arc::new(AtomicUsize::new(0));
    let purge = tokio::spawn({
        let (store, purged) = (Arc::clone(&store), Arc::clone(&purged));
        async move {
            loop {
                let batch = store.purge_ended(i64::MAX, BATCH).await.unwrap();
                assert!(batch <= BATCH, "a batch of {batch}");
                purged.fetch_add(batch, Ordering::SeqCst);
                if batch < BATCH {
                    return;
                }
            }
        }
    });
    // Starts go on while the purge runs; each notes how far the purge was when it came back.
    let mut seen = BTreeSet::new();
    let mut started = Vec::new();
    while !purge.is_finished() {
        let execution = store
            .start_execution(&acme, new_job.id, |job| {
                Execution::new(job, None, None, 6_000_000)
            })
            .await
            .unwrap();
        started.push(execution.execution_id);
        seen.insert(purged.load(Ordering::SeqCst));
    }
    purge.await.unwrap();

    let total = BULK as usize + 1;
    assert_eq!(purged.load(Ordering::SeqCst), total);
    let between: Vec<usize> = seen
        .into_iter()
        .filter(|n| (1..total).contains(n))
        .collect();
    assert!(
        between.len() >= 2,
        "starts came back between the purge's batches, not after it: {between:?}"
    );
    let left = store
        .list_executions(&acme, old_job.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!((left.total_size, left.results.len()), (0, 0));
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM execution_events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        events as usize,
        started.len(),
        "the creation events of the new ones only"
    );
    let new = store
        .list_executions(&acme, new_job.id, PageRequest { page: 0, size: 5 })
        .await
        .unwrap();
    assert_eq!(new.total_size, started.len() as u64);
    let newest: Vec<_> = started.iter().rev().take(5).copied().collect();
    let listed: Vec<_> = new.results.iter().map(|e| e.execution_id).collect();
    assert_eq!(listed, newest);
}
