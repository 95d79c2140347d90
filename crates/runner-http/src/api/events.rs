//! The live feed over HTTP: `GET /jobs/{alias}/{jobId}/executions/{executionId}/events`, as a
//! JSON page or, with `Accept: text/event-stream`, as a live server-sent-event stream; and the
//! check of callback URLs (the SSRF guard) on job create and update.
//!
//! # The stream
//!
//! Each event is sent with `id:` its sequence number, `event:` its kind and `data:` its JSON.
//! The stream starts after `Last-Event-ID` (the header a browser's `EventSource` sends when it
//! reconnects), else after `?after=`, else at the first event. It subscribes to the store's
//! signals *before* it reads the backlog, so an event recorded between the read and the
//! subscription cannot fall between them; then it reads again, after the last sequence it sent,
//! on every [`Signal::Feed`] of its execution, when its receiver lagged behind the broadcast, and
//! every [`LIVE_POLL_INTERVAL`] (signals are hints). Reads always start after the last sequence
//! sent, so a client sees each event once, in order, whatever the signals do. The stream stays
//! open (a restart can add events to an ended execution) until the client leaves or the server
//! shuts down ([`LiveFeeds::close`]); a comment line every [`KEEP_ALIVE_INTERVAL`] keeps idle
//! connections alive through proxies.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use runner_core::engine::Engine;
use runner_core::executor::Executor;
use runner_core::feed::Event;
use runner_core::ids::{AccountAlias, ExecutionId, JobId};
use runner_core::job::JobSpec;
use runner_core::notifier::Notifier;
use runner_core::store::{Signal, Store};
use runner_core::time::Clock;
use runner_core::validation::ValidationErrors;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{EventsQuery, ExecutionPath};

/// How many events one read of a live stream takes from the store.
const LIVE_BATCH: usize = 1000;

/// A live stream reads the store this often even without a signal.
pub const LIVE_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// An idle live stream sends a comment line this often.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// A page of an execution's events, as `GET .../events` answers without
/// `Accept: text/event-stream`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    /// The events with a sequence number above `after`, in order, at most `size`.
    pub events: Vec<Event>,
    /// The sequence number of the last event of the page, or `after` when the page is empty:
    /// the `after` of the next page.
    pub last_sequence: u64,
    /// Whether the execution had more events than the page holds when it was read.
    pub has_more: bool,
}

/// Ends every open live stream, so that a graceful shutdown of the HTTP server does not wait for
/// clients that would otherwise stay connected for ever. Cloning shares the switch.
#[derive(Debug, Clone)]
pub struct LiveFeeds {
    closing: Arc<watch::Sender<bool>>,
}

impl Default for LiveFeeds {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveFeeds {
    /// A switch that is open: streams run.
    pub fn new() -> Self {
        Self {
            closing: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Ends every open stream (each ends cleanly, after the event it is sending) and every
    /// stream opened from now on after its backlog.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// Whether the client asked for a server-sent-event stream.
pub(crate) fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            item.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("text/event-stream")
        })
}

/// `Last-Event-ID`, when the client sent one (400 naming it when it is not a sequence number).
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::field(
            "Last-Event-ID",
            "must be the sequence number (id) of an event",
        )
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text.is_empty() {
        // What an EventSource sends before it saw an id: start from the beginning.
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| invalid())
}

/// The execution's live feed: a page of its events, or a live stream.
///
/// `GET /jobs/{alias}/{jobId}/executions/{executionId}/events?after=&size=`: the events with a
/// sequence number above `after` (default 0), at most `size` (1 to 1000, default 100), as an
/// [`EventPage`]; with `Accept: text/event-stream`, a live stream (see the [module docs](self)).
#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/executions/{executionId}/events",
    tag = "executions", operation_id = "listExecutionEvents",
    description = "Without `Accept: text/event-stream`: a page of the execution's stored events, \
oldest first (`after`, `size`). With `Accept: text/event-stream`: a server-sent-event stream that \
replays the events after `Last-Event-ID` (or `after`) and then sends each new one as it is \
recorded; each event has `id:` its sequence number, `event:` its kind and `data:` the Event as \
JSON, and a `: keep-alive` comment is sent every 15 s when idle. The stream stays open (a restart \
adds events) until the client leaves or the server shuts down; reconnecting with `Last-Event-ID` \
resumes without gaps or repeats.",
    params(ExecutionPath, EventsQuery,
        ("Accept" = Option<String>, Header, description = "`text/event-stream` for the live stream"),
        ("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]{0,19}$",
         description = "Stream: resume after this sequence number (over `after`); empty, as an \
         `EventSource` sends it before it saw an id, starts from the beginning")),
    responses(
        (status = 200, description = "A page of events, or the live stream",
         content((EventPage = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "Bad `after`, `size` or `Last-Event-ID` (the error names it)",
         body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such execution of this job in this account", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn list_events<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: ExecutionPath,
    query: EventsQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let engine = &state.engine;
    // Checked for a page too: a malformed header is the client's mistake either way.
    let resume = last_event_id(&headers)?;
    if !wants_stream(&headers) {
        // One more than asked tells whether there are more.
        let mut events = engine
            .list_events(
                &path.alias,
                path.job_id,
                path.execution_id,
                query.after,
                query.size + 1,
            )
            .await?;
        let has_more = events.len() > query.size;
        events.truncate(query.size);
        let last_sequence = events.last().map_or(query.after, |event| event.sequence);
        return Ok(Json(EventPage {
            events,
            last_sequence,
            has_more,
        })
        .into_response());
    }

    let after = resume.unwrap_or(query.after);
    // Subscribe first: whatever is recorded after this point is signalled, and whatever was
    // recorded before it is in the backlog read below.
    let signals = engine.store().subscribe();
    let backlog = engine
        .list_events(
            &path.alias,
            path.job_id,
            path.execution_id,
            after,
            LIVE_BATCH,
        )
        .await?;
    let mut poll = tokio::time::interval_at(
        tokio::time::Instant::now() + LIVE_POLL_INTERVAL,
        LIVE_POLL_INTERVAL,
    );
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = LiveFeed {
        engine: state.engine.clone(),
        alias: path.alias,
        job_id: path.job_id,
        execution_id: path.execution_id,
        last: after,
        stale: backlog.len() == LIVE_BATCH,
        pending: backlog.into(),
        signals,
        closing: state.live_feeds.subscribe(),
        poll,
    };
    Ok(sse_response(feed.into_stream()))
}

/// A server-sent-event response of `stream`, as every followed resource answers: a keep-alive
/// comment every [`KEEP_ALIVE_INTERVAL`], and no buffering by proxies (nginx would hold the
/// events back).
pub(super) fn sse_response(
    stream: impl Stream<Item = Result<sse::Event, Infallible>> + Send + 'static,
) -> Response {
    let mut response = Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(KEEP_ALIVE_INTERVAL)
                .text("keep-alive"),
        )
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The state of one live stream.
struct LiveFeed<S, E, N, C> {
    engine: Engine<S, E, N, C>,
    alias: AccountAlias,
    job_id: JobId,
    execution_id: ExecutionId,
    /// The sequence number of the last event sent (or the starting point).
    last: u64,
    /// Read, not yet sent.
    pending: VecDeque<Event>,
    /// The store may hold events after `last` that `pending` does not: read before waiting.
    stale: bool,
    signals: broadcast::Receiver<Signal>,
    closing: watch::Receiver<bool>,
    poll: tokio::time::Interval,
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> LiveFeed<S, E, N, C> {
    fn into_stream(self) -> impl Stream<Item = Result<sse::Event, Infallible>> + Send + 'static {
        stream::unfold(self, |mut feed| async move {
            let event = feed.next().await?;
            Some((Ok(event), feed))
        })
    }

    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<sse::Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.sequence <= self.last {
                    continue;
                }
                self.last = event.sequence;
                return Some(to_sse(&event));
            }
            if *self.closing.borrow() {
                return None;
            }
            if self.stale {
                let read = self
                    .engine
                    .list_events(
                        &self.alias,
                        self.job_id,
                        self.execution_id,
                        self.last,
                        LIVE_BATCH,
                    )
                    .await;
                match read {
                    Ok(events) => {
                        self.stale = events.len() == LIVE_BATCH;
                        self.pending.extend(events);
                    }
                    Err(error) => {
                        // The client reconnects with Last-Event-ID and resumes where it was.
                        tracing::warn!(execution_id = %self.execution_id, %error,
                            "live feed: the store failed; closing the stream");
                        return None;
                    }
                }
                continue;
            }
            tokio::select! {
                _ = self.closing.wait_for(|closing| *closing) => return None,
                signal = self.signals.recv() => match signal {
                    Ok(Signal::Feed(id)) if id == self.execution_id => self.stale = true,
                    Ok(_) => {}
                    // Some signals were missed, maybe ours: read to be sure.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.stale = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.poll.tick() => self.stale = true,
            }
        }
    }
}

fn to_sse(event: &Event) -> sse::Event {
    let kind = serde_json::to_value(event.kind)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "event".to_owned());
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    sse::Event::default()
        .id(event.sequence.to_string())
        .event(kind)
        .data(data)
}

/// Refuses (400, naming `callbacks[i].url`) callback URLs that the SSRF guard refuses: targets
/// that are, or resolve to, addresses that are not globally reachable, and names that do not
/// resolve, unless the server allows private callbacks. URLs that are not http(s) are left to the job's own validation, whose errors are
/// reported together with these.
pub async fn vet_callbacks(spec: &JobSpec, allow_private: bool) -> Result<(), ApiError> {
    let checks = spec
        .callbacks
        .iter()
        .enumerate()
        .filter(|(_, callback)| {
            let url = callback.url.trim_start().to_ascii_lowercase();
            url.starts_with("http://") || url.starts_with("https://")
        })
        .map(|(index, callback)| async move {
            runner_webhook::guard::vet_callback_url(&callback.url, allow_private)
                .await
                .err()
                .map(|refused| (index, refused.to_string()))
        });
    let refused: Vec<(usize, String)> = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let mut errors: ValidationErrors = spec.validate().err().unwrap_or_default();
    for (index, message) in refused {
        errors.add(format!("callbacks[{index}].url"), message);
    }
    Err(ApiError::Invalid(errors))
}
