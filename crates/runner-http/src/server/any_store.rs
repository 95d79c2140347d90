//! [`AnyStore`]: the store the command line picked, as one type the engine is generic over.

use std::path::PathBuf;
use std::str::FromStr;

use runner_core::seal::Keyring;
use runner_core::store::StoreError;
#[cfg(doc)]
use runner_core::store::{ScheduleStore, Store};
use runner_store_memory::MemoryStore;

/// A store as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// `memory`: nothing survives the process.
    Memory,
    /// `sled:PATH`: a durable store in a local directory.
    Sled(PathBuf),
    /// `postgres://...` or `postgresql://...`: a shared PostgreSQL database.
    Postgres(String),
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "memory" {
            Ok(StoreSpec::Memory)
        } else if let Some(path) = text.strip_prefix("sled:") {
            if path.is_empty() {
                return Err("sled: needs a directory, e.g. sled:./runner-data".into());
            }
            Ok(StoreSpec::Sled(PathBuf::from(path)))
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(StoreSpec::Postgres(text.to_owned()))
        } else {
            Err("expected sled:PATH, postgres://... or memory".into())
        }
    }
}

impl StoreSpec {
    /// The spec for log lines: a PostgreSQL URL loses its password.
    pub fn redacted(&self) -> String {
        match self {
            StoreSpec::Memory => "memory".into(),
            StoreSpec::Sled(path) => format!("sled:{}", path.display()),
            StoreSpec::Postgres(url) => redact_url(url),
        }
    }
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "postgres://…".into();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenStoreError {
    /// The sled store failed to open.
    #[cfg(feature = "sled")]
    #[error(transparent)]
    Sled(#[from] runner_store_sled::SledStoreError),
    /// The PostgreSQL store failed to connect.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] runner_store_postgres::PgStoreError),
    /// This binary was built without that backend.
    #[error("this runner was built without the {0} store (cargo feature `{0}`)")]
    NotBuilt(&'static str),
}

/// One of the stores, chosen at run time; every [`Store`] and [`ScheduleStore`] method delegates
/// to it.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// In memory (boxed: it is far larger than the handle-sized others).
    Memory(Box<MemoryStore>),
    /// sled.
    #[cfg(feature = "sled")]
    Sled(runner_store_sled::SledStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(runner_store_postgres::PgStore),
}

impl AnyStore {
    /// Opens the store `spec` names. `pg_schema` puts a PostgreSQL store's tables in that schema
    /// (created if missing), so that several deployments can share one database; the other
    /// stores ignore it.
    /// `keys` seal the secrets of a durable store (see [`runner_core::seal`]); the memory store
    /// keeps nothing at rest and ignores them.
    pub async fn open(
        spec: &StoreSpec,
        pg_schema: Option<&str>,
        keys: Option<Keyring>,
    ) -> Result<Self, OpenStoreError> {
        #[cfg(not(feature = "postgres"))]
        let _ = pg_schema;
        #[cfg(not(any(feature = "postgres", feature = "sled")))]
        let _ = keys;
        match spec {
            StoreSpec::Memory => Ok(AnyStore::Memory(Box::new(MemoryStore::new()))),
            #[cfg(feature = "sled")]
            StoreSpec::Sled(path) => Ok(AnyStore::Sled(runner_store_sled::SledStore::open_sealed(
                path,
                runner_store_sled::Durability::default(),
                keys,
            )?)),
            #[cfg(not(feature = "sled"))]
            StoreSpec::Sled(_) => Err(OpenStoreError::NotBuilt("sled")),
            #[cfg(feature = "postgres")]
            StoreSpec::Postgres(url) => {
                let mut options = runner_store_postgres::PgStoreOptions::new(url.as_str());
                if let Some(schema) = pg_schema {
                    options = options.schema(schema);
                }
                if let Some(keys) = keys {
                    options = options.secret_keys(keys);
                }
                Ok(AnyStore::Postgres(
                    runner_store_postgres::PgStore::connect_with(options).await?,
                ))
            }
            #[cfg(not(feature = "postgres"))]
            StoreSpec::Postgres(_) => Err(OpenStoreError::NotBuilt("postgres")),
        }
    }
}

impl AnyStore {
    /// Seals every secret under the keyring's current key (the end of a rotation); see
    /// `SledStore::reseal` and `PgStore::reseal`.
    pub async fn reseal(&self) -> Result<u64, StoreError> {
        match self {
            AnyStore::Memory(_) => Ok(0),
            #[cfg(feature = "sled")]
            AnyStore::Sled(store) => store.reseal().await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(store) => store.reseal().await,
        }
    }
}

/// Calls the same method on whichever store this is, and records how long it took and whether
/// the backend failed (the store metrics of `crate::telemetry`): every store call of the server
/// goes through here, the engine's and the webhook delivery's as well as the API's.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {{
        let started = std::time::Instant::now();
        let outcome = match $self {
            AnyStore::Memory(boxed) => {
                let $store: &MemoryStore = boxed;
                $call
            }
            #[cfg(feature = "sled")]
            AnyStore::Sled($store) => $call,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($store) => $call,
        };
        crate::telemetry::store_call(started, &outcome);
        outcome
    }};
}

runner_core::forward_store!(impl[] for AnyStore => dispatch delegate;
    JobStore, ExecutionStore, ClaimStore, FeedStore, OutboxStore, RunLogStore, KeyPairStore, InventoryStore, RetentionStore, SignalSource,
    ScheduleStore);
