//! Group commit: every acknowledged write is on disk, and concurrent writers share one flush.
//!
//! A writer commits its sled transaction, takes a ticket (the number of commits so far), and
//! calls [`GroupCommit::wait_durable`]. The first writer to get the flush lock reads how many
//! commits exist *before* it flushes, flushes, and records that number: every commit with a
//! ticket up to it is now durable. Writers that queued on the lock meanwhile find their ticket
//! covered and return without a flush of their own. So N concurrent writers cost about two
//! flushes, not N, and still none returns before its own write is on disk.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How a store makes a committed write durable before acknowledging it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Flush sled's log (write it to the file and `sync_file_range` it) before every
    /// acknowledgement, shared between concurrent writers. An acknowledged write survives the
    /// process being killed (`kill -9`, a panic, an OOM kill). The default.
    #[default]
    Flush,
    /// Like [`Durability::Flush`], then also `fdatasync` the log file, so that an acknowledged
    /// write also survives a power loss or a kernel crash (sled's own flush does not ask the
    /// device to empty its cache, nor persist the file's size).
    Sync,
    /// Acknowledge at commit; sled's background flusher writes the log within 500 ms. Writes
    /// acknowledged in that window are lost if the process dies. Only for benchmarks and
    /// throwaway data.
    Deferred,
}

/// The group-commit state of one store.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    /// Commits so far; a commit's ticket is this count right after it.
    committed: AtomicU64,
    /// The highest ticket known durable. Held while flushing, so writers queue behind a flush
    /// in progress instead of starting their own.
    durable: Mutex<u64>,
    /// Flushes done, for the benchmark's report.
    flushes: AtomicU64,
}

impl GroupCommit {
    /// Records a commit; the ticket to wait for.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Returns once the commit of `ticket` is durable, running `flush` if no one else did.
    pub(crate) fn wait_durable<E>(
        &self,
        ticket: u64,
        flush: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        // A panic during a flush leaves `durable` as it was (never too high): usable.
        let mut durable = self
            .durable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *durable >= ticket {
            return Ok(());
        }
        // Every commit counted here finished before the flush starts, so the flush covers it.
        let covered = self.committed.load(Ordering::SeqCst);
        flush()?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        *durable = covered;
        Ok(())
    }

    /// How many flushes ran.
    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_covers_every_earlier_commit() {
        let group = GroupCommit::default();
        let first = group.committed();
        let second = group.committed();
        let mut flushed = 0;
        group
            .wait_durable(second, || {
                flushed += 1;
                Ok::<(), ()>(())
            })
            .unwrap();
        group
            .wait_durable(first, || {
                flushed += 1;
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(flushed, 1, "the first flush covered both commits");
        let third = group.committed();
        group
            .wait_durable(third, || {
                flushed += 1;
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(flushed, 2, "a later commit needs a new flush");
    }

    #[test]
    fn a_failed_flush_covers_nothing() {
        let group = GroupCommit::default();
        let ticket = group.committed();
        assert!(group.wait_durable(ticket, || Err("disk full")).is_err());
        let mut flushed = false;
        group
            .wait_durable(ticket, || {
                flushed = true;
                Ok::<(), ()>(())
            })
            .unwrap();
        assert!(flushed);
    }
}
