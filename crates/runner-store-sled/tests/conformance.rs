//! The store conformance suites of runner-core (jobs and executions; service accounts and
//! schedules), on a fresh sled store per case.

mod common;

runner_core::store_conformance_tests!(async { common::TempStore::new() });

mod schedules {
    use super::common;

    runner_core::schedule_store_conformance_tests!(async { common::TempStore::new() });
}
