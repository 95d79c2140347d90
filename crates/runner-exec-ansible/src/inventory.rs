//! The run's inventory: the execution's hosts, plus the account's hosts for `useDynamicInventory`
//! jobs, written as an ansible YAML/JSON inventory file.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use runner_core::executor::Run;
use runner_core::ids::AccountAlias;
use runner_core::job::Host;
use serde_json::{Map, Value};

/// Why a dynamic inventory could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The provider could not answer (its message says why).
    #[error("dynamic inventory unavailable: {0}")]
    Unavailable(String),
}

/// The future an [`InventoryProvider`] returns.
pub type InventoryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Host>, InventoryError>> + Send + 'a>>;

/// Supplies the hosts of `useDynamicInventory` jobs: every host the account has.
///
/// Object-safe so that a server can pick a provider at startup and keep it in an `Arc`. The hosts
/// it returns come after the execution's own hosts; an execution host with the same id wins.
pub trait InventoryProvider: Send + Sync + 'static {
    /// The hosts of `account` for `run`.
    fn hosts<'a>(&'a self, account: &'a AccountAlias, run: &'a Run) -> InventoryFuture<'a>;
}

/// A fixed list of hosts per account (empty by default).
#[derive(Debug, Clone, Default)]
pub struct StaticInventory {
    hosts: HashMap<AccountAlias, Vec<Host>>,
}

impl StaticInventory {
    /// A provider that knows nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `hosts` to the inventory of `account`.
    pub fn with_hosts(mut self, account: AccountAlias, hosts: Vec<Host>) -> Self {
        self.hosts.entry(account).or_default().extend(hosts);
        self
    }
}

impl InventoryProvider for StaticInventory {
    fn hosts<'a>(&'a self, account: &'a AccountAlias, _run: &'a Run) -> InventoryFuture<'a> {
        let hosts = self.hosts.get(account).cloned().unwrap_or_default();
        Box::pin(async move { Ok(hosts) })
    }
}

/// Execution hosts first, then dynamic hosts whose id is not taken.
pub(crate) fn merge(mut hosts: Vec<Host>, dynamic: Vec<Host>) -> Vec<Host> {
    for host in dynamic {
        if !hosts.iter().any(|known| known.id == host.id) {
            hosts.push(host);
        }
    }
    hosts
}

/// The files a host logs in with, written into the run's `secrets/`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoginFiles {
    /// The private key, set as `ansible_ssh_private_key_file`.
    pub(crate) key: Option<PathBuf>,
    /// The password, read by a `file` lookup into `ansible_password`: the value stays out of the
    /// inventory, and a lookup's result is never templated, whatever the password holds.
    pub(crate) password: Option<PathBuf>,
}

/// The inventory document: `{"all": {"hosts": {id: hostVars}}}`. `logins` gives, per host id,
/// the files it logs in with (set over a hostVars value of the same name).
pub(crate) fn document(hosts: &[Host], logins: &HashMap<String, LoginFiles>) -> Value {
    let mut entries = Map::new();
    for host in hosts {
        let mut vars = host.host_vars.clone();
        let login = logins.get(&host.id);
        if let Some(key) = login.and_then(|login| login.key.as_ref()) {
            vars.insert(
                "ansible_ssh_private_key_file".into(),
                Value::String(key.display().to_string()),
            );
        }
        if let Some(password) = login.and_then(|login| login.password.as_ref()) {
            let path = Value::String(password.display().to_string());
            vars.insert(
                "ansible_password".into(),
                Value::String(format!("{{{{ lookup('ansible.builtin.file', {path}) }}}}")),
            );
        }
        entries.insert(host.id.clone(), Value::Object(vars));
    }
    let mut all = Map::new();
    if !entries.is_empty() {
        all.insert("hosts".into(), Value::Object(entries));
    }
    serde_json::json!({ "all": all })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_hosts_win_over_dynamic_ones() {
        let mut own = Host::named("a");
        own.host_vars.insert("x".into(), 1.into());
        let mut dynamic = Host::named("a");
        dynamic.host_vars.insert("x".into(), 2.into());
        let merged = merge(vec![own], vec![dynamic, Host::named("b")]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].host_vars["x"], 1);
        assert_eq!(merged[1].id, "b");
    }

    #[test]
    fn login_files_override_host_vars() {
        let mut host = Host::named("a");
        host.host_vars
            .insert("ansible_ssh_private_key_file".into(), "/elsewhere".into());
        host.host_vars
            .insert("ansible_password".into(), "in clear".into());
        let login = LoginFiles {
            key: Some("/work/secrets/host-0.key".into()),
            password: Some("/work/secrets/2-host-0.password".into()),
        };
        let logins = HashMap::from([("a".to_string(), login)]);
        let doc = document(&[host, Host::named("b")], &logins);
        assert_eq!(
            doc["all"]["hosts"]["a"]["ansible_ssh_private_key_file"],
            "/work/secrets/host-0.key"
        );
        assert_eq!(
            doc["all"]["hosts"]["a"]["ansible_password"],
            "{{ lookup('ansible.builtin.file', \"/work/secrets/2-host-0.password\") }}"
        );
        assert_eq!(doc["all"]["hosts"]["b"], serde_json::json!({}));
        assert_eq!(document(&[], &logins), serde_json::json!({"all": {}}));
    }
}
