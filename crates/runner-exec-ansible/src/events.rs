//! The event stream of a run: JSON lines from the `runner_events` callback plugin, read from a
//! unix socket in the work directory, turned into [`ExecutorEvent`]s and tallied for the report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runner_core::executor::{EventKind, EventSink, ExecutorEvent, TaskResult};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The longest path a unix socket can have on Linux (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// One line of the callback plugin.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Line {
    PlaybookStart {},
    PlayStart {
        name: Option<String>,
    },
    TaskStart {
        name: Option<String>,
    },
    HostOk {
        host: String,
        task: Option<String>,
        result: Option<TaskResult>,
    },
    HostFailed {
        host: String,
        task: Option<String>,
        #[serde(default)]
        message: String,
        result: Option<TaskResult>,
        /// One item of a loop failed (the task's own result follows the last item).
        #[serde(default)]
        loop_item: bool,
    },
    HostUnreachable {
        host: String,
        task: Option<String>,
        #[serde(default)]
        message: String,
        result: Option<TaskResult>,
    },
    HostSkipped {
        host: String,
        task: Option<String>,
        result: Option<TaskResult>,
    },
    HostRetry {
        host: String,
        task: Option<String>,
        result: Option<TaskResult>,
    },
    PlayEnd {
        #[serde(default)]
        failed: Vec<String>,
        #[serde(default)]
        unreachable: Vec<String>,
    },
    Stopped,
    PlaybookEnd {
        #[serde(default)]
        stats: BTreeMap<String, HostStats>,
    },
}

/// A host's line of the play recap.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct HostStats {
    #[serde(default)]
    pub ok: u64,
    #[serde(default)]
    pub changed: u64,
    #[serde(default)]
    pub failures: u64,
    #[serde(default)]
    pub unreachable: u64,
    #[serde(default)]
    pub skipped: u64,
    #[serde(default)]
    pub rescued: u64,
    #[serde(default)]
    pub ignored: u64,
}

/// How many failures the report's message quotes.
const QUOTED_FAILURES: usize = 5;

/// What the events of a run add up to.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// How the events name the playbook: its path in the repository, or `playbook.yml`.
    pub playbook: String,
    /// The playbook started (the plugin is connected and working).
    pub started: bool,
    /// The recap arrived: the playbook ran to its end (or to a stop).
    pub ended: bool,
    /// The plugin saw the stop file and started no new task.
    pub stopped: bool,
    /// Hosts that failed or were unreachable, or that a play aborted.
    pub failed_hosts: BTreeSet<String>,
    /// Hosts of the recap.
    pub stats: BTreeMap<String, HostStats>,
    /// The first failures (not ignored, not rescued), from the structured results: what the
    /// report's message quotes. Never ansible's raw output, which a `no_log` task's failure
    /// would reach.
    pub failure_messages: Vec<String>,
}

impl Tally {
    /// A tally for the playbook named `playbook` in the events.
    pub(crate) fn new(playbook: String) -> Self {
        Self {
            playbook,
            ..Self::default()
        }
    }

    fn quote(&mut self, failure: String) {
        if self.failure_messages.len() < QUOTED_FAILURES {
            self.failure_messages.push(failure);
        }
    }

    /// Adds a line; returns the event to emit, if any.
    fn add(&mut self, line: Line) -> Option<ExecutorEvent> {
        let host_event = |kind, host: String, task: Option<String>, result: Option<TaskResult>| {
            Some(ExecutorEvent {
                host: Some(host),
                task,
                result: result.map(Box::new),
                ..ExecutorEvent::new(kind)
            })
        };
        match line {
            Line::PlaybookStart {} => {
                self.started = true;
                Some(ExecutorEvent {
                    message: Some(self.playbook.clone()),
                    ..ExecutorEvent::new(EventKind::PlaybookStart)
                })
            }
            Line::PlayStart { name } => Some(ExecutorEvent {
                task: name,
                ..ExecutorEvent::new(EventKind::PlayStart)
            }),
            Line::TaskStart { name } => Some(ExecutorEvent {
                task: name,
                ..ExecutorEvent::new(EventKind::TaskStart)
            }),
            Line::HostOk { host, task, result } => {
                host_event(EventKind::HostOk, host, task, result)
            }
            Line::HostSkipped { host, task, result } => {
                host_event(EventKind::HostSkipped, host, task, result)
            }
            Line::HostRetry { host, task, result } => {
                host_event(EventKind::HostRetry, host, task, result)
            }
            Line::HostFailed {
                host,
                task,
                message,
                result,
                loop_item,
            } => {
                let (ignored, rescued) = result
                    .as_ref()
                    .map_or((false, false), |result| (result.ignored, result.rescued));
                let message = if ignored {
                    format!("{message} (ignored)")
                } else if rescued {
                    format!("{message} (rescued)")
                } else {
                    if !loop_item {
                        let on = task.as_deref().unwrap_or("a task");
                        self.quote(format!("{host}: {on}: {message}"));
                    }
                    message
                };
                let mut event = host_event(EventKind::HostFailed, host, task, result);
                if let Some(event) = &mut event {
                    event.message = Some(message);
                }
                event
            }
            Line::HostUnreachable {
                host,
                task,
                message,
                result,
            } => {
                self.quote(format!("{host}: unreachable: {message}"));
                let mut event = host_event(EventKind::HostUnreachable, host, task, result);
                if let Some(event) = &mut event {
                    event.message = Some(message);
                }
                event
            }
            Line::PlayEnd {
                failed,
                unreachable,
            } => {
                self.failed_hosts.extend(failed);
                self.failed_hosts.extend(unreachable);
                None
            }
            Line::Stopped => {
                self.stopped = true;
                Some(ExecutorEvent {
                    message: Some("stop honoured: no new task started".into()),
                    ..ExecutorEvent::new(EventKind::Log)
                })
            }
            Line::PlaybookEnd { stats } => {
                self.ended = true;
                for (host, line) in &stats {
                    if line.failures > 0 || line.unreachable > 0 {
                        self.failed_hosts.insert(host.clone());
                    }
                }
                let summary = serde_json::to_string(&recap(&stats)).ok();
                self.stats = stats;
                Some(ExecutorEvent {
                    message: summary,
                    ..ExecutorEvent::new(EventKind::PlaybookEnd)
                })
            }
        }
    }
}

fn recap(stats: &BTreeMap<String, HostStats>) -> Value {
    stats
        .iter()
        .map(|(host, s)| {
            let line = serde_json::json!({
                "ok": s.ok, "changed": s.changed, "failures": s.failures,
                "unreachable": s.unreachable, "skipped": s.skipped,
                "rescued": s.rescued, "ignored": s.ignored,
            });
            (host.clone(), line)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The listening end of a run's event socket and the task that reads it.
pub(crate) struct EventStream {
    reader: JoinHandle<()>,
    tally: Arc<Mutex<Tally>>,
    exited: Arc<Notify>,
}

impl EventStream {
    /// Listens on `socket` and relays every line to `sink` as it arrives.
    /// `playbook` is how the events name the playbook.
    pub(crate) fn listen(socket: &Path, sink: EventSink, playbook: String) -> Result<Self, String> {
        let length = socket.as_os_str().len();
        if length > MAX_SOCKET_PATH {
            return Err(format!(
                "the work directory path is too long for the event socket ({length} > {MAX_SOCKET_PATH} bytes): choose a shorter work_root"
            ));
        }
        let listener = UnixListener::bind(socket)
            .map_err(|error| format!("could not listen on {}: {error}", socket.display()))?;
        let tally = Arc::new(Mutex::new(Tally::new(playbook)));
        let exited = Arc::new(Notify::new());
        let reader = tokio::spawn(read(
            listener,
            sink,
            Arc::clone(&tally),
            Arc::clone(&exited),
        ));
        Ok(Self {
            reader,
            tally,
            exited,
        })
    }

    /// Waits (up to `timeout`) for the stream to end, after ansible-playbook exited, and returns
    /// the tally.
    pub(crate) async fn finish(mut self, timeout: Duration) -> Tally {
        self.exited.notify_one();
        if tokio::time::timeout(timeout, &mut self.reader)
            .await
            .is_err()
        {
            tracing::warn!("the event stream did not end after ansible-playbook exited");
        }
        self.reader.abort();
        std::mem::take(&mut *self.tally.lock().expect("tally poisoned"))
    }

    /// Stops reading at once (the run was killed).
    pub(crate) fn abort(self) {
        self.reader.abort();
    }
}

/// Reads the plugin's connection to its end. Only the plugin in ansible's main process
/// connects; once it has written its last line and the process is gone, the stream ends.
async fn read(
    listener: UnixListener,
    sink: EventSink,
    tally: Arc<Mutex<Tally>>,
    exited: Arc<Notify>,
) {
    let accepted = tokio::select! {
        accepted = listener.accept() => accepted,
        // The process is gone: a connection it made waits in the backlog and is accepted at
        // once; if there is none, the plugin never connected and there is nothing to read.
        () = exited.notified() => {
            match tokio::time::timeout(Duration::from_secs(1), listener.accept()).await {
                Ok(accepted) => accepted,
                Err(_) => return,
            }
        }
    };
    let Ok((stream, _)) = accepted else {
        return;
    };
    drop(listener);
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match serde_json::from_str::<Line>(&line) {
            Ok(parsed) => {
                let event = tally.lock().expect("tally poisoned").add(parsed);
                if let Some(event) = event {
                    sink.emit(event);
                }
            }
            Err(error) => tracing::warn!(%error, "unreadable event from the callback plugin"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(tally: &mut Tally, json: &str) -> Option<ExecutorEvent> {
        tally.add(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn lines_become_events_and_a_tally() {
        let mut tally = Tally::default();
        let event = add(&mut tally, r#"{"event":"task_start","name":"ping"}"#).unwrap();
        assert_eq!(event.kind, EventKind::TaskStart);
        assert_eq!(event.task.as_deref(), Some("ping"));
        let event = add(
            &mut tally,
            r#"{"event":"host_failed","host":"h2","task":"t","message":"boom"}"#,
        )
        .unwrap();
        assert_eq!(event.kind, EventKind::HostFailed);
        assert_eq!(event.host.as_deref(), Some("h2"));
        add(
            &mut tally,
            r#"{"event":"host_failed","host":"h1","task":"t","message":"meh","result":{"ignored":true}}"#,
        );
        assert!(
            add(
                &mut tally,
                r#"{"event":"play_end","failed":["h4"],"unreachable":["h5"]}"#
            )
            .is_none()
        );
        let end = add(
            &mut tally,
            r#"{"event":"playbook_end","stats":{"h1":{"ok":2,"ignored":1},"h2":{"ok":1,"failures":1},"h3":{"unreachable":1}}}"#,
        )
        .unwrap();
        assert_eq!(end.kind, EventKind::PlaybookEnd);
        assert!(end.message.unwrap().contains("\"h2\""));
        assert!(tally.ended);
        let failed: Vec<&str> = tally.failed_hosts.iter().map(String::as_str).collect();
        assert_eq!(failed, ["h2", "h3", "h4", "h5"]);
        assert_eq!(tally.failure_messages, ["h2: t: boom"]);
    }

    #[test]
    fn results_items_and_markers() {
        let mut tally = Tally::new("site.yml".into());
        let start = add(&mut tally, r#"{"event":"playbook_start"}"#).unwrap();
        assert_eq!(start.message.as_deref(), Some("site.yml"));
        let ok = add(
            &mut tally,
            r#"{"event":"host_ok","host":"h","task":"c","result":{"changed":true,"stdout":"out","rc":0,"item":"a"}}"#,
        )
        .unwrap();
        let result = ok.result.unwrap();
        assert!(result.changed);
        assert_eq!(
            (result.stdout.as_deref(), result.rc),
            (Some("out"), Some(0))
        );
        assert_eq!(result.item.as_deref(), Some("a"));
        let retry = add(
            &mut tally,
            r#"{"event":"host_retry","host":"h","task":"u","result":{"attempts":1,"retries":3}}"#,
        )
        .unwrap();
        assert_eq!(retry.kind, EventKind::HostRetry);
        let rescued = add(
            &mut tally,
            r#"{"event":"host_failed","host":"h","task":"f","message":"no","result":{"rescued":true}}"#,
        )
        .unwrap();
        assert_eq!(rescued.message.as_deref(), Some("no (rescued)"));
        add(
            &mut tally,
            r#"{"event":"host_failed","host":"h","task":"l","message":"item","loop_item":true}"#,
        );
        assert!(
            tally.failure_messages.is_empty(),
            "rescued and item failures are not quoted"
        );
    }
}
