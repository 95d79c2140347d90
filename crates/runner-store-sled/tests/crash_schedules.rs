//! A fired schedule survives `kill -9` consistently: the execution a fire created and the
//! schedule's advanced `next_fire_time` are one transaction, so after a reopen either both are
//! there or neither, and firing again at the same time creates nothing twice.
//!
//! The test binary runs itself again as a firer: it stores a job, a service account and several
//! every-minute schedules, then two tasks fire them minute after minute (a few per call, so one
//! minute takes several batches), printing `acked ...` after each acknowledged write. The parent
//! SIGKILLs it mid-stream, reopens the data directory and checks the records against each other.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};

use runner_core::execution::{Execution, Status};
use runner_core::ids::{ExecutionId, JobId, ScheduleId};
use runner_core::page::PageRequest;
use runner_core::schedule::{Schedule, ServiceAccount, Trigger, TriggerKind};
use runner_core::store::ScheduleStore;
use runner_core::store::prelude::*;
use runner_core::testkit::fixtures::{alias, job};
use runner_core::time::Timestamp;
use runner_store_sled::SledStore;

const FIRER_ENV: &str = "RUNNER_SLED_TEST_FIRER_DIR";
const MINUTE: Timestamp = 60_000;
const SCHEDULES: usize = 8;
const FIRERS: usize = 2;
/// Schedules per fire call: fewer than there are, so a minute takes several transactions.
const PER_CALL: usize = 3;
/// The firer stops by itself after this many minutes if nobody kills it.
const MAX_MINUTES: i64 = 100_000;
/// Acknowledged fires to see before the kill.
const FIRES_BEFORE_KILL: usize = 200;

async fn fire_until_killed(store: SledStore, out: Arc<Mutex<std::io::Stdout>>) {
    for minute in 1..MAX_MINUTES {
        let now = minute * MINUTE;
        loop {
            let fired = store.fire_due_schedules(now, PER_CALL).await.unwrap();
            if fired.is_empty() {
                break;
            }
            let mut out = out.lock().unwrap();
            for execution in fired {
                let fire = execution.scheduled.unwrap();
                writeln!(
                    out,
                    "\nacked fire {} {} {}",
                    fire.schedule_id, fire.due_time, execution.execution_id
                )
                .unwrap();
            }
            out.flush().unwrap();
        }
    }
}

fn firer(dir: &std::ffi::OsStr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SledStore::open(dir).unwrap();
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let job = job("ACME", 0);
        store.insert_job(&job).await.unwrap();
        store
            .insert_service_account(&ServiceAccount {
                alias: "svc".into(),
                account_alias: alias("ACME"),
                description: None,
                created_time: 0,
            })
            .await
            .unwrap();
        for _ in 0..SCHEDULES {
            let every_minute = Trigger {
                kind: TriggerKind::Cron,
                expression: "* * * * *".into(),
            };
            let schedule = Schedule::new(
                alias("ACME"),
                job.id,
                "crash test".into(),
                "svc".into(),
                every_minute,
                0,
            );
            store.insert_schedule(&schedule).await.unwrap();
            let mut out = out.lock().unwrap();
            writeln!(out, "\nacked schedule {} {}", job.id, schedule.id).unwrap();
            out.flush().unwrap();
        }
        let firers: Vec<_> = (0..FIRERS)
            .map(|_| tokio::spawn(fire_until_killed(store.clone(), out.clone())))
            .collect();
        for firer in firers {
            firer.await.unwrap();
        }
    });
}

#[derive(Default)]
struct Acked {
    job: Option<JobId>,
    schedules: HashSet<ScheduleId>,
    /// Execution → (schedule, due time).
    fires: HashMap<ExecutionId, (ScheduleId, Timestamp)>,
}

impl Acked {
    /// Records one `acked ...` line; a line cut by the kill is not an acknowledgement.
    fn record(&mut self, line: &str) {
        let Some(ack) = common::after_marker(line, "acked ") else {
            return;
        };
        let words: Vec<&str> = ack.split_whitespace().collect();
        match words[..] {
            ["schedule", job, id] => {
                if let (Ok(job), Ok(id)) = (job.parse(), id.parse()) {
                    self.job = Some(job);
                    self.schedules.insert(id);
                }
            }
            ["fire", schedule, due, execution] => {
                if let (Ok(schedule), Ok(due), Ok(execution)) =
                    (schedule.parse(), due.parse(), execution.parse())
                {
                    self.fires.insert(execution, (schedule, due));
                }
            }
            _ => {}
        }
    }
}

#[test]
fn fired_schedules_survive_kill_9() {
    if let Some(dir) = std::env::var_os(FIRER_ENV) {
        firer(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::spawn_role("fired_schedules_survive_kill_9", (FIRER_ENV, dir.path()));
    let mut acked = Acked::default();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        acked.record(&line.unwrap());
        if acked.fires.len() >= FIRES_BEFORE_KILL {
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
        "the firer was killed mid-stream, not finished: {status:?}"
    );
    assert_eq!(acked.schedules.len(), SCHEDULES);
    assert!(
        acked.fires.len() >= FIRES_BEFORE_KILL,
        "only {} fires acknowledged",
        acked.fires.len()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(verify(dir.path(), &acked));
}

/// Every execution of the job, by listing (so the listing index is checked too).
async fn executions(store: &SledStore, job_id: JobId) -> Vec<Execution> {
    let mut all = Vec::new();
    for page in 0.. {
        let listed = store
            .list_executions(&alias("ACME"), job_id, PageRequest { page, size: 100 })
            .await
            .unwrap();
        if listed.results.is_empty() {
            assert_eq!(listed.total_size as usize, all.len());
            return all;
        }
        all.extend(listed.results);
    }
    unreachable!()
}

async fn schedules(store: &SledStore, job_id: JobId) -> HashMap<ScheduleId, Schedule> {
    let listed = store
        .list_schedules(&alias("ACME"), job_id, PageRequest { page: 0, size: 100 })
        .await
        .unwrap();
    assert_eq!(listed.total_size as usize, SCHEDULES);
    listed.results.into_iter().map(|s| (s.id, s)).collect()
}

/// The latest due time each schedule fired for, by its executions.
fn latest_fires(executions: &[Execution]) -> HashMap<ScheduleId, Timestamp> {
    let mut latest = HashMap::new();
    for execution in executions {
        let fire = execution.scheduled.expect("only scheduled executions");
        let at = latest.entry(fire.schedule_id).or_insert(fire.due_time);
        *at = (*at).max(fire.due_time);
    }
    latest
}

async fn verify(dir: &std::path::Path, acked: &Acked) {
    let store = SledStore::open(dir).expect("reopen after the kill");
    let acme = alias("ACME");
    let job_id = acked.job.expect("the firer stored its job");

    // Every acknowledged fire is there, PENDING, naming its schedule and due time.
    for (id, (schedule, due)) in &acked.fires {
        let stored = store
            .get_execution(&acme, job_id, *id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged execution {id} lost"));
        let fire = stored.scheduled.unwrap();
        assert_eq!((fire.schedule_id, fire.due_time), (*schedule, *due));
        assert_eq!(stored.status, Status::Pending);
    }

    // No due time fired twice before the kill.
    let before = executions(&store, job_id).await;
    let pairs: HashSet<_> = before
        .iter()
        .map(|e| {
            let fire = e.scheduled.unwrap();
            (fire.schedule_id, fire.due_time)
        })
        .collect();
    assert_eq!(pairs.len(), before.len(), "a due time fired twice");

    // Each schedule advanced exactly as far as its executions say: the fire and the advance
    // committed together (or neither did).
    let stored = schedules(&store, job_id).await;
    let latest = latest_fires(&before);
    for (id, schedule) in &stored {
        let last = latest.get(id).copied();
        assert_eq!(schedule.last_fire_time, last, "schedule {id}");
        assert_eq!(
            schedule.next_fire_time,
            Some(last.unwrap_or(0) + MINUTE),
            "schedule {id}"
        );
    }
    let earliest = stored.values().filter_map(|s| s.next_fire_time).min();
    assert_eq!(store.next_fire_time().await.unwrap(), earliest);

    // The claim queue holds exactly the fired executions (all PENDING).
    let claimable: HashSet<ExecutionId> = store
        .claim(&"verifier".to_owned(), usize::MAX / 2, i64::MAX / 2, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.execution_id)
        .collect();
    let fired: HashSet<ExecutionId> = before.iter().map(|e| e.execution_id).collect();
    assert_eq!(claimable, fired, "the claim queue matches the fires");

    // Firing again at the latest time fired before the kill creates nothing twice: only the
    // schedules the kill left behind fire, once, for that time.
    let now = *latest.values().max().expect("fires before the kill");
    let again = store.fire_due_schedules(now, 100).await.unwrap();
    for execution in &again {
        let fire = execution.scheduled.unwrap();
        assert_eq!(fire.due_time, now);
        assert!(
            latest.get(&fire.schedule_id).is_none_or(|at| *at < now),
            "schedule {} fired again for {now}",
            fire.schedule_id
        );
    }
    assert!(store.fire_due_schedules(now, 100).await.unwrap().is_empty());
    let after = executions(&store, job_id).await;
    assert_eq!(after.len(), before.len() + again.len());

    // The fired keys survived too: a schedule pointed back at a due time it fired for before the
    // kill advances without a second execution.
    let (id, _) = latest
        .iter()
        .find(|(_, at)| **at == now)
        .expect("a schedule fired at the latest time");
    let mut rewound = store
        .get_schedule(&acme, job_id, *id)
        .await
        .unwrap()
        .unwrap();
    rewound.next_fire_time = Some(now);
    store.update_schedule(&rewound).await.unwrap();
    assert!(store.fire_due_schedules(now, 100).await.unwrap().is_empty());
    let advanced = store
        .get_schedule(&acme, job_id, *id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(advanced.next_fire_time, Some(now + MINUTE));
    assert_eq!(executions(&store, job_id).await.len(), after.len());
}
