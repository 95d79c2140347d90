//! What the delivery loop tells an observer: the test signals of the service.

use runner_core::feed::{DeliveryKey, Settlement};
use runner_core::time::Timestamp;
use tokio::sync::mpsc;

/// One step of the delivery service, as [`DeliverySignals`] reports it.
///
/// Each claimed delivery gives one [`Claimed`](DeliverySignal::Claimed), then exactly one
/// [`Settled`](DeliverySignal::Settled) or [`NotSettled`](DeliverySignal::NotSettled) for the
/// same key and attempt. The "delivered", "retry scheduled" and "gave up" outcomes are the
/// three [`Settlement`]s a `Settled` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliverySignal {
    /// The loop claimed `key` and starts its attempt number `attempt` (from 1).
    Claimed {
        /// The delivery claimed.
        key: DeliveryKey,
        /// The number of the attempt about to be made, as in `X-Runner-Attempt`.
        attempt: u32,
    },
    /// An attempt ended and its settlement is written in the store: the delivery is delivered
    /// ([`Settlement::Delivered`]), waits for a retry ([`Settlement::Retry`]) or was given up
    /// ([`Settlement::GiveUp`]).
    Settled {
        /// The delivery settled.
        key: DeliveryKey,
        /// The number of the attempt that ended.
        attempt: u32,
        /// What the store recorded.
        settlement: Settlement,
    },
    /// An attempt ended but the store refused its settlement; the claim's hold lapses and the
    /// delivery is attempted again.
    NotSettled {
        /// The delivery whose settlement failed.
        key: DeliveryKey,
        /// The number of the attempt that ended.
        attempt: u32,
        /// The store's error.
        error: String,
    },
    /// The loop has claimed what it could and waits: for a feed signal, an attempt to end, or
    /// `wake_at` on the service's clock (the next retry due, or the next poll).
    Parked {
        /// Attempts running while the loop waits; 0 when the service is idle.
        in_flight: usize,
        /// When the loop looks again without being woken.
        wake_at: Timestamp,
    },
}

/// The signals of one delivery service, from
/// [`start_with_signals`](crate::start_with_signals), in the order the service sent them.
///
/// Nothing is lost and the service never waits for the reader: the channel is unbounded, so
/// read the signals or drop this (a dropped reader costs the service nothing more).
#[derive(Debug)]
pub struct DeliverySignals {
    receiver: mpsc::UnboundedReceiver<DeliverySignal>,
}

/// The service's end of [`DeliverySignals`]; `None` when nobody listens.
pub(crate) type SignalSender = Option<mpsc::UnboundedSender<DeliverySignal>>;

impl DeliverySignals {
    pub(crate) fn channel() -> (mpsc::UnboundedSender<DeliverySignal>, Self) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (sender, Self { receiver })
    }

    /// Waits for the next signal. `None` once the service has stopped (after
    /// [`RunningDelivery::shutdown`](crate::RunningDelivery::shutdown)) and every signal it sent
    /// was read.
    pub async fn next(&mut self) -> Option<DeliverySignal> {
        self.receiver.recv().await
    }

    /// The next signal already sent, without waiting; `None` if there is none yet.
    pub fn try_next(&mut self) -> Option<DeliverySignal> {
        self.receiver.try_recv().ok()
    }
}

/// Sends the signal `make` builds, building it only when somebody listens, so a service
/// without an observer pays one branch per signal point.
pub(crate) fn send(sender: &SignalSender, make: impl FnOnce() -> DeliverySignal) {
    if let Some(sender) = sender {
        if !sender.is_closed() {
            // A reader dropped since the check: the signal has nobody to go to.
            let _ = sender.send(make());
        }
    }
}
