//! How an engine runs: [`EngineConfig`].

use std::time::Duration;

use crate::ids::NodeId;

/// How an engine runs. Every field has a default that suits a server.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The name this node claims under; unique per node. Default: a random one.
    pub node_id: NodeId,
    /// Executions run at once on this node. Default: 4.
    pub concurrency: usize,
    /// How long a claim holds without renewal; heartbeats renew it every third of it. Default 30 s.
    pub lease: Duration,
    /// How often to look for work and deadlines when no signal came. Default 1 s.
    pub poll_interval: Duration,
    /// How many executions to claim in one store call at most. Default 64.
    pub claim_batch: usize,
    /// Claimed executions that may wait for a place in the pool, at most, on top of the running
    /// ones: a place that frees starts the next one without waiting for a claim. Only while runs
    /// end within [`EngineConfig::prefetch_wait`]; 0 turns prefetching off. Default 16. If the
    /// node crashes, its waiting executions end in FAILURE when their lease lapses, as running
    /// ones do.
    pub prefetch: usize,
    /// How long a prefetched execution may wait for a place (at most a third of the lease) before
    /// the node hands it back to PENDING for any node; also the run length below which the node
    /// prefetches at all. Default 1 s.
    pub prefetch_wait: Duration,
    /// On shutdown, how long running executions may go on before they are handed back. Default 30 s.
    pub shutdown_grace: Duration,
    /// Whether the engine's loops report what they do as
    /// [`EngineSignal`](crate::engine::EngineSignal)s, for tests to await through
    /// [`Engine::probe`](crate::engine::Engine::probe). Default false: a server has no use for
    /// them, and then they cost nothing.
    pub test_signals: bool,
    /// The longest text, in bytes, an executor event keeps in each of its fields (a task's
    /// `msg`, `stdout`, `stderr`, ...); a longer one is cut on a character boundary and ends in
    /// [`TRUNCATION_MARKER`](crate::executor::TRUNCATION_MARKER). Default 16 KiB.
    pub event_field_bytes: usize,
    /// How much of each attempt's run log the stores keep (head and tail). Default 10 MiB.
    pub run_log_cap: crate::run_log::LogCap,
    /// How long a worker gathers the events and output of its run before it writes them, from
    /// the first one that waits. A chatty playbook reports a loop item every few milliseconds;
    /// written one by one, each is a store write (a durable one on sled, a transaction on
    /// PostgreSQL) on the cores ansible runs on. The live feed is that much later. Default 25 ms;
    /// zero writes each as it comes.
    pub feed_flush_window: Duration,
    /// How long an ended execution is kept: the retention service deletes executions that ended
    /// longer ago than this, with their events, webhook deliveries and run logs
    /// ([`RetentionStore::purge_ended`](crate::store::RetentionStore::purge_ended)). Default
    /// `None`: everything is kept (the server's `--retain-days` defaults to 30).
    pub retain: Option<Duration>,
    /// How often the retention service looks for executions to purge, when [`EngineConfig::retain`]
    /// is set. Default 10 minutes.
    pub retention_interval: Duration,
    /// How many executions one purge deletes at most: one short transaction each, so that starts
    /// and runs never wait long behind a purge. Default 500.
    pub retention_batch: usize,
}

/// The default of [`EngineConfig::event_field_bytes`]: 16 KiB.
pub const DEFAULT_EVENT_FIELD_BYTES: usize = 16 * 1024;

/// The default of [`EngineConfig::feed_flush_window`]: 25 ms.
pub const DEFAULT_FEED_FLUSH_WINDOW: Duration = Duration::from_millis(25);

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            node_id: format!("node-{}", uuid::Uuid::new_v4().simple()),
            concurrency: 4,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            claim_batch: 64,
            prefetch: 16,
            prefetch_wait: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
            test_signals: false,
            event_field_bytes: DEFAULT_EVENT_FIELD_BYTES,
            run_log_cap: crate::run_log::LogCap::default(),
            feed_flush_window: DEFAULT_FEED_FLUSH_WINDOW,
            retain: None,
            retention_interval: Duration::from_secs(600),
            retention_batch: 500,
        }
    }
}
