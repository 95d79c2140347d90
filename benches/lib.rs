//! Benchmarks of the engine live in `benches/`; see BENCHMARKS.md.
