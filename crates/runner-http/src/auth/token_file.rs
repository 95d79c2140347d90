//! Static bearer tokens from a file.
//!
//! One token a line: `TOKEN *` (every account) or `TOKEN ALIAS[,ALIAS...]`. Blank lines and lines
//! starting with `#` are ignored. Tokens are at least 16 characters.
//!
//! Tokens are kept only as SHA-256 digests and looked up by the digest of the presented token, so
//! the comparison's timing tells an attacker nothing about a stored token, and a memory dump holds
//! no usable token.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use runner_core::ids::AccountAlias;
use sha2::{Digest, Sha256};

use super::{AuthError, Authenticator, Scope};

/// The shortest token a file may hold.
pub const MIN_TOKEN_LEN: usize = 16;

/// Tokens loaded from a token file. See the [module docs](self).
#[derive(Clone)]
pub struct TokenFile {
    by_digest: HashMap<[u8; 32], Scope>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("tokens", &self.by_digest.len())
            .finish()
    }
}

/// Why a token file could not be loaded. Messages name the line, never the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("cannot read token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("token file line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file holds no token at all.
    #[error("the token file holds no token")]
    Empty,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenFile {
    /// Reads and parses a token file.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses the text of a token file.
    pub fn parse(text: &str) -> Result<Self, TokenFileError> {
        let mut by_digest = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let error = |message: &str| TokenFileError::Line {
                line: line_no,
                message: message.to_owned(),
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let token = fields.next().unwrap_or_default();
            let Some(scope) = fields.next() else {
                return Err(error("expected `TOKEN *` or `TOKEN ALIAS[,ALIAS...]`"));
            };
            if fields.next().is_some() {
                return Err(error(
                    "too many fields: aliases are separated by commas, not spaces",
                ));
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err(error(&format!(
                    "the token is shorter than {MIN_TOKEN_LEN} characters"
                )));
            }
            let scope = parse_scope(scope).map_err(|message| error(&message))?;
            if by_digest.insert(digest(token), scope).is_some() {
                return Err(error("this token is already listed on an earlier line"));
            }
        }
        if by_digest.is_empty() {
            return Err(TokenFileError::Empty);
        }
        Ok(Self { by_digest })
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// True when the file holds no token (never, for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The scope of `token`, if the file lists it.
    pub fn scope(&self, token: &str) -> Option<&Scope> {
        self.by_digest.get(&digest(token))
    }
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    if text == "*" {
        return Ok(Scope::All);
    }
    let mut aliases = BTreeSet::new();
    for alias in text.split(',') {
        let alias: AccountAlias = alias
            .parse()
            .map_err(|_| format!("invalid account alias {alias:?} (1 to 32 of A-Z a-z 0-9 - _)"))?;
        aliases.insert(alias);
    }
    Ok(Scope::Aliases(aliases))
}

#[async_trait::async_trait]
impl Authenticator for TokenFile {
    async fn authenticate(&self, token: &str) -> Result<Scope, AuthError> {
        self.scope(token).cloned().ok_or(AuthError::Invalid)
    }
}
