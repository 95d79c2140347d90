//! Which authenticator the server uses, and the admin token file created on first start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::auth::{JwtAuthenticator, SharedAuthenticator, TokenFile};

use super::any_store::StoreSpec;
use super::cli::ServeArgs;

/// Where the generated token file goes when `--token-file` is not given: `tokens` in the sled
/// data directory, or `./runner-tokens` for the memory and PostgreSQL stores.
pub fn default_token_file(store: &StoreSpec) -> PathBuf {
    match store {
        StoreSpec::Sled(dir) => dir.join("tokens"),
        StoreSpec::Memory | StoreSpec::Postgres(_) => PathBuf::from("runner-tokens"),
    }
}

/// A new random token: 32 bytes from the OS, hex-encoded.
pub fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| std::io::Error::other(error.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates `path` with one random admin token (`TOKEN *`), mode 0600, unless it exists.
/// Returns true when it was created. The token is written to the file only.
pub fn ensure_token_file(path: &Path) -> std::io::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let token = random_token()?;
    super::create_private_file(
        path,
        &format!(
            "# Runner bearer tokens: one `TOKEN *` or `TOKEN ALIAS[,ALIAS...]` a line.\n\
             # Generated admin token (every account):\n{token} *\n"
        ),
    )
}

/// Why no authenticator could be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthSetupError {
    /// The token file is unreadable or malformed.
    #[error(transparent)]
    TokenFile(#[from] crate::auth::TokenFileError),
    /// The JWT key or secret is unusable.
    #[error(transparent)]
    Jwt(#[from] crate::auth::JwtError),
    /// A file could not be read or created.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The authenticator the arguments ask for: JWT (secret file or public key), or a token file
/// (given, or the default one, created when absent; its path is printed, never the token).
pub fn authenticator(args: &ServeArgs) -> Result<SharedAuthenticator, AuthSetupError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| AuthSetupError::Io {
            path: path.to_owned(),
            source,
        })
    };
    let jwt = if let Some(path) = &args.jwt_secret_file {
        let secret = read(path)?;
        // A trailing newline from `echo > file` is not part of the secret.
        let secret = secret.trim_ascii_end();
        Some(JwtAuthenticator::hs256(secret)?)
    } else if let Some(path) = &args.jwt_public_key {
        Some(JwtAuthenticator::rs256_pem(&read(path)?)?)
    } else {
        None
    };
    if let Some(mut jwt) = jwt {
        jwt = jwt.with_aliases_claim(&args.jwt_aliases_claim);
        if let Some(issuer) = &args.jwt_issuer {
            jwt = jwt.with_issuer(issuer);
        }
        if let Some(audience) = &args.jwt_audience {
            jwt = jwt.with_audience(audience);
        }
        tracing::info!(claim = %args.jwt_aliases_claim, "authentication: JWT");
        return Ok(Arc::new(jwt));
    }
    let path = match &args.token_file {
        Some(path) => path.clone(),
        None => {
            let path = default_token_file(&args.store);
            let created = ensure_token_file(&path).map_err(|source| AuthSetupError::Io {
                path: path.clone(),
                source,
            })?;
            if created {
                println!(
                    "runner: created an admin token in {} (mode 0600); use it as `Authorization: Bearer <token>`",
                    path.display()
                );
            }
            path
        }
    };
    let tokens = TokenFile::load(&path)?;
    println!(
        "runner: bearer tokens from {} ({} token(s))",
        path.display(),
        tokens.len()
    );
    Ok(Arc::new(tokens))
}
