//! One worker per claimed execution: runs the executor, keeps the lease, relays stop and kill
//! requests, and records the outcome. This module serves the workers: it starts them for the
//! places ([`Launcher`]) and sends the status notifications of every part of the engine
//! ([`Engine::notify_status`]).

use std::sync::Arc;

use super::handle::{Engine, Phase};
use super::health::HealthChange;
use super::places::{Launcher, Place, Places};
use super::signals::{EngineSignal, Signals};
use crate::execution::{Execution, Outcome, RunReport, Status};
use crate::executor::{
    CancelHandle, CancelMode, Cancellation, EventSink, Executor, ExecutorEvent, Progress, Run,
};
use crate::machine::Command;
use crate::notifier::{Notification, NotificationKind, Notifier};
use crate::secret::Masker;
use crate::store::{Store, StoreError};
use crate::time::{Clock, Timestamp, after};

impl<S: Store, E: Executor, N: Notifier, C: Clock> Launcher for Engine<S, E, N, C> {
    fn places(&self) -> &Places {
        &self.inner.places
    }

    fn signals(&self) -> &Signals {
        &self.inner.signals
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn accepts_work(&self) -> bool {
        *self.inner.phase.borrow() == Phase::Running
    }

    fn abandoned(&self) -> bool {
        *self.inner.phase.borrow() == Phase::Abandoned
    }

    fn launch(&self, execution: Execution, place: Place<Self>) {
        let engine = self.clone();
        // Every line the worker (and the executor it calls) logs carries the execution's
        // identity as fields, so that an operator can follow one execution through a node's log.
        let span = tracing::info_span!(
            "execution",
            execution_id = %execution.execution_id,
            job_id = %execution.job_id,
            account_alias = %execution.account_alias,
            attempt = execution.attempt,
        );
        // Boxed: the worker's future is a few KiB; spawning a box moves a pointer, not the future.
        tokio::spawn(Box::pin(tracing::Instrument::instrument(
            async move {
                let id = execution.execution_id;
                let mut worker = Worker {
                    engine,
                    attempt: execution.attempt,
                    execution,
                    place,
                    masker: Masker::default(),
                };
                crate::meter::run_started();
                worker.run().await;
                crate::meter::run_left();
                // Its places go back before it says it finished, so a test that saw `Finished` finds
                // the place free.
                let Worker { engine, place, .. } = worker;
                drop(place);
                engine.inner.signals.send(EngineSignal::Finished(id));
            },
            span,
        )));
    }
}

impl<S, E, N, C: Clock> Engine<S, E, N, C> {
    /// Takes in the result of a store call that just returned for the node's view of the store
    /// (see `engine/health.rs`), and says when that view changes. The time is read now, not when
    /// the call began: a call that waited through an outage proves the store reachable only
    /// from its answer on.
    pub(super) fn observe_store<T>(&self, result: &Result<T, StoreError>) {
        match self.inner.health.observe(result, self.inner.clock.now()) {
            Some(HealthChange::Lost) => {
                tracing::warn!(
                    "the store is unavailable; no lapsed lease is rescued until it has answered for a whole lease"
                );
                self.inner.signals.send(EngineSignal::StoreLost);
            }
            Some(HealthChange::Back) => {
                tracing::info!("the store answers again");
                self.inner.signals.send(EngineSignal::StoreBack);
            }
            None => {}
        }
    }
}

impl<S, E, N: Notifier, C: Clock> Engine<S, E, N, C> {
    /// Tells the notifier the execution's status, as the engine sees it now.
    pub(super) async fn notify_status(&self, execution: &Execution) {
        self.inner
            .notifier
            .notify(Notification {
                execution_id: execution.execution_id,
                job_id: execution.job_id,
                account_alias: execution.account_alias.clone(),
                time: self.inner.clock.now(),
                kind: NotificationKind::Status {
                    status: execution.status,
                    message: execution.message.clone(),
                    revision: execution.revision,
                },
            })
            .await;
    }
}

/// The progress a worker has received and not yet written, and when it is due: a window after
/// the first of it arrived ([`EngineConfig::feed_flush_window`](super::EngineConfig)), or at
/// once when it is full or holds the workspace's readiness (RUNNING must not wait).
struct Gathered {
    progress: Vec<Progress>,
    window: std::time::Duration,
    due: Option<tokio::time::Instant>,
}

/// How many pieces of progress are written at most in one batch.
const MOST_GATHERED: usize = 1024;

impl Gathered {
    fn new(window: std::time::Duration) -> Self {
        Self {
            progress: Vec::new(),
            window,
            due: None,
        }
    }

    fn push(&mut self, progress: Progress) {
        if self.due.is_none() {
            // Wall-clock time: a bound on the feed's latency, not a deadline of the domain.
            self.due = Some(tokio::time::Instant::now() + self.window);
        }
        self.progress.push(progress);
    }

    /// Whether it must be written now rather than when it is due.
    fn is_full(&self) -> bool {
        self.window.is_zero()
            || self.progress.len() >= MOST_GATHERED
            || self
                .progress
                .iter()
                .any(|progress| matches!(progress, Progress::WorkspaceReady))
    }

    fn is_due_later(&self) -> bool {
        self.due.is_some()
    }

    fn due_or_now(&self) -> tokio::time::Instant {
        self.due.unwrap_or_else(tokio::time::Instant::now)
    }

    fn take(&mut self) -> Vec<Progress> {
        self.due = None;
        std::mem::take(&mut self.progress)
    }
}

/// Moves the events already waiting in `stream` into `batch`.
fn drain(stream: &mut tokio::sync::mpsc::UnboundedReceiver<Progress>, batch: &mut Vec<Progress>) {
    while let Ok(event) = stream.try_recv() {
        batch.push(event);
    }
}

struct Worker<S: Store, E: Executor, N: Notifier, C: Clock> {
    engine: Engine<S, E, N, C>,
    execution: Execution,
    attempt: u32,
    /// Its places: in the pool while the executor runs, among the running executions until the
    /// worker ends.
    place: Place<Engine<S, E, N, C>>,
    /// The run's secrets, masked in every event and in the report's message before they are
    /// recorded: whatever an executor reports, no secret of the run reaches the feed, a webhook,
    /// the notifier or the execution's message.
    masker: Masker,
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> Worker<S, E, N, C> {
    async fn run(&mut self) {
        let inner = Arc::clone(&self.engine.inner);
        self.engine.notify_status(&self.execution).await;
        let mut job = match inner.store.job_to_run(&self.execution).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                let report = RunReport::failed("the job was deleted before the execution ran");
                return self.finish(report).await;
            }
            Err(error) => {
                let report = RunReport::failed(format!("could not read the job: {error}"));
                return self.finish(report).await;
            }
        };

        let mut execution = self.execution.clone();
        if job.spec.use_dynamic_inventory {
            let own = std::mem::take(&mut execution.hosts);
            let alias = &execution.account_alias;
            match super::inventory::with_account_inventory(&inner.store, alias, own).await {
                Ok(hosts) => execution.hosts = hosts,
                Err(why) => return self.finish(RunReport::failed(why)).await,
            }
        }
        if let Err(why) =
            super::key_pairs::resolve_key_pairs(&inner.store, &mut job, &mut execution).await
        {
            return self.finish(RunReport::failed(why)).await;
        }
        let run = Run { job, execution };
        self.masker = Masker::for_run(&run);
        let (cancel_handle, cancellation) = Cancellation::new();
        let (events, mut event_stream) = EventSink::channel();
        let mut phase = inner.phase.subscribe();
        let mut executor_run = std::pin::pin!(inner.executor.run(run, events, cancellation));
        let mut heartbeat_at = self.next_heartbeat();
        let mut handing_back = false;
        let mut gathered = Gathered::new(inner.config.feed_flush_window);
        inner
            .signals
            .send(EngineSignal::Started(self.execution.execution_id));

        let report = loop {
            tokio::select! {
                biased;
                // First: an abandoned engine (a simulated crash) writes nothing more, not even
                // a heartbeat that became due in the same instant.
                changed = phase.changed() => {
                    let now_phase = *phase.borrow_and_update();
                    if changed.is_err() || now_phase == Phase::Abandoned {
                        // A simulated crash: write nothing more.
                        return;
                    }
                    if now_phase == Phase::HandingBack {
                        cancel_handle.request(CancelMode::Kill);
                        handing_back = true;
                    }
                }
                report = &mut executor_run => break report,
                () = tokio::time::sleep_until(gathered.due_or_now()), if gathered.is_due_later() => {
                    self.relay(gathered.take()).await;
                }
                Some(event) = event_stream.recv() => {
                    gathered.push(event);
                    drain(&mut event_stream, &mut gathered.progress);
                    if gathered.is_full() {
                        self.relay(gathered.take()).await;
                    }
                }
                () = self.place.bell().notified() => self.reread(&cancel_handle).await,
                () = inner.clock.sleep_until(heartbeat_at) => {
                    self.heartbeat(&cancel_handle).await;
                    heartbeat_at = self.next_heartbeat();
                }
            }
        };
        // The executor has ended: its place goes to the next execution before the events it left
        // behind are recorded and its outcome, since a store write must not keep the next
        // execution waiting (a durable store batches the outcome with the next claim's
        // neighbours instead).
        self.place.free_pool_place();
        let mut rest = gathered.take();
        drain(&mut event_stream, &mut rest);
        self.relay(rest).await;
        if *inner.phase.borrow() == Phase::Abandoned {
            return;
        }
        let handed_back = handing_back
            && matches!(
                self.execution.status,
                Status::Initializing | Status::Running
            )
            && report.outcome == Outcome::Killed;
        if handed_back {
            self.release().await;
        } else {
            self.finish(report).await;
        }
    }

    fn next_heartbeat(&self) -> crate::time::Timestamp {
        let inner = &self.engine.inner;
        after(inner.clock.now(), inner.config.lease / 3)
    }

    /// Records a batch of executor progress: its output in the run log and its events in the
    /// execution's feed, one store write each (so a chatty playbook costs few writes), the output
    /// first, so that whoever sees an event finds the output printed before it in the log. The
    /// events go to the notifier too. The workspace being ready moves the execution to RUNNING,
    /// after what was reported before it.
    async fn relay(&mut self, batch: Vec<Progress>) {
        let mut pending = Vec::new();
        let mut log = Vec::new();
        for progress in batch {
            match progress {
                // Masked as a whole when written: a secret printed across two reads is caught.
                Progress::Log(chunk) => log.extend_from_slice(&chunk),
                Progress::Event(mut event) => {
                    // Masked before it is cut, so that a cut cannot leave part of a secret.
                    self.masker.mask_event(&mut event);
                    event.cap(self.engine.inner.config.event_field_bytes);
                    pending.push(event);
                }
                Progress::WorkspaceReady => {
                    self.record_log(std::mem::take(&mut log)).await;
                    self.record_events(std::mem::take(&mut pending)).await;
                    if self.execution.status == Status::Initializing {
                        let command = Command::BeginRun {
                            attempt: self.attempt,
                        };
                        self.apply(&command).await;
                    }
                }
            }
        }
        self.record_log(log).await;
        self.record_events(pending).await;
    }

    async fn record_log(&mut self, chunk: Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        let chunk = self.masker.mask_bytes(chunk);
        let inner = &self.engine.inner;
        let execution_id = self.execution.execution_id;
        let now = inner.clock.now();
        if let Err(error) = inner
            .store
            .append_log(
                execution_id,
                self.attempt,
                &chunk,
                inner.config.run_log_cap,
                now,
            )
            .await
        {
            // As for events: the run goes on, and a refusal (lost lease) is the heartbeat's to act on.
            tracing::warn!(execution_id = %execution_id, %error, bytes = chunk.len(), "run log output was not recorded");
        }
    }

    async fn record_events(&mut self, events: Vec<ExecutorEvent>) {
        if events.is_empty() {
            return;
        }
        let inner = Arc::clone(&self.engine.inner);
        let execution_id = self.execution.execution_id;
        let now = inner.clock.now();
        if let Err(error) = inner
            .store
            .append_events(execution_id, self.attempt, &events, now)
            .await
        {
            // The run goes on: its outcome matters more than its feed. A refusal means the
            // lease is lost, which the next heartbeat acts on.
            tracing::warn!(execution_id = %execution_id, %error, count = events.len(), "executor events were not recorded");
        }
        for event in events {
            let notification = Notification {
                execution_id,
                job_id: self.execution.job_id,
                account_alias: self.execution.account_alias.clone(),
                time: now,
                kind: NotificationKind::Event(event),
            };
            inner.notifier.notify(notification).await;
        }
    }

    /// Someone changed the execution (stop, kill, a deadline): read it and cancel accordingly.
    async fn reread(&mut self, cancel: &CancelHandle) {
        let inner = &self.engine.inner;
        let execution = &self.execution;
        match inner
            .store
            .get_execution(
                &execution.account_alias,
                execution.job_id,
                execution.execution_id,
            )
            .await
        {
            Ok(Some(current)) => self.follow(current, cancel),
            Ok(None) => cancel.request(CancelMode::Kill),
            Err(error) => tracing::warn!(%error, "re-reading an execution failed"),
        }
    }

    async fn heartbeat(&mut self, cancel: &CancelHandle) {
        let inner = &self.engine.inner;
        let now = inner.clock.now();
        let command = Command::Heartbeat {
            attempt: self.attempt,
            lease_until: after(now, inner.config.lease),
        };
        let result = inner
            .store
            .transition(self.execution.execution_id, &command, now)
            .await;
        self.engine.observe_store(&result);
        match result {
            Ok(current) => self.follow(current, cancel),
            Err(StoreError::Refused(refused)) => {
                tracing::warn!(execution_id = %self.execution.execution_id, %refused, "lost the execution; killing the run");
                cancel.request(CancelMode::Kill);
            }
            Err(error) => tracing::warn!(%error, "heartbeat failed; retrying"),
        }
    }

    /// Turns the stored status into a cancellation request.
    fn follow(&mut self, current: Execution, cancel: &CancelHandle) {
        let ours = current.attempt == self.attempt && current.status.is_claimed();
        match current.status {
            _ if !ours => cancel.request(CancelMode::Kill),
            Status::Stopping => cancel.request(CancelMode::Graceful),
            Status::Killing => cancel.request(CancelMode::Kill),
            _ => {}
        }
        self.execution = current;
    }

    async fn finish(&mut self, mut report: RunReport) {
        report.message = report.message.map(|message| self.masker.mask(&message));
        let outcome = report.outcome;
        let command = Command::Finish {
            attempt: self.attempt,
            report,
        };
        if self.record(command).await {
            let started = self.execution.timers.last().map(|timer| timer.start);
            let now = self.engine.inner.clock.now();
            crate::meter::run_ended(outcome, started, now);
        }
    }

    async fn release(&mut self) {
        let command = Command::Release {
            attempt: self.attempt,
        };
        self.record(command).await;
        if self.execution.status == Status::Pending {
            let id = self.execution.execution_id;
            self.engine.inner.signals.send(EngineSignal::HandedBack(id));
        }
    }

    /// Applies a final command, again and again while the store is unavailable: a run that ended
    /// during a store outage records its outcome once the store is back (its lapsed lease holds
    /// until a rescue, and rescues wait for the store to have been back for a whole lease). It
    /// gives up on any other error, or when the engine is aborted. Returns whether the command
    /// was recorded.
    async fn record(&mut self, command: Command) -> bool {
        let inner = Arc::clone(&self.engine.inner);
        // Wall-clock pauses: this waits for a store to come back, not for a deadline of the domain.
        let mut pause = std::time::Duration::from_millis(50);
        let mut phase = inner.phase.subscribe();
        loop {
            let now = inner.clock.now();
            let result = inner
                .store
                .transition(self.execution.execution_id, &command, now)
                .await;
            self.engine.observe_store(&result);
            match result {
                Ok(current) => {
                    self.execution = current;
                    self.engine.notify_status(&self.execution).await;
                    return true;
                }
                Err(StoreError::Refused(refused)) => {
                    tracing::warn!(execution_id = %self.execution.execution_id, %refused, "outcome discarded");
                    return false;
                }
                Err(error @ StoreError::Unavailable(_)) => {
                    tracing::warn!(%error, execution_id = %self.execution.execution_id, "recording the outcome failed; retrying until the store is back");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = phase.wait_for(|phase| *phase == Phase::Abandoned) => return false,
                    }
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
                Err(error) => {
                    tracing::error!(%error, execution_id = %self.execution.execution_id, "could not record the outcome");
                    return false;
                }
            }
        }
    }

    async fn apply(&mut self, command: &Command) {
        let inner = &self.engine.inner;
        let now = inner.clock.now();
        match inner
            .store
            .transition(self.execution.execution_id, command, now)
            .await
        {
            Ok(current) => {
                let changed = current.status != self.execution.status;
                self.execution = current;
                if changed {
                    self.engine.notify_status(&self.execution).await;
                }
            }
            Err(error) => tracing::warn!(%error, command = %command.kind(), "transition refused"),
        }
    }
}
