//! Test helpers for stores, executors and engines (feature `testkit`).
//!
//! - [`conformance`] and [`feed_conformance`]: the suite every [`crate::store::Store`] must pass;
//!   run it with [`store_conformance_tests!`](crate::store_conformance_tests).
//! - [`key_pair_conformance`], [`inventory_conformance`], [`overlap_conformance`] and
//!   [`retention_conformance`]: the key-pair, inventory, overlapping-run and retention cases,
//!   run by the same macro.
//! - [`schedule_conformance`]: the suite every [`crate::store::ScheduleStore`] must pass; run it
//!   with [`schedule_store_conformance_tests!`](crate::schedule_store_conformance_tests).
//! - [`ScriptedExecutor`]: an in-process executor whose runs follow a [`Script`] per job, and which
//!   records every run, for engine tests and benchmarks.
//! - [`fixtures`]: small jobs and executions.

/// Defines the cases of one conformance suite, and from the same list a hidden exported macro
/// that writes one test per case, so that a case is added in one place: its definition.
///
/// Input: `$ list LIST in MODULE;` and then the cases, each a documented
/// `pub async fn NAME(store: &impl ROLES) { ... }`. `MODULE` is the suite's module under
/// `testkit`; the `$` is handed in because a macro cannot otherwise write the `$` of the macro it
/// defines. `LIST!(MAKE)` writes, for every case, a `#[tokio::test]` named after the case that
/// awaits `MAKE` for a fresh store and runs the case on it. The `LIST` macros are reached only
/// from the exported `*_conformance_tests!` macros, in other crates (a macro that a macro
/// exported cannot be named by path inside its own crate).
///
/// Rustfmt does not format inside a macro call: lay a case out as rustfmt would at four columns
/// less (`max_width = 96`).
macro_rules! conformance_suite {
    (
        $d:tt list $list:ident in $module:ident;
        $(
            $(#[$attr:meta])*
            pub async fn $case:ident $params:tt $body:block
        )*
    ) => {
        $(
            $(#[$attr])*
            pub async fn $case $params $body
        )*

        /// One test per case of this suite; see `testkit::conformance_suite!`.
        #[doc(hidden)]
        #[macro_export]
        macro_rules! $list {
            ($d make:expr) => {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let store = $d make.await;
                        $d crate::testkit::$module::$case(&store).await;
                    }
                )*
            };
        }
    };
}

pub mod conformance;
pub mod feed_conformance;
pub mod fixtures;
pub mod inventory_conformance;
pub mod key_pair_conformance;
pub mod overlap_conformance;
pub mod retention_conformance;
pub mod run_log_conformance;
pub mod schedule_conformance;
mod scripted;
pub mod sealing;

pub use scripted::{Gate, RecordedRun, Script, ScriptedExecutor};

/// Generates one `#[tokio::test]` per conformance case for a store, named after the case.
///
/// `$make` is an expression evaluating to a future that builds a fresh, empty store; it runs once
/// per test, so each case gets its own store (a database backend should give each its own schema
/// or database). The cases are those of [`conformance`], [`feed_conformance`],
/// [`run_log_conformance`], [`key_pair_conformance`], [`inventory_conformance`],
/// [`overlap_conformance`] and [`retention_conformance`].
///
/// ```ignore
/// runner_core::store_conformance_tests!(async { runner_store_memory::MemoryStore::new() });
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::__store_conformance_cases!($make);
        $crate::__feed_conformance_cases!($make);
        $crate::__run_log_conformance_cases!($make);
        $crate::__key_pair_conformance_cases!($make);
        $crate::__overlap_conformance_cases!($make);
        $crate::__inventory_conformance_cases!($make);
        $crate::__retention_conformance_cases!($make);
    };
}

/// Generates one `#[tokio::test]` per case of the schedule conformance suite
/// ([`schedule_conformance`]), for a store that implements
/// [`ScheduleStore`](crate::store::ScheduleStore). Same `$make` as
/// [`store_conformance_tests!`](crate::store_conformance_tests).
#[macro_export]
macro_rules! schedule_store_conformance_tests {
    ($make:expr) => {
        $crate::__schedule_conformance_cases!($make);
    };
}
