//! The command line (clap derive), with environment fallbacks for every flag.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use runner_core::ids::AccountAlias;

use super::any_store::StoreSpec;

/// Runner: a job service for Ansible playbooks.
#[derive(Debug, Parser)]
#[command(name = "runner", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing buys nothing"
)]
pub enum Command {
    /// Serves the Job Service API and runs executions.
    Serve(ServeArgs),
    /// The key that seals secrets at rest: make one, rotate to a new one.
    Secrets(super::secret_key::SecretsArgs),
    /// The client subcommands: they talk to a server over its HTTP API.
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// `runner serve` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "RUNNER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Serve `GET /metrics` (Prometheus text) without authentication on this address of its own,
    /// for the scraper; the API then does not serve it. Without it, the API serves `/metrics` to
    /// a token for every account.
    #[arg(long, env = "RUNNER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// How long, in milliseconds, the node keeps serving with `/readyz` failing after SIGTERM
    /// before it stops taking requests and drains: time for a load balancer to see it leave.
    #[arg(long, env = "RUNNER_DRAIN_DELAY_MS", default_value_t = 0)]
    pub drain_delay_ms: u64,

    /// Where jobs and executions live: `sled:PATH`, `postgres://...` or `memory`.
    #[arg(long, env = "RUNNER_STORE", default_value = "sled:./runner-data")]
    pub store: StoreSpec,

    /// PostgreSQL store only: the schema its tables live in (created if missing), so that several
    /// deployments (or test runs) share one database without seeing each other. Default: the
    /// connection's own `search_path` (usually `public`).
    #[arg(long, env = "RUNNER_PG_SCHEMA")]
    pub pg_schema: Option<String>,

    /// The bearer token file (`TOKEN *` or `TOKEN ALIAS[,ALIAS...]` a line). Default: `tokens` in
    /// the data directory, created with a random admin token when absent.
    #[arg(long, env = "RUNNER_TOKEN_FILE", conflicts_with_all = ["jwt_secret_file", "jwt_public_key"])]
    pub token_file: Option<PathBuf>,

    /// The key file that seals passwords and private keys in the store (one line of base64, 32
    /// bytes: `runner secrets new-key FILE` makes one). Default for the sled store: `secret.key`
    /// in the data directory, created at first start. A PostgreSQL store needs it given, the
    /// same file on every node.
    #[arg(long, env = "RUNNER_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// JWT mode, HS256: a file holding the shared secret (a file, so that the secret never shows
    /// in a command line or the environment).
    #[arg(
        long,
        env = "RUNNER_JWT_SECRET_FILE",
        conflicts_with = "jwt_public_key"
    )]
    pub jwt_secret_file: Option<PathBuf>,

    /// JWT mode, RS256: a PEM file with the RSA public key that verifies tokens.
    #[arg(long, env = "RUNNER_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,

    /// JWT mode: the claim that holds the token's account aliases (`"*"`, an alias, or a list).
    #[arg(long, env = "RUNNER_JWT_ALIASES_CLAIM", default_value = "aliases")]
    pub jwt_aliases_claim: String,

    /// JWT mode: require this `iss`.
    #[arg(long, env = "RUNNER_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// JWT mode: require this `aud`.
    #[arg(long, env = "RUNNER_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// How many executions this node runs at once.
    #[arg(long, env = "RUNNER_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Seconds a node holds an execution without renewing it (renewed every third of it). When a
    /// node dies, its executions are rescued that long after its last renewal.
    #[arg(long, env = "RUNNER_LEASE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..))]
    pub lease_secs: u64,

    /// Seconds a shutdown (SIGTERM, Ctrl-C) waits for running executions to end before it hands
    /// the rest back to PENDING for another node.
    #[arg(long, env = "RUNNER_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// The longest text, in bytes, an event of the feed keeps in each field (a task's `msg`,
    /// `stdout`, `stderr`, the loop item, a message); a longer one is cut on a character
    /// boundary and ends in `[truncated by Runner: N bytes in all]`.
    #[arg(long, env = "RUNNER_EVENT_FIELD_BYTES", default_value_t = runner_core::engine::DEFAULT_EVENT_FIELD_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(256..))]
    pub event_field_bytes: usize,

    /// Bytes of each run's log (ansible's output) the store keeps: the first half and the last
    /// half, with a marker where the middle was dropped.
    #[arg(long, env = "RUNNER_RUN_LOG_CAP", default_value_t = runner_core::run_log::DEFAULT_CAP_BYTES,
          value_parser = clap::value_parser!(u64).range(1024..))]
    pub run_log_cap: u64,

    /// Days an ended execution is kept: then it is deleted with its events, webhook deliveries,
    /// run logs and secrets (a pass every 10 minutes, in batches of 500). 0 keeps everything.
    #[arg(long, env = "RUNNER_RETAIN_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub retain_days: u32,

    /// Let jobs use local repositories (`file://`, `http://`, and hosts that are loopback,
    /// private, link-local or otherwise not globally reachable): for tests and air-gapped mirrors.
    #[arg(long, env = "RUNNER_ALLOW_LOCAL_REPOSITORIES")]
    pub allow_local_repositories: bool,

    /// An inventory source of an account, `ALIAS=PATH` (repeatable): an ansible inventory file,
    /// directory, plugin configuration or executable script that `useDynamicInventory` runs of
    /// the account read beside its inventory hosts, copied afresh at each run. No run of any
    /// account can read the PATH itself.
    #[arg(long = "inventory-source", env = "RUNNER_INVENTORY_SOURCES", value_delimiter = ';',
          value_parser = parse_inventory_source, value_name = "ALIAS=PATH")]
    pub inventory_sources: Vec<(AccountAlias, PathBuf)>,

    /// Where runs work: each node makes a directory of its own under it (a node removes what
    /// nodes that are gone left there when it starts), each run a workspace in that.
    #[arg(long, env = "RUNNER_WORK_ROOT", default_value = "./runner-work")]
    pub work_root: PathBuf,

    /// Where the node keeps a mirror of each repository its jobs use, fetched into
    /// incrementally by every run (each run still checks out its own commit). Outside the work
    /// root; several servers of one machine may share it.
    #[arg(
        long,
        env = "RUNNER_REPOSITORY_CACHE",
        default_value = "./runner-repositories"
    )]
    pub repository_cache: PathBuf,

    /// The most bytes the repository mirrors may hold together: the ones used least recently
    /// go first. 0 turns the cache off (every run clones its repository one commit deep).
    #[arg(long, env = "RUNNER_REPOSITORY_CACHE_BYTES",
          default_value_t = 2 << 30)]
    pub repository_cache_bytes: u64,

    /// The bubblewrap program every git and ansible-playbook of a run starts in.
    #[arg(long, env = "RUNNER_BWRAP", default_value = "bwrap")]
    pub bwrap: PathBuf,

    /// The unprivileged user runs run as [default: `nobody` when the server runs as root, else
    /// the server's own user].
    #[arg(long, env = "RUNNER_SANDBOX_USER")]
    pub sandbox_user: Option<String>,

    /// UNSAFE: run playbooks without the sandbox when it cannot be made. A playbook can then
    /// read the server's data, tokens and the other runs' files, and outlive a kill of the
    /// server. Without this, a server that cannot make the sandbox refuses to start.
    #[arg(long, env = "RUNNER_UNSAFE_NO_SANDBOX")]
    pub unsafe_no_sandbox: bool,

    /// The log format.
    #[arg(long, env = "RUNNER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The largest request body, in bytes.
    #[arg(long, env = "RUNNER_BODY_LIMIT", default_value_t = crate::extract::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,

    /// Let job callbacks target loopback, private and link-local addresses (refused by default,
    /// at validation and at delivery): for tests and trusted networks.
    #[arg(long, env = "RUNNER_ALLOW_PRIVATE_CALLBACKS")]
    pub allow_private_callbacks: bool,

    /// A file holding the key that signs webhook POSTs (`X-Runner-Signature: sha256=<HMAC>`);
    /// without it, POSTs are not signed. A file, so that the key never shows in a command line
    /// or the environment.
    #[arg(long, env = "RUNNER_CALLBACK_SIGNING_SECRET_FILE")]
    pub callback_signing_secret_file: Option<PathBuf>,

    /// Attempts of one webhook delivery before it is given up [default: 12].
    #[arg(long, env = "RUNNER_CALLBACK_MAX_ATTEMPTS", value_parser = clap::value_parser!(u32).range(1..))]
    pub callback_max_attempts: Option<u32>,

    /// The first retry delay of a webhook delivery, in milliseconds; each retry doubles it, with
    /// jitter [default: 1000].
    #[arg(long, env = "RUNNER_CALLBACK_RETRY_BASE_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub callback_retry_base_ms: Option<u64>,

    /// The longest retry delay of a webhook delivery, in milliseconds [default: 600000].
    #[arg(long, env = "RUNNER_CALLBACK_RETRY_MAX_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub callback_retry_max_ms: Option<u64>,

    /// How long a webhook POST may take before it counts as failed, in milliseconds
    /// [default: 10000].
    #[arg(long, env = "RUNNER_CALLBACK_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub callback_timeout_ms: Option<u64>,
}

/// `ALIAS=PATH` of `--inventory-source`: the alias must be an account alias, the path must exist.
fn parse_inventory_source(text: &str) -> Result<(AccountAlias, PathBuf), String> {
    let (alias, path) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not ALIAS=PATH"))?;
    let alias: AccountAlias = alias
        .parse()
        .map_err(|error| format!("{alias:?} is not an account alias: {error}"))?;
    let path = PathBuf::from(path);
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    Ok((alias, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inventory_source_names_an_account_and_a_path_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("acme.yml");
        std::fs::write(&file, "all: {}\n").unwrap();
        let (alias, path) = parse_inventory_source(&format!("ACME={}", file.display())).unwrap();
        assert_eq!((alias.as_str(), path), ("ACME", file.clone()));
        let no_alias = parse_inventory_source(&file.display().to_string()).unwrap_err();
        assert!(no_alias.contains("ALIAS=PATH"), "{no_alias}");
        let bad_alias = parse_inventory_source(&format!("a b={}", file.display())).unwrap_err();
        assert!(bad_alias.contains("not an account alias"), "{bad_alias}");
        let missing = parse_inventory_source("ACME=/nonexistent/inventory.yml").unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
    }
}
