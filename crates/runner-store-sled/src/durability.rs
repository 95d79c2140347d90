//! What "acknowledged" means: when a write is on disk. The writer thread (`writer.rs`) applies
//! it once per batch of writes (group commit).

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
