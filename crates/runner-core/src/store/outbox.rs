//! [`OutboxStore`]: webhook deliveries, written with the events they carry.

use std::future::Future;

use super::StoreError;
use crate::feed::{Delivery, DeliveryKey, GivenUpDelivery, Settlement};
use crate::ids::ExecutionId;
use crate::page::{Page, PageRequest};
use crate::time::Timestamp;

/// The webhook outbox: one queue per (execution, callback), each delivered in order.
pub trait OutboxStore: Send + Sync + 'static {
    /// Takes up to `limit` deliveries to attempt now: of each (execution, callback) queue only the
    /// pending delivery with the lowest sequence, and only if it is due (`next_attempt_at <= now`)
    /// and not taken by another caller whose hold (`hold_until`) has not passed. A taken delivery
    /// is hidden from other callers until `hold_until` or until it is settled, so a queue has one
    /// attempt in flight, and a node that dies holding one only delays it.
    fn claim_deliveries(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// Records how an attempt ended (see [`Settlement`]) and releases the hold. A key that is no
    /// longer pending (another node settled it after a hold passed) is ignored.
    fn settle_delivery(
        &self,
        key: &DeliveryKey,
        settlement: &Settlement,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The earliest time at which [`OutboxStore::claim_deliveries`] could hand out a delivery:
    /// over the head of each queue, its `next_attempt_at`, or the end of its hold if it is held
    /// (the later of the two). Deliveries behind a head do not count. `None` when the outbox is
    /// empty. The delivery service sleeps until then (or until a
    /// [`Signal::Feed`](super::Signal::Feed)).
    fn next_delivery_at(
        &self,
    ) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send;

    /// How many deliveries wait to be delivered now (pending ones, held or not; given-up ones are
    /// not counted): what `runner_webhook_backlog` shows.
    fn backlog(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A page of the deliveries of execution `id` that were given up on, in (callback, sequence)
    /// order; empty for an execution that has none or does not exist (the caller checks that the
    /// execution is there and whose it is).
    fn given_up_deliveries(
        &self,
        id: ExecutionId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<GivenUpDelivery>, StoreError>> + Send;
}
