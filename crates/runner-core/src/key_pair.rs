//! Key pairs: SSH keys an account keeps on the server, generated there or imported, which jobs
//! name (`sshKeyPair`) instead of carrying a private key, and which the server can distribute
//! into the `authorized_keys` of hosts.
//!
//! The private key is kept as jobs keep theirs: a [`Secret`] holding the base64 of the OpenSSH
//! private key file, so a run writes it into its workspace like an inline key. It never leaves
//! the server through the API: [`KeyPair`] serializes it masked, and [`KeyPairView`] (what the
//! API shows) has no field for it.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use ssh_key::private::{KeypairData, RsaKeypair};
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

use crate::ids::AccountAlias;
use crate::schedule::is_service_account_alias;
use crate::secret::Secret;
use crate::time::Timestamp;
use crate::validation::ValidationErrors;

/// The size of a generated RSA key, and the least an imported one may have, in bits.
pub const RSA_BITS: usize = 3072;

/// The algorithm of a key pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// Ed25519: the default, short and fast.
    #[default]
    Ed25519,
    /// RSA, 3072 bits (generated) or at least 3072 (imported), for hosts without ed25519.
    Rsa,
}

/// A stored key pair, private key included (for the stores and the runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPair {
    /// Its name, unique in the account.
    pub name: String,
    /// The account it belongs to.
    pub account_alias: AccountAlias,
    /// Ed25519 or RSA.
    #[serde(rename = "type")]
    pub key_type: KeyType,
    /// Free text.
    pub description: Option<String>,
    /// The public key, one OpenSSH `authorized_keys` line (`ssh-ed25519 AAAA... comment`).
    pub public_key: String,
    /// `SHA256:...`, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
    /// Base64 of the OpenSSH private key file (unencrypted). Serialized masked unless revealed
    /// ([`crate::secret::reveal`]), as every secret.
    pub private_key: Secret,
    /// When it was created or imported, in milliseconds since the Unix epoch.
    pub created_time: Timestamp,
}

/// A key pair as the API shows it: never the private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct KeyPairView {
    /// Its name, unique in the account.
    pub name: String,
    /// The account it belongs to.
    pub account_alias: AccountAlias,
    /// Ed25519 or RSA.
    #[serde(rename = "type")]
    pub key_type: KeyType,
    /// Free text.
    #[cfg_attr(feature = "utoipa", schema(required = true))]
    pub description: Option<String>,
    /// The public key in OpenSSH format, ready for `authorized_keys`.
    pub public_key: String,
    /// The SHA256 fingerprint, `SHA256:...`.
    pub fingerprint: String,
    /// When it was created or imported, in milliseconds since the Unix epoch.
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub created_time: Timestamp,
}

impl From<&KeyPair> for KeyPairView {
    fn from(pair: &KeyPair) -> Self {
        Self {
            name: pair.name.clone(),
            account_alias: pair.account_alias.clone(),
            key_type: pair.key_type,
            description: pair.description.clone(),
            public_key: pair.public_key.clone(),
            fingerprint: pair.fingerprint.clone(),
            created_time: pair.created_time,
        }
    }
}

/// A key pair as a client asks for one: generated (no `privateKey`) or imported.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = KeyPairInput))]
#[serde(rename_all = "camelCase")]
pub struct KeyPairSpec {
    /// Its name, unique in the account: 1 to 64 characters of `A-Z a-z 0-9 - _ .`.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(
        value_type = String,
        required = true,
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]+$"
    ))]
    pub name: Option<String>,
    /// The algorithm of a generated key (`ed25519` when absent). Not with `privateKey`: an
    /// imported key has its own.
    #[serde(default, rename = "type")]
    pub key_type: Option<KeyType>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// An existing unencrypted OpenSSH private key (base64 of the key file) to import instead
    /// of generating one; write-only.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = Password))]
    pub private_key: Option<Secret>,
}

impl KeyPairSpec {
    /// Checks the request and makes the key pair: generates one, or reads the imported key.
    /// Every broken rule is reported at once, each naming its field.
    pub fn build(
        self,
        account_alias: AccountAlias,
        now: Timestamp,
    ) -> Result<KeyPair, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        match &self.name {
            None => errors.add("name", "is required"),
            Some(name) => errors.check(
                is_service_account_alias(name),
                "name",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
            ),
        }
        let key = match &self.private_key {
            None => generate(self.key_type.unwrap_or_default()).map_err(|why| {
                errors.add("type", format!("could not generate the key: {why}"));
            }),
            Some(_) if self.key_type.is_some() => {
                errors.add(
                    "type",
                    "is for a generated key: leave it out with privateKey (the key has its own)",
                );
                Err(())
            }
            Some(secret) => import(secret).map_err(|why| {
                errors.add("privateKey", why);
            }),
        };
        errors.into_result()?;
        let (key_type, mut key) = key.map_err(|()| ValidationErrors::default())?;
        let name = self.name.unwrap_or_default();
        if key.comment().is_empty() {
            key.set_comment(format!("{name}@{account_alias}"));
        }
        let public_key = key
            .public_key()
            .to_openssh()
            .map_err(|why| field_error("privateKey", format!("has no usable public key: {why}")))?;
        let pem = key
            .to_openssh(LineEnding::LF)
            .map_err(|why| field_error("privateKey", format!("cannot be written: {why}")))?;
        Ok(KeyPair {
            name,
            account_alias,
            key_type,
            description: self.description,
            public_key,
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            private_key: Secret::new(
                base64::engine::general_purpose::STANDARD.encode(pem.as_bytes()),
            ),
            created_time: now,
        })
    }
}

fn field_error(field: &str, message: String) -> ValidationErrors {
    let mut errors = ValidationErrors::default();
    errors.add(field, message);
    errors
}

fn generate(key_type: KeyType) -> Result<(KeyType, PrivateKey), String> {
    let key = match key_type {
        KeyType::Ed25519 => PrivateKey::random(&mut OsRng, Algorithm::Ed25519),
        KeyType::Rsa => RsaKeypair::random(&mut OsRng, RSA_BITS)
            .and_then(|pair| PrivateKey::new(KeypairData::from(pair), "")),
    };
    key.map(|key| (key_type, key))
        .map_err(|why| why.to_string())
}

fn import(secret: &Secret) -> Result<(KeyType, PrivateKey), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret.expose().trim())
        .map_err(|_| "must be base64 of an OpenSSH private key file".to_owned())?;
    let key = PrivateKey::from_openssh(&bytes).map_err(|_| {
        "must be an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)".to_owned()
    })?;
    if key.is_encrypted() {
        return Err("must not be protected by a passphrase".into());
    }
    let key_type = match key.key_data() {
        KeypairData::Ed25519(_) => KeyType::Ed25519,
        KeypairData::Rsa(pair) => {
            let bits = pair
                .public
                .n
                .as_positive_bytes()
                .map_or(0, |bytes| bytes.len() * 8);
            if bits < RSA_BITS {
                return Err(format!("an RSA key must have at least {RSA_BITS} bits"));
            }
            KeyType::Rsa
        }
        _ => return Err("must be an ed25519 or RSA key".into()),
    };
    Ok((key_type, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias() -> AccountAlias {
        "ACME".parse().unwrap()
    }

    fn spec(name: &str) -> KeyPairSpec {
        KeyPairSpec {
            name: Some(name.into()),
            ..KeyPairSpec::default()
        }
    }

    #[test]
    fn a_generated_ed25519_key_reads_back_and_matches_its_public_key() {
        let pair = spec("deploy").build(alias(), 5).unwrap();
        assert_eq!(pair.key_type, KeyType::Ed25519);
        assert!(
            pair.public_key.starts_with("ssh-ed25519 AAAA"),
            "{}",
            pair.public_key
        );
        assert!(pair.public_key.ends_with(" deploy@ACME"));
        assert!(pair.fingerprint.starts_with("SHA256:"));
        let pem = base64::engine::general_purpose::STANDARD
            .decode(pair.private_key.expose())
            .unwrap();
        let key = PrivateKey::from_openssh(&pem).unwrap();
        assert_eq!(key.public_key().to_openssh().unwrap(), pair.public_key);
        let shown = serde_json::to_value(KeyPairView::from(&pair)).unwrap();
        assert!(shown.get("privateKey").is_none());
        assert_eq!(shown["type"], "ed25519");
        // The stored form masks the key unless revealed.
        assert!(
            !serde_json::to_string(&pair)
                .unwrap()
                .contains(pair.private_key.expose())
        );
    }

    #[test]
    fn a_generated_rsa_key_has_3072_bits() {
        let mut request = spec("legacy");
        request.key_type = Some(KeyType::Rsa);
        let pair = request.build(alias(), 5).unwrap();
        assert!(pair.public_key.starts_with("ssh-rsa AAAA"));
        // Importing it back keeps it whole and checks its size.
        let again = KeyPairSpec {
            private_key: Some(pair.private_key.clone()),
            ..spec("again")
        }
        .build(alias(), 6)
        .unwrap();
        assert_eq!(again.key_type, KeyType::Rsa);
        assert_eq!(again.fingerprint, pair.fingerprint);
    }

    #[test]
    fn bad_requests_name_their_fields() {
        let errors = KeyPairSpec {
            name: Some("no spaces".into()),
            private_key: Some(Secret::new("bm90IGEga2V5")),
            ..KeyPairSpec::default()
        }
        .build(alias(), 1)
        .unwrap_err();
        let fields: Vec<_> = errors.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "privateKey"]);
        let pair = spec("a").build(alias(), 1).unwrap();
        let errors = KeyPairSpec {
            key_type: Some(KeyType::Rsa),
            private_key: Some(pair.private_key),
            ..spec("b")
        }
        .build(alias(), 1)
        .unwrap_err();
        assert_eq!(errors.errors[0].field, "type");
    }
}
