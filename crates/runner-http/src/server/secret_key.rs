//! The key that seals the store's secrets at rest (see [`runner_core::seal`]): read from
//! `--secret-key-file`, or, for the sled store, `secret.key` in the data directory, created at
//! first start as the token file is. A PostgreSQL store needs the file given: every node must
//! read the same key. And `runner secrets`: a new key file, a rotation to a new key.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use runner_core::seal::{Keyring, SealError, SecretKey};

use super::any_store::{AnyStore, StoreSpec};
use super::serve::ServeError;

/// Why the secret key cannot be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretKeyError {
    /// The key file cannot be read or created.
    #[error("the secret key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file does not hold a key.
    #[error("the secret key file {}: {source}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: SealError,
    },
    /// A PostgreSQL store was given no key file.
    #[error(
        "a PostgreSQL store needs --secret-key-file (or RUNNER_SECRET_KEY_FILE): every node reads the same key, which seals the secrets in the database; make one with `runner secrets new-key FILE` and give it to every node"
    )]
    Required,
}

/// Where the sled store's key lives when `--secret-key-file` is not given: `secret.key` in its
/// data directory. The other stores have no default (memory keeps nothing; PostgreSQL needs the
/// same key on every node).
pub fn default_key_file(store: &StoreSpec) -> Option<PathBuf> {
    match store {
        StoreSpec::Sled(dir) => Some(dir.join("secret.key")),
        StoreSpec::Memory | StoreSpec::Postgres(_) => None,
    }
}

/// Reads a key file.
pub fn read_key_file(path: &Path) -> Result<SecretKey, SecretKeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretKeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    SecretKey::from_file_text(&text).map_err(|source| SecretKeyError::Bad {
        path: path.to_owned(),
        source,
    })
}

/// Creates `path` with a new random key, mode 0600, unless it exists; returns the key's id when
/// it was created.
pub fn create_key_file(path: &Path) -> Result<Option<runner_core::seal::KeyId>, SecretKeyError> {
    let key = SecretKey::generate();
    let created = super::create_private_file(path, &key.to_file_text()).map_err(|source| {
        SecretKeyError::Io {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok(created.then(|| key.id()))
}

/// The key file the store's secrets are sealed with: the one given, or the store's default
/// (created when absent if `create`); `None` for the memory store.
fn key_file(
    given: Option<&Path>,
    store: &StoreSpec,
    create: bool,
) -> Result<Option<PathBuf>, SecretKeyError> {
    if let Some(path) = given {
        return Ok(Some(path.to_owned()));
    }
    match (store, default_key_file(store)) {
        (StoreSpec::Postgres(_), _) => Err(SecretKeyError::Required),
        (_, Some(path)) => {
            if create && let Some(id) = create_key_file(&path)? {
                println!(
                    "runner: created the secret key {id} in {} (mode 0600); it seals the store's secrets: back it up with the data, as the secrets cannot be read without it",
                    path.display()
                );
            }
            Ok(Some(path))
        }
        (_, None) => Ok(None),
    }
}

/// The keyring the server seals with, as `--secret-key-file` and the store give it.
pub fn keyring(given: Option<&Path>, store: &StoreSpec) -> Result<Option<Keyring>, SecretKeyError> {
    let Some(path) = key_file(given, store, true)? else {
        return Ok(None);
    };
    let key = read_key_file(&path)?;
    tracing::info!(key = %key.id(), path = %path.display(), "secrets sealed at rest");
    Ok(Some(Keyring::new(key)))
}

/// `runner secrets ...`: the key that seals secrets at rest.
#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Writes a new random key to FILE (mode 0600), for `--secret-key-file`; refuses to
    /// overwrite a file.
    NewKey {
        /// Where to write it.
        file: PathBuf,
    },
    /// Re-seals every secret of the store with the key in --new-key-file, after which the old
    /// key can be removed. Stop every server on the store first (a sled store is locked while a
    /// server has it open; on PostgreSQL a node still running would seal with the old key).
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
struct RotateArgs {
    /// The store: `sled:PATH` or `postgres://...`.
    #[arg(long, env = "RUNNER_STORE", default_value = "sled:./runner-data")]
    store: StoreSpec,
    /// PostgreSQL store only: the schema its tables live in.
    #[arg(long, env = "RUNNER_PG_SCHEMA")]
    pg_schema: Option<String>,
    /// The key the secrets are sealed with now. Default: the sled store's `secret.key`.
    #[arg(long, env = "RUNNER_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    /// The key to seal them with from now on (`runner secrets new-key FILE` makes one).
    #[arg(long)]
    new_key_file: PathBuf,
}

/// Runs `runner secrets ...`.
pub async fn run(args: SecretsArgs) -> Result<(), ServeError> {
    match args.command {
        SecretsCommand::NewKey { file } => match create_key_file(&file)? {
            Some(id) => {
                println!("runner: wrote the secret key {id} to {}", file.display());
                Ok(())
            }
            None => Err(format!("{} exists already; not overwritten", file.display()).into()),
        },
        SecretsCommand::Rotate(rotate) => rotate_keys(rotate).await,
    }
}

async fn rotate_keys(args: RotateArgs) -> Result<(), ServeError> {
    if matches!(args.store, StoreSpec::Memory) {
        return Err("the memory store keeps nothing at rest: there is nothing to rotate".into());
    }
    let old_path = key_file(args.secret_key_file.as_deref(), &args.store, false)?
        .ok_or("no secret key file")?;
    let old = read_key_file(&old_path)?;
    let new = read_key_file(&args.new_key_file)?;
    let keys = Keyring::new(new.clone()).with_previous(old.clone());
    let store = AnyStore::open(&args.store, args.pg_schema.as_deref(), Some(keys)).await?;
    let records = store.reseal().await?;
    println!(
        "runner: {records} record(s) sealed with key {} (was {})",
        new.id(),
        old.id()
    );
    if args.secret_key_file.is_none() {
        // The default key file: it takes the new key, so the server starts as before.
        replace_key_file(&old_path, &new)?;
        println!(
            "runner: {} now holds key {}; the old key is gone",
            old_path.display(),
            new.id()
        );
    } else {
        println!(
            "runner: start the servers with --secret-key-file {}; the old key can then be removed",
            args.new_key_file.display()
        );
    }
    Ok(())
}

/// Puts `key` in `path` in one rename, so the file holds the old key or the new, never half.
fn replace_key_file(path: &Path, key: &SecretKey) -> Result<(), SecretKeyError> {
    let io = |source| SecretKeyError::Io {
        path: path.to_owned(),
        source,
    };
    let staged = path.with_extension("key.new");
    let _ = std::fs::remove_file(&staged);
    super::create_private_file(&staged, &key.to_file_text()).map_err(io)?;
    std::fs::rename(&staged, path).map_err(io)
}
