//! How to connect: [`PgStoreOptions`].

use runner_core::seal::Keyring;
use std::fmt;
use std::time::Duration;

/// How a [`crate::PgStore`] connects and behaves. Start from [`PgStoreOptions::new`] and change
/// what you need:
///
/// ```
/// use runner_store_postgres::PgStoreOptions;
/// let options = PgStoreOptions::new("postgres://runner@127.0.0.1/runner")
///     .schema("tenant_a")
///     .pool_size(20);
/// assert_eq!(options.pool_size, 20);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct PgStoreOptions {
    /// `postgres://user:password@host:port/database`. Never logged.
    pub url: String,
    /// The schema the tables live in: created if missing, and the `search_path` of every pooled
    /// connection. `None` uses the database's default (`public`). Lets several stores (tests,
    /// tenants) share one database; each schema has its own wake-up channel.
    pub schema: Option<String>,
    /// Connections in the pool, at most. Default 10.
    pub pool_size: u32,
    /// Do not LISTEN for other nodes' wake-ups (for transaction-mode poolers such as PgBouncer,
    /// which cannot hold a LISTEN). The engines then find other nodes' work by polling only.
    /// NOTIFY is still sent. The store uses prepared statements, so a transaction-mode pooler must
    /// support them (PgBouncer 1.21 or later with `max_prepared_statements`). Such a pooler also
    /// does not keep the settings the store makes on each new connection (`search_path`,
    /// `enable_seqscan = off`, `plan_cache_mode = force_generic_plan`); set them on the role the
    /// store connects as instead (`ALTER ROLE ... SET ...`).
    pub poll_only: bool,
    /// Transactions that apply queued inserts and transitions at once, in parallel. Each takes
    /// every request queued when it starts, so under load many transitions share one commit.
    /// Default 1: one lane makes the fewest and biggest durable commits, which measured faster
    /// than 2 or 3 lanes on a 2-core server (BENCHMARKS.md); more lanes overlap commits, which
    /// pays when the database has cores and disk to spare. (Inserts have a lane of their own, and
    /// so have BeginRun and Heartbeat transitions, whose batches commit without waiting for the
    /// disk.)
    pub write_lanes: usize,
    /// How long an operation is retried while the database is unreachable (a restart, a failover),
    /// when retrying cannot apply it twice: reads, and writes whose transaction did not reach its
    /// commit. Default 10 s.
    pub retry_for: Duration,
    /// The keys every secret is sealed with (see "Secrets at rest" in the crate docs); `None`
    /// keeps them in clear. Every node of one database must be given the same key. Default
    /// `None`.
    pub secret_keys: Option<Keyring>,
}

impl PgStoreOptions {
    /// The defaults, for the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            pool_size: 10,
            poll_only: false,
            write_lanes: 1,
            retry_for: Duration::from_secs(10),
            secret_keys: None,
        }
    }

    /// Sets [`PgStoreOptions::schema`].
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Sets [`PgStoreOptions::pool_size`] (at least 2: one for writes, one for the rest).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(2);
        self
    }

    /// Sets [`PgStoreOptions::poll_only`].
    pub fn poll_only(mut self, poll_only: bool) -> Self {
        self.poll_only = poll_only;
        self
    }

    /// Sets [`PgStoreOptions::write_lanes`] (at least 1).
    pub fn write_lanes(mut self, lanes: usize) -> Self {
        self.write_lanes = lanes.max(1);
        self
    }

    /// Sets [`PgStoreOptions::secret_keys`].
    pub fn secret_keys(mut self, keys: Keyring) -> Self {
        self.secret_keys = Some(keys);
        self
    }

    /// Sets [`PgStoreOptions::retry_for`].
    pub fn retry_for(mut self, retry_for: Duration) -> Self {
        self.retry_for = retry_for;
        self
    }
}

impl fmt::Debug for PgStoreOptions {
    // The URL may hold a password: show everything else.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStoreOptions")
            .field("url", &"<redacted>")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("poll_only", &self.poll_only)
            .field("sealed", &self.secret_keys.as_ref().map(Keyring::current))
            .field("write_lanes", &self.write_lanes)
            .field("retry_for", &self.retry_for)
            .finish()
    }
}

/// True for a name usable as a schema without quoting tricks: 1 to 63 of `a-z 0-9 _`, not
/// starting with a digit or `pg_`.
pub(crate) fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with("pg_")
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_url() {
        let options = PgStoreOptions::new("postgres://u:hunter2@h/db");
        assert!(!format!("{options:?}").contains("hunter2"));
    }

    #[test]
    fn schema_names_are_checked() {
        assert!(valid_schema("test_0a1b"));
        for bad in [
            "",
            "Upper",
            "a-b",
            "1abc",
            "pg_catalog",
            "x\"; drop",
            &"a".repeat(64),
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
