//! The store conformance suite of runner-core, on a fresh sled store per case.

mod common;

runner_core::store_conformance_tests!(async { common::TempStore::new() });
