//! [`ScheduleStore`] for [`SledStore`]: writes go through the writer thread like every other
//! write (one transaction, flushed before the reply), reads follow the crate's blocking rules.

use runner_core::execution::Execution;
use runner_core::ids::{AccountAlias, JobId, ScheduleId};
use runner_core::page::{Page, PageRequest};
use runner_core::schedule::{Schedule, ServiceAccount};
use runner_core::store::{ScheduleStore, Signal, StoreError};
use runner_core::time::Timestamp;

use crate::codec::decode;
use crate::writer::{Done, Op};
use crate::{Inner, SledStore, keys, unexpected};

impl Inner {
    fn service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        self.trees
            .service_accounts
            .get(keys::service_account(alias, name))
            .map_err(StoreError::unavailable)?
            .map(|bytes| decode("service account", &bytes))
            .transpose()
    }

    fn schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<Option<Schedule>, StoreError> {
        let Some(bytes) = self
            .trees
            .schedules
            .get(keys::schedule(id))
            .map_err(StoreError::unavailable)?
        else {
            return Ok(None);
        };
        let schedule: Schedule = decode("schedule", &bytes)?;
        Ok((&schedule.account_alias == alias && schedule.job_id == job_id).then_some(schedule))
    }
}

impl ScheduleStore for SledStore {
    async fn insert_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        self.write(Op::InsertServiceAccount(account.clone()))
            .await
            .map(drop)
    }

    async fn get_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        // A point read of a cached page: inline (see "Blocking" in the crate docs).
        self.inner.service_account(alias, name)
    }

    async fn list_service_accounts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<ServiceAccount>, StoreError> {
        let alias = alias.clone();
        self.scan(move |inner| {
            let total = inner.count(&keys::service_account_count(&alias))?;
            let index = Inner::page_keys(
                &inner.trees.service_accounts_by_account,
                &keys::account_service_accounts(&alias),
                page,
            )?;
            let mut accounts = Vec::with_capacity(index.len());
            for key in index {
                let name = keys::service_account_name_at(&alias, &key).ok_or_else(|| {
                    StoreError::Corrupt("a service account index key has no name".into())
                })?;
                if let Some(account) = inner.service_account(&alias, &name)? {
                    accounts.push(account);
                }
            }
            Ok(Page::new(page, total, accounts))
        })
        .await
    }

    async fn delete_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<(), StoreError> {
        self.write(Op::DeleteServiceAccount(alias.clone(), name.to_owned()))
            .await
            .map(drop)
    }

    async fn insert_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        self.write(Op::InsertSchedule(schedule.clone()))
            .await
            .map(drop)
    }

    async fn get_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<Option<Schedule>, StoreError> {
        // A point read of a cached page: inline (see "Blocking" in the crate docs).
        self.inner.schedule(alias, job_id, id)
    }

    async fn update_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        self.write(Op::UpdateSchedule(schedule.clone()))
            .await
            .map(drop)
    }

    async fn delete_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<(), StoreError> {
        self.write(Op::DeleteSchedule(alias.clone(), job_id, id))
            .await
            .map(drop)
    }

    async fn list_schedules(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Schedule>, StoreError> {
        let alias = alias.clone();
        self.scan(move |inner| {
            let prefix = keys::job_schedules(&alias, job_id);
            // The job's list of schedule ids holds 16 bytes per schedule: its length is the count.
            let total = inner
                .trees
                .job_schedules
                .get(&prefix)
                .map_err(StoreError::unavailable)?
                .map_or(0, |ids| ids.len() / 16) as u64;
            let index = Inner::page_keys(&inner.trees.schedules_by_job, &prefix, page)?;
            let mut schedules = Vec::with_capacity(index.len());
            for key in index {
                let id = keys::schedule_id_at(&key)
                    .ok_or_else(|| StoreError::Corrupt("a schedule index key has no id".into()))?;
                if let Some(schedule) = inner.schedule(&alias, job_id, id)? {
                    schedules.push(schedule);
                }
            }
            Ok(Page::new(page, total, schedules))
        })
        .await
    }

    async fn fire_due_schedules(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        match self.write(Op::FireDue { now, limit }).await? {
            Done::Fired(created) => {
                // The write resolved after the flush: the executions are durable when engines
                // wake up to claim them.
                if !created.is_empty() {
                    self.signal(Some(Signal::Pending));
                }
                // Each was recorded with its creation event.
                for execution in &created {
                    self.signal(Some(Signal::Feed(execution.execution_id)));
                }
                Ok(created)
            }
            other => Err(unexpected(other)),
        }
    }

    async fn next_fire_time(&self) -> Result<Option<Timestamp>, StoreError> {
        // The first key of the index: inline, like `next_deadline`.
        let first = self
            .inner
            .trees
            .fire_times
            .first()
            .map_err(StoreError::unavailable)?;
        Ok(first.and_then(|(key, _)| keys::fire_time_at(&key)))
    }
}
