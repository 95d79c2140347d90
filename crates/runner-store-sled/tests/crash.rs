//! An acknowledged write survives `kill -9` of the process that made it.
//!
//! The test binary runs itself again as a writer: several tasks create jobs, start executions,
//! claim them and move them to RUNNING and SUCCESS, printing `acked ...` after each write the
//! store acknowledged. The parent SIGKILLs the writer mid-stream, reopens the data directory and
//! finds every acknowledged write (or a later state of the same execution), with the indexes in
//! step with the records.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};

use runner_core::execution::{Execution, Outcome, RunReport, Status};
use runner_core::ids::{ExecutionId, JobId};
use runner_core::machine::Command;
use runner_core::page::PageRequest;
use runner_core::store::Store;
use runner_core::testkit::fixtures::{alias, job};
use runner_store_sled::SledStore;

const WRITER_ENV: &str = "RUNNER_SLED_TEST_WRITER_DIR";
const WRITERS: usize = 4;
/// The writer stops by itself after this many rounds if nobody kills it.
const MAX_ROUNDS: usize = 50_000;
/// Acknowledgements to see before the kill.
const ACKS_BEFORE_KILL: usize = 600;
const LEASE_UNTIL: i64 = i64::MAX / 2;

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
        let job = job("ACME", now);
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
            if round % 2 == 0 {
                let report = RunReport::new(Outcome::Succeeded);
                let done = store
                    .transition(id, &Command::Finish { attempt, report }, now)
                    .await
                    .unwrap();
                ack(format!("execution {} {id} {}", done.job_id, done.status));
            }
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
