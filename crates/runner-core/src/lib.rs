//! # runner-core
//!
//! The domain, the execution state machine and the engine of Runner, a job runner for Ansible
//! playbooks. This crate has no database, HTTP or process code: it works through four traits,
//! and other crates supply their implementations.
//!
//! | trait | what it does | implementations |
//! |---|---|---|
//! | [`Store`](store::Store) | keeps jobs, executions and their feeds (events, webhook outbox); applies transitions atomically | `runner-store-memory`, `runner-store-sled`, `runner-store-postgres` |
//! | [`ScheduleStore`](store::ScheduleStore) | keeps service accounts and schedules; fires due schedules once per due time | the same three |
//! | [`Executor`](executor::Executor) | runs one execution, streams events, honours cancellation | `runner-exec-ansible`; `testkit::ScriptedExecutor` (feature `testkit`) in tests |
//! | [`Notifier`](notifier::Notifier) | receives status changes and events in process (durable webhooks go through the store's outbox instead) | [`notifier::NoopNotifier`], [`notifier::ChannelNotifier`] |
//! | [`Clock`](time::Clock) | tells and waits for time | [`time::SystemClock`], [`time::MockClock`] |
//!
//! ## The state machine
//!
//! Nine statuses and a dozen commands, in one table: [`machine::next_status`]. Every store
//! changes an execution only through [`machine::apply`], which adds fencing (a worker command from
//! a stale claim is refused) and deadline guards (a rescue before the lease lapsed is refused).
//! See [`machine`] for the diagram.
//!
//! ## The live feed
//!
//! Every execution has a feed of numbered events (see [`feed`]): its status changes, recorded by
//! the store in the same atomic section as the change, and its executor's events, appended by the
//! worker. Each event also enters an outbox of webhook deliveries, one per callback of the job
//! whose level accepts it; `runner-webhook` delivers them. Sequence numbers have no gaps and
//! follow the order things happened, on every node.
//!
//! ## Embedding the engine
//!
//! ```no_run
//! use runner_core::prelude::*;
//!
//! /// An executor that succeeds at once; a real one runs `ansible-playbook`.
//! struct Instant;
//!
//! impl Executor for Instant {
//!     async fn run(&self, _run: Run, events: EventSink, _cancel: Cancellation) -> RunReport {
//!         events.workspace_ready();
//!         RunReport::new(Outcome::Succeeded)
//!     }
//! }
//!
//! async fn embed<S: Store>(store: S) -> Result<(), EngineError> {
//!     let engine = Engine::builder().store(store).executor(Instant).concurrency(4).build();
//!     let running = engine.clone().start();
//!     let alias: AccountAlias = "ACME".parse().expect("valid alias");
//!     let spec = JobSpec {
//!         playbook: Some("LSBob3N0czogYWxsCg==".into()),
//!         hosts: Some(vec![Host::named("localhost")]),
//!         ..JobSpec::default()
//!     };
//!     let job = engine.create_job(&alias, spec).await?;
//!     let execution = engine.start_job(&alias, job.id, StartRequest::default()).await?;
//!     println!("{} is {}", execution.execution_id, execution.status);
//!     running.shutdown().await;
//!     Ok(())
//! }
//! ```

pub mod engine;
pub mod execution;
pub mod executor;
pub mod feed;
pub mod ids;
pub mod inventory;
pub mod job;
pub mod key_pair;
pub mod launch;
pub mod machine;
pub mod meter;
pub mod net;
pub mod notifier;
pub mod overlap;
pub mod page;
pub mod run_log;
pub mod schedule;
pub mod seal;
pub mod search;
pub mod secret;
pub mod store;
pub mod time;
pub mod validation;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

/// What the crate's macros name in the code they write; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use tokio::sync::broadcast;
}

/// The names most programs that embed the engine need.
pub mod prelude {
    pub use crate::engine::{Engine, EngineError, RunningEngine, StartRequest};
    pub use crate::execution::{Execution, ExecutionView, Outcome, RunReport, Status};
    pub use crate::executor::{CancelMode, Cancellation, EventSink, Executor, ExecutorEvent, Run};
    pub use crate::ids::{AccountAlias, ExecutionId, JobId};
    pub use crate::job::{Host, Job, JobSpec};
    pub use crate::notifier::{ChannelNotifier, Notification, NotificationKind, Notifier};
    pub use crate::page::{Page, PageRequest};
    pub use crate::store::StoreError;
    pub use crate::store::prelude::*;
    pub use crate::time::{Clock, MockClock, SystemClock, Timestamp};
}
