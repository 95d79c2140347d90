//! The run log: ansible's human-readable output of each run, as stored with the execution, and
//! the one rule of how much of it is kept.
//!
//! Each attempt of an execution (the first run, then one per restart or hand-back) has its own
//! log, a stream of bytes appended in chunks while the run goes. Offsets are positions in that
//! stream as the executor produced it, so a reader that pages with the `next_offset` it was given
//! never sees a byte twice, even while the log grows.
//!
//! **The cap.** A log keeps at most [`LogCap`] bytes: the first half (the head: what the run set
//! out to do) and the last half (the tail: how it ended). Once the stream outgrows the cap, the
//! bytes between the two are dropped as the tail moves on; a reader whose offset falls among them
//! gets [`omitted_marker`] and goes on at the start of the tail. The stores keep chunks keyed by
//! their offset and ask this module what to write ([`LogMeta::plan_append`]), what to delete, and
//! what a read returns ([`LogMeta::plan_read`], [`assemble`]): the stores supply only storage.

use std::ops::Range;

/// The default cap of one attempt's log: 10 MiB.
pub const DEFAULT_CAP_BYTES: u64 = 10 * 1024 * 1024;

/// How many bytes one attempt's log keeps at most: half for the head, half for the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCap {
    bytes: u64,
}

impl Default for LogCap {
    fn default() -> Self {
        Self::new(DEFAULT_CAP_BYTES)
    }
}

impl LogCap {
    /// A cap of `bytes` (at least 2: one for the head, one for the tail).
    pub fn new(bytes: u64) -> Self {
        Self {
            bytes: bytes.max(2),
        }
    }

    /// The whole cap in bytes.
    pub fn bytes(self) -> u64 {
        self.bytes
    }

    /// The bytes the head keeps.
    pub fn head(self) -> u64 {
        self.bytes / 2
    }

    /// The bytes the tail keeps.
    pub fn tail(self) -> u64 {
        self.bytes - self.head()
    }
}

/// What a store keeps about one attempt's log besides its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogMeta {
    /// Bytes appended so far: the offset of the next byte.
    pub total: u64,
    /// Bytes of the head: the stream's first bytes, never dropped.
    pub head_len: u64,
    /// The cap of the latest append, which reads follow (so a reader needs no setting).
    pub cap: LogCap,
}

/// One piece of an appended chunk to store, at `offset` in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Where its first byte is in the stream: the key it is stored under.
    pub offset: u64,
    /// Its bytes, as a range of the appended chunk.
    pub range: Range<usize>,
}

/// What a store does for one append: store `pieces`, delete the tail chunks that lie wholly
/// before [`LogMeta::window_start`] of the new meta (see [`LogMeta::droppable`]), and keep `meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendPlan {
    /// The chunk's bytes to store (none, one or two: a chunk that fills the head is split where
    /// the head ends, and a chunk larger than the tail keeps only its end).
    pub pieces: Vec<Piece>,
    /// The meta after the append.
    pub meta: LogMeta,
}

/// What a read returns, before the bytes are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPlan {
    /// The cap the log was kept with (the marker names it).
    pub cap: LogCap,
    /// The bytes the reader skips because the cap dropped them (its offset fell among them).
    pub omitted: u64,
    /// The stream range to return.
    pub from: u64,
    /// Its end (exclusive); `from == to` for nothing.
    pub to: u64,
}

impl LogMeta {
    /// Where the tail starts: bytes before it and after the head were dropped.
    pub fn window_start(&self) -> u64 {
        self.head_len
            .max(self.total.saturating_sub(self.cap.tail()))
    }

    /// Whether a stored chunk at `offset` of `len` bytes is no longer kept and may be deleted.
    pub fn droppable(&self, offset: u64, len: u64) -> bool {
        offset >= self.head_len && offset + len <= self.window_start()
    }

    /// Appends a chunk of `len` bytes: what to store, and the new meta.
    pub fn plan_append(&self, cap: LogCap, len: usize) -> AppendPlan {
        let start = self.total;
        let total = start + len as u64;
        let mut pieces = Vec::new();
        // The head takes what fits while the stream is still shorter than it.
        let head_room = cap.head().saturating_sub(self.head_len);
        let into_head = if self.head_len == start {
            (head_room.min(len as u64)) as usize
        } else {
            0
        };
        if into_head > 0 {
            pieces.push(Piece {
                offset: start,
                range: 0..into_head,
            });
        }
        let head_len = self.head_len + into_head as u64;
        // The rest goes to the tail, of which only the last `cap.tail()` bytes are kept.
        let rest = len - into_head;
        if rest > 0 {
            let kept = rest.min(usize::try_from(cap.tail()).unwrap_or(usize::MAX));
            let first = len - kept;
            pieces.push(Piece {
                offset: start + first as u64,
                range: first..len,
            });
        }
        AppendPlan {
            pieces,
            meta: LogMeta {
                total,
                head_len,
                cap,
            },
        }
    }

    /// A read of up to `limit` bytes from `offset` (clamped to the stream's end): which range to
    /// return, and how many bytes the cap dropped there. A read never spans the dropped gap: the
    /// head's last page ends at the head, the next read gets the marker and the tail.
    pub fn plan_read(&self, offset: u64, limit: u64) -> ReadPlan {
        let offset = offset.min(self.total);
        let window = self.window_start();
        let gap = window > self.head_len;
        let (omitted, from, end) = if offset < self.head_len {
            (0, offset, if gap { self.head_len } else { self.total })
        } else if offset < window {
            (window - offset, window, self.total)
        } else {
            (0, offset, self.total)
        };
        ReadPlan {
            cap: self.cap,
            omitted,
            from,
            to: end.min(from.saturating_add(limit)),
        }
    }
}

/// The line a read puts where the cap dropped `omitted` bytes of output.
pub fn omitted_marker(omitted: u64, cap: LogCap) -> String {
    format!(
        "\n[runner: {omitted} bytes of output omitted here; the run log keeps the first {} and the last {} bytes]\n",
        cap.head(),
        cap.tail()
    )
}

/// The bytes of `plan` out of the stored `chunks` (each `(offset, bytes)`, in any order, those
/// that overlap `plan.from..plan.to` at least), with the marker first if bytes were omitted, and
/// the offset after the last byte found. That offset is `plan.to` unless a chunk is missing (a
/// store whose reads are not one snapshot saw it dropped meanwhile): then it stops before the
/// hole, so the next read gets the marker instead of skipping bytes silently.
pub fn assemble<'a>(
    plan: &ReadPlan,
    chunks: impl IntoIterator<Item = (u64, &'a [u8])>,
) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    if plan.omitted > 0 {
        out.extend_from_slice(omitted_marker(plan.omitted, plan.cap).as_bytes());
    }
    let mut chunks: Vec<(u64, &[u8])> = chunks.into_iter().collect();
    chunks.sort_by_key(|(offset, _)| *offset);
    let mut at = plan.from;
    for (offset, bytes) in chunks {
        let end = offset + bytes.len() as u64;
        if at >= plan.to || offset > at {
            break;
        }
        if end <= at {
            continue;
        }
        let skip = (at - offset) as usize;
        let take = (end.min(plan.to) - at) as usize;
        out.extend_from_slice(&bytes[skip..skip + take]);
        at += take as u64;
    }
    (out, at)
}

/// One page of a run log, as a store reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The attempt whose log this is.
    pub attempt: u32,
    /// The bytes (with [`omitted_marker`] first if the cap dropped bytes at the offset asked).
    pub data: Vec<u8>,
    /// The offset to read next.
    pub next_offset: u64,
    /// The bytes the attempt's run produced so far.
    pub total: u64,
    /// True once nothing more can be appended to this attempt's log (its run ended) and this
    /// page reaches its end.
    pub complete: bool,
}

/// Whether attempt `attempt` of an execution can get no more output: a later attempt began, or
/// this one's run is over (the execution is no longer held by a node).
pub fn attempt_ended(execution: &crate::execution::Execution, attempt: u32) -> bool {
    attempt < execution.attempt || (attempt == execution.attempt && !execution.status.is_claimed())
}

/// The attempt a read without one means: the latest (1 before the first claim, whose log is
/// still empty).
pub fn latest_attempt(execution: &crate::execution::Execution) -> u32 {
    execution.attempt.max(1)
}

/// The attempt a read of `asked` (the latest for `None`) reads, or `None` if the execution has
/// no such attempt.
pub fn resolve_attempt(execution: &crate::execution::Execution, asked: Option<u32>) -> Option<u32> {
    let latest = latest_attempt(execution);
    match asked {
        None => Some(latest),
        Some(attempt) if (1..=latest).contains(&attempt) => Some(attempt),
        Some(_) => None,
    }
}

impl LogPage {
    /// The page a store answers for `plan` of a log with `meta`, from the stored `chunks` it
    /// read for it (see [`assemble`]); `ended` tells whether the attempt's run is over
    /// ([`attempt_ended`]).
    pub fn new<'a>(
        attempt: u32,
        meta: &LogMeta,
        plan: &ReadPlan,
        chunks: impl IntoIterator<Item = (u64, &'a [u8])>,
        ended: bool,
    ) -> Self {
        let (data, next_offset) = assemble(plan, chunks);
        Self {
            attempt,
            data,
            next_offset,
            total: meta.total,
            complete: ended && next_offset >= meta.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a vector: applies plans as a store does.
    #[derive(Default)]
    struct Log {
        meta: LogMeta,
        chunks: Vec<(u64, Vec<u8>)>,
    }

    impl Log {
        fn append(&mut self, cap: LogCap, chunk: &[u8]) {
            let plan = self.meta.plan_append(cap, chunk.len());
            for piece in plan.pieces {
                self.chunks
                    .push((piece.offset, chunk[piece.range].to_vec()));
            }
            self.meta = plan.meta;
            let meta = self.meta;
            self.chunks
                .retain(|(offset, bytes)| !meta.droppable(*offset, bytes.len() as u64));
        }

        fn read(&self, offset: u64, limit: u64) -> (Vec<u8>, u64) {
            let plan = self.meta.plan_read(offset, limit);
            assemble(&plan, self.chunks.iter().map(|(o, b)| (*o, b.as_slice())))
        }

        fn read_all(&self, limit: u64) -> Vec<u8> {
            let mut out = Vec::new();
            let mut offset = 0;
            loop {
                let (data, next) = self.read(offset, limit);
                if data.is_empty() && next == offset {
                    return out;
                }
                out.extend(data);
                offset = next;
            }
        }

        fn stored(&self) -> u64 {
            self.chunks.iter().map(|(_, b)| b.len() as u64).sum()
        }
    }

    #[test]
    fn under_the_cap_everything_reads_back_in_pages() {
        let cap = LogCap::new(100);
        let mut log = Log::default();
        for line in ["ok: [localhost]\n", "changed: [a]\n", "PLAY RECAP\n"] {
            log.append(cap, line.as_bytes());
        }
        let expected = "ok: [localhost]\nchanged: [a]\nPLAY RECAP\n";
        assert_eq!(log.read_all(7), expected.as_bytes());
        assert_eq!(log.read_all(1000), expected.as_bytes());
        let (data, next) = log.read(3, 5);
        assert_eq!((data.as_slice(), next), (&b" [loc"[..], 8));
    }

    #[test]
    fn over_the_cap_the_head_and_tail_stay_with_a_marker_between() {
        let cap = LogCap::new(20);
        let mut log = Log::default();
        let stream: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
        for chunk in stream.chunks(7) {
            log.append(cap, chunk);
        }
        let read = log.read_all(4);
        let marker = omitted_marker(200 - 20, cap);
        let mut expected = stream[..10].to_vec();
        expected.extend_from_slice(marker.as_bytes());
        expected.extend_from_slice(&stream[190..]);
        assert_eq!(
            String::from_utf8_lossy(&read),
            String::from_utf8_lossy(&expected)
        );
        // Storage stays within the cap plus one chunk (the partly dropped one).
        assert!(log.stored() <= 20 + 7, "stored {}", log.stored());
    }

    #[test]
    fn one_huge_chunk_is_split_and_trimmed() {
        let cap = LogCap::new(10);
        let mut log = Log::default();
        let chunk: Vec<u8> = (0..100u8).collect();
        log.append(cap, &chunk);
        assert_eq!(log.stored(), 10);
        assert_eq!((log.meta.total, log.meta.head_len), (100, 5));
        let (head, next) = log.read(0, 1000);
        assert_eq!((head.as_slice(), next), (&chunk[..5], 5));
        let (tail, next) = log.read(next, 1000);
        let mut expected = omitted_marker(90, cap).into_bytes();
        expected.extend_from_slice(&chunk[95..]);
        assert_eq!((tail, next), (expected, 100));
    }

    #[test]
    fn a_follower_that_keeps_up_never_sees_the_marker() {
        let cap = LogCap::new(10);
        let mut log = Log::default();
        let mut offset = 0;
        let mut seen = Vec::new();
        for i in 0..50u8 {
            log.append(cap, &[i, i]);
            let (data, next) = log.read(offset, 1000);
            seen.extend(data);
            offset = next;
        }
        let all: Vec<u8> = (0..50u8).flat_map(|i| [i, i]).collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn a_lagging_follower_is_told_what_it_missed() {
        let cap = LogCap::new(10);
        let mut log = Log::default();
        log.append(cap, b"0123456789");
        let (_, offset) = log.read(0, 7);
        assert_eq!(offset, 7);
        log.append(cap, b"abcdefghij");
        // Bytes 7..15 were dropped (the head is 0..5, the tail 15..20).
        let (data, next) = log.read(offset, 100);
        let mut expected = omitted_marker(8, cap).into_bytes();
        expected.extend_from_slice(b"fghij");
        assert_eq!((data, next), (expected, 20));
    }

    #[test]
    fn offsets_past_the_end_read_nothing() {
        let cap = LogCap::default();
        let mut log = Log::default();
        log.append(cap, b"abc");
        let (data, next) = log.read(99, 10);
        assert_eq!((data.len(), next), (0, 3));
        let empty = Log::default();
        assert_eq!(empty.read(0, 10), (Vec::new(), 0));
    }

    #[test]
    fn the_cap_splits_in_halves() {
        let cap = LogCap::default();
        assert_eq!(cap.head() + cap.tail(), DEFAULT_CAP_BYTES);
        assert_eq!(LogCap::new(0).bytes(), 2);
    }
}
