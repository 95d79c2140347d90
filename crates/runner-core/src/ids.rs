//! Identifiers: account aliases and the UUIDs of jobs, executions and schedules.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validation::FieldError;

/// The short code of an account: 1 to 32 characters of `A-Z a-z 0-9 - _`.
///
/// ```
/// use runner_core::ids::AccountAlias;
/// assert!("ACME-1".parse::<AccountAlias>().is_ok());
/// assert!("no spaces".parse::<AccountAlias>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(
    value_type = String,
    pattern = "^[A-Za-z0-9_-]{1,32}$",
    description = "The short code of an account: 1 to 32 characters of `A-Z a-z 0-9 - _`."
))]
#[serde(try_from = "String", into = "String")]
// Shared, not copied: every execution, notification and listing carries its account's alias.
pub struct AccountAlias(Arc<str>);

impl AccountAlias {
    /// The alias as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountAlias {
    type Err = FieldError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let valid_chars = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if value.is_empty() || value.len() > 32 || !valid_chars {
            return Err(FieldError::new(
                "accountAlias",
                "must be 1 to 32 characters of A-Z, a-z, 0-9, '-' and '_'",
            ));
        }
        Ok(Self(Arc::from(value)))
    }
}

impl TryFrom<String> for AccountAlias {
    type Error = FieldError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<AccountAlias> for String {
    fn from(alias: AccountAlias) -> Self {
        alias.0.to_string()
    }
}

impl fmt::Display for AccountAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (v7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(value).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Lowercase with hyphens, as DECISIONS.md renders IDs.
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

uuid_id!(
    /// The ID of a job.
    JobId
);
uuid_id!(
    /// The ID of an execution.
    ExecutionId
);
uuid_id!(
    /// The ID of a job schedule.
    ScheduleId
);

/// The name a runner node claims executions under; leases and fencing are per node.
pub type NodeId = String;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_bounds() {
        assert!("a".parse::<AccountAlias>().is_ok());
        assert!("a".repeat(32).parse::<AccountAlias>().is_ok());
        assert!("a".repeat(33).parse::<AccountAlias>().is_err());
        assert!("".parse::<AccountAlias>().is_err());
        assert!("ab/c".parse::<AccountAlias>().is_err());
        assert!("é".parse::<AccountAlias>().is_err());
    }

    #[test]
    fn ids_render_lowercase_hyphenated() {
        let id: JobId = "1111505E-6773-494A-B2BF-D2CC2684710D".parse().unwrap();
        assert_eq!(id.to_string(), "1111505e-6773-494a-b2bf-d2cc2684710d");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"1111505e-6773-494a-b2bf-d2cc2684710d\""
        );
    }
}
