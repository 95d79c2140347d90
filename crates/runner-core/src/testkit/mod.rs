//! Test helpers for stores, executors and engines (feature `testkit`).
//!
//! - [`conformance`] and [`feed_conformance`]: the suite every [`crate::store::Store`] must pass;
//!   run it with [`store_conformance_tests!`](crate::store_conformance_tests).
//! - [`ScriptedExecutor`]: an in-process executor whose runs follow a [`Script`] per job, and which
//!   records every run, for engine tests and benchmarks.
//! - [`fixtures`]: small jobs and executions.

pub mod conformance;
pub mod feed_conformance;
pub mod fixtures;
pub mod schedule_conformance;
mod scripted;

pub use scripted::{Gate, RecordedRun, Script, ScriptedExecutor};

/// Generates one `#[tokio::test]` per conformance case for a store.
///
/// `$make` is an expression evaluating to a future that builds a fresh, empty store; it runs once
/// per test, so each case gets its own store (a database backend should give each its own schema
/// or database).
///
/// ```ignore
/// runner_core::store_conformance_tests!(async { runner_store_memory::MemoryStore::new() });
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            jobs_round_trip,
            jobs_are_isolated_by_account,
            jobs_list_newest_first_in_pages,
            job_update_and_delete,
            job_delete_refused_while_execution_active,
            secrets_are_persisted,
            executions_round_trip_and_list,
            execution_needs_its_job,
            start_execution_sees_the_job_as_stored,
            executions_stay_readable_after_job_delete,
            claim_takes_oldest_first_once,
            claimed_executions_find_their_job,
            concurrent_claims_never_double,
            transitions_go_through_the_machine,
            stale_attempts_are_fenced,
            due_finds_lapsed_leases,
            concurrent_rescue_happens_once,
            signals_wake_engines,
            restart_makes_it_claimable_again,
        );
        $crate::store_conformance_tests!(@feed $make;
            feed_records_creation_and_status_changes,
            feed_pages_by_sequence,
            feed_appends_are_fenced,
            feed_deliveries_follow_levels_and_queue_order,
            feed_deliveries_carry_the_event,
            feed_holds_and_retries_keep_order,
            feed_concurrent_delivery_claims_never_double,
            feed_signals_announce_events,
            feed_restart_continues_the_sequence,
        );
    };
    (@feed $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make.await;
                $crate::testkit::feed_conformance::$case(&store).await;
            }
        )*
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make.await;
                $crate::testkit::conformance::$case(&store).await;
            }
        )*
    };
}

/// Generates one `#[tokio::test]` per case of the schedule conformance suite, for a store that
/// implements [`ScheduleStore`](crate::store::ScheduleStore). Same `$make` as
/// [`store_conformance_tests!`](crate::store_conformance_tests).
#[macro_export]
macro_rules! schedule_store_conformance_tests {
    ($make:expr) => {
        $crate::schedule_store_conformance_tests!(@cases $make;
            service_accounts_round_trip,
            schedule_needs_job_and_service_account,
            schedules_round_trip,
            service_account_in_use_is_kept,
            deleting_a_job_deletes_its_schedules,
            due_schedules_fire_once,
            date_schedules_fire_once,
            concurrent_firing_creates_each_execution_once,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make.await;
                $crate::testkit::schedule_conformance::$case(&store).await;
            }
        )*
    };
}
