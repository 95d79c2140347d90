//! The overlap cases of the conformance suite: every store applies the claim and start rules of
//! [`crate::overlap`] inside its atomic section.
//!
//! Run by [`store_conformance_tests!`](crate::store_conformance_tests).

use std::sync::Mutex;

use futures_util::future::join_all;

use super::fixtures::{alias, inline_spec};
use crate::execution::{Execution, Outcome, RunReport, Status};
use crate::ids::ExecutionId;
use crate::job::Job;
use crate::machine::Command;
use crate::overlap::Overlap;
use crate::store::{ClaimStore, ExecutionStore, Signal, SignalSource, StoreError};
use crate::time::Timestamp;

const LEASE: Timestamp = 30_000;

/// A stored job of ACME under `overlap`.
async fn job_under(store: &impl ExecutionStore, overlap: Overlap, now: Timestamp) -> Job {
    let mut spec = inline_spec(&["a"]);
    spec.overlap = overlap;
    let job = Job::new(alias("ACME"), spec, now);
    store.insert_job(&job).await.expect("insert job");
    job
}

/// A stored PENDING execution of `job`.
async fn started(store: &impl ExecutionStore, job: &Job, now: Timestamp) -> Execution {
    let execution = Execution::new(job, None, None, now);
    store
        .insert_execution(&execution)
        .await
        .expect("insert execution");
    execution
}

/// Every execution one claim of `node` gets, by id.
async fn claim_all(store: &impl ClaimStore, node: &str, now: Timestamp) -> Vec<ExecutionId> {
    store
        .claim(&node.to_owned(), 100, now + LEASE, now)
        .await
        .expect("claim")
        .into_iter()
        .map(|execution| execution.execution_id)
        .collect()
}

/// Runs claimed `execution` to SUCCESS.
async fn finish(store: &impl ExecutionStore, execution: &Execution, now: Timestamp) -> Execution {
    let attempt = execution.attempt;
    store
        .transition(execution.execution_id, &Command::BeginRun { attempt }, now)
        .await
        .expect("begin run");
    let report = RunReport::new(Outcome::Succeeded);
    store
        .transition(
            execution.execution_id,
            &Command::Finish { attempt, report },
            now + 1,
        )
        .await
        .expect("finish")
}

/// The next `Pending` signal, skipping the others, within 30 s (signals may cross a database).
async fn next_pending(signals: &mut tokio::sync::broadcast::Receiver<Signal>) {
    let wait = async {
        loop {
            match signals.recv().await {
                Ok(Signal::Pending) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(closed) => panic!("signal channel: {closed}"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), wait)
        .await
        .expect("a Pending signal within 30 s");
}

conformance_suite! {
    $ list __overlap_conformance_cases in overlap_conformance;

    /// Under skip, a start is refused, naming the execution that has not ended, and stores
    /// nothing; once that one has ended, a start goes through. Other jobs are not affected.
    pub async fn skip_refuses_a_start_while_a_run_has_not_ended(
        store: &(impl ExecutionStore + ClaimStore),
    ) {
        let job = job_under(store, Overlap::Skip, 1).await;
        let first = started(store, &job, 2).await;
        let refused = Execution::new(&job, None, None, 3);
        let answer = store.insert_execution(&refused).await;
        assert!(
            matches!(answer, Err(StoreError::Overlapping(active)) if active == first.execution_id),
            "{answer:?}"
        );
        let stored = store
            .get_execution(&alias("ACME"), job.id, refused.execution_id)
            .await
            .unwrap();
        assert!(stored.is_none(), "a refused start stores nothing");

        let other = job_under(store, Overlap::Skip, 4).await;
        started(store, &other, 5).await;

        let claimed = store
            .claim(&"node-a".to_owned(), 1, 10 + LEASE, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].execution_id, first.execution_id);
        let running_refused = store.insert_execution(&Execution::new(&job, None, None, 11)).await;
        assert!(
            matches!(running_refused, Err(StoreError::Overlapping(_))),
            "still refused while it runs: {running_refused:?}"
        );
        let ended = finish(store, &claimed[0], 12).await;
        assert_eq!(ended.status, Status::Success);
        started(store, &job, 20).await;
    }

    /// Under queue, a job's executions are claimed one at a time in start order, each when the
    /// one before has ended (which sends `Pending`); executions of other jobs, and queued ones
    /// behind a waiting one, are claimed as ever.
    pub async fn queue_claims_one_at_a_time_in_start_order(
        store: &(impl ExecutionStore + ClaimStore + SignalSource),
    ) {
        let queued = job_under(store, Overlap::Queue, 1).await;
        let free = job_under(store, Overlap::Allow, 1).await;
        let first = started(store, &queued, 2).await;
        let second = started(store, &queued, 3).await;
        let beside = started(store, &free, 4).await;
        let third = started(store, &queued, 5).await;
        let also_beside = started(store, &free, 6).await;

        let mut claimed = claim_all(store, "node-a", 10).await;
        claimed.sort();
        let mut expected = vec![
            first.execution_id,
            beside.execution_id,
            also_beside.execution_id,
        ];
        expected.sort();
        assert_eq!(claimed, expected, "the oldest queued one and every allowed one");
        assert!(claim_all(store, "node-b", 11).await.is_empty(), "the rest wait");

        let mut signals = store.subscribe();
        let first = store
            .get_execution(&alias("ACME"), queued.id, first.execution_id)
            .await
            .unwrap()
            .unwrap();
        finish(store, &first, 12).await;
        next_pending(&mut signals).await;
        assert_eq!(claim_all(store, "node-b", 20).await, [second.execution_id]);

        // A stop ends the turn as well as a finish does.
        store
            .transition(second.execution_id, &Command::Kill { force_at: None }, 21)
            .await
            .unwrap();
        let killed = store
            .get_execution(&alias("ACME"), queued.id, second.execution_id)
            .await
            .unwrap()
            .unwrap();
        assert!(killed.status.is_claimed(), "a kill of a claimed run waits for its node");
        assert!(claim_all(store, "node-a", 22).await.is_empty(), "KILLING still holds the turn");
        let report = RunReport::new(Outcome::Killed);
        store
            .transition(
                second.execution_id,
                &Command::Finish { attempt: killed.attempt, report },
                23,
            )
            .await
            .unwrap();
        assert_eq!(claim_all(store, "node-a", 30).await, [third.execution_id]);
    }

    /// Claimers racing for one queued job never hold two of its runs at once, and take them in
    /// start order.
    pub async fn queue_holds_under_concurrent_claimers(store: &(impl ExecutionStore + ClaimStore)) {
        let job = job_under(store, Overlap::Queue, 1).await;
        let mut order = Vec::new();
        for created in 0..12 {
            order.push(started(store, &job, 2 + created).await.execution_id);
        }
        // The run that holds the turn, and the runs in the order they were claimed.
        let turn: Mutex<(Option<ExecutionId>, Vec<ExecutionId>)> = Mutex::new((None, Vec::new()));
        let claimers = (0..4).map(|n| {
            let node = format!("node-{n}");
            let turn = &turn;
            let total = order.len();
            async move {
                loop {
                    if turn.lock().unwrap().1.len() == total {
                        return;
                    }
                    let batch = store.claim(&node, 3, 100 + LEASE, 100).await.unwrap();
                    assert!(batch.len() <= 1, "two runs of the job in one claim");
                    let Some(execution) = batch.into_iter().next() else {
                        tokio::task::yield_now().await;
                        continue;
                    };
                    {
                        let mut turn = turn.lock().unwrap();
                        assert_eq!(turn.0, None, "two runs of the job at once");
                        turn.0 = Some(execution.execution_id);
                        turn.1.push(execution.execution_id);
                    }
                    tokio::task::yield_now().await;
                    // Handed back before the store ends it: a claim in between would be the
                    // overlap this case looks for.
                    turn.lock().unwrap().0 = None;
                    finish(store, &execution, 101).await;
                }
            }
        });
        join_all(claimers).await;
        assert_eq!(turn.into_inner().unwrap().1, order, "claimed in start order");
    }
}
