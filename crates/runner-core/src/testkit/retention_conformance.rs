//! The retention cases of the store conformance suite: [`RetentionStore::purge_ended`] deletes
//! ended executions whole, oldest end first, in bounded batches, and leaves listings right; and
//! given-up deliveries are listed until then. Run by
//! [`store_conformance_tests!`](crate::store_conformance_tests).

use super::fixtures::{alias, job, job_with_callbacks};
use crate::execution::{Execution, Outcome, RunReport, Status};
use crate::feed::Settlement;
use crate::ids::ExecutionId;
use crate::job::{CallbackLevel, Job};
use crate::machine::Command;
use crate::page::PageRequest;
use crate::run_log::LogCap;
use crate::search::ExecutionFilter;
use crate::store::{
    ClaimStore, ExecutionStore, FeedStore, LogRead, OutboxStore, RetentionStore, RunLogStore,
    StoreError,
};
use crate::time::Timestamp;

const LEASE: Timestamp = 30_000;

fn page(page: u32, size: u32) -> PageRequest {
    PageRequest { page, size }
}

/// A new PENDING execution of `job`, created at `now`.
async fn pending(store: &impl ExecutionStore, job: &Job, now: Timestamp) -> Execution {
    let execution = Execution::new(job, None, None, now);
    store
        .insert_execution(&execution)
        .await
        .expect("insert execution");
    execution
}

/// Claims the execution `id` (the only PENDING one) at `now` and begins its run.
async fn run(store: &(impl ExecutionStore + ClaimStore), id: ExecutionId, now: Timestamp) -> u32 {
    let claimed = store
        .claim(&"node-a".to_owned(), 1, now + LEASE, now)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "one execution should be claimable");
    assert_eq!(claimed[0].execution_id, id);
    let attempt = claimed[0].attempt;
    store
        .transition(id, &Command::BeginRun { attempt }, now)
        .await
        .expect("begin run");
    attempt
}

/// Runs the PENDING execution `id` from `start` to an outcome at `end`.
async fn run_to_end(
    store: &(impl ExecutionStore + ClaimStore),
    id: ExecutionId,
    start: Timestamp,
    end: Timestamp,
    outcome: Outcome,
) -> Execution {
    let attempt = run(store, id, start).await;
    let ended = store
        .transition(
            id,
            &Command::Finish {
                attempt,
                report: RunReport::new(outcome),
            },
            end,
        )
        .await
        .expect("finish");
    assert_eq!(ended.ended_time(), Some(end));
    ended
}

/// A new execution of `job` created at `created`, run to SUCCESS at `end`.
async fn ended(
    store: &(impl ExecutionStore + ClaimStore),
    job: &Job,
    created: Timestamp,
    end: Timestamp,
) -> Execution {
    let execution = pending(store, job, created).await;
    run_to_end(
        store,
        execution.execution_id,
        created,
        end,
        Outcome::Succeeded,
    )
    .await
}

async fn exists(store: &impl ExecutionStore, execution: &Execution) -> bool {
    store
        .get_execution(
            &execution.account_alias,
            execution.job_id,
            execution.execution_id,
        )
        .await
        .expect("get execution")
        .is_some()
}

fn ids(executions: &[Execution]) -> Vec<ExecutionId> {
    executions.iter().map(|e| e.execution_id).collect()
}

conformance_suite! {
    $ list __retention_conformance_cases in retention_conformance;

    /// Executions that ended before the cut go, with their events and run logs; later ones,
    /// and live ones however old, stay.
    pub async fn retention_purges_what_ended_before_the_cut_with_its_feed_and_log(
        store: &(impl ExecutionStore + ClaimStore + FeedStore + RunLogStore + RetentionStore),
    ) {
        let job = job("ACME", 0);
        store.insert_job(&job).await.unwrap();
        let live = pending(store, &job, 10).await;
        let live_attempt = run(store, live.execution_id, 20).await;
        store
            .append_log(live.execution_id, live_attempt, b"still going\n", LogCap::default(), 30)
            .await
            .unwrap();
        let old = pending(store, &job, 100).await;
        // Logged while it ran: the claim of `old` needs `live` out of the queue, which it is.
        let attempt = run(store, old.execution_id, 100).await;
        store
            .append_log(old.execution_id, attempt, b"old output\n", LogCap::default(), 150)
            .await
            .unwrap();
        let old = store
            .transition(
                old.execution_id,
                &Command::Finish { attempt, report: RunReport::new(Outcome::Failed) },
                1_000,
            )
            .await
            .unwrap();
        let recent = ended(store, &job, 2_000, 3_000).await;

        assert_eq!(store.purge_ended(1_000, 10).await.unwrap(), 0, "the cut is exclusive");
        assert_eq!(store.purge_ended(1_001, 10).await.unwrap(), 1);
        assert!(!exists(store, &old).await, "the old execution is gone");
        let acme = alias("ACME");
        assert!(matches!(
            store.list_events(&acme, job.id, old.execution_id, 0, 10).await,
            Err(StoreError::NotFound)
        ));
        let log = store
            .read_log(
                &acme,
                job.id,
                old.execution_id,
                LogRead { attempt: Some(1), offset: 0, limit: 100 },
            )
            .await;
        assert!(matches!(log, Err(StoreError::NotFound)), "its run log is gone: {log:?}");

        assert!(exists(store, &recent).await);
        assert!(exists(store, &live).await);
        let events = store.list_events(&acme, job.id, recent.execution_id, 0, 10).await.unwrap();
        assert!(!events.is_empty(), "what stays keeps its feed");

        // Far in the future: the ended one goes, the live one (created first) never.
        assert_eq!(store.purge_ended(i64::MAX, 10).await.unwrap(), 1);
        assert!(exists(store, &live).await);
        let live_log = store
            .read_log(
                &acme,
                job.id,
                live.execution_id,
                LogRead { attempt: None, offset: 0, limit: 100 },
            )
            .await
            .unwrap();
        assert_eq!(live_log.data, b"still going\n");
        assert_eq!(store.purge_ended(i64::MAX, 10).await.unwrap(), 0);
    }

    /// A call deletes at most its limit, those that ended first first.
    pub async fn retention_purges_in_bounded_batches_oldest_end_first(
        store: &(impl ExecutionStore + ClaimStore + RetentionStore),
    ) {
        let job = job("ACME", 0);
        store.insert_job(&job).await.unwrap();
        // Created in one order, ended in another: the end decides.
        let ends = [5_000, 1_000, 4_000, 2_000, 3_000];
        let mut executions = Vec::new();
        for (i, end) in ends.into_iter().enumerate() {
            let created = 100 + i as Timestamp;
            executions.push(ended(store, &job, created, end).await);
        }
        let mut by_end = executions.clone();
        by_end.sort_by_key(|e| e.ended_time());
        let mut gone = 0;
        for batch in [2, 2, 1] {
            assert_eq!(store.purge_ended(10_000, 2).await.unwrap(), batch);
            gone += batch;
            for (i, execution) in by_end.iter().enumerate() {
                assert_eq!(
                    exists(store, execution).await,
                    i >= gone,
                    "after {gone} purged, the one that ended at {:?}",
                    execution.ended_time()
                );
            }
        }
        assert_eq!(store.purge_ended(10_000, 2).await.unwrap(), 0);
    }

    /// A job's list and the account's search count and page what is left, also when the purge
    /// took an execution from the middle of the job's list.
    pub async fn retention_leaves_listings_right(
        store: &(impl ExecutionStore + ClaimStore + RetentionStore),
    ) {
        let job = job("ACME", 0);
        store.insert_job(&job).await.unwrap();
        let first = ended(store, &job, 100, 9_000).await;
        let middle = ended(store, &job, 200, 1_000).await;
        let last = ended(store, &job, 300, 9_500).await;
        assert_eq!(store.purge_ended(5_000, 10).await.unwrap(), 1);
        assert!(!exists(store, &middle).await);

        let acme = alias("ACME");
        let whole = store.list_executions(&acme, job.id, page(0, 10)).await.unwrap();
        assert_eq!(whole.total_size, 2);
        assert_eq!(ids(&whole.results), ids(&[last.clone(), first.clone()]));
        let one = store.list_executions(&acme, job.id, page(0, 1)).await.unwrap();
        assert_eq!((one.total_size, ids(&one.results)), (2, vec![last.execution_id]));
        let two = store.list_executions(&acme, job.id, page(1, 1)).await.unwrap();
        assert_eq!((two.total_size, ids(&two.results)), (2, vec![first.execution_id]));
        let beyond = store.list_executions(&acme, job.id, page(2, 1)).await.unwrap();
        assert!(beyond.results.is_empty());

        let found = store
            .find_executions(&acme, &ExecutionFilter::default(), page(0, 10))
            .await
            .unwrap();
        assert_eq!(found.total_size, 2);
        assert_eq!(ids(&found.results), ids(&[last.clone(), first.clone()]));

        // New executions still number and list after the purge.
        let newest = pending(store, &job, 400).await;
        let whole = store.list_executions(&acme, job.id, page(0, 10)).await.unwrap();
        assert_eq!(whole.total_size, 3);
        assert_eq!(ids(&whole.results), ids(&[newest, last, first]));
    }

    /// A restarted execution counts from the end of its latest run; while it runs again it
    /// stays, however long ago its first run ended.
    pub async fn retention_counts_a_restarted_execution_from_its_latest_end(
        store: &(impl ExecutionStore + ClaimStore + RetentionStore),
    ) {
        let job = job("ACME", 0);
        store.insert_job(&job).await.unwrap();
        let execution = pending(store, &job, 100).await;
        let id = execution.execution_id;
        run_to_end(store, id, 100, 1_000, Outcome::Failed).await;
        let restart = Command::Restart { hosts: None, ssh_private_key: None, ssh_key_pair: None };
        let restarted = store.transition(id, &restart, 5_000).await.unwrap();
        assert_eq!(restarted.status, Status::Pending);
        assert_eq!(store.purge_ended(i64::MAX, 10).await.unwrap(), 0, "it is live again");
        run_to_end(store, id, 5_000, 6_000, Outcome::Succeeded).await;
        assert_eq!(store.purge_ended(5_500, 10).await.unwrap(), 0, "it ended again at 6 s");
        assert_eq!(store.purge_ended(6_001, 10).await.unwrap(), 1);
        assert!(!exists(store, &execution).await);
    }

    /// The ended executions of a deleted job go as the others do.
    pub async fn retention_purges_the_executions_of_a_deleted_job(
        store: &(impl ExecutionStore + ClaimStore + RetentionStore),
    ) {
        let job = job("ACME", 0);
        store.insert_job(&job).await.unwrap();
        let execution = ended(store, &job, 100, 1_000).await;
        store.delete_job(&alias("ACME"), job.id).await.unwrap();
        assert!(exists(store, &execution).await, "it stays readable after the delete");
        assert_eq!(store.purge_ended(2_000, 10).await.unwrap(), 1);
        assert!(!exists(store, &execution).await);
        let found = store
            .find_executions(&alias("ACME"), &ExecutionFilter::default(), page(0, 10))
            .await
            .unwrap();
        assert_eq!(found.total_size, 0);
    }

    /// Given-up deliveries are listed, with their last error, until the purge takes them with
    /// their execution; pending ones of a purged execution leave the backlog.
    pub async fn retention_lists_given_up_deliveries_until_the_purge(
        store: &(impl ExecutionStore + ClaimStore + OutboxStore + RetentionStore),
    ) {
        let job = job_with_callbacks("ACME", 0, &[CallbackLevel::Result, CallbackLevel::Result]);
        store.insert_job(&job).await.unwrap();
        let execution = pending(store, &job, 10).await;
        let id = execution.execution_id;
        let empty = store.given_up_deliveries(id, page(0, 10)).await.unwrap();
        assert_eq!((empty.total_size, empty.results.len()), (0, 0));

        // The creation event goes to both callbacks; give up on the second one's.
        let heads = store.claim_deliveries(20, 1_000, 10).await.unwrap();
        assert_eq!(heads.len(), 2);
        let second = heads.iter().find(|d| d.key.callback == 1).unwrap();
        store
            .settle_delivery(&second.key, &Settlement::GiveUp { error: "410 Gone".into() })
            .await
            .unwrap();
        let given_up = store.given_up_deliveries(id, page(0, 10)).await.unwrap();
        assert_eq!(given_up.total_size, 1);
        let only = &given_up.results[0];
        assert_eq!((only.callback, only.sequence, only.attempts), (1, 1, 1));
        assert_eq!(only.last_error, "410 Gone");
        assert_eq!(only.url, second.url);
        assert_eq!(only.event.execution_id, id);
        run_to_end(store, id, 50, 100, Outcome::Succeeded).await;
        let other = ended(store, &job, 200, 300).await;
        assert!(store.given_up_deliveries(other.execution_id, page(0, 10)).await.unwrap()
            .results.is_empty(), "another execution's list is its own");

        assert!(store.backlog().await.unwrap() > 0, "its other deliveries still wait");
        assert_eq!(store.purge_ended(101, 10).await.unwrap(), 1);
        let gone = store.given_up_deliveries(id, page(0, 10)).await.unwrap();
        assert_eq!(gone.total_size, 0);
        let left = store.claim_deliveries(10_000, 11_000, 100).await.unwrap();
        assert!(!left.is_empty(), "the other execution's deliveries stay");
        assert!(
            left.iter().all(|d| d.key.execution_id == other.execution_id),
            "the purged execution's pending deliveries left the outbox"
        );
    }
}
