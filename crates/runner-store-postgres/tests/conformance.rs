//! The store conformance suite of runner-core, against a real PostgreSQL (a fresh schema per test).

mod common;

runner_core::store_conformance_tests!(async { common::fresh_store().await });
