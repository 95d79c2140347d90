//! [`AnyStore`]: the store the command line picked, as one type the engine is generic over.

use std::path::PathBuf;
use std::str::FromStr;

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
use runner_store_memory::MemoryStore;
use tokio::sync::broadcast;

/// A store as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// `memory`: nothing survives the process.
    Memory,
    /// `sled:PATH`: a durable store in a local directory.
    Sled(PathBuf),
    /// `postgres://...` or `postgresql://...`: a shared PostgreSQL database.
    Postgres(String),
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "memory" {
            Ok(StoreSpec::Memory)
        } else if let Some(path) = text.strip_prefix("sled:") {
            if path.is_empty() {
                return Err("sled: needs a directory, e.g. sled:./runner-data".into());
            }
            Ok(StoreSpec::Sled(PathBuf::from(path)))
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(StoreSpec::Postgres(text.to_owned()))
        } else {
            Err("expected sled:PATH, postgres://... or memory".into())
        }
    }
}

impl StoreSpec {
    /// The spec for log lines: a PostgreSQL URL loses its password.
    pub fn redacted(&self) -> String {
        match self {
            StoreSpec::Memory => "memory".into(),
            StoreSpec::Sled(path) => format!("sled:{}", path.display()),
            StoreSpec::Postgres(url) => redact_url(url),
        }
    }
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "postgres://…".into();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenStoreError {
    /// The sled store failed to open.
    #[cfg(feature = "sled")]
    #[error(transparent)]
    Sled(#[from] runner_store_sled::SledStoreError),
    /// The PostgreSQL store failed to connect.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] runner_store_postgres::PgStoreError),
    /// This binary was built without that backend.
    #[error("this runner was built without the {0} store (cargo feature `{0}`)")]
    NotBuilt(&'static str),
}

/// One of the stores, chosen at run time; every [`Store`] and [`ScheduleStore`] method delegates
/// to it.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// In memory (boxed: it is far larger than the handle-sized others).
    Memory(Box<MemoryStore>),
    /// sled.
    #[cfg(feature = "sled")]
    Sled(runner_store_sled::SledStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(runner_store_postgres::PgStore),
}

impl AnyStore {
    /// Opens the store `spec` names.
    pub async fn open(spec: &StoreSpec) -> Result<Self, OpenStoreError> {
        match spec {
            StoreSpec::Memory => Ok(AnyStore::Memory(Box::new(MemoryStore::new()))),
            #[cfg(feature = "sled")]
            StoreSpec::Sled(path) => Ok(AnyStore::Sled(runner_store_sled::SledStore::open(path)?)),
            #[cfg(not(feature = "sled"))]
            StoreSpec::Sled(_) => Err(OpenStoreError::NotBuilt("sled")),
            #[cfg(feature = "postgres")]
            StoreSpec::Postgres(url) => Ok(AnyStore::Postgres(
                runner_store_postgres::PgStore::connect(url).await?,
            )),
            #[cfg(not(feature = "postgres"))]
            StoreSpec::Postgres(_) => Err(OpenStoreError::NotBuilt("postgres")),
        }
    }
}

/// Calls the same method on whichever store this is.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call,
            #[cfg(feature = "sled")]
            AnyStore::Sled($store) => $call,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($store) => $call,
        }
    };
}

impl Store for AnyStore {
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        delegate!(self, store => store.insert_job(job).await)
    }

    async fn get_job(&self, alias: &AccountAlias, id: JobId) -> Result<Option<Job>, StoreError> {
        delegate!(self, store => store.get_job(alias, id).await)
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        delegate!(self, store => store.update_job(job).await)
    }

    async fn delete_job(&self, alias: &AccountAlias, id: JobId) -> Result<(), StoreError> {
        delegate!(self, store => store.delete_job(alias, id).await)
    }

    async fn list_jobs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        delegate!(self, store => store.list_jobs(alias, page).await)
    }

    async fn insert_execution(&self, execution: &Execution) -> Result<(), StoreError> {
        delegate!(self, store => store.insert_execution(execution).await)
    }

    async fn get_execution(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
    ) -> Result<Option<Execution>, StoreError> {
        delegate!(self, store => store.get_execution(alias, job_id, id).await)
    }

    async fn list_executions(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        delegate!(self, store => store.list_executions(alias, job_id, page).await)
    }

    async fn transition(
        &self,
        id: ExecutionId,
        command: &Command,
        now: Timestamp,
    ) -> Result<Execution, StoreError> {
        delegate!(self, store => store.transition(id, command, now).await)
    }

    async fn claim(
        &self,
        node: &NodeId,
        limit: usize,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Execution>, StoreError> {
        delegate!(self, store => store.claim(node, limit, lease_until, now).await)
    }

    async fn start_execution<F>(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        make: F,
    ) -> Result<Execution, StoreError>
    where
        F: FnMut(&Job) -> Execution + Send,
    {
        delegate!(self, store => store.start_execution(alias, job_id, make).await)
    }

    async fn job_to_run(&self, execution: &Execution) -> Result<Option<Job>, StoreError> {
        delegate!(self, store => store.job_to_run(execution).await)
    }

    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<Execution>, StoreError> {
        delegate!(self, store => store.due(now, limit).await)
    }

    async fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        delegate!(self, store => store.next_deadline().await)
    }

    fn subscribe(&self) -> broadcast::Receiver<Signal> {
        delegate!(self, store => store.subscribe())
    }

    async fn append_events(
        &self,
        id: ExecutionId,
        attempt: u32,
        events: &[ExecutorEvent],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        delegate!(self, store => store.append_events(id, attempt, events, now).await)
    }

    async fn list_events(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        delegate!(self, store => store.list_events(alias, job_id, id, after, limit).await)
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        delegate!(self, store => store.claim_deliveries(now, hold_until, limit).await)
    }

    async fn settle_delivery(
        &self,
        key: &DeliveryKey,
        settlement: &Settlement,
    ) -> Result<(), StoreError> {
        delegate!(self, store => store.settle_delivery(key, settlement).await)
    }

    async fn next_delivery_at(&self) -> Result<Option<Timestamp>, StoreError> {
        delegate!(self, store => store.next_delivery_at().await)
    }
}

impl ScheduleStore for AnyStore {
    async fn insert_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        delegate!(self, store => store.insert_service_account(account).await)
    }

    async fn get_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        delegate!(self, store => store.get_service_account(alias, name).await)
    }

    async fn list_service_accounts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<ServiceAccount>, StoreError> {
        delegate!(self, store => store.list_service_accounts(alias, page).await)
    }

    async fn delete_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<(), StoreError> {
        delegate!(self, store => store.delete_service_account(alias, name).await)
    }

    async fn insert_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        delegate!(self, store => store.insert_schedule(schedule).await)
    }

    async fn get_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<Option<Schedule>, StoreError> {
        delegate!(self, store => store.get_schedule(alias, job_id, id).await)
    }

    async fn update_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        delegate!(self, store => store.update_schedule(schedule).await)
    }

    async fn delete_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<(), StoreError> {
        delegate!(self, store => store.delete_schedule(alias, job_id, id).await)
    }

    async fn list_schedules(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Schedule>, StoreError> {
        delegate!(self, store => store.list_schedules(alias, job_id, page).await)
    }

    async fn fire_due_schedules(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        delegate!(self, store => store.fire_due_schedules(now, limit).await)
    }

    async fn next_fire_time(&self) -> Result<Option<Timestamp>, StoreError> {
        delegate!(self, store => store.next_fire_time().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_specs() {
        assert_eq!("memory".parse(), Ok(StoreSpec::Memory));
        assert_eq!(
            "sled:/var/lib/runner".parse(),
            Ok(StoreSpec::Sled(PathBuf::from("/var/lib/runner")))
        );
        assert!(matches!(
            "postgres://u:p@localhost/db".parse::<StoreSpec>(),
            Ok(StoreSpec::Postgres(_))
        ));
        assert!("sled:".parse::<StoreSpec>().is_err());
        assert!("mysql://x".parse::<StoreSpec>().is_err());
    }

    #[test]
    fn postgres_password_is_redacted() {
        let spec: StoreSpec = "postgres://runner:hunter2@db:5432/runner".parse().unwrap();
        let shown = spec.redacted();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, "postgres://runner:***@db:5432/runner");
    }
}
