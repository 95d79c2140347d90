//! The Job Service operations, as the HTTP layer (or an embedding program) calls them.
//!
//! Each operation validates its input, reads what it needs from the store, and changes
//! executions only through [`ExecutionStore::transition`](crate::store::ExecutionStore::transition) (so through the state machine table).

use std::time::Duration;

use serde::Deserialize;

use super::error::EngineError;
use super::handle::Engine;
use crate::execution::Execution;
use crate::executor::Executor;
use crate::feed::{Event, GivenUpDelivery};
use crate::ids::{AccountAlias, ExecutionId, JobId};
use crate::job::{Host, Job, JobSpec, check_key, check_one_key, validate_hosts};
use crate::launch::LaunchOptions;
use crate::machine::Command;
use crate::notifier::Notifier;
use crate::page::{Page, PageRequest};
use crate::search::ExecutionFilter;
use crate::secret::Secret;
use crate::store::Store;
use crate::time::{Clock, after};
use crate::validation::ValidationErrors;

/// The body of a start or restart request: optional hosts and a default SSH key; for a start,
/// the launch options too.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StartRequest {
    /// For start: replaces the job's hosts for this execution. For restart: the hosts to run on
    /// instead of the failed ones.
    #[serde(default)]
    pub hosts: Option<Vec<Host>>,
    /// A default SSH private key (base64) for this execution.
    #[serde(default)]
    pub ssh_private_key: Option<Secret>,
    /// The key pair of the account to use as the default SSH key instead of `sshPrivateKey`.
    #[serde(default)]
    #[cfg_attr(
        feature = "utoipa",
        schema(max_length = 64, pattern = "^[A-Za-z0-9._-]+$")
    )]
    pub ssh_key_pair: Option<String>,
    /// Start only: extra variables merged over the job's `properties` for this execution.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<Object>))]
    pub properties: Option<serde_json::Map<String, serde_json::Value>>,
    /// Start only: run only the tasks with these tags, instead of the job's `playbookTags`.
    #[serde(default)]
    pub playbook_tags: Option<Vec<String>>,
    /// Start only: skip the tasks with these tags.
    #[serde(default)]
    pub skip_tags: Option<Vec<String>>,
    /// Start only: run only on these hosts or groups (ansible host patterns).
    #[serde(default)]
    pub limit: Option<Vec<String>>,
    /// Start only: ansible's check mode (report what would change, change nothing).
    #[serde(default)]
    pub check: Option<bool>,
    /// Start only: show the differences of what tasks change.
    #[serde(default)]
    pub diff: Option<bool>,
}

/// The body of a restart request: the hosts to run on instead of the failed ones, and a
/// default SSH key. A restart takes no launch options: it runs with those of the execution's
/// start.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RestartRequest {
    /// The hosts to run on instead of the failed ones.
    #[serde(default)]
    pub hosts: Option<Vec<Host>>,
    /// A default SSH private key (base64) for this run.
    #[serde(default)]
    pub ssh_private_key: Option<Secret>,
    /// The key pair of the account to use as the default SSH key instead of `sshPrivateKey`.
    #[serde(default)]
    pub ssh_key_pair: Option<String>,
}

impl From<RestartRequest> for StartRequest {
    fn from(request: RestartRequest) -> Self {
        Self {
            hosts: request.hosts,
            ssh_private_key: request.ssh_private_key,
            ssh_key_pair: request.ssh_key_pair,
            ..Self::default()
        }
    }
}

impl StartRequest {
    /// The launch options the request gives (see [`LaunchOptions`]).
    pub fn launch_options(&self) -> LaunchOptions {
        LaunchOptions {
            properties: self.properties.clone(),
            playbook_tags: self.playbook_tags.clone(),
            skip_tags: self.skip_tags.clone(),
            limit: self.limit.clone(),
            check: self.check.unwrap_or(false),
            diff: self.diff.unwrap_or(false),
        }
    }

    /// A restart runs with the options of the execution's launch: it takes none of its own.
    fn refuse_launch_options(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        for (field, given) in [
            ("properties", self.properties.is_some()),
            ("playbookTags", self.playbook_tags.is_some()),
            ("skipTags", self.skip_tags.is_some()),
            ("limit", self.limit.is_some()),
            ("check", self.check.is_some()),
            ("diff", self.diff.is_some()),
        ] {
            errors.check(
                !given,
                field,
                "is a start option: a restart runs with the options of the execution's start",
            );
        }
        errors.into_result()
    }

    /// The fields that send the mask back: a start or restart has no stored secret to keep.
    fn unkept_masks(&self) -> Result<(), EngineError> {
        let spec = JobSpec {
            ssh_private_key: self.ssh_private_key.clone(),
            hosts: self.hosts.clone(),
            ..JobSpec::default()
        };
        spec.unkept_masks(None)
            .into_result()
            .map_err(EngineError::Missing)
    }

    /// Checks every rule of the request that needs no store: launch options, hosts, the key.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        self.launch_options().validate("", &mut errors);
        if let Some(hosts) = &self.hosts {
            validate_hosts(hosts, "hosts", &mut errors);
        }
        check_key(self.ssh_private_key.as_ref(), "sshPrivateKey", &mut errors);
        check_one_key(
            self.ssh_private_key.as_ref(),
            self.ssh_key_pair.as_deref(),
            "",
            &mut errors,
        );
        errors.into_result()
    }
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> Engine<S, E, N, C> {
    /// Validates `spec` (the job's own rules and the executor's) and stores a new job.
    pub async fn create_job(
        &self,
        alias: &AccountAlias,
        spec: JobSpec,
    ) -> Result<Job, EngineError> {
        self.validate_spec(&spec)?;
        spec.unkept_masks(None)
            .into_result()
            .map_err(EngineError::Missing)?;
        self.check_key_pairs(alias, Some(&spec), None).await?;
        let job = Job::new(alias.clone(), spec, self.inner.clock.now());
        self.inner.store.insert_job(&job).await?;
        Ok(job)
    }

    /// A job of `alias`.
    pub async fn get_job(&self, alias: &AccountAlias, id: JobId) -> Result<Job, EngineError> {
        self.inner
            .store
            .get_job(alias, id)
            .await?
            .ok_or(EngineError::NotFound)
    }

    /// Replaces a job's definition; masked secrets sent back keep their stored values.
    pub async fn update_job(
        &self,
        alias: &AccountAlias,
        id: JobId,
        spec: JobSpec,
    ) -> Result<Job, EngineError> {
        let mut job = self.get_job(alias, id).await?;
        spec.unkept_masks(Some(&job.spec))
            .into_result()
            .map_err(EngineError::Missing)?;
        job.update(spec, self.inner.clock.now());
        self.validate_spec(&job.spec)?;
        self.check_key_pairs(alias, Some(&job.spec), None).await?;
        self.inner.store.update_job(&job).await?;
        Ok(job)
    }

    /// Deletes a job; refused (409) while one of its executions has not ended.
    pub async fn delete_job(&self, alias: &AccountAlias, id: JobId) -> Result<(), EngineError> {
        Ok(self.inner.store.delete_job(alias, id).await?)
    }

    /// A page of the account's jobs, newest first.
    pub async fn list_jobs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<Job>, EngineError> {
        Ok(self.inner.store.list_jobs(alias, page).await?)
    }

    /// Starts a new execution of a job (PENDING until a node claims it).
    pub async fn start_job(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        request: StartRequest,
    ) -> Result<Execution, EngineError> {
        request.validate()?;
        request.unkept_masks()?;
        let (hosts, key_pair) = (request.hosts.as_deref(), request.ssh_key_pair.as_deref());
        self.check_request_key_pairs(alias, hosts, key_pair).await?;
        let now = self.inner.clock.now();
        let execution = self
            .inner
            .store
            .start_execution(alias, job_id, |job| {
                let mut execution = Execution::new(
                    job,
                    request.hosts.clone(),
                    request.ssh_private_key.clone(),
                    now,
                );
                execution.ssh_key_pair = request.ssh_key_pair.clone();
                execution.launch = request.launch_options();
                execution
            })
            .await?;
        self.notify_status(&execution).await;
        Ok(execution)
    }

    /// One execution of a job of `alias`.
    pub async fn get_execution(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
    ) -> Result<Execution, EngineError> {
        self.inner
            .store
            .get_execution(alias, job_id, id)
            .await?
            .ok_or(EngineError::NotFound)
    }

    /// A page of a job's executions, newest first.
    pub async fn list_executions(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Execution>, EngineError> {
        Ok(self
            .inner
            .store
            .list_executions(alias, job_id, page)
            .await?)
    }

    /// A page of the account's executions that pass `filter`, across its jobs, newest first
    /// (see [`ExecutionStore::find_executions`](crate::store::ExecutionStore::find_executions)).
    pub async fn find_executions(
        &self,
        alias: &AccountAlias,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> Result<Page<Execution>, EngineError> {
        Ok(self
            .inner
            .store
            .find_executions(alias, filter, page)
            .await?)
    }

    /// Up to `limit` events of an execution's feed with a sequence number above `after`, in
    /// order: page through a feed by passing the last sequence number seen.
    pub async fn list_events(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, EngineError> {
        Ok(self
            .inner
            .store
            .list_events(alias, job_id, id, after, limit)
            .await?)
    }

    /// A page of the webhook deliveries of an execution that were given up on, in (callback,
    /// sequence) order; [`EngineError::NotFound`] when there is no such execution of the job in
    /// the account (or retention purged it).
    pub async fn given_up_deliveries(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        page: PageRequest,
    ) -> Result<Page<GivenUpDelivery>, EngineError> {
        self.get_execution(alias, job_id, id).await?;
        Ok(self.inner.store.given_up_deliveries(id, page).await?)
    }

    /// A page of the run log of an attempt of an execution (the latest if `read.attempt` is
    /// `None`); see [`crate::run_log`].
    pub async fn read_log(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        read: crate::store::LogRead,
    ) -> Result<crate::run_log::LogPage, EngineError> {
        Ok(self.inner.store.read_log(alias, job_id, id, read).await?)
    }

    /// Asks for a graceful stop. With `expiry` above zero, the stop escalates to a kill when the
    /// execution has not stopped that long after the request.
    pub async fn stop(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        expiry: Duration,
    ) -> Result<Execution, EngineError> {
        let escalate_at = self.deadline_after(expiry);
        self.command(alias, job_id, id, Command::Stop { escalate_at })
            .await
    }

    /// Asks for a kill. With `expiry` above zero, the execution is marked KILLED when no node
    /// confirmed the kill that long after the request.
    pub async fn kill(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        expiry: Duration,
    ) -> Result<Execution, EngineError> {
        let force_at = self.deadline_after(expiry);
        self.command(alias, job_id, id, Command::Kill { force_at })
            .await
    }

    /// Runs a FAILURE execution again, against its failed hosts or the hosts given.
    pub async fn restart(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        request: StartRequest,
    ) -> Result<Execution, EngineError> {
        request.refuse_launch_options()?;
        request.validate()?;
        request.unkept_masks()?;
        let (hosts, key_pair) = (request.hosts.as_deref(), request.ssh_key_pair.as_deref());
        self.check_request_key_pairs(alias, hosts, key_pair).await?;
        let command = Command::Restart {
            hosts: request.hosts,
            ssh_private_key: request.ssh_private_key,
            ssh_key_pair: request.ssh_key_pair,
        };
        self.command(alias, job_id, id, command).await
    }

    async fn command(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        command: Command,
    ) -> Result<Execution, EngineError> {
        let before = self.get_execution(alias, job_id, id).await?;
        let now = self.inner.clock.now();
        let after = self.inner.store.transition(id, &command, now).await?;
        if after.status != before.status {
            self.notify_status(&after).await;
        }
        Ok(after)
    }

    fn deadline_after(&self, expiry: Duration) -> Option<crate::time::Timestamp> {
        (!expiry.is_zero()).then(|| after(self.inner.clock.now(), expiry))
    }

    fn validate_spec(&self, spec: &JobSpec) -> Result<(), ValidationErrors> {
        let mut errors = spec.validate().err().unwrap_or_default();
        if let Err(more) = self.inner.executor.validate(spec) {
            errors.errors.extend(more.errors);
        }
        errors.into_result()
    }
}
