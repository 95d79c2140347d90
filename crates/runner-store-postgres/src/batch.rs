//! How a lane (of writes, of job lookups) gathers its next batch: it waits for one request,
//! then takes every request queued behind it, so concurrent callers share one round trip and
//! a lone caller waits for nobody.

use tokio::sync::{Mutex, mpsc};

/// The next batch from `queue`: the first request to arrive and up to `max - 1` more that are
/// already waiting. `None` once every sender is gone. Lanes that share a queue take turns on
/// its lock, so each request goes to exactly one of them.
pub(crate) async fn next<T>(
    queue: &Mutex<mpsc::UnboundedReceiver<T>>,
    max: usize,
) -> Option<Vec<T>> {
    let mut queue = queue.lock().await;
    let first = queue.recv().await?;
    let mut batch = vec![first];
    while batch.len() < max {
        match queue.try_recv() {
            Ok(request) => batch.push(request),
            Err(_) => break,
        }
    }
    Some(batch)
}
