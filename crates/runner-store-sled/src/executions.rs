//! The writer-side of executions: inserting one, applying a command to one, claiming a batch.
//! Each write runs inside the batch's transaction (see `writer.rs`) and changes an execution only
//! through [`feed::transition`] (which wraps [`runner_core::machine::apply`]) on the record the
//! transaction read, storing the feed events the change recorded with it.

use runner_core::execution::Execution;
use runner_core::feed;
use runner_core::ids::ExecutionId;
use runner_core::machine::Command;
use runner_core::overlap::{self, ClaimGate, Overlap};
use runner_core::store::StoreError;
use runner_core::time::Timestamp;

use crate::feed::record;
use crate::keys;
use crate::trees::Tx;
use crate::writer::{Applied, Candidates, Wants, Write};

/// Inserts a new execution of a stored job, with its creation event.
#[derive(Debug)]
pub(crate) struct InsertExecution(pub(crate) Execution);

impl Write for InsertExecution {
    type Reply = ();

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied {
        insert_execution(tx, &self.0)
    }
}

/// Inserts a new execution with its creation event ([`feed::created`]) and that event's
/// deliveries: the one path of [`InsertExecution`] and of firing schedules.
pub(crate) fn insert_execution(tx: &Tx<'_>, execution: &Execution) -> Applied {
    let job_known = tx
        .job(execution.job_id)?
        .is_some_and(|job| job.account_alias == execution.account_alias);
    if !job_known {
        return Ok(Err(StoreError::NotFound));
    }
    if tx.execution(execution.execution_id)?.is_some() {
        return Ok(Err(StoreError::Conflict(format!(
            "execution {} exists already",
            execution.execution_id
        ))));
    }
    if execution.overlap == Overlap::Skip {
        let others = tx.one_at_a_time_executions(execution.job_id)?;
        if let Some(active) = overlap::blocking_execution(execution, &others) {
            return Ok(Err(StoreError::Overlapping(active)));
        }
    }
    tx.put_execution(None, execution)?;
    record(tx, &[feed::created(execution)])?;
    let alias = &execution.account_alias;
    let index = keys::job_execution(
        alias,
        execution.job_id,
        execution.created_time,
        execution.execution_id,
    );
    tx.executions_by_job.insert(index, &[][..])?;
    tx.add(&keys::execution_count(alias, execution.job_id), 1)?;
    Ok(Ok(()))
}

/// Applies `command` to execution `id` at `now`.
#[derive(Debug)]
pub(crate) struct Transition {
    pub(crate) id: ExecutionId,
    pub(crate) command: Command,
    pub(crate) now: Timestamp,
}

/// What a [`Transition`] did.
#[derive(Debug)]
pub(crate) struct Transitioned {
    /// The execution after the transition.
    pub(crate) execution: Execution,
    /// Whether the transition recorded a feed event.
    pub(crate) recorded: bool,
}

impl Write for Transition {
    type Reply = Transitioned;

    fn apply(&self, tx: &Tx<'_>, _: &Candidates) -> Applied<Transitioned> {
        let Some(old) = tx.execution(self.id)? else {
            return Ok(Err(StoreError::NotFound));
        };
        let mut execution = old.clone();
        let recorded = match feed::transition(&mut execution, &self.command, self.now) {
            Ok(recorded) => recorded,
            Err(refused) => return Ok(Err(StoreError::Refused(refused))),
        };
        tx.put_execution(Some(&old), &execution)?;
        record(tx, &recorded)?;
        Ok(Ok(Transitioned {
            execution,
            recorded: !recorded.is_empty(),
        }))
    }
}

/// Claims up to `limit` executions from the head of the claim queue with `command` (a
/// [`Command::Claim`]); replies with the claimed executions.
#[derive(Debug)]
pub(crate) struct Claim {
    pub(crate) command: Command,
    pub(crate) limit: usize,
    pub(crate) now: Timestamp,
}

impl Write for Claim {
    type Reply = Vec<Execution>;

    fn wants(&self) -> Wants {
        Wants::Claims { limit: self.limit }
    }

    fn apply(&self, tx: &Tx<'_>, candidates: &Candidates) -> Applied<Vec<Execution>> {
        let mut claimed = Vec::new();
        let mut gate = ClaimGate::new();
        for (position, id) in &candidates.claim {
            if claimed.len() >= self.limit {
                break;
            }
            // Taken by an earlier write of this batch (a claim, a stop, a kill): skip it.
            if tx.queue_position(*id)?.as_ref() != Some(position) {
                continue;
            }
            let Some(old) = tx.execution(*id)? else {
                continue;
            };
            if old.overlap.one_at_a_time() {
                let others = tx.one_at_a_time_executions(old.job_id)?;
                if !gate.admits(&old, || others.iter().any(overlap::holds_the_turn)) {
                    continue;
                }
            }
            let mut execution = old.clone();
            // Only PENDING executions are queued, so the claim is not refused.
            if let Ok(recorded) = feed::transition(&mut execution, &self.command, self.now) {
                tx.put_execution(Some(&old), &execution)?;
                record(tx, &recorded)?;
                claimed.push(execution);
            }
        }
        Ok(Ok(claimed))
    }
}
