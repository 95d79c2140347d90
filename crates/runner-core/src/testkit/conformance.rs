//! The store conformance suite: what every [`Store`](crate::store::Store) must do, whatever its
//! backend.
//!
//! Each case takes a fresh, empty store and asks only for the roles it uses. Run them all with
//! [`store_conformance_tests!`](crate::store_conformance_tests).

use std::collections::HashSet;

use futures_util::future::join_all;

use tokio::sync::broadcast::error::TryRecvError;

use super::fixtures::{alias, job, job_with_secrets};
use crate::execution::{Execution, Outcome, RunReport, Status};
use crate::ids::{ExecutionId, JobId};
use crate::machine::{Command, LeaseLoss, TransitionError};
use crate::page::PageRequest;
use crate::search::{COUNT_AHEAD, ExecutionFilter, newest_first};
use crate::store::{ClaimStore, ExecutionStore, JobStore, Signal, SignalSource, StoreError};
use crate::time::Timestamp;

const LEASE: Timestamp = 30_000;

fn page(page: u32, size: u32) -> PageRequest {
    PageRequest { page, size }
}

async fn pending_execution(
    store: &impl ExecutionStore,
    account: &str,
    now: Timestamp,
) -> Execution {
    let job = job(account, now);
    store.insert_job(&job).await.expect("insert job");
    let execution = Execution::new(&job, None, None, now);
    store
        .insert_execution(&execution)
        .await
        .expect("insert execution");
    execution
}

async fn claim_one(store: &impl ClaimStore, node: &str, now: Timestamp) -> Execution {
    let mut claimed = store
        .claim(&node.to_owned(), 1, now + LEASE, now)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "one execution should be claimable");
    claimed.remove(0)
}

async fn next_signal(signals: &mut tokio::sync::broadcast::Receiver<Signal>) -> Signal {
    // Signals may travel through a database; wait for one, skipping feed signals (their own
    // cases cover them).
    loop {
        match signals.try_recv() {
            Ok(Signal::Feed(_) | Signal::Log(_)) => continue,
            Ok(signal) => return signal,
            Err(TryRecvError::Empty) => {
                match tokio::time::timeout(std::time::Duration::from_secs(30), signals.recv())
                    .await
                    .expect("a signal within 30 s")
                    .expect("signal channel open")
                {
                    Signal::Feed(_) | Signal::Log(_) => continue,
                    signal => return signal,
                }
            }
            Err(TryRecvError::Lagged(_)) => continue,
            Err(TryRecvError::Closed) => panic!("signal channel closed"),
        }
    }
}

conformance_suite! {
    $ list __store_conformance_cases in conformance;

    /// Live executions are counted by status across every account; ended ones are not.
    pub async fn live_executions_are_counted_by_status(store: &(impl ExecutionStore + ClaimStore)) {
        let zero: Vec<(Status, u64)> = Status::LIVE.iter().map(|status| (*status, 0)).collect();
        assert_eq!(store.count_live().await.unwrap(), zero);
        pending_execution(store, "ACME", 1).await;
        pending_execution(store, "BETA", 2).await;
        let ended = pending_execution(store, "ACME", 3).await;
        let running = claim_one(store, "node-a", 10).await;
        store
            .transition(running.execution_id, &Command::BeginRun { attempt: running.attempt }, 11)
            .await
            .unwrap();
        store
            .transition(ended.execution_id, &Command::Kill { force_at: None }, 12)
            .await
            .unwrap();
        let counts = store.count_live().await.unwrap();
        let count = |wanted: Status| {
            counts
                .iter()
                .find(|(status, _)| *status == wanted)
                .map(|(_, count)| *count)
        };
        assert_eq!(count(Status::Pending), Some(1), "{counts:?}");
        assert_eq!(count(Status::Running), Some(1), "{counts:?}");
        assert_eq!(count(Status::Initializing), Some(0), "{counts:?}");
        assert_eq!(count(Status::Killed), None, "ended statuses are not listed");
        assert_eq!(counts.len(), Status::LIVE.len());
    }

    /// A job reads back as it was stored.
    pub async fn jobs_round_trip(store: &impl JobStore) {
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let read = store.get_job(&alias("ACME"), job.id).await.unwrap();
        assert_eq!(read.as_ref(), Some(&job));
        assert!(
            store
                .get_job(&alias("ACME"), JobId::new())
                .await
                .unwrap()
                .is_none()
        );
    }

    /// A job is invisible under another account.
    pub async fn jobs_are_isolated_by_account(store: &impl JobStore) {
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        store
            .insert_job(&super::fixtures::job("OTHER", 2))
            .await
            .unwrap();
        assert!(
            store
                .get_job(&alias("OTHER"), job.id)
                .await
                .unwrap()
                .is_none()
        );
        let listed = store
            .list_jobs(&alias("OTHER"), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(listed.total_size, 1);
        assert!(
            listed
                .results
                .iter()
                .all(|j| j.account_alias == alias("OTHER"))
        );
        assert!(matches!(
            store.delete_job(&alias("OTHER"), job.id).await,
            Err(StoreError::NotFound)
        ));
        let mut moved = job.clone();
        moved.account_alias = alias("OTHER");
        assert!(matches!(
            store.update_job(&moved).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            store.get_job(&alias("ACME"), job.id).await.unwrap(),
            Some(job)
        );
    }

    /// Listing is newest first, paged, with the total.
    pub async fn jobs_list_newest_first_in_pages(store: &impl JobStore) {
        let mut ids = Vec::new();
        for created in 0..7 {
            let job = job("ACME", 1_000 + created);
            store.insert_job(&job).await.unwrap();
            ids.push(job.id);
        }
        ids.reverse();
        let first = store.list_jobs(&alias("ACME"), page(0, 3)).await.unwrap();
        let last = store.list_jobs(&alias("ACME"), page(2, 3)).await.unwrap();
        let beyond = store.list_jobs(&alias("ACME"), page(5, 3)).await.unwrap();
        assert_eq!(first.total_size, 7);
        assert_eq!(
            first.results.iter().map(|j| j.id).collect::<Vec<_>>(),
            ids[..3]
        );
        assert_eq!(
            last.results.iter().map(|j| j.id).collect::<Vec<_>>(),
            ids[6..]
        );
        assert_eq!((last.page, last.size), (2, 1));
        assert!(beyond.results.is_empty());
        assert_eq!(beyond.total_size, 7);
    }

    /// Update replaces, delete removes.
    pub async fn job_update_and_delete(store: &impl JobStore) {
        let mut job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        job.spec.description = Some("changed".into());
        job.last_updated_time = 2;
        store.update_job(&job).await.unwrap();
        assert_eq!(
            store.get_job(&alias("ACME"), job.id).await.unwrap(),
            Some(job.clone())
        );
        store.delete_job(&alias("ACME"), job.id).await.unwrap();
        assert!(
            store
                .get_job(&alias("ACME"), job.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            store.update_job(&job).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.delete_job(&alias("ACME"), job.id).await,
            Err(StoreError::NotFound)
        ));
        let listed = store
            .list_jobs(&alias("ACME"), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(listed.total_size, 0);
    }

    /// A job with an execution that has not ended cannot be deleted; once it ended, it can.
    pub async fn job_delete_refused_while_execution_active(store: &impl ExecutionStore) {
        let execution = pending_execution(store, "ACME", 1).await;
        let refused = store.delete_job(&alias("ACME"), execution.job_id).await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
        store
            .transition(
                execution.execution_id,
                &Command::Stop { escalate_at: None },
                2,
            )
            .await
            .unwrap();
        store
            .delete_job(&alias("ACME"), execution.job_id)
            .await
            .unwrap();
    }

    /// Secrets are stored in clear (the store is their only home) and come back intact.
    pub async fn secrets_are_persisted(store: &impl ExecutionStore) {
        let job = job_with_secrets("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let read = store
            .get_job(&alias("ACME"), job.id)
            .await
            .unwrap()
            .unwrap();
        let credentials = read
            .spec
            .repository
            .as_ref()
            .unwrap()
            .credentials
            .as_ref()
            .unwrap();
        assert_eq!(
            credentials.password.as_ref().unwrap().expose(),
            "repository-password"
        );
        assert_eq!(
            read.spec.ssh_private_key.as_ref().unwrap().expose(),
            "ZGVmYXVsdC1rZXk="
        );
        assert_eq!(
            read.hosts()[0].ssh_private_key.as_ref().unwrap().expose(),
            "aG9zdC1rZXk="
        );
        assert_eq!(
            read.hosts()[0].ssh_password.as_ref().unwrap().expose(),
            "host-password"
        );
        let execution =
            Execution::new(&read, None, Some(crate::secret::Secret::new("c3RhcnQ=")), 2);
        store.insert_execution(&execution).await.unwrap();
        let stored = store
            .get_execution(&alias("ACME"), job.id, execution.execution_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.ssh_private_key.as_ref().unwrap().expose(),
            "c3RhcnQ="
        );
        assert_eq!(
            stored.hosts[0].ssh_private_key.as_ref().unwrap().expose(),
            "aG9zdC1rZXk="
        );
        assert_eq!(
            stored.hosts[0].ssh_password.as_ref().unwrap().expose(),
            "host-password"
        );
    }

    /// Executions read back, list newest first in pages, and stay within their job and account.
    pub async fn executions_round_trip_and_list(store: &impl ExecutionStore) {
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let other_job = super::fixtures::job("ACME", 2);
        store.insert_job(&other_job).await.unwrap();
        let mut ids = Vec::new();
        for created in 0..5 {
            let execution = Execution::new(&job, None, None, 10 + created);
            store.insert_execution(&execution).await.unwrap();
            ids.push(execution.execution_id);
        }
        store
            .insert_execution(&Execution::new(&other_job, None, None, 100))
            .await
            .unwrap();
        ids.reverse();
        let first = store
            .list_executions(&alias("ACME"), job.id, page(0, 2))
            .await
            .unwrap();
        assert_eq!(first.total_size, 5);
        let listed: Vec<ExecutionId> = first.results.iter().map(|e| e.execution_id).collect();
        assert_eq!(listed, ids[..2]);
        let last = store
            .list_executions(&alias("ACME"), job.id, page(2, 2))
            .await
            .unwrap();
        assert_eq!(last.results.len(), 1);
        assert_eq!(last.results[0].execution_id, ids[4]);
        let read = store
            .get_execution(&alias("ACME"), job.id, ids[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.status, Status::Pending);
        assert_eq!(read.hosts, job.hosts());
        assert!(
            store
                .get_execution(&alias("OTHER"), job.id, ids[0])
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get_execution(&alias("ACME"), other_job.id, ids[0])
                .await
                .unwrap()
                .is_none()
        );
        let foreign = store
            .list_executions(&alias("OTHER"), job.id, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(foreign.total_size, 0);
    }

    /// An account's executions are found across its jobs (a deleted one too), newest first, by
    /// status, job and creation time, in pages, and never another account's.
    pub async fn executions_found_by_filter(store: &impl ExecutionStore) {
        let first = job("ACME", 1);
        let second = super::fixtures::job("ACME", 2);
        let foreign = super::fixtures::job("OTHER", 3);
        for job in [&first, &second, &foreign] {
            store.insert_job(job).await.unwrap();
        }
        // Created at 10, 11, ... alternating jobs; every third is STOPPED, every fifth KILLED.
        let mut made = Vec::new();
        for n in 0..12 {
            let job = if n % 2 == 0 { &first } else { &second };
            let execution = Execution::new(job, None, None, 10 + n);
            store.insert_execution(&execution).await.unwrap();
            let command = match n {
                n if n % 3 == 0 => Some(Command::Stop { escalate_at: None }),
                n if n % 5 == 0 => Some(Command::Kill { force_at: None }),
                _ => None,
            };
            let execution = match command {
                Some(command) => store
                    .transition(execution.execution_id, &command, 30 + n)
                    .await
                    .unwrap(),
                None => execution,
            };
            made.push(execution);
        }
        // Two executions created at the same time: the larger id comes first.
        let twins = [
            Execution::new(&second, None, None, 50),
            Execution::new(&second, None, None, 50),
        ];
        for twin in &twins {
            store.insert_execution(twin).await.unwrap();
            made.push(twin.clone());
        }
        store
            .insert_execution(&Execution::new(&foreign, None, None, 99))
            .await
            .unwrap();
        // A deleted job's (ended) executions are still found.
        store
            .transition(made[1].execution_id, &Command::Kill { force_at: None }, 40)
            .await
            .unwrap();
        made[1].status = Status::Killed;
        for execution in made.iter().filter(|e| e.job_id == second.id && !e.status.is_terminal()) {
            store
                .transition(execution.execution_id, &Command::Kill { force_at: None }, 60)
                .await
                .unwrap();
        }
        for execution in made.iter_mut().filter(|e| e.job_id == second.id && !e.status.is_terminal()) {
            execution.status = Status::Killed;
        }
        store.delete_job(&alias("ACME"), second.id).await.unwrap();

        made.sort_by_key(|e| newest_first(e.created_time, e.execution_id));
        let expect = |filter: &ExecutionFilter| -> Vec<ExecutionId> {
            made.iter().filter(|e| filter.matches(e)).map(|e| e.execution_id).collect()
        };
        let filters = [
            ExecutionFilter::default(),
            ExecutionFilter { statuses: vec![Status::Stopped], ..Default::default() },
            ExecutionFilter { statuses: vec![Status::Pending, Status::Killed], ..Default::default() },
            ExecutionFilter { job_id: Some(first.id), ..Default::default() },
            ExecutionFilter { job_id: Some(second.id), statuses: vec![Status::Killed], ..Default::default() },
            ExecutionFilter { since: Some(13), until: Some(19), ..Default::default() },
            ExecutionFilter {
                statuses: vec![Status::Stopped, Status::Pending],
                job_id: Some(first.id),
                since: Some(12),
                until: Some(51),
            },
            ExecutionFilter { since: Some(51), ..Default::default() },
            ExecutionFilter { job_id: Some(foreign.id), ..Default::default() },
        ];
        for filter in &filters {
            let want = expect(filter);
            // Every page of 3, then one past the end.
            for number in 0..=(want.len() as u32 / 3 + 1) {
                let found = store
                    .find_executions(&alias("ACME"), filter, page(number, 3))
                    .await
                    .unwrap();
                assert_eq!(found.total_size, want.len() as u64, "{filter:?}");
                let ids: Vec<ExecutionId> = found.results.iter().map(|e| e.execution_id).collect();
                let start = (number as usize * 3).min(want.len());
                let end = (start + 3).min(want.len());
                assert_eq!(ids, want[start..end], "{filter:?} page {number}");
            }
        }
        assert_eq!(expect(&filters[0]).len(), 14);
        assert_eq!(expect(&filters[8]).len(), 0);
        let theirs = store
            .find_executions(&alias("OTHER"), &ExecutionFilter::default(), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(theirs.total_size, 1);
        assert_eq!(theirs.results[0].job_id, foreign.id);
    }

    /// A search counts at most [`COUNT_AHEAD`] matches past its page: beyond, the total is the
    /// limit, flagged as a lower bound; the pages themselves are whole and in order.
    pub async fn a_search_counts_up_to_a_limit(store: &impl ExecutionStore) {
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let rows = COUNT_AHEAD + 150;
        // Concurrent inserts in chunks, so that a store that batches writes makes few commits.
        let mut made = Vec::new();
        for chunk in (0..rows).collect::<Vec<_>>().chunks(50) {
            let batch: Vec<Execution> = chunk
                .iter()
                .map(|n| Execution::new(&job, None, None, 1_000 + *n as Timestamp))
                .collect();
            for result in join_all(batch.iter().map(|e| store.insert_execution(e))).await {
                result.unwrap();
            }
            made.extend(batch);
        }
        made.sort_by_key(|e| newest_first(e.created_time, e.execution_id));
        let all = ExecutionFilter::default();
        let find = |filter: ExecutionFilter, page: PageRequest| async move {
            store.find_executions(&alias("ACME"), &filter, page).await.unwrap()
        };

        let first = find(all.clone(), page(0, 100)).await;
        assert_eq!((first.total_size, first.total_size_exact), (100 + COUNT_AHEAD, false));
        let ids: Vec<ExecutionId> = first.results.iter().map(|e| e.execution_id).collect();
        let want: Vec<ExecutionId> = made[..100].iter().map(|e| e.execution_id).collect();
        assert_eq!(ids, want);
        // The limit moves with the page: from page 1 on, every match is counted.
        let second = find(all.clone(), page(1, 100)).await;
        assert_eq!((second.total_size, second.total_size_exact), (rows, true));
        let last = find(all.clone(), page((rows / 100) as u32, 100)).await;
        assert_eq!((last.total_size, last.results.len()), (rows, 50));
        assert_eq!(last.results.last().map(|e| e.execution_id), made.last().map(|e| e.execution_id));
        // A filter with fewer matches counts them all.
        let recent = ExecutionFilter { since: Some(1_000 + rows as Timestamp - 10), ..Default::default() };
        let found = find(recent, page(0, 100)).await;
        assert_eq!((found.total_size, found.total_size_exact, found.results.len()), (10, true, 10));
    }

    /// An execution of a job that does not exist is refused.
    pub async fn execution_needs_its_job(store: &impl ExecutionStore) {
        let job = job("ACME", 1);
        let execution = Execution::new(&job, None, None, 1);
        assert!(matches!(
            store.insert_execution(&execution).await,
            Err(StoreError::NotFound)
        ));
    }

    /// [`ExecutionStore::start_execution`] makes the execution from the job as stored now: an
    /// update or a delete acknowledged before the start is seen (a store that starts from a copy
    /// of the job must notice that the copy is stale), and another account's job is not found.
    pub async fn start_execution_sees_the_job_as_stored(store: &impl ExecutionStore) {
        let make = |job: &crate::job::Job| Execution::new(job, None, None, 5);
        let mut job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let first = store
            .start_execution(&alias("ACME"), job.id, make)
            .await
            .unwrap();
        assert_eq!(first.hosts, job.hosts().to_vec());
        let stored = store
            .get_execution(&alias("ACME"), job.id, first.execution_id)
            .await
            .unwrap();
        assert_eq!(stored.as_ref(), Some(&first));

        job.spec.hosts = Some(vec![crate::job::Host::named("changed")]);
        store.update_job(&job).await.unwrap();
        let second = store
            .start_execution(&alias("ACME"), job.id, make)
            .await
            .unwrap();
        assert_eq!(second.hosts, job.hosts().to_vec(), "the update is seen");

        for (account, id) in [("OTHER", job.id), ("ACME", JobId::new())] {
            let refused = store.start_execution(&alias(account), id, make).await;
            assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
        }

        let idle = super::fixtures::job("ACME", 2);
        store.insert_job(&idle).await.unwrap();
        store.get_job(&alias("ACME"), idle.id).await.unwrap();
        store.delete_job(&alias("ACME"), idle.id).await.unwrap();
        let refused = store.start_execution(&alias("ACME"), idle.id, make).await;
        assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    }

    /// Deleting a job keeps its ended executions readable.
    pub async fn executions_stay_readable_after_job_delete(store: &impl ExecutionStore) {
        let execution = pending_execution(store, "ACME", 1).await;
        store
            .transition(execution.execution_id, &Command::Kill { force_at: None }, 2)
            .await
            .unwrap();
        store
            .delete_job(&alias("ACME"), execution.job_id)
            .await
            .unwrap();
        let read = store
            .get_execution(&alias("ACME"), execution.job_id, execution.execution_id)
            .await
            .unwrap()
            .expect("still readable");
        assert_eq!(read.status, Status::Killed);
        let listed = store
            .list_executions(&alias("ACME"), execution.job_id, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(listed.total_size, 1);
    }

    /// Claims take the oldest PENDING executions, each once, with a lease and a new attempt.
    pub async fn claim_takes_oldest_first_once(store: &(impl ExecutionStore + ClaimStore)) {
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let mut ids = Vec::new();
        for created in 0..5 {
            let execution = Execution::new(&job, None, None, 10 + created);
            store.insert_execution(&execution).await.unwrap();
            ids.push(execution.execution_id);
        }
        let node = "node-a".to_owned();
        let first = store.claim(&node, 2, 1_000 + LEASE, 1_000).await.unwrap();
        assert_eq!(
            first.iter().map(|e| e.execution_id).collect::<Vec<_>>(),
            ids[..2]
        );
        for claimed in &first {
            assert_eq!(claimed.status, Status::Initializing);
            assert_eq!(claimed.attempt, 1);
            let lease = claimed.lease.as_ref().expect("a claim holds a lease");
            assert_eq!(
                (lease.node.as_str(), lease.expires_at),
                ("node-a", 1_000 + LEASE)
            );
            assert_eq!(claimed.timers.len(), 1);
            assert_eq!(claimed.timers[0].start, 1_000);
        }
        let stored = store
            .get_execution(&alias("ACME"), job.id, ids[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, first[0]);
        let rest = store.claim(&node, 10, 1_000 + LEASE, 1_000).await.unwrap();
        assert_eq!(
            rest.iter().map(|e| e.execution_id).collect::<Vec<_>>(),
            ids[2..]
        );
        assert!(
            store
                .claim(&node, 10, 1_000 + LEASE, 1_000)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// A claimed execution's worker gets the execution's own job, secrets included, whichever way
    /// the store answers ([`ClaimStore::job_to_run`]).
    pub async fn claimed_executions_find_their_job(store: &(impl ExecutionStore + ClaimStore)) {
        let jobs = [job("ACME", 1), job_with_secrets("ACME", 2)];
        for job in &jobs {
            store.insert_job(job).await.unwrap();
            for created in 0..2 {
                let execution = Execution::new(job, None, None, 10 + created);
                store.insert_execution(&execution).await.unwrap();
            }
        }
        let claimed = store
            .claim(&"node-a".to_owned(), 10, 1_000 + LEASE, 1_000)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 4);
        for execution in &claimed {
            let expected = jobs.iter().find(|job| job.id == execution.job_id);
            let found = store.job_to_run(execution).await.unwrap();
            assert_eq!(found.as_ref(), expected);
        }
    }

    /// Many claimers at once never get the same execution twice.
    pub async fn concurrent_claims_never_double(store: &(impl ExecutionStore + ClaimStore)) {
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let mut all = HashSet::new();
        for created in 0..200 {
            let execution = Execution::new(&job, None, None, created);
            store.insert_execution(&execution).await.unwrap();
            all.insert(execution.execution_id);
        }
        let claimed: Vec<ExecutionId> = {
            let claimers = (0..8).map(|n| {
                let node = format!("node-{n}");
                async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = store.claim(&node, 7, 100 + LEASE, 100).await.unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|e| e.execution_id));
                        tokio::task::yield_now().await;
                    }
                }
            });
            join_all(claimers).await.into_iter().flatten().collect()
        };
        let unique: HashSet<ExecutionId> = claimed.iter().copied().collect();
        assert_eq!(
            unique.len(),
            claimed.len(),
            "an execution was claimed twice"
        );
        assert_eq!(unique, all, "every execution is claimed");
    }

    /// Transitions are the state machine's: refusals carry the current status, and the store keeps
    /// the result.
    pub async fn transitions_go_through_the_machine(store: &(impl ExecutionStore + ClaimStore)) {
        let execution = pending_execution(store, "ACME", 1).await;
        let claimed = claim_one(store, "node-a", 10).await;
        let running = store
            .transition(claimed.execution_id, &Command::BeginRun { attempt: 1 }, 11)
            .await
            .unwrap();
        assert_eq!(running.status, Status::Running);
        let report = RunReport {
            failed_hosts: vec!["b".into()],
            ..RunReport::new(Outcome::Failed)
        };
        let failed = store
            .transition(
                claimed.execution_id,
                &Command::Finish { attempt: 1, report },
                12,
            )
            .await
            .unwrap();
        assert_eq!(failed.status, Status::Failure);
        assert_eq!(failed.failed_hosts, ["b"]);
        assert_eq!(failed.timers[0].end, Some(12));
        assert!(failed.lease.is_none());
        let refused = store
            .transition(
                execution.execution_id,
                &Command::Stop { escalate_at: None },
                13,
            )
            .await;
        match refused {
            Err(StoreError::Refused(TransitionError::NotAllowed { status, .. })) => {
                assert_eq!(status, Status::Failure)
            }
            other => panic!("stop of a FAILURE must be refused, got {other:?}"),
        }
        let stored = store
            .get_execution(&alias("ACME"), execution.job_id, execution.execution_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, failed);
        assert!(matches!(
            store
                .transition(ExecutionId::new(), &Command::LoseLease { cause: LeaseLoss::NodeGone }, 1)
                .await,
            Err(StoreError::NotFound)
        ));
    }

    /// A worker command from an older attempt, or after a rescue, is refused; a lapsed lease that
    /// nobody rescued still holds (its node may have run on through a store outage).
    pub async fn stale_attempts_are_fenced(store: &(impl ExecutionStore + ClaimStore)) {
        pending_execution(store, "ACME", 1).await;
        let claimed = claim_one(store, "node-a", 10).await;
        let late = 10 + LEASE;
        let heartbeat = |now: Timestamp| Command::Heartbeat {
            attempt: 1,
            lease_until: now + LEASE,
        };
        let renewed = store
            .transition(claimed.execution_id, &heartbeat(late), late)
            .await
            .expect("a lapsed lease nobody rescued is renewed");
        assert_eq!(renewed.lease.unwrap().expires_at, late + LEASE);
        let wrong_attempt = store
            .transition(claimed.execution_id, &Command::BeginRun { attempt: 7 }, 11)
            .await;
        assert!(matches!(
            wrong_attempt,
            Err(StoreError::Refused(TransitionError::StaleAttempt { .. }))
        ));
        let rescued_at = late + LEASE;
        let rescue = Command::LoseLease {
            cause: LeaseLoss::NodeGone,
        };
        store
            .transition(claimed.execution_id, &rescue, rescued_at)
            .await
            .unwrap();
        let after_rescue = store
            .transition(claimed.execution_id, &heartbeat(rescued_at), rescued_at)
            .await;
        assert!(
            matches!(
                after_rescue,
                Err(StoreError::Refused(TransitionError::StaleAttempt { .. }))
            ),
            "{after_rescue:?}"
        );
    }

    /// `due` and `next_deadline` find an execution exactly when its lease lapsed.
    pub async fn due_finds_lapsed_leases(store: &(impl ExecutionStore + ClaimStore)) {
        assert_eq!(store.next_deadline().await.unwrap(), None);
        pending_execution(store, "ACME", 1).await;
        let claimed = claim_one(store, "node-a", 10).await;
        let expires = 10 + LEASE;
        assert_eq!(store.next_deadline().await.unwrap(), Some(expires));
        assert!(store.due(expires - 1, 10).await.unwrap().is_empty());
        let due = store.due(expires, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].execution_id, claimed.execution_id);
        let lost = store
            .transition(claimed.execution_id, &Command::LoseLease { cause: LeaseLoss::NodeGone }, expires)
            .await
            .unwrap();
        assert_eq!(lost.status, Status::Failure);
        assert!(store.due(expires + 1_000_000, 10).await.unwrap().is_empty());
        assert_eq!(store.next_deadline().await.unwrap(), None);
    }

    /// Several rescuers of one lapsed execution: exactly one succeeds.
    pub async fn concurrent_rescue_happens_once(store: &(impl ExecutionStore + ClaimStore)) {
        pending_execution(store, "ACME", 1).await;
        let claimed = claim_one(store, "node-a", 10).await;
        let now = 10 + LEASE;
        let attempts =
            (0..8).map(|_| store.transition(claimed.execution_id, &Command::LoseLease { cause: LeaseLoss::NodeGone }, now));
        let results = join_all(attempts).await;
        let succeeded = results.iter().filter(|result| result.is_ok()).count();
        assert_eq!(succeeded, 1, "{results:?}");
        assert!(
            results
                .iter()
                .filter_map(|result| result.as_ref().err())
                .all(|error| matches!(error, StoreError::Refused(_)))
        );
    }

    /// New work sends `Pending`; a stop of a claimed execution sends `Control`.
    pub async fn signals_wake_engines(store: &(impl ExecutionStore + ClaimStore + SignalSource)) {
        let mut signals = store.subscribe();
        pending_execution(store, "ACME", 1).await;
        assert_eq!(next_signal(&mut signals).await, Signal::Pending);
        let claimed = claim_one(store, "node-a", 10).await;
        store
            .transition(
                claimed.execution_id,
                &Command::Stop {
                    escalate_at: Some(50),
                },
                11,
            )
            .await
            .unwrap();
        assert_eq!(
            next_signal(&mut signals).await,
            Signal::Control(claimed.execution_id)
        );
    }

    /// A restarted FAILURE is PENDING again, claimable under a new attempt, with a second timer.
    pub async fn restart_makes_it_claimable_again(store: &(impl ExecutionStore + ClaimStore)) {
        pending_execution(store, "ACME", 1).await;
        let claimed = claim_one(store, "node-a", 10).await;
        let report = RunReport {
            failed_hosts: vec!["a".into()],
            ..RunReport::new(Outcome::Failed)
        };
        store
            .transition(
                claimed.execution_id,
                &Command::Finish { attempt: 1, report },
                11,
            )
            .await
            .unwrap();
        let restarted = store
            .transition(
                claimed.execution_id,
                &Command::Restart {
                    hosts: None,
                    ssh_private_key: None, ssh_key_pair: None,
                },
                20,
            )
            .await
            .unwrap();
        assert_eq!(restarted.status, Status::Pending);
        assert_eq!(restarted.limit.as_deref(), Some(&["a".to_owned()][..]));
        let again = claim_one(store, "node-b", 30).await;
        assert_eq!(again.execution_id, claimed.execution_id);
        assert_eq!(again.attempt, 2);
        assert_eq!(again.timers.len(), 2);
        assert_eq!(again.timers[1].start, 20);
        assert!(again.failed_hosts.is_empty());
    }
}
