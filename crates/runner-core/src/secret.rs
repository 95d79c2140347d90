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

use std::cell::RefCell;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::seal::{Keyring, is_sealed};

/// What a secret looks like in every response.
pub const MASK: &str = "********";

/// How secrets serialize on this thread just now.
#[derive(Clone, Default)]
enum Mode {
    /// As [`MASK`]: everywhere but in stores.
    #[default]
    Masked,
    /// In clear ([`reveal`]).
    Clear,
    /// Sealed with the keyring, and opened with it when read ([`sealing`]).
    Sealed(Keyring),
}

thread_local! {
    static MODE: RefCell<Mode> = const { RefCell::new(Mode::Masked) };
}

fn with_mode<T>(mode: Mode, work: impl FnOnce() -> T) -> T {
    struct Restore(Mode);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = std::mem::take(&mut self.0);
            MODE.with(|mode| *mode.borrow_mut() = previous);
        }
    }
    let _restore = Restore(MODE.with(|current| current.replace(mode)));
    work()
}

/// Runs `serialize` with secrets serialized in clear. Only stores call this, to persist secrets.
pub fn reveal<T>(serialize: impl FnOnce() -> T) -> T {
    with_mode(Mode::Clear, serialize)
}

/// Runs `work` (a serialization or a deserialization of stored records) with secrets sealed
/// under `keys`, and sealed secrets opened with them; with no keys, as [`reveal`] (a store kept
/// in clear). A durable store runs its codec in here (see [`crate::seal`]).
pub fn sealing<T>(keys: Option<&Keyring>, work: impl FnOnce() -> T) -> T {
    match keys {
        Some(keys) => with_mode(Mode::Sealed(keys.clone()), work),
        None => reveal(work),
    }
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
        MODE.with(|mode| match &*mode.borrow() {
            Mode::Masked => serializer.serialize_str(MASK),
            Mode::Clear => serializer.serialize_str(&self.0),
            Mode::Sealed(keys) => serializer.serialize_str(&keys.seal(&self.0)),
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !is_sealed(&text) {
            return Ok(Secret(text));
        }
        // A sealed value opens only in a store's codec with its key; anywhere else (a request
        // body, a store without the key) it is refused rather than taken as the secret itself.
        MODE.with(|mode| match &*mode.borrow() {
            Mode::Sealed(keys) => keys
                .open(&text)
                .map(Secret)
                .map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(crate::seal::SealError::NoKey)),
        })
    }
}

/// Merges an optional secret from an update with the stored one (see [`Secret::keep_or`]).
pub fn merge(incoming: Option<Secret>, stored: Option<&Secret>) -> Option<Secret> {
    incoming.and_then(|secret| secret.keep_or(stored))
}

/// Secrets shorter than this are not masked: replacing every `ab` in a log would garble it and
/// hide nothing worth hiding.
const MIN_MASKED_BYTES: usize = 4;

/// Replaces every secret value an execution holds with [`MASK`] in a text about to leave the
/// engine: executor events (and so the feed, webhooks and the notifier), the report's message,
/// the run log.
///
/// Built from the run ([`Masker::for_run`]): the job's and the execution's private keys, every
/// host's key, the repository's password and key. A private key is given base64-encoded; its
/// base64 text, its decoded text and each line of the decoded text (a PEM body line) are masked,
/// since a playbook that prints a key prints it decoded. Values shorter than 4 bytes are not
/// masked.
///
/// ```
/// use runner_core::secret::{Masker, Secret};
/// let masker = Masker::new([&Secret::new("hunter22"), &Secret::new("abc")]);
/// assert_eq!(masker.mask_text("pw=hunter22 abc"), "pw=******** abc");
/// ```
#[derive(Clone, Default)]
pub struct Masker {
    /// Longest first, so that a secret containing another is replaced whole.
    values: Vec<String>,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Masker({} values)", self.values.len())
    }
}

impl Masker {
    /// A masker for these secrets (each also as decoded base64, see the type's docs).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        use base64::Engine as _;
        let mut values = Vec::new();
        for secret in secrets {
            if secret.is_mask() {
                continue;
            }
            let value = secret.expose();
            values.push(value.to_owned());
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            if let Some(decoded) = decoded {
                // The armour lines (`-----BEGIN ... KEY-----`) are no secret.
                let lines = decoded
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.starts_with("-----"));
                values.extend(lines.map(str::to_owned));
                values.push(decoded.trim().to_owned());
            }
        }
        values.retain(|value| value.len() >= MIN_MASKED_BYTES);
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Self { values }
    }

    /// A masker for every secret of a run: the job's and the execution's keys, each host's key
    /// and password, the repository's password and key.
    pub fn for_run(run: &crate::executor::Run) -> Self {
        let spec = &run.job.spec;
        let credentials = spec
            .repository
            .as_ref()
            .and_then(|repository| repository.credentials.as_ref());
        let hosts = spec
            .hosts
            .iter()
            .flatten()
            .chain(&run.execution.hosts)
            .flat_map(|host| [host.ssh_private_key.as_ref(), host.ssh_password.as_ref()])
            .flatten();
        let secrets = [
            spec.ssh_private_key.as_ref(),
            run.execution.ssh_private_key.as_ref(),
            credentials.and_then(|c| c.password.as_ref()),
            credentials.and_then(|c| c.ssh_private_key.as_ref()),
        ];
        Self::new(secrets.into_iter().flatten().chain(hosts))
    }

    /// `text` with every secret replaced by [`MASK`]. Usable on any text that leaves the engine,
    /// log chunks included (a chunk boundary inside a secret is the caller's to handle, e.g. by
    /// holding back the last bytes of each chunk).
    pub fn mask_text(&self, text: &str) -> String {
        let mut text = text.to_owned();
        self.mask_in_place(&mut text);
        text
    }

    /// Masks `text` in place; no copy when no secret is in it.
    pub fn mask_in_place(&self, text: &mut String) {
        for value in &self.values {
            if text.contains(value.as_str()) {
                *text = text.replace(value.as_str(), MASK);
            }
        }
    }

    /// [`Masker::mask_text`], for the engine's own use (the report's message, the run log).
    pub(crate) fn mask(&self, text: &str) -> String {
        self.mask_text(text)
    }

    /// Masks secrets in raw output (a run log chunk, which need not be UTF-8). Chunks are cut at
    /// line ends, and every line of a multi-line key is a value of its own, so a secret is not
    /// split by a chunk boundary unless one line is longer than a chunk.
    pub fn mask_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        let mut bytes = bytes;
        for value in &self.values {
            let needle = value.as_bytes();
            if !bytes.windows(needle.len()).any(|window| window == needle) {
                continue;
            }
            let mut masked = Vec::with_capacity(bytes.len());
            let mut rest = bytes.as_slice();
            while let Some(at) = rest
                .windows(needle.len())
                .position(|window| window == needle)
            {
                masked.extend_from_slice(&rest[..at]);
                masked.extend_from_slice(MASK.as_bytes());
                rest = &rest[at + needle.len()..];
            }
            masked.extend_from_slice(rest);
            bytes = masked;
        }
        bytes
    }

    /// The longest secret in bytes (0 without secrets): how much of a log chunk to hold back so
    /// that a secret split across two chunks is still masked.
    pub fn longest(&self) -> usize {
        self.values.first().map_or(0, String::len)
    }

    /// Masks every text of an executor event.
    pub fn mask_event(&self, event: &mut crate::executor::ExecutorEvent) {
        if self.values.is_empty() {
            return;
        }
        event.edit_texts(|text| self.mask_in_place(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masker_hides_every_form_of_a_key() {
        use base64::Engine as _;
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACD\n-----END OPENSSH PRIVATE KEY-----\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(pem);
        let masker = Masker::new([&Secret::new(encoded.clone()), &Secret::new("pw")]);
        let text = format!("{encoded} | {pem} | line QyNTUxOQAAACD | pw");
        let masked = masker.mask_text(&text);
        assert_eq!(
            masked,
            format!("{MASK} | {MASK}\n | line {MASK} | pw"),
            "short values stay"
        );
        // The armour alone is no secret.
        let armour = "-----BEGIN OPENSSH PRIVATE KEY-----";
        assert_eq!(masker.mask_text(armour), armour);
        assert_eq!(masker.longest(), pem.trim().len().max(encoded.len()));
    }

    #[test]
    fn masker_masks_raw_output_that_is_not_utf8() {
        let masker = Masker::new([&Secret::new("hunter22")]);
        let raw = b"a\xffhunter22\xfe hunter22\n".to_vec();
        assert_eq!(
            masker.mask_bytes(raw),
            [
                b"a\xff".as_slice(),
                MASK.as_bytes(),
                b"\xfe ",
                MASK.as_bytes(),
                b"\n"
            ]
            .concat()
        );
        assert_eq!(masker.mask_bytes(b"nothing".to_vec()), b"nothing");
    }

    #[test]
    fn masker_masks_event_texts() {
        use crate::executor::{EventKind, ExecutorEvent, TaskResult};
        let masker = Masker::new([&Secret::new("s3cr3t-value")]);
        let mut event = ExecutorEvent {
            message: Some("failed: s3cr3t-value".into()),
            result: Some(Box::new(TaskResult {
                stdout: Some("out s3cr3t-value".into()),
                stderr: Some("err s3cr3t-value".into()),
                msg: Some("s3cr3t-value".into()),
                item: Some("s3cr3t-value".into()),
                ..TaskResult::default()
            })),
            ..ExecutorEvent::new(EventKind::HostFailed)
        };
        masker.mask_event(&mut event);
        let json = serde_json::to_string(&event).unwrap();
        assert!(!json.contains("s3cr3t"), "{json}");
        assert_eq!(json.matches(MASK).count(), 5, "{json}");
    }

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
