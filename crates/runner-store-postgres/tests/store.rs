//! What the conformance suite cannot see: wake-ups between stores, the delete/insert race, deep
//! pages, unreadable records and connection errors.

mod common;

use std::time::Duration;

use runner_core::execution::Execution;
use runner_core::machine::Command;
use runner_core::page::PageRequest;
use runner_core::store::prelude::*;
use runner_core::store::{Signal, StoreError};
use runner_core::testkit::fixtures::{alias, job};
use runner_store_postgres::{PgStore, PgStoreError, PgStoreOptions};
use tokio::sync::broadcast;

/// The next signal that is not `Pending` noise, within 30 s.
async fn next_signal(signals: &mut broadcast::Receiver<Signal>) -> Signal {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match signals.recv().await {
                Ok(signal) => return signal,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("signals closed"),
            }
        }
    })
    .await
    .expect("a signal within 30 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_wake_the_other_nodes() {
    let options = common::fresh_options();
    // The sender needs no LISTEN of its own (as behind a pooler); the receiver listens.
    let sender = common::connect(options.clone().poll_only(true)).await;
    let receiver = common::connect(options).await;
    let mut woken = receiver.subscribe();
    // The LISTEN starts in the background: insert until its first wake-up arrives.
    let job = job("ACME", 1);
    sender.insert_job(&job).await.unwrap();
    let execution = loop {
        let execution = Execution::new(&job, None, None, 2);
        sender.insert_execution(&execution).await.unwrap();
        if let Ok(Ok(signal)) = tokio::time::timeout(Duration::from_millis(200), woken.recv()).await
        {
            // Pending, or the Feed signal of a creation event (tests/feed.rs looks at those).
            assert!(
                matches!(signal, Signal::Pending | Signal::Feed(_)),
                "{signal:?}"
            );
            break execution;
        }
    };
    let claimed = sender
        .claim(&"node-a".to_owned(), 100, 60_000, 10)
        .await
        .unwrap();
    assert!(
        claimed
            .iter()
            .any(|e| e.execution_id == execution.execution_id)
    );
    sender
        .transition(
            execution.execution_id,
            &Command::Kill { force_at: None },
            11,
        )
        .await
        .unwrap();
    loop {
        match next_signal(&mut woken).await {
            Signal::Pending | Signal::Feed(_) | Signal::Log(_) => continue,
            signal => {
                assert_eq!(signal, Signal::Control(execution.execution_id));
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_insert_never_both_win() {
    let store = common::fresh_store().await;
    let account = alias("ACME");
    for round in 0..40 {
        let job = job("ACME", round);
        store.insert_job(&job).await.unwrap();
        let execution = Execution::new(&job, None, None, round);
        let (inserted, deleted) = tokio::join!(
            store.insert_execution(&execution),
            store.delete_job(&account, job.id)
        );
        match (&inserted, &deleted) {
            (Ok(()), Err(StoreError::Conflict(_))) | (Err(StoreError::NotFound), Ok(())) => {}
            other => panic!("round {round}: insert and delete crossed: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_a_long_listing_is_right() {
    let store = common::fresh_store().await;
    let job = job("ACME", 1);
    store.insert_job(&job).await.unwrap();
    let mut ids = Vec::new();
    // Concurrent inserts share batches; numbering must stay dense and in order.
    for chunk in 0..5 {
        let batch: Vec<Execution> = (0..50)
            .map(|n| Execution::new(&job, None, None, chunk * 50 + n))
            .collect();
        let inserts = batch
            .iter()
            .map(|execution| store.insert_execution(execution));
        for result in futures_util::future::join_all(inserts).await {
            result.unwrap();
        }
        ids.extend(batch.iter().map(|e| e.execution_id));
    }
    let mut listed = Vec::new();
    for page in 0..3 {
        let got = store
            .list_executions(&alias("ACME"), job.id, PageRequest { page, size: 100 })
            .await
            .unwrap();
        assert_eq!(got.total_size, 250);
        listed.extend(got.results.into_iter().map(|e| e.execution_id));
    }
    let beyond = store
        .list_executions(&alias("ACME"), job.id, PageRequest { page: 3, size: 100 })
        .await
        .unwrap();
    assert!(beyond.results.is_empty());
    // Newest first: every id once; within each concurrently inserted chunk the order is the
    // order in which the store took them, and chunks come newest first.
    assert_eq!(listed.len(), 250);
    for (chunk, expected) in ids.chunks(50).rev().enumerate() {
        let mut got: Vec<_> = listed[chunk * 50..(chunk + 1) * 50].to_vec();
        let mut want = expected.to_vec();
        got.sort();
        want.sort();
        assert_eq!(got, want, "chunk {chunk}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_is_an_error_without_its_content() {
    let store = common::fresh_store().await;
    let job = job("ACME", 1);
    store.insert_job(&job).await.unwrap();
    let execution = Execution::new(&job, None, None, 2);
    store.insert_execution(&execution).await.unwrap();
    sqlx::query(r#"UPDATE executions SET body = '{"execution_id": 7, "password": "hunter2"}'"#)
        .execute(store.pool())
        .await
        .unwrap();
    let read = store
        .get_execution(&alias("ACME"), job.id, execution.execution_id)
        .await;
    match read {
        Err(StoreError::Corrupt(message)) => {
            assert!(
                message.contains(&execution.execution_id.to_string()),
                "{message}"
            );
            assert!(!message.contains("hunter2"), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let transition = store
        .transition(execution.execution_id, &Command::Kill { force_at: None }, 3)
        .await;
    assert!(
        matches!(transition, Err(StoreError::Corrupt(_))),
        "{transition:?}"
    );
}

#[tokio::test]
async fn connect_reports_what_is_wrong() {
    let bad_schema =
        PgStore::connect_with(PgStoreOptions::new(common::database_url()).schema("Robert'); DROP"))
            .await;
    assert!(matches!(bad_schema, Err(PgStoreError::InvalidSchema(_))));
    let bad_url = PgStore::connect("postgres://127.0.0.1:not-a-port/test").await;
    assert!(
        matches!(bad_url, Err(PgStoreError::InvalidUrl(_))),
        "{bad_url:?}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nobody = PgStore::connect_with(
        PgStoreOptions::new(format!("postgres://postgres:hunter2@127.0.0.1:{port}/test"))
            .retry_for(Duration::from_secs(1)),
    )
    .await;
    match nobody {
        Err(error @ PgStoreError::Connect(_)) => {
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
}

/// Two nodes write one execution's row at once: one appends executor events (each bumps the
/// event counter in the row's body), the other renews the lease (which rewrites the body from
/// the version it read). A transition writes only if the row is still the version it read, so
/// neither write is lost: the feed is numbered without a gap or a repeat, the stored counter
/// matches it, and the last lease renewal is the one stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_one_execution_lose_no_update() {
    use runner_core::executor::{EventKind, ExecutorEvent};

    const ROUNDS: i64 = 150;
    let options = common::fresh_options();
    let events_node = common::connect(options.clone()).await;
    let lease_node = common::connect(options).await;
    let job = job("ACME", 1);
    events_node.insert_job(&job).await.unwrap();
    let execution = Execution::new(&job, None, None, 2);
    events_node.insert_execution(&execution).await.unwrap();
    let id = execution.execution_id;
    let claimed = events_node
        .claim(&"node-a".to_owned(), 1, 1_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    events_node
        .transition(id, &Command::BeginRun { attempt: 1 }, 11)
        .await
        .unwrap();

    let appends = async {
        for round in 0..ROUNDS {
            let event = ExecutorEvent {
                host: Some(format!("h{round}")),
                ..ExecutorEvent::new(EventKind::HostOk)
            };
            events_node
                .append_events(id, 1, &[event], 20 + round)
                .await
                .expect("append");
        }
    };
    let renewals = async {
        for round in 0..ROUNDS {
            let command = Command::Heartbeat {
                attempt: 1,
                lease_until: 10_000 + round,
            };
            lease_node
                .transition(id, &command, 20 + round)
                .await
                .expect("heartbeat");
        }
    };
    tokio::join!(appends, renewals);

    let stored = events_node
        .get_execution(&alias("ACME"), job.id, id)
        .await
        .unwrap()
        .expect("stored");
    let feed = events_node
        .list_events(&alias("ACME"), job.id, id, 0, 10_000)
        .await
        .unwrap();
    let sequences: Vec<u64> = feed.iter().map(|event| event.sequence).collect();
    let expected: Vec<u64> = (1..=stored.events).collect();
    assert_eq!(
        sequences, expected,
        "the feed is dense and matches the counter"
    );
    // Creation, claim, BeginRun, and one event per append.
    assert_eq!(stored.events, 3 + ROUNDS as u64);
    assert_eq!(
        stored.lease.map(|lease| lease.expires_at),
        Some(10_000 + ROUNDS - 1),
        "the last renewal is stored"
    );
}

/// A claim reads the jobs of the executions it takes, and their workers get those copies with no
/// read of their own: an update of the job after the claim is not seen by the first
/// `job_to_run`, which proves the copy answered, and each copy is handed out once (the next
/// call reads the job as stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_get_the_job_their_claim_read() {
    let store = common::connect(common::fresh_options()).await;
    let job = job("ACME", 1);
    store.insert_job(&job).await.unwrap();
    let execution = Execution::new(&job, None, None, 2);
    store.insert_execution(&execution).await.unwrap();
    let claimed = store
        .claim(&"node-a".to_owned(), 1, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    let mut updated = job.clone();
    updated.spec.description = Some("changed after the claim".into());
    store.update_job(&updated).await.unwrap();

    let first = store.job_to_run(&claimed[0]).await.unwrap();
    assert_eq!(first.as_ref(), Some(&job), "the claim's copy");
    let second = store.job_to_run(&claimed[0]).await.unwrap();
    assert_eq!(second.as_ref(), Some(&updated), "read as stored now");
}

/// A start makes its execution from this node's copy of the job while the job's revision is
/// unchanged (a body changed behind the store's back, without a new revision, shows the copy
/// answered), and from the job as stored once another node updated it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_use_a_copy_of_the_job_until_another_node_updates_it() {
    use runner_core::job::Host;

    let options = common::fresh_options();
    let starter = common::connect(options.clone()).await;
    let editor = common::connect(options).await;
    let make = |job: &runner_core::job::Job| Execution::new(job, None, None, 5);
    let mut job = job("ACME", 1);
    starter.insert_job(&job).await.unwrap();
    let first = starter
        .start_execution(&alias("ACME"), job.id, make)
        .await
        .unwrap();
    assert_eq!(first.hosts, job.hosts().to_vec());

    let mut behind_the_back = job.clone();
    behind_the_back.spec.hosts = Some(vec![Host::named("unseen")]);
    sqlx::query("UPDATE jobs SET body = $2::json WHERE id = $1")
        .bind(job.id.0)
        .bind(runner_core::secret::reveal(|| serde_json::to_string(&behind_the_back)).unwrap())
        .execute(starter.pool())
        .await
        .unwrap();
    let from_copy = starter
        .start_execution(&alias("ACME"), job.id, make)
        .await
        .unwrap();
    assert_eq!(from_copy.hosts, job.hosts().to_vec(), "made from the copy");

    job.spec.hosts = Some(vec![Host::named("edited")]);
    editor.update_job(&job).await.unwrap();
    let after_edit = starter
        .start_execution(&alias("ACME"), job.id, make)
        .await
        .unwrap();
    assert_eq!(
        after_edit.hosts,
        job.hosts().to_vec(),
        "the other node's edit"
    );
    let listed = starter
        .list_executions(&alias("ACME"), job.id, PageRequest { page: 0, size: 10 })
        .await
        .unwrap();
    assert_eq!(
        listed.total_size, 3,
        "no execution was stored from the stale copy"
    );
}
