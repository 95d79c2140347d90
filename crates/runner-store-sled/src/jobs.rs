//! The writer-side of jobs: each write runs inside the batch's transaction (see `writer.rs`),
//! checks before it writes anything, and keeps the job's listing index and count in step.

use runner_core::ids::{AccountAlias, JobId};
use runner_core::job::Job;
use runner_core::store::StoreError;

use crate::codec::Encode;
use crate::keys;
use crate::schedules::delete_job_schedules;
use crate::trees::{Tx, abort};
use crate::writer::{Applied, Candidates, Write};

/// Inserts a new job.
#[derive(Debug)]
pub(crate) struct InsertJob(pub(crate) Job);

impl Write for InsertJob {
    type Reply = ();

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied {
        let job = &self.0;
        if tx.jobs.get(keys::job(job.id))?.is_some() {
            return Ok(Err(StoreError::Conflict(format!(
                "job {} exists already",
                job.id
            ))));
        }
        let bytes = tx.codec.encode("job", job).or_else(abort)?;
        tx.jobs.insert(&keys::job(job.id)[..], bytes)?;
        let index = keys::account_job(&job.account_alias, job.created_time, job.id);
        tx.jobs_by_account.insert(index, &[][..])?;
        tx.add(&keys::job_count(&job.account_alias), 1)?;
        Ok(Ok(()))
    }
}

/// Replaces a stored job of the same account.
#[derive(Debug)]
pub(crate) struct UpdateJob(pub(crate) Job);

impl Write for UpdateJob {
    type Reply = ();

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied {
        let job = &self.0;
        let Some(stored) = tx.job(job.id)? else {
            return Ok(Err(StoreError::NotFound));
        };
        if stored.account_alias != job.account_alias {
            return Ok(Err(StoreError::NotFound));
        }
        let bytes = tx.codec.encode("job", job).or_else(abort)?;
        if stored.created_time != job.created_time {
            // The listing is ordered by creation time; keep the index on the record's.
            let alias = &job.account_alias;
            tx.jobs_by_account
                .remove(keys::account_job(alias, stored.created_time, job.id))?;
            tx.jobs_by_account
                .insert(keys::account_job(alias, job.created_time, job.id), &[][..])?;
        }
        tx.jobs.insert(&keys::job(job.id)[..], bytes)?;
        Ok(Ok(()))
    }
}

/// Deletes job `id` of `alias` with its schedules.
///
/// Refused with an empty [`StoreError::Conflict`] while an execution of the job has not ended;
/// the caller words the message (it needs a scan, which has no place in a transaction).
#[derive(Debug)]
pub(crate) struct DeleteJob {
    pub(crate) alias: AccountAlias,
    pub(crate) id: JobId,
}

impl Write for DeleteJob {
    type Reply = ();

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied {
        let (alias, id) = (&self.alias, self.id);
        let Some(stored) = tx.job(id)? else {
            return Ok(Err(StoreError::NotFound));
        };
        if &stored.account_alias != alias {
            return Ok(Err(StoreError::NotFound));
        }
        // Checked in the transaction that deletes: no start or restart slips in between.
        if tx.counter(&keys::active_count(id))? > 0 {
            return Ok(Err(StoreError::Conflict(String::new())));
        }
        tx.jobs.remove(&keys::job(id)[..])?;
        delete_job_schedules(tx, alias, id)?;
        tx.jobs_by_account
            .remove(keys::account_job(alias, stored.created_time, id))?;
        tx.add(&keys::job_count(alias), -1)?;
        Ok(Ok(()))
    }
}
