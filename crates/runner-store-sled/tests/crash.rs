//! An acknowledged write survives `kill -9` of the process that made it.
//!
//! The test binary runs itself again as a writer: several tasks create jobs (with a DEBUG
//! callback), start executions, claim them, move them to RUNNING, append executor events and
//! move them to SUCCESS, and deliver (or retry) the webhook deliveries their feeds produce,
//! printing `acked ...` after each write the store acknowledged. The parent SIGKILLs the writer
//! mid-stream, reopens the data directory and finds every acknowledged write (or a later state
//! of the same execution), with the indexes in step with the records: each feed numbered without
//! gaps, and each delivery queue holding exactly the feed's undelivered suffix.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};

use runner_core::execution::{Execution, Outcome, RunReport, Status};
use runner_core::executor::{EventKind as Reported, ExecutorEvent};
use runner_core::feed::{DeliveryKey, Settlement};
use runner_core::ids::{ExecutionId, JobId};
use runner_core::job::CallbackLevel;
use runner_core::machine::Command;
use runner_core::page::PageRequest;
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, job_with_callbacks};
use runner_store_sled::SledStore;

const WRITER_ENV: &str = "RUNNER_SLED_TEST_WRITER_DIR";
const WRITERS: usize = 4;
/// The writer stops by itself after this many rounds if nobody kills it.
const MAX_ROUNDS: usize = 50_000;
/// Acknowledgements to see before the kill.
const ACKS_BEFORE_KILL: usize = 600;
const LEASE_UNTIL: i64 = i64::MAX / 2;
/// The time deliveries are claimed at: after every event's time, so all are due.
const DELIVER_AT: i64 = i64::MAX / 4;

fn rank(status: Status) -> u8 {
    match status {
        Status::Pending => 0,
        Status::Initializing => 1,
        Status::Running => 2,
        _ => 3,
    }
}

fn parse_status(name: &str) -> Option<Status> {
    Status::ALL
        .into_iter()
        .find(|status| status.as_str() == name)
}

async fn write_until_killed(store: SledStore, out: Arc<Mutex<std::io::Stdout>>, writer: usize) {
    let ack = |line: String| {
        let mut out = out.lock().unwrap();
        writeln!(out, "\nacked {line}").unwrap();
        out.flush().unwrap();
    };
    let node = format!("writer-{writer}");
    for round in 0..MAX_ROUNDS {
        let now = i64::try_from(round).unwrap();
        let job = job_with_callbacks("ACME", now, &[CallbackLevel::Debug]);
        store.insert_job(&job).await.unwrap();
        ack(format!("job {}", job.id));
        let execution = Execution::new(&job, None, None, now);
        store.insert_execution(&execution).await.unwrap();
        ack(format!(
            "execution {} {} PENDING",
            job.id, execution.execution_id
        ));
        // Claims take the oldest PENDING execution, possibly another writer's.
        for claimed in store.claim(&node, 1, LEASE_UNTIL, now).await.unwrap() {
            let id = claimed.execution_id;
            ack(format!("execution {} {id} INITIALIZING", claimed.job_id));
            let attempt = claimed.attempt;
            let running = store
                .transition(id, &Command::BeginRun { attempt }, now)
                .await
                .unwrap();
            ack(format!(
                "execution {} {id} {}",
                running.job_id, running.status
            ));
            let reported = ["a", "b"].map(|host| ExecutorEvent {
                host: Some(host.into()),
                ..ExecutorEvent::new(Reported::HostOk)
            });
            let latest = store
                .append_events(id, attempt, &reported, now)
                .await
                .unwrap();
            ack(format!("events {} {id} {latest}", running.job_id));
            if round % 2 == 0 {
                let report = RunReport::new(Outcome::Succeeded);
                let done = store
                    .transition(id, &Command::Finish { attempt, report }, now)
                    .await
                    .unwrap();
                ack(format!("execution {} {id} {}", done.job_id, done.status));
            }
        }
        // Deliver what is due, retrying every third sequence once first.
        for delivery in store
            .claim_deliveries(DELIVER_AT, LEASE_UNTIL, 4)
            .await
            .unwrap()
        {
            let DeliveryKey {
                execution_id,
                callback,
                sequence,
            } = delivery.key;
            let (settlement, word) = if sequence % 3 == 0 && delivery.attempts == 0 {
                let error = "503".to_owned();
                let retry = Settlement::Retry {
                    at: DELIVER_AT,
                    error,
                };
                (retry, "retried")
            } else {
                (Settlement::Delivered, "delivered")
            };
            store
                .settle_delivery(&delivery.key, &settlement)
                .await
                .unwrap();
            ack(format!("{word} {execution_id} {callback} {sequence}"));
        }
    }
}

fn writer(dir: &std::ffi::OsStr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SledStore::open(dir).unwrap();
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| tokio::spawn(write_until_killed(store.clone(), out.clone(), writer)))
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
}

#[derive(Default)]
struct Acked {
    jobs: HashSet<JobId>,
    executions: HashMap<ExecutionId, (JobId, Status)>,
    /// The latest sequence number an append returned, per execution.
    events: HashMap<ExecutionId, u64>,
    delivered: HashSet<(ExecutionId, u32, u64)>,
    retried: HashSet<(ExecutionId, u32, u64)>,
    count: usize,
}

impl Acked {
    /// Records one `acked ...` line; a line cut by the kill is not an acknowledgement.
    fn record(&mut self, line: &str) {
        let Some(ack) = common::after_marker(line, "acked ") else {
            return;
        };
        let words: Vec<&str> = ack.split_whitespace().collect();
        match words[..] {
            ["job", id] => {
                if let Ok(id) = id.parse() {
                    self.jobs.insert(id);
                    self.count += 1;
                }
            }
            ["execution", job, id, status] => {
                let (Ok(job), Ok(id), Some(status)) =
                    (job.parse(), id.parse(), parse_status(status))
                else {
                    return;
                };
                let entry = self.executions.entry(id).or_insert((job, status));
                if rank(status) > rank(entry.1) {
                    entry.1 = status;
                }
                self.count += 1;
            }
            ["events", _job, id, latest] => {
                let (Ok(id), Ok(latest)) = (id.parse(), latest.parse()) else {
                    return;
                };
                let entry = self.events.entry(id).or_insert(latest);
                *entry = (*entry).max(latest);
                self.count += 1;
            }
            [word @ ("delivered" | "retried"), id, callback, sequence] => {
                let (Ok(id), Ok(callback), Ok(sequence)) =
                    (id.parse(), callback.parse(), sequence.parse())
                else {
                    return;
                };
                let set = if word == "delivered" {
                    &mut self.delivered
                } else {
                    &mut self.retried
                };
                set.insert((id, callback, sequence));
                self.count += 1;
            }
            _ => {}
        }
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    if let Some(dir) = std::env::var_os(WRITER_ENV) {
        writer(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::spawn_role(
        "acknowledged_writes_survive_kill_9",
        (WRITER_ENV, dir.path()),
    );
    let mut acked = Acked::default();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        acked.record(&line.unwrap());
        if acked.count >= ACKS_BEFORE_KILL {
            break;
        }
    }
    child.kill().unwrap();
    // Acknowledgements printed before the kill but not read yet count too.
    for line in lines.map_while(Result::ok) {
        acked.record(&line);
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the writer was killed mid-stream, not finished: {status:?}"
    );
    assert!(
        acked.count >= ACKS_BEFORE_KILL,
        "only {} acknowledgements",
        acked.count
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(verify(dir.path(), &acked));
}

async fn verify(dir: &std::path::Path, acked: &Acked) {
    let store = SledStore::open(dir).expect("reopen after the kill");
    let acme = alias("ACME");
    for id in &acked.jobs {
        assert!(
            store.get_job(&acme, *id).await.unwrap().is_some(),
            "acknowledged job {id} lost"
        );
    }
    for (id, (job_id, status)) in &acked.executions {
        let stored = store
            .get_execution(&acme, *job_id, *id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged execution {id} lost"));
        assert!(
            rank(stored.status) >= rank(*status),
            "execution {id} was acknowledged {status} but is stored {}",
            stored.status
        );
    }

    // The indexes agree with the records: every stored job lists, every execution is in its
    // job's listing, the claim queue holds exactly the PENDING ones and the deadline index
    // exactly the claimed ones.
    let mut stored = Vec::new();
    for page in 0.. {
        let jobs = store
            .list_jobs(&acme, PageRequest { page, size: 100 })
            .await
            .unwrap();
        if jobs.results.is_empty() {
            assert_eq!(jobs.total_size as usize, stored.len());
            break;
        }
        stored.extend(jobs.results.into_iter().map(|job| job.id));
    }
    assert!(acked.jobs.iter().all(|id| stored.contains(id)));
    let mut executions = Vec::new();
    for job_id in &stored {
        let listed = store
            .list_executions(&acme, *job_id, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(listed.total_size as usize, listed.results.len());
        executions.extend(listed.results);
    }
    assert!(
        acked
            .executions
            .keys()
            .all(|id| executions.iter().any(|e| e.execution_id == *id))
    );
    verify_feeds(&store, &executions, acked).await;
    let claimed_ids: HashSet<ExecutionId> = executions
        .iter()
        .filter(|e| e.status.is_claimed())
        .map(|e| e.execution_id)
        .collect();
    let due: HashSet<ExecutionId> = store
        .due(i64::MAX, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.execution_id)
        .collect();
    assert_eq!(
        due, claimed_ids,
        "the deadline index matches the claimed executions"
    );
    let pending: HashSet<ExecutionId> = executions
        .iter()
        .filter(|e| e.status == Status::Pending)
        .map(|e| e.execution_id)
        .collect();
    let claimable: HashSet<ExecutionId> = store
        .claim(&"verifier".to_owned(), usize::MAX / 2, LEASE_UNTIL, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.execution_id)
        .collect();
    assert_eq!(
        claimable, pending,
        "the claim queue matches the PENDING executions"
    );
}

/// Every feed is numbered 1..=`events` without gaps and holds every acknowledged append; each
/// delivery queue holds exactly the suffix of its feed not delivered yet, without the
/// acknowledged deliveries, and acknowledged retries kept their attempt.
async fn verify_feeds(store: &SledStore, executions: &[Execution], acked: &Acked) {
    assert!(!acked.events.is_empty(), "no append was acknowledged");
    assert!(!acked.delivered.is_empty(), "no delivery was acknowledged");
    let acme = alias("ACME");
    for execution in executions {
        let id = execution.execution_id;
        if let Some(latest) = acked.events.get(&id) {
            assert!(
                execution.events >= *latest,
                "execution {id}: append up to {latest} acknowledged, {} stored",
                execution.events
            );
        }
        let feed = store
            .list_events(&acme, execution.job_id, id, 0, usize::MAX)
            .await
            .unwrap();
        let sequences: Vec<u64> = feed.iter().map(|event| event.sequence).collect();
        assert_eq!(
            sequences,
            (1..=execution.events).collect::<Vec<_>>(),
            "execution {id}: the feed has gaps"
        );
        assert!(feed.iter().all(|event| event.execution_id == id));
    }

    // Drain the outbox: heads only, so each queue comes out in order, one per round.
    let mut drained: HashMap<ExecutionId, Vec<u64>> = HashMap::new();
    loop {
        let taken = store
            .claim_deliveries(DELIVER_AT, LEASE_UNTIL, 10_000)
            .await
            .unwrap();
        if taken.is_empty() {
            break;
        }
        for delivery in taken {
            let key = delivery.key;
            assert_eq!(key.callback, 0);
            let acked_key = (key.execution_id, key.callback, key.sequence);
            assert!(
                !acked.delivered.contains(&acked_key),
                "acknowledged delivery {key:?} is pending again"
            );
            if acked.retried.contains(&acked_key) {
                assert!(delivery.attempts >= 1, "acknowledged retry of {key:?} lost");
            }
            assert_eq!(delivery.event.sequence, key.sequence);
            drained
                .entry(key.execution_id)
                .or_default()
                .push(key.sequence);
            store
                .settle_delivery(&key, &Settlement::Delivered)
                .await
                .unwrap();
        }
    }
    assert!(!drained.is_empty(), "the kill left no delivery pending");
    let stored: HashMap<ExecutionId, &Execution> = executions
        .iter()
        .map(|execution| (execution.execution_id, execution))
        .collect();
    for (id, sequences) in &drained {
        let execution = stored
            .get(id)
            .unwrap_or_else(|| panic!("deliveries of an unknown execution {id}"));
        let first = sequences[0];
        assert_eq!(
            *sequences,
            (first..=execution.events).collect::<Vec<_>>(),
            "execution {id}: the outbox is not the feed's undelivered suffix"
        );
        assert!(
            acked
                .delivered
                .iter()
                .filter(|(delivered, _, _)| delivered == id)
                .all(|(_, _, sequence)| *sequence < first),
            "execution {id}: a delivery behind the queue's head was acknowledged"
        );
    }
}
