//! The dispatcher (claims work while the pool has room, and hands back prefetched executions that
//! waited too long) and the maintenance loop (applies timed commands whose deadline passed).

use tokio::sync::broadcast::error::RecvError;

use super::handle::{Engine, Phase};
use super::signals::EngineSignal;
use crate::execution::Execution;
use crate::executor::Executor;
use crate::machine::{Command, due_command};
use crate::notifier::Notifier;
use crate::store::{Signal, Store, StoreError};
use crate::time::{Clock, after};

/// How many due executions the maintenance loop handles per store call.
const DUE_BATCH: usize = 128;

pub(super) async fn dispatcher<S: Store, E: Executor, N: Notifier, C: Clock>(
    engine: Engine<S, E, N, C>,
) {
    let inner = &engine.inner;
    let places = &inner.places;
    let mut signals = inner.store.subscribe();
    let mut phase = inner.phase.subscribe();
    loop {
        if *phase.borrow() != Phase::Running {
            if *phase.borrow() != Phase::Abandoned {
                let waiting = places.take_expired(inner.clock.now(), true);
                hand_back(&engine, waiting).await;
            }
            return;
        }
        let expired = places.take_expired(inner.clock.now(), false);
        hand_back(&engine, expired).await;
        let wanted = places.wanted().min(inner.config.claim_batch);
        let mut claimed_all_asked = false;
        if wanted > 0 {
            let now = inner.clock.now();
            let lease_until = after(now, inner.config.lease);
            let claimed = inner
                .store
                .claim(&inner.config.node_id, wanted, lease_until, now)
                .await;
            engine.observe_store(&claimed);
            match claimed {
                Ok(claimed) => {
                    claimed_all_asked = claimed.len() == wanted;
                    for execution in &claimed {
                        crate::meter::claimed(execution, now);
                    }
                    if inner.signals.is_on() {
                        for execution in &claimed {
                            inner
                                .signals
                                .send(EngineSignal::Claimed(execution.execution_id));
                        }
                    }
                    places.enqueue(&engine, claimed, now);
                }
                Err(error) => tracing::warn!(%error, "claiming executions failed; retrying"),
            }
        }
        if claimed_all_asked {
            // There may be more work waiting; look again before sleeping.
            continue;
        }
        let now = inner.clock.now();
        let poll_at = after(now, inner.config.poll_interval);
        let wake_at = places
            .next_expiry()
            .map_or(poll_at, |expiry| expiry.clamp(now, poll_at));
        tokio::select! {
            signal = engine_signal(&mut signals) => match signal {
                Ok(Signal::Control(id)) => places.ring(id),
                Ok(Signal::Pending | Signal::Feed(_) | Signal::Log(_)) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => inner.clock.sleep_until(wake_at).await,
            },
            () = places.freed(), if wanted == 0 => {}
            () = inner.clock.sleep_until(wake_at) => {}
            _ = phase.changed() => {}
        }
        // Control signals are also delivered while the pool is full.
        while let Ok(signal) = signals.try_recv() {
            if let Signal::Control(id) = signal {
                places.ring(id);
            }
        }
    }
}

/// Hands prefetched executions back to PENDING, for any node.
async fn hand_back<S: Store, E: Executor, N: Notifier, C: Clock>(
    engine: &Engine<S, E, N, C>,
    executions: Vec<Execution>,
) {
    let inner = &engine.inner;
    for execution in executions {
        let id = execution.execution_id;
        let command = Command::Release {
            attempt: execution.attempt,
        };
        let now = inner.clock.now();
        match inner.store.transition(id, &command, now).await {
            Ok(released) => {
                engine.notify_status(&released).await;
                inner.signals.send(EngineSignal::HandedBack(id));
            }
            // A stop or kill may have ended it meanwhile; otherwise its lease lapses.
            Err(error) => tracing::warn!(
                execution_id = %id,
                %error,
                "could not hand back a prefetched execution"
            ),
        }
        inner.places.handed_back();
    }
}

/// The next signal that concerns the dispatcher: feed signals are for live feeds and webhook
/// delivery, and must not cost a claim round trip each.
async fn engine_signal(
    signals: &mut tokio::sync::broadcast::Receiver<Signal>,
) -> Result<Signal, RecvError> {
    loop {
        match signals.recv().await {
            Ok(Signal::Feed(_) | Signal::Log(_)) => {}
            other => return other,
        }
    }
}

pub(super) async fn maintenance<S: Store, E: Executor, N: Notifier, C: Clock>(
    engine: Engine<S, E, N, C>,
) {
    let inner = &engine.inner;
    let mut signals = inner.store.subscribe();
    loop {
        let now = inner.clock.now();
        let applied = apply_due(&engine, now).await;
        engine.observe_store(&applied);
        let (due, changed) = match applied {
            Ok(counts) => counts,
            Err(error) => {
                tracing::warn!(%error, "looking for due executions failed; retrying");
                (0, 0)
            }
        };
        if due == DUE_BATCH && changed > 0 {
            continue;
        }
        let poll_at = after(now, inner.config.poll_interval);
        let wake_at = match inner.store.next_deadline().await {
            // Due executions that no command changed belong to another node's race: do not spin.
            Ok(Some(deadline)) if due == 0 || changed > 0 => deadline.clamp(now, poll_at),
            _ => poll_at,
        };
        // A stop or kill may set an earlier deadline than the one slept for; new work may not
        // (a claim's lease ends later than the next poll), so only control signals wake this loop.
        let control = async {
            loop {
                match signals.recv().await {
                    Ok(Signal::Pending | Signal::Feed(_) | Signal::Log(_)) => {}
                    Ok(Signal::Control(_)) | Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            () = inner.clock.sleep_until(wake_at) => {}
            () = control => {}
        }
    }
}

/// Applies the timed command of every due execution; returns how many were due and how many
/// this call changed.
async fn apply_due<S: Store, E: Executor, N: Notifier, C: Clock>(
    engine: &Engine<S, E, N, C>,
    now: crate::time::Timestamp,
) -> Result<(usize, usize), StoreError> {
    let inner = &engine.inner;
    let due = inner.store.due(now, DUE_BATCH).await?;
    let count = due.len();
    let mut changed_count = 0;
    for execution in due {
        let command = match due_command(&execution, now) {
            Some(Command::LoseLease { .. }) => {
                let expired_at = execution
                    .lease
                    .as_ref()
                    .map_or(now, |lease| lease.expires_at);
                match inner.health.rescue(expired_at, inner.config.lease, now) {
                    Some(cause) => Command::LoseLease { cause },
                    // The store was unreachable during this lease: its node may be alive and
                    // about to renew it.
                    None => continue,
                }
            }
            Some(command) => command,
            None => continue,
        };
        match inner
            .store
            .transition(execution.execution_id, &command, now)
            .await
        {
            Ok(changed) => {
                changed_count += 1;
                if matches!(command, Command::LoseLease { .. }) {
                    crate::meter::lease_rescued();
                }
                tracing::info!(
                    execution_id = %changed.execution_id,
                    job_id = %changed.job_id,
                    account_alias = %changed.account_alias,
                    attempt = changed.attempt,
                    status = %changed.status,
                    command = %command.kind(),
                    "deadline passed"
                );
                engine.notify_status(&changed).await;
                inner
                    .signals
                    .send(EngineSignal::DeadlineApplied(changed.execution_id));
            }
            // Another node got there first, or the worker finished in between.
            Err(StoreError::Refused(_)) | Err(StoreError::NotFound) => {}
            Err(error) => return Err(error),
        }
    }
    Ok((count, changed_count))
}
