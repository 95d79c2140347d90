//! What the feed conformance cases cannot see on PostgreSQL: several store instances (nodes) on
//! one schema taking deliveries at once, feed signals crossing nodes through NOTIFY, and the
//! creation events of executions a schedule fires.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use runner_core::execution::{Execution, Status};
use runner_core::executor::{EventKind as Reported, ExecutorEvent};
use runner_core::feed::{Delivery, DeliveryKey, Settlement};
use runner_core::ids::ExecutionId;
use runner_core::job::CallbackLevel;
use runner_core::machine::Command;
use runner_core::schedule::{Schedule, ServiceAccount, Trigger, TriggerKind};
use runner_core::store::prelude::*;
use runner_core::store::{ScheduleStore, Signal};
use runner_core::testkit::fixtures::{alias, job_with_callbacks};
use runner_core::time::Timestamp;
use runner_store_postgres::PgStore;
use tokio::sync::broadcast;

const LEASE: Timestamp = 1_000_000;

fn host_ok(host: &str) -> ExecutorEvent {
    ExecutorEvent {
        host: Some(host.into()),
        ..ExecutorEvent::new(Reported::HostOk)
    }
}

/// Executions of one job with a DEBUG and a RESULT callback, claimed, with a few executor events
/// each and a RUNNING status: queues of different lengths.
async fn executions_with_queues(store: &PgStore, count: usize) -> Vec<ExecutionId> {
    let job = job_with_callbacks("ACME", 1, &[CallbackLevel::Debug, CallbackLevel::Result]);
    store.insert_job(&job).await.unwrap();
    for n in 0..count {
        let execution = Execution::new(&job, None, None, 2 + n as Timestamp);
        store.insert_execution(&execution).await.unwrap();
    }
    let claimed = store
        .claim(&"node-a".to_owned(), count, LEASE, 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), count);
    let mut ids = Vec::new();
    for (n, execution) in claimed.iter().enumerate() {
        let id = execution.execution_id;
        let events: Vec<ExecutorEvent> = (0..n % 4).map(|h| host_ok(&format!("h{h}"))).collect();
        store.append_events(id, 1, &events, 101).await.unwrap();
        store
            .transition(id, &Command::BeginRun { attempt: 1 }, 102)
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

/// The outbox as queues: per (execution, callback), the pending sequence numbers in order.
async fn queues(store: &PgStore) -> BTreeMap<(ExecutionId, u32), Vec<u64>> {
    let rows: Vec<(uuid::Uuid, i32, i64)> = sqlx::query_as(
        "SELECT execution_id, callback, sequence FROM deliveries WHERE state = 'pending'
          ORDER BY execution_id, callback, sequence",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut queues: BTreeMap<(ExecutionId, u32), Vec<u64>> = BTreeMap::new();
    for (id, callback, sequence) in rows {
        queues
            .entry((ExecutionId(id), callback as u32))
            .or_default()
            .push(sequence as u64);
    }
    queues
}

/// Three nodes take deliveries concurrently, round after round, and settle them in every way:
/// while a hold lasts nobody gets a delivery twice, every delivery handed out is the head of its
/// queue, and no queue has two deliveries out at once; in the end every delivery was handed out
/// in sequence order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_nodes_take_only_heads_and_never_a_held_delivery_twice() {
    let options = common::fresh_options();
    let nodes = [
        common::connect(options.clone()).await,
        common::connect(options.clone()).await,
        common::connect(options).await,
    ];
    let ids = executions_with_queues(&nodes[0], 24).await;
    let mut model = queues(&nodes[0]).await;
    assert_eq!(
        model.len(),
        ids.len() * 2,
        "a DEBUG and a RESULT queue each"
    );
    let total: usize = model.values().map(Vec::len).sum();
    assert!(total > model.len(), "some queues hold more than their head");

    let mut delivered: HashMap<(ExecutionId, u32), Vec<u64>> = HashMap::new();
    let mut retries: HashMap<DeliveryKey, u32> = HashMap::new();
    let mut given_up = 0;
    let mut round: i64 = 0;
    while !model.is_empty() {
        round += 1;
        assert!(round < 200, "the outbox does not drain");
        let now = 1_000_000 + round * 10;
        let hold_until = now + 1_000_000;
        // Every node takes small batches until it finds nothing more, all at once.
        let takers = nodes.iter().map(|node| async move {
            let mut taken: Vec<Delivery> = Vec::new();
            loop {
                let batch = node.claim_deliveries(now, hold_until, 3).await.unwrap();
                if batch.is_empty() {
                    return taken;
                }
                taken.extend(batch);
            }
        });
        let taken: Vec<Delivery> = futures_util::future::join_all(takers)
            .await
            .into_iter()
            .flatten()
            .collect();

        let mut seen_keys = HashSet::new();
        let mut seen_queues = HashSet::new();
        for delivery in &taken {
            let key = delivery.key;
            assert!(
                seen_keys.insert(key),
                "round {round}: {key:?} handed out twice"
            );
            let queue = (key.execution_id, key.callback);
            assert!(
                seen_queues.insert(queue),
                "round {round}: two deliveries of queue {queue:?} out at once"
            );
            assert_eq!(
                model.get(&queue).and_then(|pending| pending.first()),
                Some(&key.sequence),
                "round {round}: {key:?} is not the head of its queue"
            );
            assert_eq!(delivery.event.sequence, key.sequence);
            assert_eq!(delivery.attempts, retries.get(&key).copied().unwrap_or(0));
        }
        assert_eq!(
            seen_queues.len(),
            model.len(),
            "round {round}: every queue's head was due, unheld and handed out"
        );
        // While the holds last, nobody gets anything more.
        for node in &nodes {
            assert!(
                node.claim_deliveries(now + 5, hold_until, 100)
                    .await
                    .unwrap()
                    .is_empty(),
                "round {round}: a held delivery or a later one was handed out again"
            );
        }

        // Settle concurrently too, each node its share, in all three ways.
        let mut shares: Vec<Vec<(DeliveryKey, Settlement)>> = vec![Vec::new(); nodes.len()];
        for (index, delivery) in taken.iter().enumerate() {
            let key = delivery.key;
            let queue = (key.execution_id, key.callback);
            let settlement = match (key.sequence + round as u64) % 6 {
                0 => {
                    *retries.entry(key).or_default() += 1;
                    Settlement::Retry {
                        at: now + 10,
                        error: "503".into(),
                    }
                }
                1 if key.sequence > 1 => {
                    given_up += 1;
                    model.get_mut(&queue).unwrap().remove(0);
                    Settlement::GiveUp {
                        error: "410".into(),
                    }
                }
                _ => {
                    delivered.entry(queue).or_default().push(key.sequence);
                    model.get_mut(&queue).unwrap().remove(0);
                    Settlement::Delivered
                }
            };
            if model.get(&queue).is_some_and(Vec::is_empty) {
                model.remove(&queue);
            }
            shares[index % nodes.len()].push((key, settlement));
        }
        let settlers = nodes.iter().zip(&shares).map(|(node, share)| async move {
            for (key, settlement) in share {
                node.settle_delivery(key, settlement).await.unwrap();
            }
        });
        futures_util::future::join_all(settlers).await;
        assert_eq!(queues(&nodes[0]).await, model, "round {round}: the outbox");
    }

    assert_eq!(nodes[1].next_delivery_at().await.unwrap(), None);
    for sequences in delivered.values() {
        assert!(
            sequences.windows(2).all(|pair| pair[0] < pair[1]),
            "delivered out of order: {sequences:?}"
        );
    }
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'failed'")
        .fetch_one(nodes[2].pool())
        .await
        .unwrap();
    assert_eq!(
        failed, given_up,
        "given-up deliveries are kept, marked failed"
    );
    assert!(
        given_up > 0 && !retries.is_empty(),
        "every settlement was exercised"
    );
}

/// Waits for `wanted`, skipping other signals (bounded, so a lost signal fails the test instead
/// of hanging it; not a timing assertion).
async fn wait_for(signals: &mut broadcast::Receiver<Signal>, wanted: Signal) {
    let wait = async {
        loop {
            match signals.recv().await {
                Ok(signal) if signal == wanted => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("signals closed"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("no {wanted:?} within 30 s"));
}

/// Events recorded on one node wake the others: appends, and a claim of several executions
/// (whose feed signals share one NOTIFY payload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_signals_cross_nodes() {
    let options = common::fresh_options();
    // The sender needs no LISTEN of its own; the receiver listens.
    let sender = common::connect(options.clone().poll_only(true)).await;
    let receiver = common::connect(options).await;
    let mut signals = receiver.subscribe();
    let job = job_with_callbacks("ACME", 1, &[]);
    sender.insert_job(&job).await.unwrap();
    let first = Execution::new(&job, None, None, 2);
    sender.insert_execution(&first).await.unwrap();
    let claimed = sender
        .claim(&"node-a".to_owned(), 1, LEASE, 3)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let id = first.execution_id;
    // The LISTEN starts in the background: append until the receiver hears of it.
    loop {
        sender
            .append_events(id, 1, &[host_ok("a")], 4)
            .await
            .unwrap();
        match tokio::time::timeout(Duration::from_millis(200), signals.recv()).await {
            Ok(Ok(Signal::Feed(of))) if of == id => break,
            _ => continue,
        }
    }

    let more: Vec<Execution> = (0..5)
        .map(|n| Execution::new(&job, None, None, 10 + n))
        .collect();
    for execution in &more {
        sender.insert_execution(execution).await.unwrap();
    }
    let claimed = sender
        .claim(&"node-a".to_owned(), 10, LEASE, 20)
        .await
        .unwrap();
    assert_eq!(claimed.len(), more.len());
    let initializing: Vec<i64> =
        sqlx::query_scalar("SELECT count(*) FROM execution_events WHERE sequence = 2")
            .fetch_all(sender.pool())
            .await
            .unwrap();
    assert_eq!(
        initializing,
        [6],
        "every claim recorded its INITIALIZING event"
    );
    for execution in &more {
        wait_for(&mut signals, Signal::Feed(execution.execution_id)).await;
    }
}

/// A schedule's execution gets its creation event (and deliveries) in the firing transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fired_executions_start_their_feed() {
    let store = common::fresh_store().await;
    let account = alias("ACME");
    store
        .insert_service_account(&ServiceAccount {
            alias: "svc".into(),
            account_alias: account.clone(),
            description: None,
            created_time: 0,
        })
        .await
        .unwrap();
    let job = job_with_callbacks("ACME", 0, &[CallbackLevel::Result]);
    store.insert_job(&job).await.unwrap();
    let trigger = Trigger {
        kind: TriggerKind::Cron,
        expression: "* * * * *".into(),
    };
    let schedule = Schedule::new(
        account.clone(),
        job.id,
        "s".into(),
        "svc".into(),
        trigger,
        0,
    );
    store.insert_schedule(&schedule).await.unwrap();
    let mut signals = store.subscribe();
    let fired = store.fire_due_schedules(60_000, 10).await.unwrap();
    assert_eq!(fired.len(), 1);
    let id = fired[0].execution_id;
    wait_for(&mut signals, Signal::Feed(id)).await;
    let events = store
        .list_events(&account, job.id, id, 0, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].sequence, events[0].status),
        (1, Some(Status::Pending))
    );
    let taken = store.claim_deliveries(60_000, 61_000, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].key.execution_id, id);
    assert_eq!(taken[0].event, events[0]);
}
