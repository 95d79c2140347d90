//! The run log cases of the store conformance suite: appending, paging, the cap, attempts,
//! fencing and account isolation of [`RunLogStore`].

use super::fixtures::{alias, job};
use crate::execution::{Execution, Outcome, RunReport};
use crate::ids::ExecutionId;
use crate::machine::{Command, TransitionError};
use crate::run_log::{LogCap, LogPage, omitted_marker};
use crate::store::{
    ClaimStore, ExecutionStore, LogRead, RunLogStore, Signal, SignalSource, StoreError,
};
use crate::time::Timestamp;

const LEASE: Timestamp = 30_000;

async fn claimed(store: &(impl ExecutionStore + ClaimStore), now: Timestamp) -> Execution {
    let job = job("ACME", now);
    store.insert_job(&job).await.expect("insert job");
    let execution = Execution::new(&job, None, None, now);
    store
        .insert_execution(&execution)
        .await
        .expect("insert execution");
    claim(store, execution.execution_id, now).await
}

async fn claim(store: &impl ClaimStore, id: ExecutionId, now: Timestamp) -> Execution {
    let claimed = store
        .claim(&"node-a".to_owned(), 1, now + LEASE, now)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "one execution should be claimable");
    assert_eq!(claimed[0].execution_id, id);
    claimed.into_iter().next().unwrap()
}

async fn read(
    store: &impl RunLogStore,
    execution: &Execution,
    attempt: Option<u32>,
    offset: u64,
    limit: u64,
) -> Result<LogPage, StoreError> {
    store
        .read_log(
            &execution.account_alias,
            execution.job_id,
            execution.execution_id,
            LogRead {
                attempt,
                offset,
                limit,
            },
        )
        .await
}

/// Reads attempt `attempt` to its current end in pages of `limit` bytes.
async fn read_all(
    store: &impl RunLogStore,
    execution: &Execution,
    attempt: Option<u32>,
    limit: u64,
) -> (Vec<u8>, LogPage) {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = read(store, execution, attempt, offset, limit)
            .await
            .unwrap();
        out.extend_from_slice(&page.data);
        if page.next_offset >= page.total {
            return (out, page);
        }
        assert!(page.next_offset > offset, "a page moves the offset on");
        offset = page.next_offset;
    }
}

async fn finish(store: &impl ExecutionStore, execution: &Execution, attempt: u32, now: Timestamp) {
    let report = RunReport {
        failed_hosts: vec!["a".into()],
        ..RunReport::new(Outcome::Failed)
    };
    store
        .transition(
            execution.execution_id,
            &Command::Finish { attempt, report },
            now,
        )
        .await
        .unwrap();
}

conformance_suite! {
    $ list __run_log_conformance_cases in run_log_conformance;

    /// Appended chunks read back whole and in pages, with offsets that move on; the log is
    /// complete once the run ended.
    pub async fn run_log_appends_and_pages(
        store: &(impl ExecutionStore + ClaimStore + RunLogStore),
    ) {
        let execution = claimed(store, 10).await;
        let id = execution.execution_id;
        let cap = LogCap::default();
        let lines = ["PLAY [all] ***\n", "ok: [localhost]\n", "PLAY RECAP ***\n"];
        let mut total = 0;
        for (i, line) in lines.iter().enumerate() {
            total = store.append_log(id, 1, line.as_bytes(), cap, 11 + i as i64).await.unwrap();
        }
        let all = lines.concat();
        assert_eq!(total, all.len() as u64);
        let (paged, last) = read_all(store, &execution, None, 5).await;
        assert_eq!(String::from_utf8(paged).unwrap(), all);
        assert_eq!((last.attempt, last.complete), (1, false), "the run still goes on");
        let middle = read(store, &execution, Some(1), 15, 16).await.unwrap();
        assert_eq!(middle.data, b"ok: [localhost]\n");
        assert_eq!((middle.next_offset, middle.total), (31, total));
        let past = read(store, &execution, None, 1000, 10).await.unwrap();
        assert!(past.data.is_empty());
        assert_eq!(past.next_offset, total);

        finish(store, &execution, 1, 20).await;
        let (whole, last) = read_all(store, &execution, None, 1 << 20).await;
        assert_eq!(String::from_utf8(whole).unwrap(), all);
        assert!(last.complete, "the run ended and the page reaches the end");
        let head = read(store, &execution, None, 0, 4).await.unwrap();
        assert!(!head.complete, "a page short of the end is not the end");
    }

    /// A log over its cap keeps its head and tail with the marker between, and no more.
    pub async fn run_log_keeps_head_and_tail_within_the_cap(
        store: &(impl ExecutionStore + ClaimStore + RunLogStore),
    ) {
        let execution = claimed(store, 10).await;
        let cap = LogCap::new(64);
        let stream: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        for chunk in stream.chunks(10) {
            store.append_log(execution.execution_id, 1, chunk, cap, 11).await.unwrap();
        }
        let (paged, last) = read_all(store, &execution, None, 7).await;
        let mut expected = stream[..32].to_vec();
        expected.extend_from_slice(omitted_marker(1000 - 64, cap).as_bytes());
        expected.extend_from_slice(&stream[1000 - 32..]);
        assert_eq!(String::from_utf8(paged).unwrap(), String::from_utf8(expected).unwrap());
        assert_eq!(last.total, 1000);
        // One chunk larger than the whole cap.
        let big = vec![b'x'; 500];
        store.append_log(execution.execution_id, 1, &big, cap, 12).await.unwrap();
        let tail = read(store, &execution, None, 32, 1000).await.unwrap();
        let mut expected = omitted_marker(1500 - 32 - 32, cap).into_bytes();
        expected.extend_from_slice(&big[..32]);
        assert_eq!(tail.data, expected);
        assert_eq!(tail.next_offset, 1500);
    }

    /// Only the current attempt, before a rescue or its outcome, may append: the others are
    /// refused.
    pub async fn run_log_appends_are_fenced(
        store: &(impl ExecutionStore + ClaimStore + RunLogStore),
    ) {
        let execution = claimed(store, 10).await;
        let id = execution.execution_id;
        let cap = LogCap::default();
        let stale = store.append_log(id, 2, b"late\n", cap, 11).await;
        assert!(
            matches!(stale, Err(StoreError::Refused(TransitionError::StaleAttempt { .. }))),
            "{stale:?}"
        );
        // A lapsed lease that nobody rescued still holds: the run went on through an outage.
        store
            .append_log(id, 1, b"late\n", cap, 10 + LEASE + 1)
            .await
            .expect("a lapsed, unrescued lease still appends");
        let missing = store.append_log(ExecutionId::new(), 1, b"x", cap, 11).await;
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
        finish(store, &execution, 1, 12).await;
        let ended = store.append_log(id, 1, b"after the end\n", cap, 13).await;
        assert!(matches!(ended, Err(StoreError::Refused(_))), "{ended:?}");
        let page = read(store, &execution, None, 0, 100).await.unwrap();
        assert!(page.data == b"late\n" && page.complete, "{page:?}");
    }

    /// Each attempt has its own log; a read without an attempt reads the latest, and an attempt
    /// the execution never had is not found.
    pub async fn run_log_is_kept_per_attempt(
        store: &(impl ExecutionStore + ClaimStore + RunLogStore),
    ) {
        let execution = claimed(store, 10).await;
        let id = execution.execution_id;
        let cap = LogCap::default();
        store.append_log(id, 1, b"first run\n", cap, 11).await.unwrap();
        finish(store, &execution, 1, 12).await;
        let restart = Command::Restart {
            hosts: None,
            ssh_private_key: None,
            ssh_key_pair: None,
        };
        store.transition(id, &restart, 13).await.unwrap();
        let before = read(store, &execution, None, 0, 100).await.unwrap();
        assert_eq!((before.attempt, before.data.as_slice()), (1, &b"first run\n"[..]));
        assert!(before.complete, "a restarted run's log is over");
        claim(store, id, 20).await;
        store.append_log(id, 2, b"second run\n", cap, 21).await.unwrap();
        let latest = read(store, &execution, None, 0, 100).await.unwrap();
        assert_eq!((latest.attempt, latest.data.as_slice()), (2, &b"second run\n"[..]));
        assert!(!latest.complete);
        let first = read(store, &execution, Some(1), 0, 100).await.unwrap();
        assert_eq!((first.attempt, first.data.as_slice()), (1, &b"first run\n"[..]));
        assert!(first.complete);
        for attempt in [0, 3] {
            let none = read(store, &execution, Some(attempt), 0, 100).await;
            assert!(matches!(none, Err(StoreError::NotFound)), "attempt {attempt}: {none:?}");
        }
    }

    /// A PENDING execution reads as the empty, open log of its first attempt.
    pub async fn run_log_of_a_pending_execution_is_empty(
        store: &(impl ExecutionStore + RunLogStore),
    ) {
        let job = job("ACME", 1);
        store.insert_job(&job).await.unwrap();
        let execution = Execution::new(&job, None, None, 1);
        store.insert_execution(&execution).await.unwrap();
        let page = read(store, &execution, None, 0, 100).await.unwrap();
        assert_eq!((page.attempt, page.total, page.complete), (1, 0, false));
        assert!(page.data.is_empty());
    }

    /// The log is invisible under another account or job.
    pub async fn run_log_is_isolated_by_account(
        store: &(impl ExecutionStore + ClaimStore + RunLogStore),
    ) {
        let execution = claimed(store, 10).await;
        let id = execution.execution_id;
        store.append_log(id, 1, b"secret-free output\n", LogCap::default(), 11).await.unwrap();
        let read = LogRead { attempt: None, offset: 0, limit: 100 };
        let other = store.read_log(&alias("OTHER"), execution.job_id, id, read).await;
        assert!(matches!(other, Err(StoreError::NotFound)), "{other:?}");
        let other_job = store.read_log(&alias("ACME"), crate::ids::JobId::new(), id, read).await;
        assert!(matches!(other_job, Err(StoreError::NotFound)), "{other_job:?}");
    }

    /// Appending wakes log followers.
    pub async fn run_log_appends_signal(
        store: &(impl ExecutionStore + ClaimStore + RunLogStore + SignalSource),
    ) {
        let execution = claimed(store, 10).await;
        let id = execution.execution_id;
        let mut signals = store.subscribe();
        store.append_log(id, 1, b"ok\n", LogCap::default(), 11).await.unwrap();
        let wait = async {
            loop {
                match signals.recv().await {
                    Ok(Signal::Log(of)) if of == id => return,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(error) => panic!("signal channel: {error}"),
                }
            }
        };
        // Signals may travel through a database.
        tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .expect("Signal::Log within 30 s");
    }
}
