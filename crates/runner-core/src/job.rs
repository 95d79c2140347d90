//! Jobs: what to run (an inline playbook or a git repository), where (hosts), and with what.
//!
//! Field names are camelCase, as the Job Service documents show them. A [`JobSpec`] is what a
//! client sends on create and update; a [`Job`] is a stored job: the spec plus its identity and
//! times.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::ids::{AccountAlias, JobId};
use crate::overlap::Overlap;
use crate::secret::{self, Secret};
use crate::time::Timestamp;
use crate::validation::ValidationErrors;

/// `executionTtl` when a job gives none, in minutes.
pub const DEFAULT_EXECUTION_TTL_MINUTES: u32 = 180;
/// The longest `executionTtl` a job may ask for: a week, in minutes.
pub const MAX_EXECUTION_TTL_MINUTES: u32 = 10_080;
/// The error of a mask sent where no secret is stored to keep.
pub const NOTHING_TO_KEEP: &str =
    "is the mask of a stored secret, and none is stored here: send the secret itself";

/// The keys of a job response that a client may send back on update; they are ignored.
pub const JOB_READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "accountAlias",
    "status",
    "createdTime",
    "lastUpdatedTime",
    "links",
];

/// A job definition as a client sends it on create and update: exactly one of `playbook` and
/// `repository`, and the `hosts` (possibly none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = JobInput))]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Minutes an execution may run before it is stopped gracefully (1 to 10080, a whole number,
    /// which JSON may also write as `60.0`); absent or `null` means 180.
    #[serde(default, deserialize_with = "whole_number")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<f64>, multiple_of = 1, minimum = 1, maximum = 10080))]
    pub execution_ttl: Option<u32>,
    /// Webhooks that receive the execution's live feed.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = Vec<CallbackInput>))]
    pub callbacks: Vec<Callback>,
    /// An inline playbook, base64-encoded (standard alphabet, padded). Exactly one of this and
    /// `repository`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "utoipa",
        schema(
            pattern = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$"
        )
    )]
    pub playbook: Option<String>,
    /// Run only the plays and tasks with these tags.
    #[serde(default)]
    pub playbook_tags: Vec<String>,
    /// The git repository that holds the playbook. Exactly one of this and `playbook`.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// The inventory. Required, but may be empty. Host ids are unique in the list.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = Vec<Host>, required = true))]
    pub hosts: Option<Vec<Host>>,
    /// Extra variables for the playbook, as `--extra-vars` would give them.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = Object))]
    pub properties: Map<String, Value>,
    /// The default SSH private key (base64) for every host without one of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_private_key: Option<Secret>,
    /// Instead of `sshPrivateKey`: the name of a key pair of the account whose private key is
    /// the default for every host without one of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key_pair: Option<String>,
    /// Run on every host of the account's inventory (`/inventory/{alias}/hosts`), in their
    /// groups, and on the account's inventory sources (set by the operator); the job's own hosts
    /// add to them and their `hostVars` win. A run that ends up with no host at all fails,
    /// saying so, rather than succeed on nothing.
    #[serde(default)]
    pub use_dynamic_inventory: bool,
    /// What a start does while an execution of the job has not ended: `allow` runs both at once
    /// (the default), `queue` waits its turn (one run at a time, in start order, across nodes),
    /// `skip` is refused (409 naming the execution that has not ended; a schedule's fire is
    /// skipped and recorded on the schedule).
    #[serde(default)]
    pub overlap: Overlap,
}

/// One inventory host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Host {
    /// The host name the play runs against: up to 255 characters, no spaces, commas or control
    /// characters, not starting with `-`.
    #[cfg_attr(
        feature = "utoipa",
        schema(
            max_length = 255,
            pattern = "^[^\\s,\\x00-\\x1f\\x7f-\\x9f-][^\\s,\\x00-\\x1f\\x7f-\\x9f]*$"
        )
    )]
    pub id: String,
    /// Variables for this host (any JSON values).
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = Object))]
    pub host_vars: Map<String, Value>,
    /// This host's SSH private key (base64), over the job's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_private_key: Option<Secret>,
    /// Instead of `sshPrivateKey`: the name of a key pair of the account for this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key_pair: Option<String>,
    /// This host's SSH login password (write-only), for a host that takes passwords (as a new
    /// machine does before a key is distributed to it). A key, when there is one, is tried first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = Password))]
    pub ssh_password: Option<Secret>,
    /// The inventory groups the host is in, besides `all`: ansible group names (a letter or `_`,
    /// then letters, digits and `_`), each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Host {
    /// A host with no variables and no key of its own.
    pub fn named(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            host_vars: Map::new(),
            ssh_private_key: None,
            ssh_key_pair: None,
            ssh_password: None,
            groups: Vec::new(),
        }
    }

    /// Checks the host; `prefix` is its path with its dot (`hosts[0].`, or empty for a host of
    /// the account's inventory).
    pub fn validate(&self, prefix: &str, errors: &mut ValidationErrors) {
        errors.check(
            is_host_name(&self.id),
            format!("{prefix}id"),
            "must be a non-empty host name without spaces, commas or control characters",
        );
        check_key(
            self.ssh_private_key.as_ref(),
            &format!("{prefix}sshPrivateKey"),
            errors,
        );
        check_one_key(
            self.ssh_private_key.as_ref(),
            self.ssh_key_pair.as_deref(),
            prefix,
            errors,
        );
        check_password(
            self.ssh_password.as_ref(),
            &format!("{prefix}sshPassword"),
            errors,
        );
        for (index, group) in self.groups.iter().enumerate() {
            let field = format!("{prefix}groups[{index}]");
            errors.check(
                is_group_name(group),
                field.clone(),
                "must be an ansible group name: a letter or '_', then letters, digits and '_'",
            );
            if self.groups[..index].contains(group) {
                errors.add(field, "is listed twice");
            }
        }
    }
}

/// An ansible group name that needs no quoting anywhere: a letter or `_`, then letters, digits
/// and `_`.
pub fn is_group_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where a job's playbook lives in git.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    /// The clone URL.
    pub url: String,
    /// A branch or tag; the remote's default branch when absent.
    #[serde(default)]
    pub branch: Option<String>,
    /// The playbook file, relative to the repository root.
    pub default_playbook: String,
    /// For private repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

/// Credentials of a private repository: a username and password, an SSH private key, or the name
/// of a key pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// With `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// With `username`; write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Instead of username and password (base64); write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_private_key: Option<Secret>,
    /// Instead of username and password or `sshPrivateKey`: the name of a key pair of the
    /// account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key_pair: Option<String>,
}

/// How much of an execution's feed a callback receives.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum CallbackLevel {
    /// Every event.
    #[default]
    Debug,
    /// Errors, failures and unreachable hosts.
    Error,
    /// Status changes and the final summary.
    Result,
}

/// A webhook for an execution's live feed. Requests may also give a bare URL string (see
/// `CallbackInput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Callback {
    /// Where events are POSTed: an `http://` or `https://` URL. One that is, or resolves to, a
    /// loopback, private or link-local address is refused unless the server allows private
    /// callbacks.
    pub url: String,
    /// Which events: those at or above this level.
    pub level: CallbackLevel,
}

/// A callback as a request may give it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(
    untagged,
    expecting = "a URL string or an object with \"url\" and \"level\""
)]
pub enum CallbackInput {
    /// A bare URL: level DEBUG.
    Url(String),
    /// A URL and a level (DEBUG when absent).
    Object {
        /// Where events are POSTed.
        url: String,
        /// Which events.
        #[serde(default)]
        level: CallbackLevel,
    },
}

impl<'de> Deserialize<'de> for Callback {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match CallbackInput::deserialize(deserializer)? {
            CallbackInput::Url(url) => Callback {
                url,
                level: CallbackLevel::Debug,
            },
            CallbackInput::Object { url, level } => Callback { url, level },
        })
    }
}

/// Job `status`: every job that exists is `ACTIVE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum JobStatus {
    /// The job exists and can be started.
    #[default]
    Active,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Its ID.
    pub id: JobId,
    /// The account it belongs to.
    pub account_alias: AccountAlias,
    /// What the client defined.
    #[serde(flatten)]
    #[cfg_attr(feature = "utoipa", schema(inline))]
    pub spec: JobSpec,
    /// Always `ACTIVE`.
    pub status: JobStatus,
    /// When it was created, in milliseconds since the Unix epoch.
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub created_time: Timestamp,
    /// When it was last updated, in milliseconds since the Unix epoch.
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub last_updated_time: Timestamp,
}

/// A whole number that JSON may write with a fraction of zero (`60.0` is `60`, as JSON Schema
/// counts it); anything else is refused as serde would refuse it.
fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error as _;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_u64() {
        return u32::try_from(whole)
            .map(Some)
            .map_err(|_| D::Error::custom("must be a whole number up to 4294967295"));
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&value) => {
            Ok(Some(value as u32))
        }
        _ => Err(D::Error::custom("must be a whole number")),
    }
}

impl Job {
    /// A new job from a validated spec.
    pub fn new(account_alias: AccountAlias, spec: JobSpec, now: Timestamp) -> Self {
        Self {
            id: JobId::new(),
            account_alias,
            spec,
            status: JobStatus::Active,
            created_time: now,
            last_updated_time: now,
        }
    }

    /// Replaces the spec, keeping every secret the client sent back masked.
    pub fn update(&mut self, spec: JobSpec, now: Timestamp) {
        let old = std::mem::replace(&mut self.spec, spec);
        self.spec.keep_masked_secrets(&old);
        self.last_updated_time = now;
    }

    /// The hosts (empty when none were given).
    pub fn hosts(&self) -> &[Host] {
        self.spec.hosts.as_deref().unwrap_or_default()
    }

    /// The execution TTL in minutes, with the default applied.
    pub fn execution_ttl_minutes(&self) -> u32 {
        self.spec
            .execution_ttl
            .unwrap_or(DEFAULT_EXECUTION_TTL_MINUTES)
    }
}

impl JobSpec {
    /// Checks every rule of a job definition and reports every broken one at once.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        match (&self.playbook, &self.repository) {
            (Some(_), Some(_)) => {
                errors.add("repository", "give either repository or playbook, not both")
            }
            (None, None) => errors.add("playbook", "give either repository or playbook"),
            _ => {}
        }
        if let Some(playbook) = &self.playbook {
            // Whether the bytes are a playbook is ansible's to say, when it runs.
            match base64::engine::general_purpose::STANDARD.decode(playbook.trim()) {
                Ok(bytes) if bytes.is_empty() => errors.add("playbook", "is empty"),
                Ok(_) => {}
                Err(_) => errors.add("playbook", "must be base64"),
            }
        }
        if let Some(ttl) = self.execution_ttl {
            errors.check(
                (1..=MAX_EXECUTION_TTL_MINUTES).contains(&ttl),
                "executionTtl",
                format!("must be between 1 and {MAX_EXECUTION_TTL_MINUTES} minutes"),
            );
        }
        if let Some(repository) = &self.repository {
            repository.validate(&mut errors);
        }
        match &self.hosts {
            None => errors.add("hosts", "is required (it may be an empty list)"),
            Some(hosts) => validate_hosts(hosts, "hosts", &mut errors),
        }
        check_key(self.ssh_private_key.as_ref(), "sshPrivateKey", &mut errors);
        check_one_key(
            self.ssh_private_key.as_ref(),
            self.ssh_key_pair.as_deref(),
            "",
            &mut errors,
        );
        for (index, tag) in self.playbook_tags.iter().enumerate() {
            errors.check(
                is_plain_word(tag),
                format!("playbookTags[{index}]"),
                "must be a non-empty tag without spaces or commas",
            );
        }
        for (index, callback) in self.callbacks.iter().enumerate() {
            let url = callback.url.to_ascii_lowercase();
            errors.check(
                url.starts_with("http://") || url.starts_with("https://"),
                format!("callbacks[{index}].url"),
                "must be an http:// or https:// URL",
            );
        }
        errors.into_result()
    }

    /// The fields that send the mask back where `stored` (the job's definition before an update;
    /// none on create) holds no secret to keep: an error naming each, since the mask only ever
    /// stands for a stored value.
    pub fn unkept_masks(&self, stored: Option<&JobSpec>) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        let mut check = |field: String, incoming: Option<&Secret>, kept: Option<&Secret>| {
            if incoming.is_some_and(Secret::is_mask) && kept.is_none() {
                errors.add(field, NOTHING_TO_KEEP);
            }
        };
        check(
            "sshPrivateKey".into(),
            self.ssh_private_key.as_ref(),
            stored.and_then(|old| old.ssh_private_key.as_ref()),
        );
        let stored_hosts = stored
            .and_then(|old| old.hosts.as_deref())
            .unwrap_or_default();
        for (index, host) in self.hosts.as_deref().unwrap_or_default().iter().enumerate() {
            let old = stored_hosts.iter().find(|old| old.id == host.id);
            check(
                format!("hosts[{index}].sshPrivateKey"),
                host.ssh_private_key.as_ref(),
                old.and_then(|old| old.ssh_private_key.as_ref()),
            );
            check(
                format!("hosts[{index}].sshPassword"),
                host.ssh_password.as_ref(),
                old.and_then(|old| old.ssh_password.as_ref()),
            );
        }
        let credentials = |spec: &JobSpec| {
            spec.repository
                .as_ref()
                .and_then(|repository| repository.credentials.clone())
        };
        let new = credentials(self);
        let old = stored.and_then(credentials);
        check(
            "repository.credentials.password".into(),
            new.as_ref().and_then(|c| c.password.as_ref()),
            old.as_ref().and_then(|c| c.password.as_ref()),
        );
        check(
            "repository.credentials.sshPrivateKey".into(),
            new.as_ref().and_then(|c| c.ssh_private_key.as_ref()),
            old.as_ref().and_then(|c| c.ssh_private_key.as_ref()),
        );
        errors
    }

    fn keep_masked_secrets(&mut self, old: &JobSpec) {
        self.ssh_private_key =
            secret::merge(self.ssh_private_key.take(), old.ssh_private_key.as_ref());
        if let Some(hosts) = &mut self.hosts {
            keep_masked_host_keys(hosts, old.hosts.as_deref().unwrap_or_default());
        }
        let old_credentials = old.repository.as_ref().and_then(|r| r.credentials.as_ref());
        if let Some(credentials) = self
            .repository
            .as_mut()
            .and_then(|r| r.credentials.as_mut())
        {
            credentials.password = secret::merge(
                credentials.password.take(),
                old_credentials.and_then(|c| c.password.as_ref()),
            );
            credentials.ssh_private_key = secret::merge(
                credentials.ssh_private_key.take(),
                old_credentials.and_then(|c| c.ssh_private_key.as_ref()),
            );
        }
    }
}

/// A masked key or password sent back for a host keeps that host's stored one.
pub(crate) fn keep_masked_host_keys(hosts: &mut [Host], stored: &[Host]) {
    for host in hosts {
        let old = stored.iter().find(|old| old.id == host.id);
        let stored_key = old.and_then(|old| old.ssh_private_key.as_ref());
        host.ssh_private_key = secret::merge(host.ssh_private_key.take(), stored_key);
        let stored_password = old.and_then(|old| old.ssh_password.as_ref());
        host.ssh_password = secret::merge(host.ssh_password.take(), stored_password);
    }
}

/// Checks a host list (of a job, or of a start or restart request).
pub fn validate_hosts(hosts: &[Host], path: &str, errors: &mut ValidationErrors) {
    for (index, host) in hosts.iter().enumerate() {
        host.validate(&format!("{path}[{index}]."), errors);
        if hosts[..index].iter().any(|other| other.id == host.id) {
            errors.add(format!("{path}[{index}].id"), "is listed twice");
        }
    }
}

/// A login password is not empty and holds no control character: ansible reads it from a file
/// whose trailing newline it strips, and ssh reads one line.
pub(crate) fn check_password(
    password: Option<&Secret>,
    field: &str,
    errors: &mut ValidationErrors,
) {
    let Some(password) = password else { return };
    let text = password.expose();
    errors.check(
        password.is_mask() || (!text.is_empty() && !text.chars().any(char::is_control)),
        field,
        "must be a non-empty password without control characters",
    );
}

/// A place that takes a key takes `sshPrivateKey` or `sshKeyPair`, not both; a key-pair name
/// must be well-formed (whether it exists is the engine's check:
/// [`JobSpec::key_pair_fields`]). `prefix` is the place's path with its dot (`hosts[0].`).
pub(crate) fn check_one_key(
    key: Option<&Secret>,
    pair: Option<&str>,
    prefix: &str,
    errors: &mut ValidationErrors,
) {
    let Some(pair) = pair else { return };
    if key.is_some() {
        errors.add(
            format!("{prefix}sshKeyPair"),
            "give sshPrivateKey or sshKeyPair, not both",
        );
    }
    errors.check(
        crate::schedule::is_service_account_alias(pair),
        format!("{prefix}sshKeyPair"),
        "must be the name of a key pair (1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.')",
    );
}

impl JobSpec {
    /// Every key-pair name the job gives, with the field that gives it (`sshKeyPair`,
    /// `hosts[1].sshKeyPair`, `repository.credentials.sshKeyPair`): what must exist on create
    /// and update, and what a run resolves.
    pub fn key_pair_fields(&self) -> Vec<(String, &str)> {
        let mut fields = Vec::new();
        if let Some(name) = &self.ssh_key_pair {
            fields.push(("sshKeyPair".to_owned(), name.as_str()));
        }
        for (index, host) in self.hosts.as_deref().unwrap_or_default().iter().enumerate() {
            if let Some(name) = &host.ssh_key_pair {
                fields.push((format!("hosts[{index}].sshKeyPair"), name.as_str()));
            }
        }
        let credentials = self
            .repository
            .as_ref()
            .and_then(|r| r.credentials.as_ref());
        if let Some(name) = credentials.and_then(|c| c.ssh_key_pair.as_ref()) {
            fields.push((
                "repository.credentials.sshKeyPair".to_owned(),
                name.as_str(),
            ));
        }
        fields
    }
}

impl Repository {
    fn validate(&self, errors: &mut ValidationErrors) {
        let url = self.url.trim();
        errors.check(!url.is_empty(), "repository.url", "is required");
        errors.check(
            !url.starts_with('-'),
            "repository.url",
            "must not start with '-'",
        );
        errors.check(
            !url_holds_credentials(url),
            "repository.url",
            "must not hold credentials (user:password@): give them in repository.credentials",
        );
        if let Some(branch) = &self.branch {
            errors.check(
                is_plain_word(branch) && !branch.starts_with('-'),
                "repository.branch",
                "must be a branch or tag name without spaces, and not start with '-'",
            );
        }
        let playbook = self.default_playbook.as_str();
        let escapes = playbook.starts_with('/')
            || playbook.split(['/', '\\']).any(|part| part == "..")
            || playbook.contains('\0');
        errors.check(
            !playbook.trim().is_empty(),
            "repository.defaultPlaybook",
            "is required",
        );
        errors.check(
            !escapes,
            "repository.defaultPlaybook",
            "must be a path inside the repository (no absolute path, no '..')",
        );
        if let Some(credentials) = &self.credentials {
            let with_password = credentials.username.is_some() || credentials.password.is_some();
            let complete_password =
                credentials.username.is_some() && credentials.password.is_some();
            let with_key =
                credentials.ssh_private_key.is_some() || credentials.ssh_key_pair.is_some();
            if with_password && with_key {
                errors.add(
                    "repository.credentials",
                    "give username and password, or sshPrivateKey, not both",
                );
            } else if with_password && !complete_password {
                errors.add(
                    "repository.credentials",
                    "username and password go together",
                );
            } else if !with_password && !with_key {
                errors.add(
                    "repository.credentials",
                    "give username and password, or sshPrivateKey, or sshKeyPair",
                );
            }
            check_one_key(
                credentials.ssh_private_key.as_ref(),
                credentials.ssh_key_pair.as_deref(),
                "repository.credentials.",
                errors,
            );
            check_key(
                credentials.ssh_private_key.as_ref(),
                "repository.credentials.sshPrivateKey",
                errors,
            );
        }
    }
}

/// Whether a URL carries credentials in its authority: a password (`user:password@`), or any
/// user on http(s), where the user is a token. (An `ssh://git@` user is a login, not a secret.)
fn url_holds_credentials(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return false;
    };
    userinfo.contains(':') || scheme.to_ascii_lowercase().starts_with("http")
}

pub(crate) fn check_key(key: Option<&Secret>, field: &str, errors: &mut ValidationErrors) {
    let Some(key) = key else { return };
    if key.is_mask() {
        return;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.expose().trim());
    errors.check(
        matches!(decoded, Ok(bytes) if !bytes.is_empty()),
        field,
        "must be a base64-encoded private key",
    );
}

pub(crate) fn is_plain_word(value: &str) -> bool {
    !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
}

/// A host name as a job or the inventory may give one: up to 255 characters, no spaces, commas
/// or control characters, not starting with `-`.
pub fn is_host_name(value: &str) -> bool {
    is_plain_word(value) && value.chars().count() <= 255 && !value.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{MASK, reveal};
    use crate::validation::parse_json;

    fn inline_spec() -> JobSpec {
        JobSpec {
            playbook: Some(base64::engine::general_purpose::STANDARD.encode("- hosts: all\n")),
            hosts: Some(vec![Host::named("localhost")]),
            ..JobSpec::default()
        }
    }

    #[test]
    fn spec_example_parses() {
        let body = br#"{
            "description": "Sample Job",
            "repository": {
                "credentials": {"username": "git username", "password": "git password"},
                "defaultPlaybook": "example.yml", "branch": "feature",
                "url": "https://github.com/yourrepository.git"
            },
            "callbacks": [{"url": "https://hooks.example.com/a", "level": "DEBUG"}, "https://hooks.example.com/b"],
            "hosts": [{"hostVars": {"ansible_connection": "ssh", "datacenter": "VA1"},
                       "sshPrivateKey": "TUlJRW93SUJBQUtDQVFFQQ==", "id": "localhost"}]
        }"#;
        let spec: JobSpec = parse_json(body, &[]).unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.callbacks[1].level, CallbackLevel::Debug);
        let job = Job::new("ACME".parse().unwrap(), spec, 5);
        let shown = serde_json::to_value(&job).unwrap();
        assert_eq!(shown["repository"]["credentials"]["password"], MASK);
        assert_eq!(shown["hosts"][0]["sshPrivateKey"], MASK);
        assert_eq!(shown["executionTtl"], Value::Null);
        assert_eq!(shown["status"], "ACTIVE");
        assert_eq!(shown["createdTime"], 5);
        let stored = reveal(|| serde_json::to_string(&job)).unwrap();
        let back: Job = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let spec = JobSpec {
            playbook: Some("not base64!".into()),
            repository: Some(Repository {
                url: String::new(),
                branch: None,
                default_playbook: "../etc/passwd".into(),
                credentials: Some(Credentials {
                    username: Some("u".into()),
                    password: None,
                    ssh_private_key: None,
                    ssh_key_pair: None,
                }),
            }),
            execution_ttl: Some(0),
            hosts: Some(vec![Host::named("a"), Host::named("a"), Host::named("")]),
            ..JobSpec::default()
        };
        let fields: Vec<String> = spec
            .validate()
            .unwrap_err()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect();
        for expected in [
            "repository",
            "playbook",
            "executionTtl",
            "repository.url",
            "repository.defaultPlaybook",
            "repository.credentials",
            "hosts[1].id",
            "hosts[2].id",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn neither_source_nor_hosts_is_refused() {
        let errors = JobSpec::default().validate().unwrap_err();
        let fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["playbook", "hosts"]);
    }

    #[test]
    fn unknown_fields_are_refused_read_only_ones_ignored() {
        let body =
            br#"{"hosts": [], "playbook": "LQ==", "executionTTL": 5, "id": "x", "createdTime": 1}"#;
        let errors = parse_json::<JobSpec>(body, JOB_READ_ONLY_FIELDS).unwrap_err();
        assert_eq!(errors.errors.len(), 1);
        assert_eq!(errors.errors[0].field, "executionTTL");
    }

    #[test]
    fn truncated_json_is_an_error_not_a_panic() {
        let errors = parse_json::<JobSpec>(br#"{"hosts": [{"id": "a"#, &[]).unwrap_err();
        assert!(errors.errors[0].message.contains("EOF"), "{errors:?}");
    }

    #[test]
    fn update_keeps_masked_secrets() {
        let mut spec = inline_spec();
        spec.ssh_private_key = Some(Secret::new("a2V5"));
        spec.hosts.as_mut().unwrap()[0].ssh_private_key = Some(Secret::new("aG9zdA=="));
        let mut job = Job::new("ACME".parse().unwrap(), spec, 1);
        let mut sent_back: JobSpec =
            serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
        sent_back.description = Some("changed".into());
        job.update(sent_back, 2);
        assert_eq!(job.spec.ssh_private_key.as_ref().unwrap().expose(), "a2V5");
        assert_eq!(
            job.hosts()[0].ssh_private_key.as_ref().unwrap().expose(),
            "aG9zdA=="
        );
        assert_eq!(job.last_updated_time, 2);
    }

    #[test]
    fn ttl_default_and_bounds() {
        let job = Job::new("A".parse().unwrap(), inline_spec(), 0);
        assert_eq!(job.execution_ttl_minutes(), 180);
        let mut spec = inline_spec();
        spec.execution_ttl = Some(MAX_EXECUTION_TTL_MINUTES + 1);
        assert!(spec.validate().is_err());
        spec.execution_ttl = Some(MAX_EXECUTION_TTL_MINUTES);
        assert!(spec.validate().is_ok());
    }
}
