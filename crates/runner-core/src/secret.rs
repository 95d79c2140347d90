//! Write-only secrets: passwords and private keys.
//!
//! A [`Secret`] never shows its value through `Debug`, `Display` or serde: it serializes as
//! [`MASK`], so a secret cannot leak into an API response or a log line by accident. A client that
//! sends [`MASK`] back on update keeps the stored value ([`Secret::keep_or`]).
//!
//! Stores must persist the real value. They serialize inside [`reveal`], which switches the
//! serialization of secrets to clear text for the current thread and for that call only.
//!
//! ```
//! use runner_core::secret::{reveal, Secret, MASK};
//!
//! let secret = Secret::new("hunter2");
//! assert_eq!(format!("{secret:?}"), "Secret(********)");
//! assert_eq!(serde_json::to_string(&secret).unwrap(), format!("\"{MASK}\""));
//! assert_eq!(reveal(|| serde_json::to_string(&secret)).unwrap(), "\"hunter2\"");
//! ```

use std::cell::Cell;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret looks like in every response.
pub const MASK: &str = "********";

thread_local! {
    static REVEALED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `serialize` with secrets serialized in clear. Only stores call this, to persist secrets.
pub fn reveal<T>(serialize: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            REVEALED.with(|revealed| revealed.set(self.0));
        }
    }
    let _restore = Restore(REVEALED.with(|revealed| revealed.replace(true)));
    serialize()
}

/// A password or private key: write-only through the API, never printed.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(
    value_type = String,
    description = "A password, or a private key in base64. Write-only: responses show \
        `\"********\"` where one is set, and an update that sends `\"********\"` back keeps the \
        stored value."
))]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the executor that must hand it to git or ssh.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when a client sent the mask back instead of a value.
    pub fn is_mask(&self) -> bool {
        self.0 == MASK
    }

    /// The value to store on update: a mask sent back keeps the stored secret.
    pub fn keep_or(self, stored: Option<&Secret>) -> Option<Secret> {
        if self.is_mask() {
            stored.cloned()
        } else {
            Some(self)
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({MASK})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if REVEALED.with(Cell::get) {
            serializer.serialize_str(&self.0)
        } else {
            serializer.serialize_str(MASK)
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Merges an optional secret from an update with the stored one (see [`Secret::keep_or`]).
pub fn merge(incoming: Option<Secret>, stored: Option<&Secret>) -> Option<Secret> {
    incoming.and_then(|secret| secret.keep_or(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let secret = Secret::new("s3cr3t");
        assert!(!format!("{secret:?} {secret}").contains("s3cr3t"));
        assert!(!serde_json::to_string(&secret).unwrap().contains("s3cr3t"));
    }

    #[test]
    fn reveal_is_scoped() {
        let secret = Secret::new("s3cr3t");
        assert!(reveal(|| serde_json::to_string(&secret).unwrap()).contains("s3cr3t"));
        assert!(!serde_json::to_string(&secret).unwrap().contains("s3cr3t"));
    }

    #[test]
    fn mask_keeps_stored_value() {
        let stored = Secret::new("old");
        assert_eq!(
            merge(Some(Secret::new(MASK)), Some(&stored)),
            Some(stored.clone())
        );
        assert_eq!(
            merge(Some(Secret::new("new")), Some(&stored)),
            Some(Secret::new("new"))
        );
        assert_eq!(merge(None, Some(&stored)), None);
    }
}
