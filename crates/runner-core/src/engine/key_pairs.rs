//! The key-pair operations (create, read, list, delete), the check that every key pair a job
//! names exists, and the resolution of those names into private keys when a job runs.

use super::error::EngineError;
use super::handle::Engine;
use crate::execution::Execution;
use crate::executor::Executor;
use crate::ids::AccountAlias;
use crate::job::{Host, Job, JobSpec};
use crate::key_pair::{KeyPair, KeyPairSpec};
use crate::notifier::Notifier;
use crate::page::{MAX_PAGE_SIZE, Page, PageRequest};
use crate::store::{KeyPairStore, Store, StoreError};
use crate::time::Clock;
use crate::validation::ValidationErrors;

impl<S: Store, E: Executor, N: Notifier, C: Clock> Engine<S, E, N, C> {
    /// Generates (or imports) a key pair of `alias`; 400 for a bad request, 409 if the name is
    /// taken. Generation runs on the blocking pool: an RSA key takes a while.
    pub async fn create_key_pair(
        &self,
        alias: &AccountAlias,
        spec: KeyPairSpec,
    ) -> Result<KeyPair, EngineError> {
        let now = self.inner.clock.now();
        let owner = alias.clone();
        let pair = tokio::task::spawn_blocking(move || spec.build(owner, now))
            .await
            .map_err(|error| EngineError::Store(StoreError::unavailable(error)))??;
        self.inner.store.insert_key_pair(&pair).await?;
        Ok(pair)
    }

    /// One key pair of `alias`.
    pub async fn get_key_pair(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<KeyPair, EngineError> {
        self.inner
            .store
            .get_key_pair(alias, name)
            .await?
            .ok_or(EngineError::NotFound)
    }

    /// A page of the account's key pairs, by name.
    pub async fn list_key_pairs(
        &self,
        alias: &AccountAlias,
        page: PageRequest,
    ) -> Result<Page<KeyPair>, EngineError> {
        Ok(self.inner.store.list_key_pairs(alias, page).await?)
    }

    /// Deletes a key pair; 409 naming the jobs that still name it.
    ///
    /// The check reads the account's jobs and then deletes, not atomically: a job created in
    /// between that names the pair fails its runs with "key pair ... does not exist" (see
    /// `resolve_key_pairs`) rather than run with anything else.
    pub async fn delete_key_pair(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<(), EngineError> {
        self.get_key_pair(alias, name).await?;
        let mut users = Vec::new();
        let mut page = PageRequest {
            page: 0,
            size: MAX_PAGE_SIZE,
        };
        loop {
            let jobs = self.inner.store.list_jobs(alias, page).await?;
            let done = jobs.results.len() < page.size as usize;
            users.extend(
                jobs.results
                    .iter()
                    .filter(|job| job.spec.key_pair_fields().iter().any(|(_, n)| *n == name))
                    .map(|job| job.id.to_string()),
            );
            if done {
                break;
            }
            page.page += 1;
        }
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "key pair {name} is used by jobs {}",
                users.join(", ")
            )));
        }
        Ok(self.inner.store.delete_key_pair(alias, name).await?)
    }

    /// 400 naming each field of a start or restart request that names a key pair the account
    /// does not have.
    pub(crate) async fn check_request_key_pairs(
        &self,
        alias: &AccountAlias,
        request: &super::api::StartRequest,
    ) -> Result<(), EngineError> {
        let hosts = request.hosts.as_deref().map(|hosts| (hosts, "hosts"));
        let top = request
            .ssh_key_pair
            .as_deref()
            .map(|name| ("sshKeyPair".to_owned(), name));
        self.check_key_pairs_of(alias, top.into_iter().collect(), hosts)
            .await
    }

    /// 400 naming each field of `spec` (or of `hosts`, under `hosts_path`) that names a key pair
    /// the account does not have.
    pub(crate) async fn check_key_pairs(
        &self,
        alias: &AccountAlias,
        spec: Option<&JobSpec>,
        hosts: Option<(&[Host], &str)>,
    ) -> Result<(), EngineError> {
        let fields = spec.map(JobSpec::key_pair_fields).unwrap_or_default();
        self.check_key_pairs_of(alias, fields, hosts).await
    }

    /// 409 naming each of `fields` (path, key-pair name), and each `sshKeyPair` of `hosts`
    /// (under their path), that names a key pair the account does not have.
    pub(crate) async fn check_key_pairs_of(
        &self,
        alias: &AccountAlias,
        mut fields: Vec<(String, &str)>,
        hosts: Option<(&[Host], &str)>,
    ) -> Result<(), EngineError> {
        if let Some((hosts, path)) = hosts {
            for (index, host) in hosts.iter().enumerate() {
                if let Some(name) = &host.ssh_key_pair {
                    fields.push((format!("{path}[{index}].sshKeyPair"), name.as_str()));
                }
            }
        }
        let mut errors = ValidationErrors::default();
        for (field, name) in fields {
            if self.inner.store.get_key_pair(alias, name).await?.is_none() {
                errors.add(field, format!("no key pair {name} in this account"));
            }
        }
        errors.into_result().map_err(EngineError::Missing)
    }
}

/// Puts the private key of every key pair that `job` and `execution` (its default key and its
/// inventory) name into the `sshPrivateKey` beside the name, so the executor writes them as it
/// writes inline keys. An error names the key pair that is gone.
pub(crate) async fn resolve_key_pairs(
    store: &impl KeyPairStore,
    job: &mut Job,
    execution: &mut Execution,
) -> Result<(), String> {
    let alias = job.account_alias.clone();
    let fetch = async |name: &str| match store.get_key_pair(&alias, name).await {
        Ok(Some(pair)) => Ok(pair.private_key),
        Ok(None) => Err(format!("key pair {name} does not exist")),
        Err(error) => Err(format!("could not read key pair {name}: {error}")),
    };
    let spec = &mut job.spec;
    if let Some(name) = spec.ssh_key_pair.clone() {
        spec.ssh_private_key = Some(fetch(&name).await?);
    }
    if let Some(name) = execution.ssh_key_pair.clone() {
        execution.ssh_private_key = Some(fetch(&name).await?);
    }
    for host in spec
        .hosts
        .iter_mut()
        .flatten()
        .chain(execution.hosts.iter_mut())
    {
        if let Some(name) = host.ssh_key_pair.clone() {
            host.ssh_private_key = Some(fetch(&name).await?);
        }
    }
    let credentials = spec
        .repository
        .as_mut()
        .and_then(|r| r.credentials.as_mut());
    if let Some(credentials) = credentials {
        if let Some(name) = credentials.ssh_key_pair.clone() {
            credentials.ssh_private_key = Some(fetch(&name).await?);
        }
    }
    Ok(())
}

/// Where a distribution writes the public key when the request names no file.
pub const DEFAULT_AUTHORIZED_KEYS_FILE: &str = "~/.ssh/authorized_keys";

/// A request to install a key pair's public key into (or remove it from) a user's
/// `authorized_keys` on some hosts.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DistributeRequest {
    /// The hosts, as a job gives them (with `hostVars` such as `ansible_host` and
    /// `ansible_port`, and a key of their own to get in, if need be). At least one.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = Vec<Host>, required = true, min_items = 1))]
    pub hosts: Option<Vec<Host>>,
    /// The user whose `authorized_keys` changes; the run logs in as this user
    /// (`ansible_user`, unless a host sets its own).
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, required = true,
        min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_.][A-Za-z0-9_.-]*$"))]
    pub user: Option<String>,
    /// Remove the key instead of installing it.
    #[serde(default)]
    pub remove: bool,
    /// The file to change, as the user's sshd reads it (`~/.ssh/authorized_keys` when absent):
    /// a file in a directory, without control characters.
    #[serde(default)]
    #[cfg_attr(
        feature = "utoipa",
        schema(pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+/[^\\x00-\\x1f\\x7f-\\x9f/]+$")
    )]
    pub authorized_keys_file: Option<String>,
    /// The way in for this run: a private key (base64) that the hosts accept today.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = Password))]
    pub ssh_private_key: Option<crate::secret::Secret>,
    /// The way in for this run: another key pair of the account that the hosts accept today
    /// (the key pair itself, to remove it).
    #[serde(default)]
    pub ssh_key_pair: Option<String>,
    /// The way in for this run: the user's login password, for hosts that take passwords (set on
    /// each host that brings no key, key pair or password of its own).
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = Password))]
    pub ssh_password: Option<crate::secret::Secret>,
}

impl DistributeRequest {
    /// The job that carries out the request for `pair`, checked.
    fn job_spec(self, pair: &KeyPair) -> Result<JobSpec, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let user = self.user.unwrap_or_default();
        errors.check(
            !user.is_empty()
                && user.len() <= 32
                && user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                && !user.starts_with('-'),
            "user",
            "must be a user name (1 to 32 characters of A-Z, a-z, 0-9, '_', '.' and '-')",
        );
        let file = self
            .authorized_keys_file
            .unwrap_or_else(|| DEFAULT_AUTHORIZED_KEYS_FILE.to_owned());
        let directory = file
            .rsplit_once('/')
            .map(|(dir, _)| dir)
            .unwrap_or_default();
        errors.check(
            !directory.is_empty() && !file.ends_with('/') && !file.chars().any(char::is_control),
            "authorizedKeysFile",
            "must be the path of a file in a directory (~/.ssh/authorized_keys)",
        );
        let mut hosts = self.hosts.unwrap_or_default();
        errors.check(!hosts.is_empty(), "hosts", "give at least one host");
        let ways_in = [
            self.ssh_private_key.is_some(),
            self.ssh_key_pair.is_some(),
            self.ssh_password.is_some(),
        ];
        errors.check(
            ways_in.iter().filter(|given| **given).count() <= 1,
            "sshPassword",
            "give one way in: sshPrivateKey, sshKeyPair or sshPassword",
        );
        crate::job::check_password(self.ssh_password.as_ref(), "sshPassword", &mut errors);
        errors.into_result()?;
        for host in &mut hosts {
            host.host_vars
                .entry("ansible_user")
                .or_insert_with(|| user.clone().into());
            let has_own = host.ssh_private_key.is_some()
                || host.ssh_key_pair.is_some()
                || host.ssh_password.is_some();
            if !has_own {
                host.ssh_password.clone_from(&self.ssh_password);
            }
        }
        let action = if self.remove { "Removes" } else { "Installs" };
        let spec = JobSpec {
            description: Some(format!(
                "{action} the public key of key pair {} for {user} (by POST /keyPairs/{}/{}/distribute)",
                pair.name, pair.account_alias, pair.name
            )),
            playbook: Some(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                distribution_playbook(&pair.public_key, &file, directory, self.remove),
            )),
            hosts: Some(hosts),
            ssh_private_key: self.ssh_private_key,
            ssh_key_pair: self.ssh_key_pair,
            ..JobSpec::default()
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// The playbook of a distribution: ansible's builtin `file` and `lineinfile` only, so it needs
/// no collection, and it is idempotent (a second run changes nothing). Every value is a JSON
/// string (valid YAML) tagged `!unsafe`, so nothing in a key's comment or a path is templated.
fn distribution_playbook(public_key: &str, file: &str, directory: &str, remove: bool) -> String {
    let quote = |text: &str| serde_json::Value::from(text).to_string();
    let mut playbook = String::from(
        "- name: Distribute a key pair\n  hosts: all\n  gather_facts: false\n  tasks:\n",
    );
    if !remove {
        playbook.push_str(&format!(
            "    - name: The directory of authorized_keys\n      ansible.builtin.file:\n        \
             path: !unsafe {}\n        state: directory\n        mode: \"0700\"\n",
            quote(directory)
        ));
    }
    playbook.push_str(&format!(
        "    - name: The public key in authorized_keys\n      ansible.builtin.lineinfile:\n        \
         path: !unsafe {}\n        line: !unsafe {}\n        state: {}\n        create: {}\n        \
         mode: \"0600\"\n",
        quote(file),
        quote(public_key.trim()),
        if remove { "absent" } else { "present" },
        !remove,
    ));
    playbook
}

impl<S: Store, E: Executor, N: Notifier, C: Clock> Engine<S, E, N, C> {
    /// Installs (or removes) the public key of key pair `name` on the request's hosts: creates
    /// a job that does it and starts it. Returns the job and its PENDING execution, which is an
    /// execution like any other (feed, log, stop, kill, restart of failed hosts).
    pub async fn distribute_key_pair(
        &self,
        alias: &AccountAlias,
        name: &str,
        request: DistributeRequest,
    ) -> Result<(Job, crate::execution::Execution), EngineError> {
        let pair = self.get_key_pair(alias, name).await?;
        let spec = request.job_spec(&pair)?;
        let job = self.create_job(alias, spec).await?;
        let execution = self
            .start_job(alias, job.id, super::StartRequest::default())
            .await?;
        Ok((job, execution))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Credentials, Repository};
    use crate::testkit::key_pair_conformance::key_pair;

    /// Key pairs that only read back (a store crate cannot be used from here: it depends on
    /// this crate).
    struct Pairs(Vec<KeyPair>);

    impl KeyPairStore for Pairs {
        async fn insert_key_pair(&self, _: &KeyPair) -> Result<(), StoreError> {
            unreachable!("read only")
        }
        async fn get_key_pair(
            &self,
            alias: &AccountAlias,
            name: &str,
        ) -> Result<Option<KeyPair>, StoreError> {
            let found = self
                .0
                .iter()
                .find(|p| &p.account_alias == alias && p.name == name);
            Ok(found.cloned())
        }
        async fn list_key_pairs(
            &self,
            _: &AccountAlias,
            _: PageRequest,
        ) -> Result<Page<KeyPair>, StoreError> {
            unreachable!("read only")
        }
        async fn delete_key_pair(&self, _: &AccountAlias, _: &str) -> Result<(), StoreError> {
            unreachable!("read only")
        }
    }

    #[tokio::test]
    async fn every_named_key_pair_is_resolved_beside_its_name() {
        let names = ["top", "host", "git", "extra", "start"];
        let store = Pairs(names.iter().map(|name| key_pair("ACME", name)).collect());
        let mut host = Host::named("a");
        host.ssh_key_pair = Some("host".into());
        let spec = JobSpec {
            ssh_key_pair: Some("top".into()),
            hosts: Some(vec![host, Host::named("b")]),
            repository: Some(Repository {
                url: "ssh://git@example.com/p.git".into(),
                branch: None,
                default_playbook: "site.yml".into(),
                credentials: Some(Credentials {
                    username: None,
                    password: None,
                    ssh_private_key: None,
                    ssh_key_pair: Some("git".into()),
                }),
            }),
            ..JobSpec::default()
        };
        let mut job = Job::new("ACME".parse().unwrap(), spec, 1);
        let mut extra = Host::named("c");
        extra.ssh_key_pair = Some("extra".into());
        let mut execution = Execution::new(&job, Some(vec![extra]), None, 2);
        execution.ssh_key_pair = Some("start".into());
        resolve_key_pairs(&store, &mut job, &mut execution)
            .await
            .unwrap();
        let key = |name: &str| Some(key_pair("ACME", name).private_key);
        assert_eq!(job.spec.ssh_private_key, key("top"));
        assert_eq!(job.hosts()[0].ssh_private_key, key("host"));
        assert_eq!(job.hosts()[1].ssh_private_key, None);
        let credentials = job.spec.repository.as_ref().unwrap().credentials.as_ref();
        assert_eq!(credentials.unwrap().ssh_private_key, key("git"));
        assert_eq!(execution.hosts[0].ssh_private_key, key("extra"));
        assert_eq!(execution.ssh_private_key, key("start"));

        // Another account's pair of the same name is not this job's.
        let mut theirs = Job::new("OTHER".parse().unwrap(), job.spec.clone(), 1);
        let mut none = Execution::new(&theirs, Some(Vec::new()), None, 2);
        let missing = resolve_key_pairs(&store, &mut theirs, &mut none).await;
        assert_eq!(missing.unwrap_err(), "key pair top does not exist");
    }

    #[test]
    fn a_password_is_the_way_in_for_hosts_without_their_own() {
        let pair = key_pair("ACME", "deploy");
        let mut keyed = Host::named("keyed");
        keyed.ssh_key_pair = Some("bootstrap".into());
        let request = |password: Option<&str>, key_pair: Option<&str>| DistributeRequest {
            hosts: Some(vec![Host::named("new"), keyed.clone()]),
            user: Some("admin".into()),
            ssh_password: password.map(crate::secret::Secret::new),
            ssh_key_pair: key_pair.map(str::to_owned),
            ..DistributeRequest::default()
        };
        let spec = request(Some("first login"), None).job_spec(&pair).unwrap();
        let hosts = spec.hosts.unwrap();
        assert_eq!(
            hosts[0].ssh_password.as_ref().unwrap().expose(),
            "first login"
        );
        assert_eq!(hosts[0].host_vars["ansible_user"], "admin");
        assert_eq!(hosts[1].ssh_password, None);

        let both = request(Some("first login"), Some("bootstrap")).job_spec(&pair);
        assert!(both.unwrap_err().to_string().contains("sshPassword"));
        let empty = request(Some(""), None).job_spec(&pair);
        assert!(empty.unwrap_err().to_string().contains("sshPassword"));
    }

    #[test]
    fn the_playbook_quotes_every_value_unsafe() {
        let playbook = distribution_playbook(
            "ssh-ed25519 AAAA {{ lookup('pipe', 'id') }}\n",
            "~/.ssh/authorized_keys",
            "~/.ssh",
            false,
        );
        assert!(playbook.contains("line: !unsafe \"ssh-ed25519 AAAA {{ lookup('pipe', 'id') }}\""));
        assert!(playbook.contains("ansible.builtin.file:"));
        assert!(playbook.contains("state: present"));
        let removal = distribution_playbook("ssh-ed25519 AAAA x", "/k", "", true);
        assert!(!removal.contains("ansible.builtin.file:"));
        assert!(removal.contains("state: absent"));
    }
}
