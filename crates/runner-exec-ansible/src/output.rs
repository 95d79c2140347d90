//! The run's human-readable output (git's and ansible-playbook's stdout and stderr) on its way to
//! the run log.
//!
//! Each process of a run writes both its stdout and its stderr into one pipe, so the output keeps
//! the order in which the process printed it (as on a terminal). A task reads the pipe, cuts
//! what it read at the last line end (a chunk never ends inside a line unless a line outgrows
//! [`CHUNK`]), appends each chunk to the node-local copy (`ansible.log`, inside the run's own
//! workspace) and sends it to the engine ([`EventSink::log`]), which masks the run's secrets in
//! it ([`Masker::mask_bytes`](runner_core::secret::Masker::mask_bytes)) and appends it to the
//! execution's run log in the store.
//! The node-local copy goes with the work directory when the run ends.

use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use runner_core::executor::EventSink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The most bytes read at once, and the longest chunk sent without a line end.
const CHUNK: usize = 64 * 1024;

/// Where the output of a run's processes goes: the engine's sink and the node-local log file.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    sink: EventSink,
    log_path: PathBuf,
    /// How long to wait for the pipe to close after the process exited (a process it started
    /// in the background may hold it open).
    drain: Duration,
}

/// The reading side of one process's output; [`Capture::finish`] once the process ended.
#[derive(Debug)]
pub(crate) struct Capture {
    reader: JoinHandle<()>,
    stop: oneshot::Sender<()>,
    drain: Duration,
}

impl Output {
    /// Output to `sink`, copied to the file `log_path`.
    pub(crate) fn new(sink: EventSink, log_path: PathBuf, drain: Duration) -> Self {
        Self {
            sink,
            log_path,
            drain,
        }
    }

    /// A pipe for one process: its stdout and stderr (give both to the command, and drop the
    /// command once it is spawned, so that only the child holds the pipe), and the reader.
    pub(crate) async fn capture(&self) -> io::Result<(Stdio, Stdio, Capture)> {
        let (sender, receiver) = pipe::pipe()?;
        let stdout = sender.into_blocking_fd()?;
        let stderr = stdout.try_clone()?;
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.log_path)
            .await?;
        let (stop, stopped) = oneshot::channel();
        let reader = tokio::spawn(read(receiver, file, self.sink.clone(), stopped));
        Ok((
            Stdio::from(stdout),
            Stdio::from(stderr),
            Capture {
                reader,
                stop,
                drain: self.drain,
            },
        ))
    }
}

impl Capture {
    /// Waits until everything the process wrote is sent: the pipe closes once every process
    /// holding it ended; after the drain time the reader stops with what it has.
    pub(crate) async fn finish(self) {
        let Capture {
            mut reader,
            stop,
            drain,
        } = self;
        if tokio::time::timeout(drain, &mut reader).await.is_err() {
            let _ = stop.send(());
            let _ = reader.await;
        }
    }
}

/// Reads `receiver` to its end (or until `stop`), sending complete lines as they come.
async fn read(
    mut receiver: pipe::Receiver,
    mut file: tokio::fs::File,
    sink: EventSink,
    mut stop: oneshot::Receiver<()>,
) {
    let mut pending: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut buffer = vec![0; CHUNK];
    loop {
        let read = tokio::select! {
            read = receiver.read(&mut buffer) => read,
            _ = &mut stop => break,
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&buffer[..n]);
                let cut = match pending.iter().rposition(|byte| *byte == b'\n') {
                    Some(end) => end + 1,
                    None if pending.len() >= CHUNK => pending.len(),
                    None => continue,
                };
                let rest = pending.split_off(cut);
                let chunk = std::mem::replace(&mut pending, rest);
                send(&mut file, &sink, chunk).await;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::warn!(%error, "reading the run's output failed");
                break;
            }
        }
    }
    // The last line may have no line end.
    send(&mut file, &sink, pending).await;
    let _ = file.flush().await;
}

async fn send(file: &mut tokio::fs::File, sink: &EventSink, chunk: Vec<u8>) {
    if chunk.is_empty() {
        return;
    }
    if let Err(error) = file.write_all(&chunk).await {
        // The run log still gets it; only the node-local copy (for the failure message) is short.
        tracing::warn!(%error, "could not write the run's output to its log file");
    }
    sink.log(chunk);
}

#[cfg(test)]
mod tests {
    use super::*;
    use runner_core::executor::Progress;

    #[tokio::test]
    async fn stdout_and_stderr_arrive_in_order_cut_at_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, mut progress) = EventSink::channel();
        let output = Output::new(sink, dir.path().join("log"), Duration::from_secs(10));
        let (stdout, stderr, capture) = output.capture().await.unwrap();
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg("echo one; echo two >&2; printf 'thr'; printf 'ee\\nlast'")
            .stdout(stdout)
            .stderr(stderr);
        let mut child = command.spawn().unwrap();
        drop(command);
        child.wait().await.unwrap();
        capture.finish().await;
        let mut log = Vec::new();
        while let Ok(Progress::Log(chunk)) = progress.try_recv() {
            assert!(chunk.ends_with(b"\n") || chunk == b"last", "{chunk:?}");
            log.extend(chunk);
        }
        assert_eq!(String::from_utf8(log).unwrap(), "one\ntwo\nthree\nlast");
        let file = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert_eq!(file, "one\ntwo\nthree\nlast");
    }

    #[tokio::test]
    async fn a_background_process_holding_the_pipe_does_not_hold_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let gate = dir.path().join("gate");
        let (sink, mut progress) = EventSink::channel();
        let output = Output::new(sink, dir.path().join("log"), Duration::from_millis(200));
        let (stdout, stderr, capture) = output.capture().await.unwrap();
        // The background loop keeps the pipe open until the gate file appears (or, should it
        // miss the gate, until the test's directory is gone: it never outlives the test).
        let script = format!(
            "echo started; (while [ ! -e '{gate}' ] && [ -d '{dir}' ]; do sleep 0.05; done) &",
            gate = gate.display(),
            dir = dir.path().display()
        );
        let mut command = tokio::process::Command::new("sh");
        command.arg("-c").arg(script).stdout(stdout).stderr(stderr);
        let mut child = command.spawn().unwrap();
        drop(command);
        child.wait().await.unwrap();
        capture.finish().await;
        std::fs::write(&gate, b"").unwrap();
        assert_eq!(
            progress.try_recv().ok(),
            Some(Progress::Log(b"started\n".to_vec()))
        );
    }
}
