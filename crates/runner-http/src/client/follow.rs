//! Following a run log: `GET .../executions/{id}/log` with `Accept: text/event-stream` (see
//! [`crate::api::run_log`]). Each `log` event's text goes to the writer as it arrives; the `end`
//! event gives the execution's status. A stream that ends without `end` (the server restarted, a
//! proxy cut it) is resumed with `Last-Event-ID`, so no output is shown twice or lost.

use std::io::Write;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;

use super::connection::{Api, ClientError, send, transport};

/// Resumptions in a row that brought nothing before the follow gives up.
const RESUMPTIONS: u32 = 3;

/// Reads page after page of an attempt's log (no stream) into `out`, to where it is now.
pub async fn print_pages(
    api: &Api,
    execution: &[&str],
    attempt: Option<u32>,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let mut offset = 0u64;
    loop {
        let mut query = vec![("offset", offset.to_string())];
        if let Some(attempt) = attempt {
            query.push(("attempt", attempt.to_string()));
        }
        let url = api.url(&log_path(execution), &query);
        let response = send(api.request(Method::GET, url)).await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok())
        };
        let next = header("x-run-log-next-offset").unwrap_or(offset);
        let total = header("x-run-log-total").unwrap_or(0);
        let body = response.bytes().await.map_err(transport)?;
        write(out, &body)?;
        if body.is_empty() || next <= offset || next >= total {
            return Ok(());
        }
        offset = next;
    }
}

fn log_path<'a>(execution: &[&'a str]) -> Vec<&'a str> {
    let mut path = execution.to_vec();
    path.push("log");
    path
}

fn write(out: &mut impl Write, bytes: &[u8]) -> Result<(), ClientError> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|error| ClientError::Transport(format!("writing the output: {error}")))
}

/// Follows the log of `execution` (the API path segments of the execution) until its run ends;
/// returns the status the `end` event carried.
pub async fn follow(
    api: &Api,
    execution: &[&str],
    attempt: Option<u32>,
    out: &mut impl Write,
) -> Result<String, ClientError> {
    let mut last_id: Option<String> = None;
    let mut idle_resumptions = 0;
    loop {
        let query: Vec<(&str, String)> = attempt
            .map(|attempt| vec![("attempt", attempt.to_string())])
            .unwrap_or_default();
        let mut request = api
            .request(Method::GET, api.url(&log_path(execution), &query))
            .header("accept", "text/event-stream");
        if let Some(id) = &last_id {
            request = request.header("last-event-id", id);
        }
        let response = send(request).await?;
        let mut stream = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        let mut progressed = false;
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                // A cut connection: resume below.
                break;
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = find_blank_line(&buffer) {
                let block: Vec<u8> = buffer.drain(..end).collect();
                let event = parse_event(&String::from_utf8_lossy(&block));
                if let Some(id) = event.id {
                    last_id = Some(id);
                }
                match event.event.as_deref() {
                    Some("log") => {
                        progressed = true;
                        write(out, event.data.as_bytes())?;
                    }
                    Some("end") => {
                        let end: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
                        return Ok(end["status"].as_str().unwrap_or("UNKNOWN").to_owned());
                    }
                    _ => {}
                }
            }
        }
        idle_resumptions = if progressed { 0 } else { idle_resumptions + 1 };
        if idle_resumptions >= RESUMPTIONS {
            return Err(ClientError::Transport(
                "the run log stream ended before the run did, and resuming it brought nothing"
                    .into(),
            ));
        }
    }
}

/// The end of the first event block (after its blank line), for `\n\n` and `\r\n\r\n`.
fn find_blank_line(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Debug, Default, PartialEq)]
struct SseEvent {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// One event block: `data:` lines joined with newlines, as the SSE format says.
fn parse_event(block: &str) -> SseEvent {
    let mut event = SseEvent::default();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => event.id = Some(value.to_owned()),
            "event" => event.event = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    event.data = data.join("\n");
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_data_joins_with_newlines() {
        let event = parse_event("id: 1:12\nevent: log\ndata: a\ndata: b\ndata: \n");
        assert_eq!(event.id.as_deref(), Some("1:12"));
        assert_eq!(event.event.as_deref(), Some("log"));
        assert_eq!(event.data, "a\nb\n");
    }

    #[test]
    fn comments_are_not_events() {
        assert_eq!(parse_event(": keep-alive\n"), SseEvent::default());
        assert_eq!(find_blank_line(b": x\n\nid: 2"), Some(5));
        assert_eq!(find_blank_line(b"id: 1\r\n\r\n"), Some(9));
        assert_eq!(find_blank_line(b"id: 1\n"), None);
    }
}
