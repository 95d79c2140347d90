//! [`ScheduleStore`] for [`SledStore`]: writes go through the writer thread like every other
//! write (one transaction, flushed before the reply), reads follow the crate's blocking rules.

use runner_core::execution::Execution;
use runner_core::ids::{AccountAlias, JobId, ScheduleId};
use runner_core::page::{Page, PageRequest};
use runner_core::schedule::{Schedule, ServiceAccount};
use runner_core::store::{ScheduleStore, Signal, StoreError};
use runner_core::time::Timestamp;

use crate::SledStore;
use crate::keys;
use crate::schedules::{
    DeleteSchedule, DeleteServiceAccount, FireDue, InsertSchedule, InsertServiceAccount,
    UpdateSchedule,
};
use crate::trees::page_keys;

impl ScheduleStore for SledStore {
    async fn insert_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        self.write(InsertServiceAccount(account.clone())).await
    }

    async fn get_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        // A point read of a cached page: inline (see "Blocking" in the crate docs).
        self.inner.trees.service_account(alias, name)
    }

    async fn list_service_accounts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<ServiceAccount>, StoreError> {
        let alias = alias.clone();
        self.scan(move |inner| {
            let total = inner.trees.count(&keys::service_account_count(&alias))?;
            let index = page_keys(
                &inner.trees.service_accounts_by_account,
                &keys::account_service_accounts(&alias),
                page,
            )?;
            let mut accounts = Vec::with_capacity(index.len());
            for key in index {
                let name = keys::service_account_name_at(&alias, &key).ok_or_else(|| {
                    StoreError::Corrupt("a service account index key has no name".into())
                })?;
                if let Some(account) = inner.trees.service_account(&alias, &name)? {
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
        self.write(DeleteServiceAccount {
            alias: alias.clone(),
            name: name.to_owned(),
        })
        .await
    }

    async fn insert_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        self.write(InsertSchedule(schedule.clone())).await
    }

    async fn get_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<Option<Schedule>, StoreError> {
        // A point read of a cached page: inline (see "Blocking" in the crate docs).
        self.inner.trees.schedule(alias, job_id, id)
    }

    async fn update_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        self.write(UpdateSchedule(schedule.clone())).await
    }

    async fn delete_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<(), StoreError> {
        self.write(DeleteSchedule {
            alias: alias.clone(),
            job_id,
            id,
        })
        .await
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
            let index = page_keys(&inner.trees.schedules_by_job, &prefix, page)?;
            let mut schedules = Vec::with_capacity(index.len());
            for key in index {
                let id = keys::schedule_id_at(&key)
                    .ok_or_else(|| StoreError::Corrupt("a schedule index key has no id".into()))?;
                if let Some(schedule) = inner.trees.schedule(&alias, job_id, id)? {
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
        let created = self.write(FireDue { now, limit }).await?;
        // The write resolved after the flush: the executions are durable when engines wake up
        // to claim them.
        if !created.is_empty() {
            self.signal(Some(Signal::Pending));
        }
        // Each was recorded with its creation event.
        for execution in &created {
            self.signal(Some(Signal::Feed(execution.execution_id)));
        }
        Ok(created)
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
