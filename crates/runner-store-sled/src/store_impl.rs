//! The role traits of [`runner_core::store`] for [`SledStore`]: writes go through the writer
//! thread (one transaction, flushed before the reply), each as the write of the module that owns
//! its records; reads follow the crate's blocking rules (see "Blocking" in the crate docs).
//! [`ScheduleStore`](runner_core::store::ScheduleStore) is in `schedule_store.rs`.

use runner_core::execution::{Execution, Status};
use runner_core::executor::ExecutorEvent;
use runner_core::feed::{Delivery, DeliveryKey, Event, GivenUpDelivery, Settlement};
use runner_core::ids::{AccountAlias, ExecutionId, JobId, NodeId};
use runner_core::job::Job;
use runner_core::machine::Command;
use runner_core::page::{Page, PageRequest};
use runner_core::run_log::{LogCap, LogPage};
use runner_core::search::{ExecutionFilter, counted, newest_first};
use runner_core::store::{
    ClaimStore, ExecutionStore, FeedStore, JobStore, LogRead, OutboxStore, RetentionStore,
    RunLogStore, Signal, SignalSource, StoreError, signal_after, tally_live,
};
use runner_core::time::Timestamp;
use tokio::sync::broadcast;

use crate::SledStore;
use crate::codec::Encode;
use crate::executions::{Claim, InsertExecution, Transition, Transitioned};
use crate::feed::{AppendEvents, Appended, OutboxRecord, SettleDelivery, events_after};
use crate::jobs::{DeleteJob, InsertJob, UpdateJob};
use crate::keys;
use crate::retention::{PurgeEnded, purge_candidates};
use crate::run_logs::{AppendLog, read_page};
use crate::trees::{Trees, page_keys};

impl JobStore for SledStore {
    async fn insert_job(&self, job: &Job) -> Result<(), StoreError> {
        self.write(InsertJob(job.clone())).await
    }

    async fn get_job(&self, alias: &AccountAlias, id: JobId) -> Result<Option<Job>, StoreError> {
        // A point read of a cached page: inline (see "Blocking" in the crate docs).
        self.inner.trees.job(alias, id)
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        self.write(UpdateJob(job.clone())).await
    }

    async fn delete_job(&self, alias: &AccountAlias, id: JobId) -> Result<(), StoreError> {
        let delete = DeleteJob {
            alias: alias.clone(),
            id,
        };
        match self.write(delete).await {
            Err(StoreError::Conflict(message)) if message.is_empty() => {
                let alias = alias.clone();
                let busy = self
                    .scan(move |inner| busy_execution(&inner.trees, &alias, id))
                    .await;
                Err(StoreError::Conflict(match busy {
                    Ok(Some(execution)) => format!(
                        "job {id} has execution {} in status {}; stop or kill it first",
                        execution.execution_id, execution.status
                    ),
                    _ => format!(
                        "job {id} has an execution that has not ended; stop or kill it first"
                    ),
                }))
            }
            other => other,
        }
    }

    async fn list_jobs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        let alias = alias.clone();
        self.scan(move |inner| {
            let total = inner.trees.count(&keys::job_count(&alias))?;
            let index = page_keys(
                &inner.trees.jobs_by_account,
                &keys::account_jobs(&alias),
                page,
            )?;
            let mut jobs = Vec::with_capacity(index.len());
            for key in index {
                let id = keys::job_id_at(&key)
                    .ok_or_else(|| StoreError::Corrupt("a job index key has no id".into()))?;
                if let Some(job) = inner.trees.job(&alias, id)? {
                    jobs.push(job);
                }
            }
            Ok(Page::new(page, total, jobs))
        })
        .await
    }
}

impl ExecutionStore for SledStore {
    async fn insert_execution(&self, execution: &Execution) -> Result<(), StoreError> {
        self.write(InsertExecution(execution.clone())).await?;
        self.signal(Some(Signal::Pending));
        // Its creation event was recorded with it.
        self.signal(Some(Signal::Feed(execution.execution_id)));
        Ok(())
    }

    async fn get_execution(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
    ) -> Result<Option<Execution>, StoreError> {
        // A point read of a cached page: inline (see "Blocking" in the crate docs).
        Ok(self
            .inner
            .trees
            .execution(id)?
            .filter(|execution| &execution.account_alias == alias && execution.job_id == job_id))
    }

    async fn list_executions(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        let alias = alias.clone();
        self.scan(move |inner| {
            let total = inner.trees.count(&keys::execution_count(&alias, job_id))?;
            let index = page_keys(
                &inner.trees.executions_by_job,
                &keys::job_executions(&alias, job_id),
                page,
            )?;
            let mut executions = Vec::with_capacity(index.len());
            for key in index {
                let id = keys::execution_id_at(&key).ok_or_else(|| {
                    StoreError::Corrupt("an execution index key has no id".into())
                })?;
                if let Some(execution) = inner.trees.execution(id)? {
                    executions.push(execution);
                }
            }
            Ok(Page::new(page, total, executions))
        })
        .await
    }

    async fn count_live(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        self.scan(|inner| {
            // PENDING executions are the claim queue; every claimed one holds a lease, so it is
            // in `deadlines`. Neither walk reads an ended execution.
            let pending = inner.trees.pending.len() as u64;
            let mut counts = vec![(Status::Pending, pending)];
            for key in inner.trees.deadlines.iter().keys() {
                let key = key.map_err(StoreError::unavailable)?;
                let Some(id) = keys::execution_id_at(&key) else {
                    continue;
                };
                if let Some(execution) = inner.trees.execution(id)? {
                    counts.push((execution.status, 1));
                }
            }
            Ok(tally_live(counts))
        })
        .await
    }

    async fn find_executions(
        &self,
        alias: &AccountAlias,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> Result<Page<Execution>, StoreError> {
        let alias = alias.clone();
        let filter = filter.clone();
        self.scan(move |inner| {
            // The account's (or the job's) keys in executions_by_job carry the job, creation time
            // and id, so those filters cost no read; a status filter reads each candidate. This
            // walks the whole account: sled is the one-node store, PostgreSQL has the indexes.
            let prefix = match filter.job_id {
                Some(job_id) => keys::job_executions(&alias, job_id),
                None => keys::account_executions(&alias),
            };
            let mut found = Vec::new();
            for key in inner.trees.executions_by_job.scan_prefix(&prefix).keys() {
                let key = key.map_err(StoreError::unavailable)?;
                let (job_id, created, id) = keys::job_execution_at(&key).ok_or_else(|| {
                    StoreError::Corrupt("an execution index key is too short".into())
                })?;
                let by_key = filter.job_id.is_none_or(|job| job == job_id)
                    && filter.since.is_none_or(|since| created >= since)
                    && filter.until.is_none_or(|until| created < until);
                if !by_key {
                    continue;
                }
                if filter.statuses.is_empty() {
                    found.push((created, id, None));
                } else if let Some(execution) = inner.trees.execution(id)? {
                    if filter.matches(&execution) {
                        found.push((created, id, Some(execution)));
                    }
                }
            }
            found.sort_by_key(|(created, id, _)| newest_first(*created, *id));
            let total = found.len() as u64;
            let start = usize::try_from(page.offset()).unwrap_or(usize::MAX);
            let mut executions = Vec::with_capacity(page.size as usize);
            for (_, id, read) in found.into_iter().skip(start).take(page.size as usize) {
                match read {
                    Some(execution) => executions.push(execution),
                    None => executions.extend(inner.trees.execution(id)?),
                }
            }
            Ok(counted(page, total, executions))
        })
        .await
    }

    async fn transition(
        &self,
        id: ExecutionId,
        command: &Command,
        now: Timestamp,
    ) -> Result<Execution, StoreError> {
        let transition = Transition {
            id,
            command: command.clone(),
            now,
        };
        let Transitioned {
            execution,
            recorded,
        } = self.write(transition).await?;
        self.signal(signal_after(command, &execution));
        if recorded {
            self.signal(Some(Signal::Feed(id)));
        }
        Ok(execution)
    }
}

impl ClaimStore for SledStore {
    async fn claim(
        &self,
        node: &NodeId,
        limit: usize,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Execution>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let command = Command::Claim {
            node: node.clone(),
            lease_until,
        };
        let claimed = self
            .write(Claim {
                command,
                limit,
                now,
            })
            .await?;
        // Each claim changed a status (PENDING to INITIALIZING): an event each.
        for execution in &claimed {
            self.signal(Some(Signal::Feed(execution.execution_id)));
        }
        Ok(claimed)
    }

    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<Execution>, StoreError> {
        self.scan(move |inner| {
            let mut due = Vec::new();
            for entry in inner.trees.deadlines.iter() {
                if due.len() >= limit {
                    break;
                }
                let (key, _) = entry.map_err(StoreError::unavailable)?;
                let (Some(at), Some(id)) = (keys::deadline_time(&key), keys::execution_id_at(&key))
                else {
                    return Err(StoreError::Corrupt("a deadline key is malformed".into()));
                };
                if at > now {
                    break;
                }
                if let Some(execution) = inner.trees.execution(id)? {
                    due.push(execution);
                }
            }
            Ok(due)
        })
        .await
    }

    async fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        let first = self
            .inner
            .trees
            .deadlines
            .first()
            .map_err(StoreError::unavailable)?;
        Ok(first.and_then(|(key, _)| keys::deadline_time(&key)))
    }
}

impl FeedStore for SledStore {
    async fn append_events(
        &self,
        id: ExecutionId,
        attempt: u32,
        events: &[ExecutorEvent],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let append = AppendEvents {
            id,
            attempt,
            events: events.to_vec(),
            now,
        };
        let Appended { latest, recorded } = self.write(append).await?;
        if recorded {
            self.signal(Some(Signal::Feed(id)));
        }
        Ok(latest)
    }

    async fn list_events(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let alias = alias.clone();
        self.scan(move |inner| {
            let known = inner.trees.execution(id)?.is_some_and(|execution| {
                execution.account_alias == alias && execution.job_id == job_id
            });
            if !known {
                return Err(StoreError::NotFound);
            }
            events_after(&inner.trees, id, after, limit)
        })
        .await
    }
}

impl OutboxStore for SledStore {
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.scan(move |inner| inner.holds.claim(&inner.trees, now, hold_until, limit))
            .await
    }

    async fn settle_delivery(
        &self,
        key: &DeliveryKey,
        settlement: &Settlement,
    ) -> Result<(), StoreError> {
        self.write(SettleDelivery {
            key: *key,
            settlement: settlement.clone(),
        })
        .await?;
        // Only once the settle is committed (see "Holds" in feed.rs).
        self.inner.holds.release(key);
        Ok(())
    }

    async fn next_delivery_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.scan(|inner| inner.holds.next_delivery_at(&inner.trees))
            .await
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        // Pending deliveries only: given-up ones moved to `outbox_failed`.
        self.scan(|inner| Ok(inner.trees.outbox.len() as u64)).await
    }

    async fn given_up_deliveries(
        &self,
        id: ExecutionId,
        page: PageRequest,
    ) -> Result<Page<GivenUpDelivery>, StoreError> {
        self.scan(move |inner| {
            let trees = &inner.trees;
            // One walk of the execution's range: every entry counts, the page's are decoded.
            let start = usize::try_from(page.offset()).unwrap_or(usize::MAX);
            let end = start.saturating_add(page.size as usize);
            let (mut total, mut results) = (0, Vec::new());
            for (index, bytes) in trees
                .outbox_failed
                .scan_prefix(keys::execution(id))
                .values()
                .enumerate()
            {
                let bytes = bytes.map_err(StoreError::unavailable)?;
                total += 1;
                if (start..end).contains(&index) {
                    let record: OutboxRecord = trees.codec.decode("delivery", &bytes)?;
                    results.push(GivenUpDelivery::new(
                        record.delivery,
                        record.last_error.unwrap_or_default(),
                    ));
                }
            }
            Ok(Page::new(page, total, results))
        })
        .await
    }
}

impl RetentionStore for SledStore {
    async fn purge_ended(&self, before: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let victims = self
            .scan(move |inner| purge_candidates(&inner.trees, before, limit))
            .await?;
        if victims.is_empty() {
            return Ok(0);
        }
        self.write(PurgeEnded { victims }).await
    }
}

impl RunLogStore for SledStore {
    async fn append_log(
        &self,
        id: ExecutionId,
        attempt: u32,
        chunk: &[u8],
        cap: LogCap,
        _now: Timestamp,
    ) -> Result<u64, StoreError> {
        let append = AppendLog {
            id,
            attempt,
            chunk: chunk.to_vec(),
            cap,
        };
        let total = self.write(append).await?;
        self.signal(Some(Signal::Log(id)));
        Ok(total)
    }

    async fn read_log(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ExecutionId,
        read: LogRead,
    ) -> Result<LogPage, StoreError> {
        let alias = alias.clone();
        self.scan(move |inner| {
            let execution = inner
                .trees
                .execution(id)?
                .filter(|execution| execution.account_alias == alias && execution.job_id == job_id)
                .ok_or(StoreError::NotFound)?;
            read_page(&inner.trees, &execution, read)
        })
        .await
    }
}

impl SignalSource for SledStore {
    fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.inner.signals.subscribe()
    }
}

/// An execution of the job that has not ended, for the message of a refused delete.
fn busy_execution(
    trees: &Trees,
    alias: &AccountAlias,
    id: JobId,
) -> Result<Option<Execution>, StoreError> {
    let prefix = keys::job_executions(alias, id);
    for key in trees.executions_by_job.scan_prefix(prefix).keys().rev() {
        let key = key.map_err(StoreError::unavailable)?;
        let Some(execution_id) = keys::execution_id_at(&key) else {
            continue;
        };
        if let Some(execution) = trees.execution(execution_id)? {
            if !execution.status.is_terminal() {
                return Ok(Some(execution));
            }
        }
    }
    Ok(None)
}
