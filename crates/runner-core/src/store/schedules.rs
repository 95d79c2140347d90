//! [`ScheduleStore`]: service accounts and job schedules.

use std::future::Future;

#[cfg(doc)]
use super::Signal;
use super::{Store, StoreError};
use crate::execution::Execution;
use crate::ids::{AccountAlias, JobId, ScheduleId};
use crate::page::{Page, PageRequest};
use crate::schedule::{Schedule, ServiceAccount};
use crate::time::Timestamp;

/// Service accounts and job schedules: the store side of the Job Schedule Service.
///
/// A separate trait from [`Store`] so that a backend can be adopted before it schedules; every
/// store of this workspace implements both, and the conformance suite covers both. It builds on
/// all of [`Store`] because firing inserts executions and wakes the engines that claim them.
pub trait ScheduleStore: Store {
    /// Stores a new service account; [`StoreError::Conflict`] if the alias is taken in the account.
    fn insert_service_account(
        &self,
        account: &ServiceAccount,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One service account of `alias`.
    fn get_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> impl Future<Output = Result<Option<ServiceAccount>, StoreError>> + Send;

    /// A page of the account's service accounts, newest first.
    fn list_service_accounts(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<ServiceAccount>, StoreError>> + Send;

    /// Deletes a service account; [`StoreError::Conflict`] while a schedule uses it (checked
    /// atomically with the delete).
    fn delete_service_account(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new schedule. [`StoreError::NotFound`] if its job is gone;
    /// [`StoreError::Conflict`] if its service account does not exist (checked atomically).
    fn insert_schedule(
        &self,
        schedule: &Schedule,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One schedule of a job of `alias`.
    fn get_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> impl Future<Output = Result<Option<Schedule>, StoreError>> + Send;

    /// Replaces a schedule (same errors as [`ScheduleStore::insert_schedule`]).
    fn update_schedule(
        &self,
        schedule: &Schedule,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes a schedule.
    fn delete_schedule(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        id: ScheduleId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A page of a job's schedules, newest first.
    fn list_schedules(
        &self,
        alias: &AccountAlias,
        job_id: JobId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Schedule>, StoreError>> + Send;

    /// Fires every schedule due at `now` (up to `limit`): atomically per schedule, applies
    /// [`Schedule::fire`], inserts one PENDING execution ([`Execution::scheduled`]) unless one
    /// exists for the same schedule and due time, and stores the advanced schedule. Returns the
    /// executions it created and sends [`Signal::Pending`] when there are any. Several nodes may
    /// call this at once: each due time still creates one execution.
    fn fire_due_schedules(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send;

    /// The earliest `next_fire_time` of any schedule.
    fn next_fire_time(&self) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send;
}
