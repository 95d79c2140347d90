//! A chatty run costs few store writes: the worker gathers what its executor reports and writes
//! the output and the events of a batch in one write each, however they interleave.
//!
//! The store here counts the writes of the feed and the run log; everything else is the memory
//! store's. The executor reports a loop of items as ansible does (an event and a line of output
//! per item) all at once, so the test does not depend on timing: every item is waiting before
//! the worker looks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use runner_core::engine::{Engine, EngineSignal, StartRequest};
use runner_core::execution::{Outcome, RunReport, Status};
use runner_core::executor::{
    Cancellation, EventKind as Reported, EventSink, Executor, ExecutorEvent, Run,
};
use runner_core::feed::{Event, EventKind};
use runner_core::ids::{AccountAlias, ExecutionId, JobId};
use runner_core::run_log::{LogCap, LogPage};
use runner_core::store::prelude::*;
use runner_core::store::{LogRead, StoreError};
use runner_core::testkit::fixtures::{alias, inline_spec};
use runner_core::time::{MockClock, Timestamp};
use runner_store_memory::MemoryStore;

const ITEMS: usize = 200;

/// The memory store, counting the appends of events and output.
struct Counting {
    store: MemoryStore,
    event_writes: AtomicUsize,
    log_writes: AtomicUsize,
}

runner_core::forward_store!(impl[] for Counting => MemoryStore, |this| &this.store;
    JobStore, ExecutionStore, ClaimStore, OutboxStore, SignalSource, KeyPairStore, InventoryStore,
    RetentionStore);

impl FeedStore for Counting {
    async fn append_events(
        &self,
        id: ExecutionId,
        attempt: u32,
        events: &[ExecutorEvent],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.event_writes.fetch_add(1, Ordering::SeqCst);
        self.store.append_events(id, attempt, events, now).await
    }

    async fn list_events(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.store
            .list_events(alias, job_id, id, after, limit)
            .await
    }
}

impl RunLogStore for Counting {
    async fn append_log(
        &self,
        id: ExecutionId,
        attempt: u32,
        chunk: &[u8],
        cap: LogCap,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.log_writes.fetch_add(1, Ordering::SeqCst);
        self.store.append_log(id, attempt, chunk, cap, now).await
    }

    async fn read_log(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        read: LogRead,
    ) -> Result<LogPage, StoreError> {
        self.store.read_log(alias, job_id, id, read).await
    }
}

/// Reports a loop of [`ITEMS`] items, each an event and a line of output, and succeeds.
#[derive(Debug, Clone)]
struct Chatty;

impl Executor for Chatty {
    async fn run(&self, _run: Run, events: EventSink, _cancel: Cancellation) -> RunReport {
        events.workspace_ready();
        for item in 0..ITEMS {
            let mut event = ExecutorEvent::new(Reported::HostOk);
            event.host = Some("a".into());
            event.task = Some(format!("item {item}"));
            events.emit(event);
            events.log(format!("ok: [a] => (item={item})\n").into_bytes());
        }
        RunReport::new(Outcome::Succeeded)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_of_items_is_written_in_a_few_batches_in_order() {
    let store = Arc::new(Counting {
        store: MemoryStore::new(),
        event_writes: AtomicUsize::new(0),
        log_writes: AtomicUsize::new(0),
    });
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .executor(Chatty)
        .clock(MockClock::at(1_000_000))
        .test_signals()
        .build();
    let mut probe = engine.probe();
    let acme = alias("ACME");
    let job = engine.create_job(&acme, inline_spec(&["a"])).await.unwrap();
    let execution = engine
        .start_job(&acme, job.id, StartRequest::default())
        .await
        .unwrap();
    let running = engine.clone().start();
    let id = execution.execution_id;
    // A bound so a broken engine fails the test instead of hanging CI; not a timing assertion.
    tokio::time::timeout(
        Duration::from_secs(60),
        probe.wait_for(EngineSignal::Finished(id)),
    )
    .await
    .expect("the run never finished");

    let done = engine.get_execution(&acme, job.id, id).await.unwrap();
    assert_eq!(done.status, Status::Success);
    let feed = engine
        .list_events(&acme, job.id, id, 0, 10 * ITEMS)
        .await
        .unwrap();
    let items: Vec<String> = feed
        .iter()
        .filter(|event| event.kind == EventKind::Executor(Reported::HostOk))
        .map(|event| event.task.clone().unwrap())
        .collect();
    let expected: Vec<String> = (0..ITEMS).map(|item| format!("item {item}")).collect();
    assert_eq!(items, expected, "every item, in order");
    let log = engine
        .read_log(
            &acme,
            job.id,
            id,
            LogRead {
                attempt: None,
                offset: 0,
                limit: 1 << 20,
            },
        )
        .await
        .unwrap();
    let expected_log: String = (0..ITEMS)
        .map(|item| format!("ok: [a] => (item={item})\n"))
        .collect();
    assert_eq!(String::from_utf8(log.data).unwrap(), expected_log);

    // Written one by one, the items would cost 2 * ITEMS writes.
    let event_writes = store.event_writes.load(Ordering::SeqCst);
    let log_writes = store.log_writes.load(Ordering::SeqCst);
    assert!(
        event_writes <= 2 && log_writes <= 2,
        "{event_writes} event writes and {log_writes} log writes for {ITEMS} items"
    );
    running.shutdown().await;
}
