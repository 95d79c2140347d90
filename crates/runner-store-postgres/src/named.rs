//! Records named uniquely within their account (key pairs, inventory hosts): one table each,
//! primary key account and name, the record as JSON in `body`. Each operation is one statement:
//! the primary key makes a second insert of a name fail, and an update or delete reports
//! whether it found the row.

use runner_core::ids::AccountAlias;
use runner_core::page::{Page, PageRequest};
use runner_core::store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgQueryResult;
use uuid::Uuid;

use crate::codec::Encode;
use crate::error::{is_unique_violation, unavailable};
use crate::{PgStore, to_i64};

/// One such table.
pub(crate) struct NamedTable {
    /// The table; its columns are `account_alias`, the name column and `body`.
    pub(crate) table: &'static str,
    /// The column that names a record in its account.
    pub(crate) name: &'static str,
    /// What a record is called in messages (`key pair`).
    pub(crate) record: &'static str,
}

impl NamedTable {
    /// Inserts a record; [`StoreError::Conflict`] if the account has one of that name.
    pub(crate) async fn insert<T: Serialize>(
        &self,
        store: &PgStore,
        alias: &AccountAlias,
        name: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        let statement = format!(
            "INSERT INTO {} (account_alias, {}, body) VALUES ($1, $2, $3::json)",
            self.table, self.name
        );
        match self.write(store, &statement, alias, name, record).await? {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict(format!(
                "{} {name} exists already",
                self.record
            ))),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Runs `statement` (account `$1`, name `$2`, `record`'s JSON `$3`); the outer error is
    /// the record's encoding, the inner one the database's.
    async fn write<T: Serialize>(
        &self,
        store: &PgStore,
        statement: &str,
        alias: &AccountAlias,
        name: &str,
        record: &T,
    ) -> Result<Result<PgQueryResult, sqlx::Error>, StoreError> {
        let body = store.shared().codec.encode(self.record, record)?;
        Ok(sqlx::query(statement)
            .bind(alias.as_str())
            .bind(name)
            .bind(body)
            .execute(store.pool())
            .await)
    }

    /// One record of `alias`.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        store: &PgStore,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let statement = format!(
            "SELECT body::text FROM {} WHERE account_alias = $1 AND {} = $2",
            self.table, self.name
        );
        let body: Option<String> = store
            .read(|| {
                sqlx::query_scalar(&statement)
                    .bind(alias.as_str())
                    .bind(name)
                    .fetch_optional(store.pool())
            })
            .await?;
        body.as_deref()
            .map(|body| self.decode(store, body))
            .transpose()
    }

    /// Replaces a record; [`StoreError::NotFound`] if there is none of that name.
    pub(crate) async fn replace<T: Serialize>(
        &self,
        store: &PgStore,
        alias: &AccountAlias,
        name: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        let statement = format!(
            "UPDATE {} SET body = $3::json WHERE account_alias = $1 AND {} = $2",
            self.table, self.name
        );
        let updated = self
            .write(store, &statement, alias, name, record)
            .await?
            .map_err(unavailable)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A page of the account's records, by name.
    pub(crate) async fn list<T: DeserializeOwned>(
        &self,
        store: &PgStore,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let count = format!(
            "SELECT count(*) FROM {} WHERE account_alias = $1",
            self.table
        );
        let select = format!(
            "SELECT body::text FROM {} WHERE account_alias = $1 ORDER BY {} LIMIT $2 OFFSET $3",
            self.table, self.name
        );
        let (total, bodies): (i64, Vec<String>) = store
            .read(|| async {
                let total: i64 = sqlx::query_scalar(&count)
                    .bind(alias.as_str())
                    .fetch_one(store.pool())
                    .await?;
                let bodies = sqlx::query_scalar(&select)
                    .bind(alias.as_str())
                    .bind(i64::from(page.size))
                    .bind(to_i64(page.offset()))
                    .fetch_all(store.pool())
                    .await?;
                Ok((total, bodies))
            })
            .await?;
        let records = bodies
            .iter()
            .map(|body| self.decode(store, body))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::new(page, u64::try_from(total).unwrap_or(0), records))
    }

    /// Deletes a record; [`StoreError::NotFound`] if there is none of that name.
    pub(crate) async fn delete(
        &self,
        store: &PgStore,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<(), StoreError> {
        let statement = format!(
            "DELETE FROM {} WHERE account_alias = $1 AND {} = $2",
            self.table, self.name
        );
        let deleted = sqlx::query(&statement)
            .bind(alias.as_str())
            .bind(name)
            .execute(store.pool())
            .await
            .map_err(unavailable)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Rewrites every record (few per account) through `codec`: a key rotation's reseal.
    pub(crate) async fn reseal<T: Serialize + DeserializeOwned>(
        &self,
        pool: &sqlx::PgPool,
        codec: &crate::codec::Codec,
    ) -> Result<u64, StoreError> {
        let mut tx = pool.begin().await.map_err(unavailable)?;
        let select = format!(
            "SELECT account_alias, {}, body::text FROM {} FOR UPDATE",
            self.name, self.table
        );
        let update = format!(
            "UPDATE {} SET body = $3::json WHERE account_alias = $1 AND {} = $2",
            self.table, self.name
        );
        let rows: Vec<(String, String, String)> = sqlx::query_as(&select)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        let mut rewritten = 0;
        for (alias, name, body) in rows {
            let record: T = codec.decode(self.record, Uuid::nil(), &body)?;
            sqlx::query(&update)
                .bind(&alias)
                .bind(&name)
                .bind(codec.encode(self.record, &record)?)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            rewritten += 1;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(rewritten)
    }

    /// A record from its stored JSON (decode errors name records by a UUID; these have none).
    fn decode<T: DeserializeOwned>(&self, store: &PgStore, body: &str) -> Result<T, StoreError> {
        store.shared().codec.decode(self.record, Uuid::nil(), body)
    }
}
