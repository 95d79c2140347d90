//! Secrets sealed at rest: an AEAD cipher over every [`Secret`] a durable store writes.
//!
//! A store that is given a [`Keyring`] serializes its records inside [`sealing`]: each secret is
//! written as a [`SEALED_PREFIX`]ed text that names the key it was sealed with, and read back
//! (opened) only with that key. A keyring holds one current key, which seals, and any number of
//! previous keys, which only open: that is how keys rotate (re-seal everything under the new key,
//! then drop the old one).
//!
//! The cipher is XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`): a random 192-bit nonce per
//! value needs no counter shared between nodes, and the key's id is bound in as associated data,
//! so a value cannot be passed off as sealed under another key.
//!
//! ```
//! use runner_core::seal::{sealing, Keyring, SecretKey};
//! use runner_core::secret::Secret;
//!
//! let keys = Keyring::new(SecretKey::generate());
//! let stored = sealing(Some(&keys), || serde_json::to_string(&Secret::new("hunter2"))).unwrap();
//! assert!(!stored.contains("hunter2"));
//! let back: Secret = sealing(Some(&keys), || serde_json::from_str(&stored)).unwrap();
//! assert_eq!(back.expose(), "hunter2");
//! // Without the key a sealed value does not read.
//! assert!(serde_json::from_str::<Secret>(&stored).is_err());
//! ```
//!
//! [`Secret`]: crate::secret::Secret

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

pub use crate::secret::sealing;

/// How every sealed value begins: `$sealed$v1$<key id>$<base64 of nonce and ciphertext>`.
pub const SEALED_PREFIX: &str = "$sealed$v1$";

/// The text a store seals once to check, at start-up, that it was given the right key.
const CANARY: &str = "runner secret canary";

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

/// Why a sealed value could not be opened, or a key not read. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The value names a key the keyring does not hold.
    #[error(
        "secret key: the secrets are sealed with key {found}, but the key given is {given} (is this the secret key file the store was first started with?)"
    )]
    UnknownKey {
        /// The id the value names.
        found: KeyId,
        /// The ids the keyring holds, current first.
        given: String,
    },
    /// The value names a key the keyring holds, but does not open with it.
    #[error(
        "secret key: a secret sealed with key {key} does not open with it: the stored value is damaged"
    )]
    Damaged {
        /// The key it was sealed with.
        key: KeyId,
    },
    /// The value is not in the sealed format.
    #[error("secret key: a sealed secret is malformed")]
    Malformed,
    /// A sealed value was read where no keyring is in scope (a store without a key, a request).
    #[error("secret key: a sealed secret cannot be read without the secret key")]
    NoKey,
    /// A key file's text is not a key.
    #[error(
        "secret key: a key file must hold {KEY_BYTES} bytes in base64 on one line (`runner serve` makes one at first start)"
    )]
    BadKey,
}

/// A key's public name: the first 8 bytes of a SHA-256 over the key, in hex. Safe to print.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl KeyId {
    fn parse(text: &str) -> Option<KeyId> {
        if text.len() != 16 || !text.is_ascii() {
            return None;
        }
        let mut id = [0; 8];
        for (index, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
        }
        Some(KeyId(id))
    }
}

/// One 256-bit key. Its bytes never leave it except through [`SecretKey::to_file_text`].
#[derive(Clone)]
pub struct SecretKey {
    id: KeyId,
    cipher: XChaCha20Poly1305,
    bytes: [u8; KEY_BYTES],
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> SecretKey {
        Self::from_bytes(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    fn from_bytes(bytes: [u8; KEY_BYTES]) -> SecretKey {
        let digest = Sha256::new()
            .chain_update(b"runner secret key id\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0; 8];
        id.copy_from_slice(&digest[..8]);
        SecretKey {
            id: KeyId(id),
            cipher: XChaCha20Poly1305::new(&bytes.into()),
            bytes,
        }
    }

    /// Reads a key file's text: the key's 32 bytes in base64, surrounding white space ignored.
    pub fn from_file_text(text: &str) -> Result<SecretKey, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadKey)?;
        let bytes = <[u8; KEY_BYTES]>::try_from(bytes).map_err(|_| SealError::BadKey)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The text of a key file for this key (one line of base64).
    pub fn to_file_text(&self) -> String {
        format!("{}\n", STANDARD.encode(self.bytes))
    }

    /// The key's id, as sealed values name it.
    pub fn id(&self) -> KeyId {
        self.id
    }
}

/// The keys a store seals and opens with: the current one seals, every one opens. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Arc<Vec<SecretKey>>,
}

impl Keyring {
    /// A keyring that seals with `current`.
    pub fn new(current: SecretKey) -> Keyring {
        Keyring {
            keys: Arc::new(vec![current]),
        }
    }

    /// Also opens what `previous` sealed (during a rotation).
    pub fn with_previous(mut self, previous: SecretKey) -> Keyring {
        let keys = Arc::make_mut(&mut self.keys);
        if keys.iter().all(|key| key.id != previous.id) {
            keys.push(previous);
        }
        self
    }

    /// The id of the key that seals.
    pub fn current(&self) -> KeyId {
        self.keys[0].id
    }

    /// Seals `clear` under the current key.
    pub fn seal(&self, clear: &str) -> String {
        let key = &self.keys[0];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = key.id.0;
        // Encryption fails only for messages beyond what the cipher counts (about 256 GiB).
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: clear.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}${}", key.id, STANDARD.encode(bytes))
    }

    /// Opens a value [`Keyring::seal`] made, with whichever of the keys it names.
    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        let (id, body) = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|rest| rest.split_once('$'))
            .ok_or(SealError::Malformed)?;
        let id = KeyId::parse(id).ok_or(SealError::Malformed)?;
        let key =
            self.keys
                .iter()
                .find(|key| key.id == id)
                .ok_or_else(|| SealError::UnknownKey {
                    found: id,
                    given: self.ids(),
                })?;
        let bytes = STANDARD.decode(body).map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_BYTES {
            return Err(SealError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let clear = key
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &id.0,
                },
            )
            .map_err(|_| SealError::Damaged { key: id })?;
        String::from_utf8(clear).map_err(|_| SealError::Damaged { key: id })
    }

    /// The ids of the keys, current first, comma-separated.
    fn ids(&self) -> String {
        let ids: Vec<String> = self.keys.iter().map(|key| key.id.to_string()).collect();
        ids.join(", ")
    }

    /// A value a store keeps to check at start-up that it is given the key it sealed with.
    pub fn canary(&self) -> String {
        self.seal(CANARY)
    }

    /// Checks a store's canary: `Ok` when one of the keys opens it.
    pub fn check_canary(&self, canary: &str) -> Result<(), SealError> {
        match self.open(canary)? {
            clear if clear == CANARY => Ok(()),
            _ => Err(SealError::Damaged {
                key: self.current(),
            }),
        }
    }

    /// True when `canary` was sealed with the current key (no rotation left to finish).
    pub fn sealed_with_current(&self, canary: &str) -> bool {
        canary
            .strip_prefix(SEALED_PREFIX)
            .and_then(|rest| rest.split_once('$'))
            .and_then(|(id, _)| KeyId::parse(id))
            == Some(self.current())
    }
}

/// How a durable store turns its records into JSON and back: secrets sealed under its keyring,
/// or in clear without one (an embedder's choice). Cheap to clone. The stores add how their
/// errors read.
#[derive(Debug, Clone, Default)]
pub struct RecordCodec {
    keys: Option<Keyring>,
}

impl RecordCodec {
    /// A codec that seals under `keys` (in clear when `None`).
    pub fn new(keys: Option<Keyring>) -> Self {
        Self { keys }
    }

    /// The keyring, if secrets are sealed.
    pub fn keys(&self) -> Option<&Keyring> {
        self.keys.as_ref()
    }

    /// A record's JSON bytes.
    pub fn to_vec<T: serde::Serialize + ?Sized>(&self, record: &T) -> serde_json::Result<Vec<u8>> {
        sealing(self.keys(), || serde_json::to_vec(record))
    }

    /// A record's JSON text.
    pub fn to_string<T: serde::Serialize + ?Sized>(
        &self,
        record: &T,
    ) -> serde_json::Result<String> {
        sealing(self.keys(), || serde_json::to_string(record))
    }

    /// A record from JSON bytes.
    pub fn from_slice<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
    ) -> serde_json::Result<T> {
        sealing(self.keys(), || serde_json::from_slice(bytes))
    }

    /// A record from JSON text.
    pub fn from_str<T: serde::de::DeserializeOwned>(&self, text: &str) -> serde_json::Result<T> {
        sealing(self.keys(), || serde_json::from_str(text))
    }
}

/// How every [`SealError`] message begins, so that a codec can tell one inside a serde error (and
/// show it: it holds no secret) from a data error (whose text might quote a stored value).
pub const SEAL_ERROR_PREFIX: &str = "secret key: ";

/// True when `text` is in the sealed format (whatever key it names).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(SEALED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn a_sealed_value_names_its_key_and_hides_the_text() {
        let keys = Keyring::new(SecretKey::generate());
        let sealed = keys.seal("hunter2");
        assert!(sealed.starts_with(&format!("{SEALED_PREFIX}{}$", keys.current())));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, keys.seal("hunter2"), "a fresh nonce each time");
        assert_eq!(keys.open(&sealed).unwrap(), "hunter2");
    }

    #[test]
    fn another_key_does_not_open_and_says_which_key_it_needs() {
        let first = Keyring::new(SecretKey::generate());
        let second = Keyring::new(SecretKey::generate());
        let sealed = first.seal("hunter2");
        let error = second.open(&sealed).unwrap_err();
        assert_eq!(
            error,
            SealError::UnknownKey {
                found: first.current(),
                given: second.current().to_string()
            }
        );
        assert!(error.to_string().contains(&first.current().to_string()));
        assert!(second.check_canary(&first.canary()).is_err());
    }

    #[test]
    fn a_tampered_value_is_damaged_not_garbage() {
        let keys = Keyring::new(SecretKey::generate());
        let sealed = keys.seal("hunter2");
        let (head, body) = sealed.rsplit_once('$').unwrap();
        let mut bytes = STANDARD.decode(body).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        let tampered = format!("{head}${}", STANDARD.encode(bytes));
        assert_eq!(
            keys.open(&tampered),
            Err(SealError::Damaged {
                key: keys.current()
            })
        );
        assert_eq!(keys.open("$sealed$v1$zz$abc"), Err(SealError::Malformed));
    }

    #[test]
    fn a_rotating_keyring_opens_both_and_seals_with_the_new() {
        let old = SecretKey::generate();
        let new = SecretKey::generate();
        let sealed_old = Keyring::new(old.clone()).seal("a");
        let rotating = Keyring::new(new.clone()).with_previous(old);
        assert_eq!(rotating.open(&sealed_old).unwrap(), "a");
        let canary = rotating.canary();
        assert!(rotating.sealed_with_current(&canary));
        assert!(!rotating.sealed_with_current(&Keyring::new(SecretKey::generate()).canary()));
        assert!(Keyring::new(new).check_canary(&canary).is_ok());
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_are_refused() {
        let key = SecretKey::generate();
        let again = SecretKey::from_file_text(&key.to_file_text()).unwrap();
        assert_eq!(again.id(), key.id());
        assert_eq!(
            SecretKey::from_file_text("short").unwrap_err(),
            SealError::BadKey
        );
        assert!(SecretKey::from_file_text(&STANDARD.encode([0u8; 31])).is_err());
        assert!(!format!("{key:?}").contains(key.to_file_text().trim()));
    }

    #[test]
    fn secrets_in_a_record_are_sealed_and_opened() {
        let keys = Keyring::new(SecretKey::generate());
        let record = vec![Secret::new("pw-one"), Secret::new("pw-two")];
        let stored = sealing(Some(&keys), || serde_json::to_string(&record)).unwrap();
        assert!(!stored.contains("pw-one") && !stored.contains("pw-two"));
        let back: Vec<Secret> = sealing(Some(&keys), || serde_json::from_str(&stored)).unwrap();
        assert_eq!(back, record);
        // A store without a key keeps them in clear, and reads clear values under a key (a store
        // from before sealing).
        let clear = sealing(None, || serde_json::to_string(&record)).unwrap();
        assert!(clear.contains("pw-one"));
        let back: Vec<Secret> = sealing(Some(&keys), || serde_json::from_str(&clear)).unwrap();
        assert_eq!(back, record);
        // A sealed value read without its key is an error, never the sealed text as a secret.
        let error = sealing(None, || serde_json::from_str::<Vec<Secret>>(&stored)).unwrap_err();
        assert!(error.to_string().contains("sealed"), "{error}");
        let other = Keyring::new(SecretKey::generate());
        assert!(
            sealing(Some(&other), || serde_json::from_str::<Vec<Secret>>(
                &stored
            ))
            .is_err()
        );
    }
}
