//! [`KeyPairStore`] for [`PgStore`]: the `key_pairs` table, one row per account and name with
//! the record as JSON. Each method is one statement: the primary key makes a second insert of a
//! name fail, and a delete reports whether it removed a row.

use runner_core::ids::AccountAlias;
use runner_core::key_pair::KeyPair;
use runner_core::page::{Page, PageRequest};
use runner_core::store::{KeyPairStore, StoreError};
use uuid::Uuid;

use crate::codec::{Codec, Encode};
use crate::error::{is_unique_violation, unavailable};
use crate::{PgStore, to_i64};

/// A key pair from its stored JSON (decode errors name records by a UUID; a key pair has none).
fn key_pair_of(codec: &Codec, body: &str) -> Result<KeyPair, StoreError> {
    codec.decode("key pair", Uuid::nil(), body)
}

impl KeyPairStore for PgStore {
    async fn insert_key_pair(&self, pair: &KeyPair) -> Result<(), StoreError> {
        let body = self.shared().codec.encode("key pair", pair)?;
        let inserted = sqlx::query(
            "INSERT INTO key_pairs (account_alias, name, body) VALUES ($1, $2, $3::json)",
        )
        .bind(pair.account_alias.as_str())
        .bind(&pair.name)
        .bind(body)
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict(format!(
                "key pair {} exists already",
                pair.name
            ))),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn get_key_pair(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<KeyPair>, StoreError> {
        let body: Option<String> = self
            .read(|| {
                sqlx::query_scalar(
                    "SELECT body::text FROM key_pairs WHERE account_alias = $1 AND name = $2",
                )
                .bind(alias.as_str())
                .bind(name)
                .fetch_optional(self.pool())
            })
            .await?;
        body.as_deref()
            .map(|body| key_pair_of(&self.shared().codec, body))
            .transpose()
    }

    async fn list_key_pairs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<KeyPair>, StoreError> {
        let (total, bodies): (i64, Vec<String>) = self
            .read(|| async {
                let total: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM key_pairs WHERE account_alias = $1")
                        .bind(alias.as_str())
                        .fetch_one(self.pool())
                        .await?;
                let bodies = sqlx::query_scalar(
                    "SELECT body::text FROM key_pairs WHERE account_alias = $1
                      ORDER BY name LIMIT $2 OFFSET $3",
                )
                .bind(alias.as_str())
                .bind(i64::from(page.size))
                .bind(to_i64(page.offset()))
                .fetch_all(self.pool())
                .await?;
                Ok((total, bodies))
            })
            .await?;
        let pairs = bodies
            .iter()
            .map(|body| key_pair_of(&self.shared().codec, body))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::new(page, u64::try_from(total).unwrap_or(0), pairs))
    }

    async fn delete_key_pair(&self, alias: &AccountAlias, name: &str) -> Result<(), StoreError> {
        let deleted = sqlx::query("DELETE FROM key_pairs WHERE account_alias = $1 AND name = $2")
            .bind(alias.as_str())
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(unavailable)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
