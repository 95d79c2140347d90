//! The key-pair operations (create, read, list, delete), the check that every key pair a job
//! names exists, and the resolution of those names into private keys when a job runs. (The
//! distribution of a public key to hosts is `distribution.rs`.)

use super::error::EngineError;
use super::handle::Engine;
use crate::execution::Execution;
use crate::executor::Executor;
use crate::ids::AccountAlias;
use crate::job::{Host, Job, JobSpec};
use crate::key_pair::{KeyPair, KeyPairSpec};
use crate::notifier::Notifier;
use crate::page::{Page, PageRequest, every_item};
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

    /// Deletes a key pair; 409 naming the jobs and inventory hosts that still name it.
    ///
    /// The check reads the account's jobs and inventory and then deletes, not atomically: a job
    /// or host made in between that names the pair fails its runs with "key pair ... does not
    /// exist" (see `resolve_key_pairs`) rather than run with anything else.
    pub async fn delete_key_pair(
        &self,
        alias: &AccountAlias,
        name: &str,
    ) -> Result<(), EngineError> {
        self.get_key_pair(alias, name).await?;
        let store = &self.inner.store;
        let users: Vec<String> = every_item(|page| store.list_jobs(alias, page))
            .await?
            .into_iter()
            .filter(|job| job.spec.key_pair_fields().iter().any(|(_, n)| *n == name))
            .map(|job| job.id.to_string())
            .collect();
        let hosts: Vec<String> = every_item(|page| store.list_inventory_hosts(alias, page))
            .await?
            .into_iter()
            .filter(|record| record.host.ssh_key_pair.as_deref() == Some(name))
            .map(|record| record.host.id)
            .collect();
        let mut named = Vec::new();
        if !users.is_empty() {
            named.push(format!("jobs {}", users.join(", ")));
        }
        if !hosts.is_empty() {
            named.push(format!("inventory hosts {}", hosts.join(", ")));
        }
        if !named.is_empty() {
            return Err(EngineError::Conflict(format!(
                "key pair {name} is used by {}",
                named.join(" and ")
            )));
        }
        Ok(self.inner.store.delete_key_pair(alias, name).await?)
    }

    /// 409 naming each field of a start or restart request (its `hosts` and `sshKeyPair`) that
    /// names a key pair the account does not have.
    pub(crate) async fn check_request_key_pairs(
        &self,
        alias: &AccountAlias,
        hosts: Option<&[Host]>,
        ssh_key_pair: Option<&str>,
    ) -> Result<(), EngineError> {
        let hosts = hosts.map(|hosts| (hosts, "hosts"));
        let top = ssh_key_pair.map(|name| ("sshKeyPair".to_owned(), name));
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
}
