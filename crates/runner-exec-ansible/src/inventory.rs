//! The run's inventory: the execution's hosts, plus the account's hosts for `useDynamicInventory`
//! jobs, written as an ansible YAML/JSON inventory file.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
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

/// The inventory document: `{"all": {"hosts": {id: hostVars}}}`. `key_files` gives, per host id,
/// the private key file to use (set as `ansible_ssh_private_key_file`, over a hostVars value).
pub(crate) fn document(hosts: &[Host], key_files: &HashMap<String, &Path>) -> Value {
    let mut entries = Map::new();
    for host in hosts {
        let mut vars = host.host_vars.clone();
        if let Some(key) = key_files.get(&host.id) {
            vars.insert(
                "ansible_ssh_private_key_file".into(),
                Value::String(key.display().to_string()),
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
    fn key_files_override_host_vars() {
        let mut host = Host::named("a");
        host.host_vars
            .insert("ansible_ssh_private_key_file".into(), "/elsewhere".into());
        let key = Path::new("/work/secrets/host-0.key");
        let keys = HashMap::from([("a".to_string(), key)]);
        let doc = document(&[host, Host::named("b")], &keys);
        assert_eq!(
            doc["all"]["hosts"]["a"]["ansible_ssh_private_key_file"],
            "/work/secrets/host-0.key"
        );
        assert_eq!(doc["all"]["hosts"]["b"], serde_json::json!({}));
        assert_eq!(document(&[], &keys), serde_json::json!({"all": {}}));
    }
}
