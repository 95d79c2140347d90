//! JWT bearer tokens (HS256 with a shared secret, RS256 with an RSA public key).
//!
//! The token must carry `exp` (checked, with 30 s of leeway for clock skew) and a scope claim
//! (default `aliases`, configurable): `"*"` for every account, an alias string, or a list of
//! aliases (a `"*"` in the list also means every account). `iss` and `aud` are checked when
//! configured.

use std::collections::BTreeSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use runner_core::ids::AccountAlias;
use serde_json::{Map, Value};

use super::{AuthError, Authenticator, Scope};

/// The default name of the claim that holds a token's account aliases.
pub const DEFAULT_ALIASES_CLAIM: &str = "aliases";

/// Verifies JWTs. See the [module docs](self).
#[derive(Clone)]
pub struct JwtAuthenticator {
    key: DecodingKey,
    validation: Validation,
    claim: String,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}

/// Why a JWT verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The RSA public key is not a PEM-encoded key.
    #[error("invalid RSA public key (expected PEM): {0}")]
    Key(#[source] jsonwebtoken::errors::Error),
    /// The HS256 secret is empty.
    #[error("the JWT secret is empty")]
    EmptySecret,
}

impl JwtAuthenticator {
    /// HS256 tokens signed with `secret`.
    pub fn hs256(secret: &[u8]) -> Result<Self, JwtError> {
        if secret.is_empty() {
            return Err(JwtError::EmptySecret);
        }
        Ok(Self::new(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
        ))
    }

    /// RS256 tokens, verified with a PEM-encoded RSA public key.
    pub fn rs256_pem(public_key_pem: &[u8]) -> Result<Self, JwtError> {
        let key = DecodingKey::from_rsa_pem(public_key_pem).map_err(JwtError::Key)?;
        Ok(Self::new(key, Algorithm::RS256))
    }

    fn new(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 30;
        validation.validate_exp = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            key,
            validation,
            claim: DEFAULT_ALIASES_CLAIM.to_owned(),
        }
    }

    /// Reads the aliases from `claim` instead of `aliases`.
    pub fn with_aliases_claim(mut self, claim: impl Into<String>) -> Self {
        self.claim = claim.into();
        self
    }

    /// Requires `iss` to be `issuer`.
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self
    }

    /// Requires `aud` to include `audience`.
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self.validation.validate_aud = true;
        self
    }

    /// The scope of a token, checked synchronously.
    pub fn verify(&self, token: &str) -> Result<Scope, AuthError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|error| match error.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid,
        })?;
        let missing = || AuthError::MissingScope(self.claim.clone());
        let claim = data.claims.get(&self.claim).ok_or_else(missing)?;
        scope_of(claim).ok_or_else(missing)
    }
}

fn scope_of(claim: &Value) -> Option<Scope> {
    let items: Vec<&Value> = match claim {
        Value::String(_) => vec![claim],
        Value::Array(items) => items.iter().collect(),
        _ => return None,
    };
    let mut aliases = BTreeSet::new();
    for item in items {
        let text = item.as_str()?;
        if text == "*" {
            return Some(Scope::All);
        }
        aliases.insert(text.parse::<AccountAlias>().ok()?);
    }
    Some(Scope::Aliases(aliases))
}

#[async_trait::async_trait]
impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Scope, AuthError> {
        self.verify(token)
    }
}
