//! A sled store in a temporary directory that lives as long as the store.

#![allow(dead_code)]

use runner_core::execution::Execution;
use runner_core::executor::ExecutorEvent;
use runner_core::feed::{Delivery, DeliveryKey, Event, Settlement};
use runner_core::ids::{AccountAlias, ExecutionId, JobId, NodeId, ScheduleId};
use runner_core::job::Job;
use runner_core::machine::Command;
use runner_core::page::{Page, PageRequest};
use runner_core::schedule::{Schedule, ServiceAccount};
use runner_core::store::{ScheduleStore, Signal, Store, StoreError};
use runner_core::time::Timestamp;
use runner_store_sled::SledStore;
use tokio::sync::broadcast;

/// A [`SledStore`] whose data directory is removed when it is dropped.
pub struct TempStore {
    // Declared first: the store (and its lock) close before the directory is removed.
    pub store: SledStore,
    pub dir: tempfile::TempDir,
}

impl TempStore {
    /// A fresh store in a new temporary directory.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SledStore::open(dir.path()).expect("open a fresh sled store");
        Self { store, dir }
    }
}

impl Store for TempStore {
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        self.store.insert_job(job).await
    }
    async fn get_job(&self, alias: &AccountAlias, id: JobId) -> Result<Option<Job>, StoreError> {
        self.store.get_job(alias, id).await
    }
    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        self.store.update_job(job).await
    }
    async fn delete_job(&self, alias: &AccountAlias, id: JobId) -> Result<(), StoreError> {
        self.store.delete_job(alias, id).await
    }
    async fn list_jobs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        self.store.list_jobs(alias, page).await
    }
    async fn insert_execution(&self, execution: &Execution) -> Result<(), StoreError> {
        self.store.insert_execution(execution).await
    }
    async fn get_execution(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
    ) -> Result<Option<Execution>, StoreError> {
        self.store.get_execution(alias, job_id, id).await
    }
    async fn list_executions(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        self.store.list_executions(alias, job_id, page).await
    }
    async fn transition(
        &self,
        id: ExecutionId,
        command: &Command,
        now: Timestamp,
    ) -> Result<Execution, StoreError> {
        self.store.transition(id, command, now).await
    }
    async fn claim(
        &self,
        node: &NodeId,
        limit: usize,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Execution>, StoreError> {
        self.store.claim(node, limit, lease_until, now).await
    }
    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<Execution>, StoreError> {
        self.store.due(now, limit).await
    }
    async fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        self.store.next_deadline().await
    }
    fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.store.subscribe()
    }
    async fn append_events(
        &self,
        id: ExecutionId,
        attempt: u32,
        events: &[ExecutorEvent],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
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
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.store.claim_deliveries(now, hold_until, limit).await
    }
    async fn settle_delivery(
        &self,
        key: &DeliveryKey,
        settlement: &Settlement,
    ) -> Result<(), StoreError> {
        self.store.settle_delivery(key, settlement).await
    }
    async fn next_delivery_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.store.next_delivery_at().await
    }
}

impl ScheduleStore for TempStore {
    async fn insert_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        self.store.insert_service_account(account).await
    }
    async fn get_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        self.store.get_service_account(alias, name).await
    }
    async fn list_service_accounts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<ServiceAccount>, StoreError> {
        self.store.list_service_accounts(alias, page).await
    }
    async fn delete_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<(), StoreError> {
        self.store.delete_service_account(alias, name).await
    }
    async fn insert_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        self.store.insert_schedule(schedule).await
    }
    async fn get_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<Option<Schedule>, StoreError> {
        self.store.get_schedule(alias, job_id, id).await
    }
    async fn update_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        self.store.update_schedule(schedule).await
    }
    async fn delete_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<(), StoreError> {
        self.store.delete_schedule(alias, job_id, id).await
    }
    async fn list_schedules(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Schedule>, StoreError> {
        self.store.list_schedules(alias, job_id, page).await
    }
    async fn fire_due_schedules(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        self.store.fire_due_schedules(now, limit).await
    }
    async fn next_fire_time(&self) -> Result<Option<Timestamp>, StoreError> {
        self.store.next_fire_time().await
    }
}

/// Starts this test binary again, running only `test`, with `env` set so that the test plays a
/// role (a writer to kill, a lock holder) instead of its assertions. Its stdout is piped.
pub fn spawn_role(test: &str, env: (&str, &std::path::Path)) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().expect("test binary path"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn the test binary")
}

/// The part of a child's output line after `marker`, if the line has it (libtest may print its
/// own text on the same line).
pub fn after_marker<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|at| &line[at + marker.len()..])
}
