//! [`SignalSource`]: the wake-ups a store sends after its changes, and the rule of who is woken.

use tokio::sync::broadcast;

use crate::execution::{Execution, Status};
use crate::ids::ExecutionId;
use crate::machine::Command;

/// A wake-up call from the store to the engines that use it (on this node, or on every node for
/// a shared database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// An execution became PENDING: there is work to claim.
    Pending,
    /// A claimed execution was asked to stop or be killed (or lost its run otherwise): the node
    /// running it must look.
    Control(ExecutionId),
    /// Events were recorded for the execution (and maybe deliveries added to the outbox): live
    /// feeds and the webhook delivery service look.
    Feed(ExecutionId),
    /// Output was appended to the execution's run log: live log followers look.
    Log(ExecutionId),
}

/// The signal a store must send after `command` brought `execution` to its current status.
/// Stores call this so that the rule of who is woken lives here, once.
pub fn signal_after(command: &Command, execution: &Execution) -> Option<Signal> {
    match (command, execution.status) {
        (_, Status::Pending) => Some(Signal::Pending),
        // The end of a one-at-a-time run is the next one's turn (see `crate::overlap`).
        (Command::Finish { .. }, status)
            if status.is_terminal() && execution.overlap.one_at_a_time() =>
        {
            Some(Signal::Pending)
        }
        (
            Command::Stop { .. }
            | Command::Kill { .. }
            | Command::EscalateStop
            | Command::ForceKill
            | Command::ExpireTtl
            | Command::LoseLease { .. },
            _,
        ) => Some(Signal::Control(execution.execution_id)),
        _ => None,
    }
}

/// The store's wake-ups.
pub trait SignalSource: Send + Sync + 'static {
    /// Subscribes to the store's [`Signal`]s. Signals are hints: an engine also polls, so a missed
    /// one (a lagging receiver, a dropped database listener) only delays work.
    fn subscribe(&self) -> broadcast::Receiver<Signal>;
}
