//! [`JobStore`]: where jobs live.

use std::future::Future;

use super::StoreError;
use crate::ids::{AccountAlias, JobId};
use crate::job::Job;
use crate::page::{Page, PageRequest};

/// Jobs, each under its account.
pub trait JobStore: Send + Sync + 'static {
    /// Stores a new job.
    fn insert_job(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A job of `alias`, if it exists.
    fn get_job(
        &self,
        alias: &AccountAlias,
        id: JobId,
    ) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;

    /// Replaces a stored job (same id and alias). [`StoreError::NotFound`] if it is gone.
    fn update_job(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes a job and its schedules. [`StoreError::Conflict`] while one of its executions has
    /// not ended (checked atomically with the delete); its executions stay readable.
    fn delete_job(
        &self,
        alias: &AccountAlias,
        id: JobId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A page of the account's jobs, newest first.
    fn list_jobs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Job>, StoreError>> + Send;
}
