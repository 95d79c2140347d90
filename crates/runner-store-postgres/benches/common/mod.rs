//! Shared by the benchmarks: the server they use, and how they time a call.

use std::time::Instant;

/// The server: `$DATABASE_URL`, else the local default.
pub(crate) fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Median and 95th percentile of `runs` timings of `op`, in milliseconds.
pub(crate) async fn time<F, Fut>(runs: usize, mut op: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        op().await;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[runs / 2], times[runs * 95 / 100])
}
