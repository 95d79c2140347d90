//! The store conformance suites of runner-core, against a real PostgreSQL (a fresh schema per
//! test, its secrets sealed).

mod common;

runner_core::store_conformance_tests!(async { common::fresh_sealed_store().await });

mod schedules {
    use super::common;

    runner_core::schedule_store_conformance_tests!(async { common::fresh_sealed_store().await });
}
