//! Child processes in their own process group, so that a kill reaches every process of a run
//! (ansible's forked workers, the modules they start, the commands those run) at once.

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
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

/// A child that leads its own process group.
pub(crate) struct GroupChild {
    child: Child,
    pgid: Option<i32>,
}

impl GroupChild {
    /// Spawns `command` as the leader of a new process group.
    pub(crate) fn spawn(mut command: Command) -> io::Result<Self> {
        command.process_group(0).kill_on_drop(true);
        let child = command.spawn()?;
        let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
        Ok(Self { child, pgid })
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
                        self.kill_group();
                        let _ = self.child.wait().await;
                        self.wait_group_gone().await;
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

    /// Returns once no live process of the group is left (killed processes take a moment to
    /// exit; zombies do not count). Repeats the kill in case a process forked meanwhile.
    async fn wait_group_gone(&self) {
        let Some(pgid) = self.pgid else { return };
        let mut pause = Duration::from_millis(1);
        // A SIGKILLed process cannot resist; this only bridges the kernel's exit work.
        for _ in 0..200 {
            if !group_alive(pgid) {
                return;
            }
            self.kill_group();
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        tracing::warn!(pgid, "processes of a killed run are still alive");
    }
}

impl Drop for GroupChild {
    /// A child dropped before it was waited for (its run was abandoned) takes its group with it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill_group();
        }
    }
}

/// True while a process of group `pgid` is alive (not a zombie), from `/proc`.
pub(crate) fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| parse_stat(&stat))
            .is_some_and(|(state, group)| group == pgid && state != 'Z' && state != 'X')
    })
}

/// State and process group from a `/proc/<pid>/stat` line; the command name may contain spaces
/// and parentheses, so fields are read after the last ')'.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        assert_eq!(
            parse_stat("42 (a (b) c) S 1 42 42 0 -1"),
            Some(('S', 42))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[tokio::test]
    async fn kill_takes_the_whole_group() {
        let mut command = Command::new("sh");
        command.arg("-c").arg("sleep 301 & sleep 302 & wait");
        let child = GroupChild::spawn(command).unwrap();
        let pgid = child.pgid.unwrap();
        let (handle, mut cancel) = Cancellation::new();
        handle.request(CancelMode::Kill);
        let ended = child.wait(&mut cancel, || false).await.unwrap();
        assert!(matches!(ended, Ended::Killed));
        assert!(!group_alive(pgid));
    }

    #[tokio::test]
    async fn graceful_only_calls_back() {
        let mut command = Command::new("sh");
        command.arg("-c").arg("exit 3");
        let child = GroupChild::spawn(command).unwrap();
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
