//! The run log over HTTP: `GET /jobs/{alias}/{jobId}/executions/{executionId}/log`, as
//! `text/plain` pages or, with `Accept: text/event-stream`, followed live until the run ends.
//!
//! # Pages
//!
//! The body is the attempt's output from `offset` (at most `limit` bytes), exactly as
//! ansible-playbook printed it (bytes, usually UTF-8). Headers tell the page: `X-Run-Log-Attempt`
//! (the attempt read), `X-Run-Log-Next-Offset` (the `offset` of the next page),
//! `X-Run-Log-Total` (the bytes the run printed so far) and `X-Run-Log-Complete` (`true` once the
//! run ended and this page reaches the end). Where the size cap dropped the middle of a long
//! log, the page at that offset starts with a marker line saying how much was left out.
//!
//! # The stream
//!
//! Each `log` event carries output as `data:` (text; multi-line data is split over `data:`
//! lines as SSE does it) and `id: <attempt>:<next offset>`, so `Last-Event-ID` resumes the same
//! attempt where the stream was; a page is cut before a UTF-8 character split by its end,
//! which the next event sends whole. When the attempt's run has ended and everything is sent,
//! an `end` event (`data:` a [`LogEnd`]) closes the stream. Like the events stream, it subscribes
//! to the store's signals before its first read, re-reads on [`Signal::Log`] and
//! [`Signal::Feed`] of its execution (output, and status changes such as the end of the run),
//! on a lagged receiver and every [`LIVE_POLL_INTERVAL`], and ends at server shutdown.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::response::sse;
use futures_util::stream::{self, Stream};
use runner_core::engine::Engine;
use runner_core::execution::Status;
use runner_core::executor::Executor;
use runner_core::ids::{AccountAlias, ExecutionId, JobId};
use runner_core::notifier::Notifier;
use runner_core::run_log::LogPage;
use runner_core::store::{LogRead, Signal, Store};
use runner_core::time::Clock;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::AppState;
use super::events::{LIVE_POLL_INTERVAL, sse_response, wants_stream};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{DEFAULT_LOG_LIMIT, ExecutionPath, LogQuery};

/// The last event of a followed log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogEnd {
    /// The attempt that was followed.
    pub attempt: u32,
    /// The offset after its last byte.
    pub next_offset: u64,
    /// The execution's status when the stream ended.
    pub status: Status,
}

/// `Last-Event-ID` of a log stream: `<attempt>:<offset>` (400 naming it otherwise).
fn resume_point(headers: &HeaderMap) -> Result<Option<(u32, u64)>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::field(
            "Last-Event-ID",
            "must be the id of a log event (attempt:offset)",
        )
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (attempt, offset) = text.split_once(':').ok_or_else(invalid)?;
    match (attempt.parse::<u32>(), offset.parse::<u64>()) {
        (Ok(attempt), Ok(offset)) if attempt >= 1 => Ok(Some((attempt, offset))),
        _ => Err(invalid()),
    }
}

fn header_value(value: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&value.to_string()).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The execution's run log: a page of it, or followed live.
///
/// `GET /jobs/{alias}/{jobId}/executions/{executionId}/log?attempt=&offset=&limit=`: see the
/// [module docs](self).
#[utoipa::path(get, path = "/jobs/{alias}/{jobId}/executions/{executionId}/log",
    tag = "executions", operation_id = "getExecutionLog",
    description = "The run log: ansible-playbook's human-readable output (stdout and stderr, as its \
default callback prints it) of one attempt of the execution (`attempt`, default the latest; a \
restart is a new attempt). Without `Accept: text/event-stream`: `text/plain`, the bytes from \
`offset` (at most `limit`), with headers `X-Run-Log-Attempt`, `X-Run-Log-Next-Offset` (the next \
page's `offset`), `X-Run-Log-Total` and `X-Run-Log-Complete` (`true` once the run ended and the \
page reaches the end). The server keeps the first and the last half of its cap (`--run-log-cap`, \
default 10 MiB) of each attempt's output; a read that falls where the middle was dropped starts \
with a `[runner: N bytes of output omitted ...]` line. With `Accept: text/event-stream`: the \
output follows live as `log` events (`data:` the text, `id:` `<attempt>:<next offset>`, resumed \
by `Last-Event-ID`), then one `end` event (a LogEnd) once the run ended.",
    params(ExecutionPath, LogQuery,
        ("Accept" = Option<String>, Header, description = "`text/event-stream` to follow the log"),
        ("Last-Event-ID" = Option<String>, Header, pattern = "^(?:[1-9][0-9]{0,8}:[0-9]{1,19})?$",
         description = "Stream: resume at this `<attempt>:<offset>` (over `attempt` and `offset`)")),
    responses(
        (status = 200, description = "A page of the log, or the live stream",
         content((String = "text/plain"), (String = "text/event-stream")),
         headers(
            ("X-Run-Log-Attempt" = u32, description = "The attempt read"),
            ("X-Run-Log-Next-Offset" = u64, description = "The offset of the next page"),
            ("X-Run-Log-Total" = u64, description = "Bytes of output so far"),
            ("X-Run-Log-Complete" = bool, description = "The run ended and the page reaches the end"))),
        (status = 400, description = "Bad `attempt`, `offset`, `limit` or `Last-Event-ID` (the error names it)",
         body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such execution of this job in this account, or no such attempt",
         body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn get_log<S: Store, E: Executor, N: Notifier, C: Clock>(
    State(state): State<AppState<S, E, N, C>>,
    path: ExecutionPath,
    query: LogQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let engine = &state.engine;
    // Checked for a page too: a malformed header is the client's mistake either way.
    let resume = resume_point(&headers)?;
    if !wants_stream(&headers) {
        let read = LogRead {
            attempt: query.attempt,
            offset: query.offset,
            limit: query.limit,
        };
        let page = engine
            .read_log(&path.alias, path.job_id, path.execution_id, read)
            .await?;
        let mut response = Response::new(Body::from(page.data));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert("x-run-log-attempt", header_value(page.attempt));
        headers.insert("x-run-log-next-offset", header_value(page.next_offset));
        headers.insert("x-run-log-total", header_value(page.total));
        headers.insert("x-run-log-complete", header_value(page.complete));
        return Ok(response);
    }

    let (attempt, offset) = match resume {
        Some((attempt, offset)) => (Some(attempt), offset),
        None => (query.attempt, query.offset),
    };
    // Subscribe first: output appended after this point is signalled, output before it is read.
    let signals = engine.store().subscribe();
    let first = engine
        .read_log(
            &path.alias,
            path.job_id,
            path.execution_id,
            LogRead {
                attempt,
                offset,
                limit: DEFAULT_LOG_LIMIT,
            },
        )
        .await?;
    let mut poll = tokio::time::interval_at(
        tokio::time::Instant::now() + LIVE_POLL_INTERVAL,
        LIVE_POLL_INTERVAL,
    );
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let follower = Follower {
        engine: state.engine.clone(),
        alias: path.alias,
        job_id: path.job_id,
        execution_id: path.execution_id,
        // The attempt is fixed once read: a restart while following does not switch streams.
        attempt: first.attempt,
        offset,
        page: Some(first),
        stale: false,
        ended: false,
        signals,
        closing: state.live_feeds.subscribe(),
        poll,
    };
    Ok(sse_response(follower.into_stream()))
}

/// The state of one followed log.
struct Follower<S, E, N, C> {
    engine: Engine<S, E, N, C>,
    alias: AccountAlias,
    job_id: JobId,
    execution_id: ExecutionId,
    attempt: u32,
    /// The offset of the next byte to send.
    offset: u64,
    /// Read, not yet sent.
    page: Option<LogPage>,
    /// The store may have more after `offset`: read before waiting.
    stale: bool,
    /// The `end` event was sent.
    ended: bool,
    signals: broadcast::Receiver<Signal>,
    closing: watch::Receiver<bool>,
    poll: tokio::time::Interval,
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> Follower<S, E, N, C> {
    fn into_stream(self) -> impl Stream<Item = Result<sse::Event, Infallible>> + Send + 'static {
        stream::unfold(self, |mut follower| async move {
            let event = follower.next().await?;
            Some((Ok(event), follower))
        })
    }

    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<sse::Event> {
        loop {
            if self.ended || *self.closing.borrow() {
                return None;
            }
            if let Some(page) = self.page.take() {
                if let Some(event) = self.send(page).await {
                    return Some(event);
                }
                continue;
            }
            if self.stale {
                self.stale = false;
                let read = LogRead {
                    attempt: Some(self.attempt),
                    offset: self.offset,
                    limit: DEFAULT_LOG_LIMIT,
                };
                match self
                    .engine
                    .read_log(&self.alias, self.job_id, self.execution_id, read)
                    .await
                {
                    Ok(page) => self.page = Some(page),
                    Err(error) => {
                        // The client reconnects with Last-Event-ID and resumes where it was.
                        tracing::warn!(execution_id = %self.execution_id, %error,
                            "run log stream: the store failed; closing the stream");
                        return None;
                    }
                }
                continue;
            }
            tokio::select! {
                _ = self.closing.wait_for(|closing| *closing) => return None,
                signal = self.signals.recv() => match signal {
                    Ok(Signal::Log(id) | Signal::Feed(id)) if id == self.execution_id => {
                        self.stale = true;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => self.stale = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.poll.tick() => self.stale = true,
            }
        }
    }

    /// The event for a page read: its output, the `end` event, or nothing (wait for more).
    async fn send(&mut self, page: LogPage) -> Option<sse::Event> {
        let mut data = page.data;
        let mut next = page.next_offset;
        // Keep a character split by the page's end for the next event, unless nothing else comes.
        if let Err(error) = std::str::from_utf8(&data) {
            let split = data.len() - error.valid_up_to();
            if error.error_len().is_none() && (split < data.len() || !page.complete) {
                data.truncate(error.valid_up_to());
                next -= split as u64;
            }
        }
        if !data.is_empty() {
            self.offset = next;
            // More may be there already: a page holds at most the limit.
            self.stale = true;
            let text = String::from_utf8_lossy(&data).into_owned();
            return Some(
                sse::Event::default()
                    .id(format!("{}:{}", self.attempt, self.offset))
                    .event("log")
                    .data(text),
            );
        }
        if next > self.offset {
            // The page was only a split character, kept for later.
            self.offset = next;
        }
        if !page.complete {
            return None;
        }
        self.ended = true;
        let status = self
            .engine
            .get_execution(&self.alias, self.job_id, self.execution_id)
            .await
            .map_or(Status::Failure, |execution| execution.status);
        let end = LogEnd {
            attempt: self.attempt,
            next_offset: self.offset,
            status,
        };
        let data = serde_json::to_string(&end).unwrap_or_else(|_| "{}".to_owned());
        Some(
            sse::Event::default()
                .id(format!("{}:{}", self.attempt, self.offset))
                .event("end")
                .data(data),
        )
    }
}
