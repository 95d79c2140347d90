//! Child processes in their own process group, and a kill that reaches every process of a run.
//!
//! A process group alone is not enough for ansible-playbook: its forked workers call `setsid()`,
//! so they and the modules and commands they start live in sessions and groups of their own. A
//! kill therefore takes, from `/proc`: the child's process group, every descendant of the child
//! (by parent pid), and every process whose environment carries the run's marker variable
//! (inherited by everything the run starts, and kept when a process is re-parented after its
//! parent died). It repeats until none of them is alive, so a process forked during the kill
//! goes too.

use std::collections::HashMap;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use runner_core::executor::{CancelMode, Cancellation};
use tokio::process::{Child, Command};

/// How a child process ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It exited by itself (possibly after a graceful stop was signalled).
    Exited(ExitStatus),
    /// A kill was asked for: the whole group was killed and is gone.
    Killed,
}

/// The environment variable that marks every process of a run.
pub(crate) const MARKER_VARIABLE: &str = "RUNNER_RUN_MARKER";

/// A child that leads its own process group.
pub(crate) struct GroupChild {
    child: Child,
    pgid: Option<i32>,
    /// `RUNNER_RUN_MARKER=<unique value>`, as it appears in `/proc/<pid>/environ`.
    marker: Vec<u8>,
}

impl GroupChild {
    /// Spawns `command` as the leader of a new process group, marked with `marker` (unique per
    /// run) in the environment.
    pub(crate) fn spawn(mut command: Command, marker: &str) -> io::Result<Self> {
        command
            .process_group(0)
            .kill_on_drop(true)
            .env(MARKER_VARIABLE, marker);
        let child = command.spawn()?;
        let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
        Ok(Self {
            child,
            pgid,
            marker: format!("{MARKER_VARIABLE}={marker}").into_bytes(),
        })
    }

    /// Waits for the child to exit. `on_graceful` runs once when a graceful stop is asked for; the
    /// child keeps running unless it returns true. A kill ends the whole group, waits until every
    /// process of it is gone and returns [`Ended::Killed`].
    pub(crate) async fn wait(
        mut self,
        cancel: &mut Cancellation,
        mut on_graceful: impl FnMut() -> bool,
    ) -> io::Result<Ended> {
        let mut graceful_seen = false;
        loop {
            let wanted = if graceful_seen {
                CancelMode::Kill
            } else {
                CancelMode::Graceful
            };
            tokio::select! {
                status = self.child.wait() => {
                    // Anything the leader left behind in its group goes too.
                    self.kill_group();
                    return status.map(Ended::Exited);
                }
                mode = cancel.at_least(wanted) => {
                    graceful_seen = true;
                    if mode == CancelMode::Kill || on_graceful() {
                        self.kill_all().await;
                        let _ = self.child.wait().await;
                        return Ok(Ended::Killed);
                    }
                }
            }
        }
    }

    /// SIGKILL to every process of the group at once.
    fn kill_group(&self) {
        if let Some(pgid) = self.pgid {
            // ESRCH (nobody left) is the normal case after a clean exit.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }

    /// SIGKILL to every process of the run (see the module docs), until none is alive.
    async fn kill_all(&self) {
        let Some(pgid) = self.pgid else { return };
        let mut pause = Duration::from_millis(1);
        // SIGKILL cannot be resisted; the rounds only bridge the kernel's exit work and catch
        // processes forked between the scan and the kill.
        for _ in 0..300 {
            self.kill_group();
            let members = run_members(pgid, &self.marker);
            if members.is_empty() {
                return;
            }
            for pid in members {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        tracing::warn!(pgid, "processes of a killed run are still alive");
    }
}

impl Drop for GroupChild {
    /// A child dropped before it was waited for (its run was abandoned) takes the processes of
    /// its run with it (one round; the awaited kill in [`GroupChild::wait`] is the thorough one).
    fn drop(&mut self) {
        if let (Ok(None), Some(pgid)) = (self.child.try_wait(), self.pgid) {
            self.kill_group();
            for pid in run_members(pgid, &self.marker) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// Live (not zombie) processes of the run led by `root`: its process group, its descendants,
/// and the processes whose environment holds `marker`.
pub(crate) fn run_members(root: i32, marker: &[u8]) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let processes: HashMap<i32, Stat> = entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_stat(&stat)?))
        })
        .filter(|(_, stat)| stat.state != 'Z' && stat.state != 'X')
        .collect();
    let descends = |mut pid: i32| {
        // Bounded walk: parent chains are short, and a pid reused mid-scan cannot loop forever.
        for _ in 0..64 {
            if pid == root {
                return true;
            }
            match processes.get(&pid) {
                Some(stat) if stat.ppid > 1 => pid = stat.ppid,
                _ => return false,
            }
        }
        false
    };
    let marked = |pid: i32| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|environ| environ.split(|b| *b == 0).any(|var| var == marker))
    };
    processes
        .iter()
        .filter(|(pid, stat)| stat.pgrp == root || descends(**pid) || marked(**pid))
        .map(|(pid, _)| *pid)
        .collect()
}

/// The fields of `/proc/<pid>/stat` the kill needs.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    state: char,
    ppid: i32,
    pgrp: i32,
}

/// State, parent and process group from a `/proc/<pid>/stat` line; the command name may contain
/// spaces and parentheses, so fields are read after the last ')'.
fn parse_stat(stat: &str) -> Option<Stat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Stat { state, ppid, pgrp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;
    use tokio::io::AsyncBufReadExt;

    #[test]
    fn stat_lines() {
        assert_eq!(
            parse_stat("42 (a (b) c) S 7 42 42 0 -1"),
            Some(Stat {
                state: 'S',
                ppid: 7,
                pgrp: 42
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[tokio::test]
    async fn kill_takes_processes_that_left_the_group() {
        // The second sleep runs in a session of its own, as ansible's workers do.
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("sleep 301 & setsid sleep 302 & echo started; wait")
            .stdout(Stdio::piped());
        let marker = format!("test-{}", std::process::id());
        let mut child = GroupChild::spawn(command, &marker).unwrap();
        let mut started = String::new();
        let stdout = child.child.stdout.take().unwrap();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut started)
            .await
            .unwrap();
        let pgid = child.pgid.unwrap();
        let marker_bytes = child.marker.clone();
        // Both sleeps are found (sh forked them before printing).
        while run_members(pgid, &marker_bytes).len() < 3 {
            tokio::task::yield_now().await;
        }
        let (handle, mut cancel) = Cancellation::new();
        handle.request(CancelMode::Kill);
        let ended = child.wait(&mut cancel, || false).await.unwrap();
        assert!(matches!(ended, Ended::Killed));
        assert_eq!(run_members(pgid, &marker_bytes), Vec::<i32>::new());
    }

    #[tokio::test]
    async fn graceful_only_calls_back() {
        let mut command = Command::new("sh");
        command.arg("-c").arg("exit 3");
        let child = GroupChild::spawn(command, "graceful-test").unwrap();
        let (handle, mut cancel) = Cancellation::new();
        handle.request(CancelMode::Graceful);
        let mut called = 0;
        let ended = child
            .wait(&mut cancel, || {
                called += 1;
                false
            })
            .await
            .unwrap();
        assert!(matches!(ended, Ended::Exited(status) if status.code() == Some(3)));
        assert!(called <= 1);
    }
}
