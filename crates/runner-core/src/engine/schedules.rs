//! The Job Schedule Service operations, and the scheduler loop that fires due schedules.

use super::error::EngineError;
use super::handle::Engine;
use super::running::RunningEngine;
use super::signals::EngineSignal;
use crate::executor::Executor;
use crate::ids::{AccountAlias, JobId, ScheduleId};
use crate::notifier::Notifier;
use crate::page::{Page, PageRequest};
use crate::schedule::{Schedule, ScheduleSpec, ServiceAccount, ServiceAccountSpec};
use crate::store::{ScheduleStore, StoreError};
use crate::time::{Clock, after};
use crate::validation::{FieldError, ValidationErrors};

/// How many due schedules the scheduler fires per store call.
const FIRE_BATCH: usize = 100;

impl<S: ScheduleStore, E: Executor, N: Notifier, C: Clock> Engine<S, E, N, C> {
    /// Creates a service account of `alias`; 409 if the name is taken.
    pub async fn create_service_account(
        &self,
        alias: &AccountAlias,
        spec: ServiceAccountSpec,
    ) -> Result<ServiceAccount, EngineError> {
        spec.validate()?;
        let account = ServiceAccount {
            alias: spec.alias.unwrap_or_default(),
            account_alias: alias.clone(),
            description: spec.description,
            created_time: self.inner.clock.now(),
        };
        self.inner.store.insert_service_account(&account).await?;
        Ok(account)
    }

    /// One service account of `alias`.
    pub async fn get_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<ServiceAccount, EngineError> {
        self.inner
            .store
            .get_service_account(alias, name)
            .await?
            .ok_or(EngineError::NotFound)
    }

    /// A page of the account's service accounts, newest first.
    pub async fn list_service_accounts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<ServiceAccount>, EngineError> {
        Ok(self.inner.store.list_service_accounts(alias, page).await?)
    }

    /// Deletes a service account; 409 while a schedule uses it.
    pub async fn delete_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<(), EngineError> {
        Ok(self.inner.store.delete_service_account(alias, name).await?)
    }

    /// Creates a schedule of a job; [`EngineError::Missing`] when its service account does not
    /// exist.
    pub async fn create_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        spec: ScheduleSpec,
    ) -> Result<Schedule, EngineError> {
        let now = self.inner.clock.now();
        let trigger = spec.validate(now)?;
        self.get_job(alias, job_id).await?;
        let mut schedule = Schedule::new(
            alias.clone(),
            job_id,
            spec.description.unwrap_or_default(),
            spec.service_account_alias.unwrap_or_default(),
            trigger,
            now,
        );
        schedule.launch_options = spec.launch_options.unwrap_or_default();
        self.require_service_account(&schedule).await?;
        self.inner
            .store
            .insert_schedule(&schedule)
            .await
            .map_err(missing_service_account)?;
        Ok(schedule)
    }

    /// Replaces a schedule's description, service account, trigger and launch options.
    pub async fn update_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
        spec: ScheduleSpec,
    ) -> Result<Schedule, EngineError> {
        let now = self.inner.clock.now();
        let trigger = spec.validate(now)?;
        let mut schedule = self.get_schedule(alias, job_id, id).await?;
        schedule.update(
            spec.description.unwrap_or_default(),
            spec.service_account_alias.unwrap_or_default(),
            trigger,
            now,
        );
        schedule.launch_options = spec.launch_options.unwrap_or_default();
        self.require_service_account(&schedule).await?;
        self.inner
            .store
            .update_schedule(&schedule)
            .await
            .map_err(missing_service_account)?;
        Ok(schedule)
    }

    /// One schedule of a job of `alias`.
    pub async fn get_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<Schedule, EngineError> {
        self.inner
            .store
            .get_schedule(alias, job_id, id)
            .await?
            .ok_or(EngineError::NotFound)
    }

    /// Deletes a schedule.
    pub async fn delete_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> Result<(), EngineError> {
        Ok(self.inner.store.delete_schedule(alias, job_id, id).await?)
    }

    /// A page of a job's schedules, newest first; 404 if the job does not exist.
    pub async fn list_schedules(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Schedule>, EngineError> {
        self.get_job(alias, job_id).await?;
        Ok(self.inner.store.list_schedules(alias, job_id, page).await?)
    }

    async fn require_service_account(&self, schedule: &Schedule) -> Result<(), EngineError> {
        let found = self
            .inner
            .store
            .get_service_account(&schedule.account_alias, &schedule.service_account_alias)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(unknown_service_account(&schedule.service_account_alias)),
        }
    }
}

fn unknown_service_account(name: &str) -> EngineError {
    EngineError::Missing(ValidationErrors::from(FieldError::new(
        "serviceAccountAlias",
        format!("service account {name:?} does not exist; create it under /serviceAccounts first"),
    )))
}

/// The store re-checks the service account atomically; it reports a vanished one as a conflict,
/// which the client sees as the same answer as a missing one.
fn missing_service_account(error: StoreError) -> EngineError {
    match error {
        StoreError::Conflict(message) if message.contains("service account") => {
            EngineError::Missing(ValidationErrors::from(FieldError::new(
                "serviceAccountAlias",
                message,
            )))
        }
        other => other.into(),
    }
}

impl<S: ScheduleStore, E: Executor, N: Notifier, C: Clock> RunningEngine<S, E, N, C> {
    /// Also fires due schedules on this node. Several nodes may do so on one store: each due time
    /// still creates one execution.
    pub fn with_scheduler(mut self) -> Self {
        self.tasks.spawn(scheduler(self.engine.clone()));
        self
    }
}

async fn scheduler<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    engine: Engine<S, E, N, C>,
) {
    let inner = &engine.inner;
    loop {
        let now = inner.clock.now();
        let fired = match inner.store.fire_due_schedules(now, FIRE_BATCH).await {
            Ok(created) => created,
            Err(error) => {
                tracing::warn!(%error, "firing due schedules failed; retrying");
                Vec::new()
            }
        };
        crate::meter::schedules_fired(fired.len());
        for execution in &fired {
            tracing::info!(
                execution_id = %execution.execution_id,
                job_id = %execution.job_id,
                account_alias = %execution.account_alias,
                "schedule fired"
            );
            engine.notify_status(execution).await;
            inner
                .signals
                .send(EngineSignal::ScheduleFired(execution.execution_id));
        }
        if fired.len() == FIRE_BATCH {
            continue;
        }
        let poll_at = after(now, inner.config.poll_interval);
        let wake_at = match inner.store.next_fire_time().await {
            // A fire time at or before `now` that fired nothing would spin: wait for the poll.
            Ok(Some(next)) if next > now => next.min(poll_at),
            _ => poll_at,
        };
        inner.clock.sleep_until(wake_at).await;
    }
}
