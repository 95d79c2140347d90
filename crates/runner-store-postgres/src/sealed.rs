//! Secrets at rest: the start-up check of the key (the `secret_canary` row), and resealing every
//! secret under a new key at the end of a rotation.

use runner_core::execution::Execution;
use runner_core::job::Job;
use runner_core::key_pair::KeyPair;
use runner_core::seal::Keyring;
use runner_core::store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use uuid::Uuid;

use crate::PgStore;
use crate::codec::{Codec, Encode};
use crate::error::PgStoreError;
use crate::error::unavailable;

/// Checks that `keys` open the store's secrets; the first node with keys on a store without a
/// canary writes one (two first nodes racing: the second reads the first's and checks it).
pub(crate) async fn check_key(pool: &PgPool, keys: Option<&Keyring>) -> Result<(), PgStoreError> {
    let canary: Option<String> = sqlx::query_scalar("SELECT canary FROM secret_canary")
        .fetch_optional(pool)
        .await
        .map_err(PgStoreError::Canary)?;
    match (keys, canary) {
        (Some(keys), Some(canary)) => keys.check_canary(&canary).map_err(PgStoreError::SecretKey),
        (Some(keys), None) => {
            sqlx::query("INSERT INTO secret_canary (canary) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(keys.canary())
                .execute(pool)
                .await
                .map_err(PgStoreError::Canary)?;
            Box::pin(check_key(pool, Some(keys))).await
        }
        (None, Some(_)) => Err(PgStoreError::KeyRequired),
        (None, None) => Ok(()),
    }
}

/// How many rows one reseal transaction rewrites: short transactions, few round trips.
const BATCH: i64 = 500;

impl PgStore {
    /// Seals every secret the store holds under its keyring's current key, and marks the store
    /// as sealed with it: the end of a key rotation (`runner secrets rotate`), after which the
    /// previous key may be dropped. Returns how many records were rewritten.
    ///
    /// Run it while no other node writes (the nodes stopped): a node still sealing with the old
    /// key would write records this pass has already done. It is safe to run again after an
    /// interruption (with the same keyring).
    pub async fn reseal(&self) -> Result<u64, StoreError> {
        let codec = &self.shared().codec;
        let Some(keys) = codec.keys() else {
            return Err(StoreError::Corrupt(
                "the store has no secret key to seal with".into(),
            ));
        };
        let pool = self.pool();
        let mut rewritten = reseal_by_id::<Job>(pool, codec, "jobs", "job").await?;
        rewritten += reseal_by_id::<Execution>(pool, codec, "executions", "execution").await?;
        rewritten += crate::key_pairs::KEY_PAIRS
            .reseal::<KeyPair>(pool, codec)
            .await?;
        rewritten += crate::inventory::INVENTORY_HOSTS
            .reseal::<runner_core::inventory::InventoryHost>(pool, codec)
            .await?;
        sqlx::query(
            "INSERT INTO secret_canary (canary) VALUES ($1)
             ON CONFLICT (only_row) DO UPDATE SET canary = excluded.canary",
        )
        .bind(keys.canary())
        .execute(pool)
        .await
        .map_err(unavailable)?;
        tracing::info!(records = rewritten, key = %keys.current(), "secrets sealed with the current key");
        Ok(rewritten)
    }
}

/// Rewrites the bodies of `table` (keyed by `id`) in batches, each one transaction.
async fn reseal_by_id<T: Serialize + DeserializeOwned>(
    pool: &PgPool,
    codec: &Codec,
    table: &str,
    what: &str,
) -> Result<u64, StoreError> {
    let select = format!("SELECT id, body::text FROM {table} WHERE id > $1 ORDER BY id LIMIT $2");
    let update = format!(
        "UPDATE {table} AS t SET body = u.body::json
           FROM unnest($1::uuid[], $2::text[]) AS u(id, body) WHERE t.id = u.id"
    );
    let mut after = Uuid::nil();
    let mut rewritten = 0;
    loop {
        let mut tx = pool.begin().await.map_err(unavailable)?;
        let rows: Vec<(Uuid, String)> = sqlx::query_as(&select)
            .bind(after)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        let Some((last, _)) = rows.last() else {
            return Ok(rewritten);
        };
        after = *last;
        let mut ids = Vec::with_capacity(rows.len());
        let mut bodies = Vec::with_capacity(rows.len());
        for (id, body) in rows {
            let record: T = codec.decode(what, id, &body)?;
            ids.push(id);
            bodies.push(codec.encode(what, &record)?);
        }
        rewritten += ids.len() as u64;
        sqlx::query(&update)
            .bind(&ids)
            .bind(&bodies)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
    }
}
