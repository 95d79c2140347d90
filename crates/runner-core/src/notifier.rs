//! The [`Notifier`] trait: where the engine reports status changes and executor events.

use std::future::Future;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::execution::Status;
use crate::executor::ExecutorEvent;
use crate::ids::{AccountAlias, ExecutionId, JobId};
use crate::time::Timestamp;

/// Something that happened to an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The execution.
    pub execution_id: ExecutionId,
    /// Its job.
    pub job_id: JobId,
    /// The job's account.
    pub account_alias: AccountAlias,
    /// When the engine saw it.
    pub time: Timestamp,
    /// What happened.
    pub kind: NotificationKind,
}

/// What a [`Notification`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NotificationKind {
    /// The execution changed status.
    Status {
        /// The new status.
        status: Status,
        /// Why, when there is a reason.
        message: Option<String>,
        /// The execution's [`revision`](crate::execution::Execution::revision) after the change:
        /// status notifications of one execution can reach a notifier out of order (the worker
        /// and the API run in different tasks); the higher revision is the newer status.
        revision: u64,
    },
    /// The executor reported an event.
    Event(ExecutorEvent),
}

/// Receives every [`Notification`] of the executions this engine runs or commands.
///
/// The engine awaits `notify` on its hot path, so an implementation must hand the notification
/// off (a channel, an outbox row) and return; slow delivery belongs in its own task.
pub trait Notifier: Send + Sync + 'static {
    /// Takes one notification.
    fn notify(&self, notification: Notification) -> impl Future<Output = ()> + Send;
}

/// Drops every notification.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopNotifier;

impl Notifier for NoopNotifier {
    async fn notify(&self, _notification: Notification) {}
}

/// Publishes notifications on a tokio broadcast channel: for tests that wait for a status, and for
/// programs that print transitions as they happen.
#[derive(Debug, Clone)]
pub struct ChannelNotifier {
    sender: broadcast::Sender<Notification>,
}

impl ChannelNotifier {
    /// A notifier whose channel keeps up to `capacity` notifications for slow receivers.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity).0,
        }
    }

    /// A receiver of every notification from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.sender.subscribe()
    }
}

impl Notifier for ChannelNotifier {
    async fn notify(&self, notification: Notification) {
        let _ = self.sender.send(notification);
    }
}
