//! Job lookups gathered into batches. Every start of an execution reads its job (a worker gets
//! its job from the claim instead, see `claimed_jobs`): at thousands of executions a second, the
//! lookups cost the server more in round trips than in reading. Like the write lanes, a read
//! lane takes every lookup queued when it starts a query and answers them all with one
//! `SELECT ... WHERE id = ANY(...)`; a lone lookup costs one query, as before.

use std::collections::HashMap;
use std::sync::Arc;

use runner_core::ids::{AccountAlias, JobId};
use runner_core::store::StoreError;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::Shared;
use crate::batch;
use crate::error::SharedError;

/// The most lookups one query takes.
const MAX_BATCH: usize = 256;

/// How many queries may be in flight at once. One: lookups that arrive while a query is out wait
/// for it and go out together in the next, which in the throughput benchmark beat two lanes
/// (fewer, larger queries on a server short of CPU).
const LANES: usize = 1;

/// A lookup waiting for a lane: the job's stored body and revision, if it exists and belongs to
/// the account.
struct Lookup {
    id: Uuid,
    alias: AccountAlias,
    reply: oneshot::Sender<Result<Option<(String, i64)>, StoreError>>,
}

/// The queue the read lanes take lookups from; the lanes end when it is dropped.
pub(crate) struct JobReads {
    queue: mpsc::UnboundedSender<Lookup>,
}

impl JobReads {
    /// Starts the lanes.
    pub(crate) fn start(shared: &Arc<Shared>) -> (JobReads, Vec<tokio::task::JoinHandle<()>>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let handles = (0..LANES)
            .map(|_| tokio::spawn(lane(Arc::clone(shared), Arc::clone(&receiver))))
            .collect();
        (JobReads { queue }, handles)
    }

    /// The stored body and revision of job `id` of `alias`, if there is one.
    pub(crate) async fn body(
        &self,
        alias: &AccountAlias,
        id: JobId,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let (reply, answer) = oneshot::channel();
        const STOPPED: &str = "the store's read lanes have stopped";
        self.queue
            .send(Lookup {
                id: id.0,
                alias: alias.clone(),
                reply,
            })
            .map_err(|_| StoreError::Unavailable(STOPPED.into()))?;
        crate::answer_within_patience(answer, STOPPED).await
    }
}

async fn lane(shared: Arc<Shared>, receiver: Arc<Mutex<mpsc::UnboundedReceiver<Lookup>>>) {
    loop {
        let Some(batch) = batch::next(&receiver, MAX_BATCH).await else {
            return;
        };
        let mut ids: Vec<Uuid> = batch.iter().map(|lookup| lookup.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let rows: Result<Vec<(Uuid, String, String, i64)>, sqlx::Error> = shared
            .read(|| {
                sqlx::query_as(
                    "SELECT id, account_alias, body::text, revision FROM jobs WHERE id = ANY($1)",
                )
                .bind(&ids)
                .fetch_all(&shared.pool)
            })
            .await;
        match rows {
            Ok(rows) => {
                let found: HashMap<Uuid, (String, String, i64)> = rows
                    .into_iter()
                    .map(|(id, alias, body, revision)| (id, (alias, body, revision)))
                    .collect();
                for lookup in batch {
                    // Another account's job is no job of this one.
                    let body = found
                        .get(&lookup.id)
                        .filter(|(alias, _, _)| alias.as_str() == lookup.alias.as_str())
                        .map(|(_, body, revision)| (body.clone(), *revision));
                    let _ = lookup.reply.send(Ok(body));
                }
            }
            Err(error) => {
                let error = SharedError(Arc::new(error));
                for lookup in batch {
                    let _ = lookup
                        .reply
                        .send(Err(StoreError::unavailable(error.clone())));
                }
            }
        }
    }
}
