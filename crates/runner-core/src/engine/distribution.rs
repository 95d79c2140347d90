//! Distributing a key pair's public key into hosts' `authorized_keys` (or removing it): a job
//! that does it with ansible's builtin modules, created and started like any other.

use super::error::EngineError;
use super::handle::Engine;
use crate::executor::Executor;
use crate::ids::AccountAlias;
use crate::job::{Host, Job, JobSpec};
use crate::key_pair::KeyPair;
use crate::notifier::Notifier;
use crate::store::Store;
use crate::time::Clock;
use crate::validation::ValidationErrors;

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
    use crate::testkit::key_pair_conformance::key_pair;

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
