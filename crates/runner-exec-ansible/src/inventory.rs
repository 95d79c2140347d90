//! The run's inventory: the execution's hosts (for `useDynamicInventory` jobs the engine has
//! merged the account's inventory into them) in their groups, written as an ansible JSON
//! inventory file, and the operator's inventory sources of the account, copied beside it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use runner_core::job::Host;
use serde_json::{Map, Value};

/// Copies each of the operator's inventory `sources` (a file or a directory, see
/// [`AnsibleConfig::inventory_sources`](crate::AnsibleConfig::inventory_sources)) into its own
/// directory under `into`, under its own name (an inventory plugin recognises its
/// configuration by name), and returns the copies: read at each run, so that a change of a
/// source reaches the next run, and inside the workspace, so that a sandboxed run needs no view
/// of where the operator keeps them.
pub(crate) fn copy_sources(sources: &[PathBuf], into: &Path) -> Result<Vec<PathBuf>, String> {
    let mut copies = Vec::with_capacity(sources.len());
    for (index, source) in sources.iter().enumerate() {
        let name = source.file_name().unwrap_or(source.as_os_str());
        let copy = into.join(index.to_string()).join(name);
        copy_path(source, &copy).map_err(|error| {
            format!(
                "could not read the inventory source {}: {error}",
                source.display()
            )
        })?;
        copies.push(copy);
    }
    Ok(copies)
}

/// Copies a file (with its mode: a script stays executable) or a directory tree.
fn copy_path(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(from)?;
    if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_path(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from, to)?;
    }
    Ok(())
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

/// The inventory document: `{"all": {"hosts": {id: hostVars}, "children": {group: {"hosts":
/// {id: {}}}}}}`. `logins` gives, per host id, the files it logs in with (set over a hostVars
/// value of the same name). Every host is in `all` already: a group of that name adds nothing.
/// `default_key`, the run's default key file, is also a variable of `all`, for the hosts that an
/// inventory source brings.
pub(crate) fn document(
    hosts: &[Host],
    logins: &HashMap<String, LoginFiles>,
    default_key: Option<&Path>,
) -> Value {
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
    let mut groups: Map<String, Value> = Map::new();
    for host in hosts {
        for group in host.groups.iter().filter(|group| *group != "all") {
            let members = groups
                .entry(group.clone())
                .or_insert_with(|| serde_json::json!({"hosts": {}}));
            members["hosts"][&host.id] = serde_json::json!({});
        }
    }
    let mut all = Map::new();
    if !entries.is_empty() {
        all.insert("hosts".into(), Value::Object(entries));
    }
    if !groups.is_empty() {
        all.insert("children".into(), Value::Object(groups));
    }
    if let Some(key) = default_key {
        let path = Value::String(key.display().to_string());
        all.insert(
            "vars".into(),
            serde_json::json!({ "ansible_ssh_private_key_file": path }),
        );
    }
    serde_json::json!({ "all": all })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_listed_in_their_groups() {
        let mut web = Host::named("web-1");
        web.groups = vec!["web".into(), "all".into()];
        let mut both = Host::named("web-2");
        both.groups = vec!["web".into(), "eu".into()];
        let doc = document(&[web, both, Host::named("solo")], &HashMap::new(), None);
        assert_eq!(
            doc["all"]["children"],
            serde_json::json!({
                "web": {"hosts": {"web-1": {}, "web-2": {}}},
                "eu": {"hosts": {"web-2": {}}},
            })
        );
        assert_eq!(doc["all"]["hosts"]["solo"], serde_json::json!({}));
    }

    #[test]
    fn sources_are_copied_with_their_names_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hosts.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tree = dir.path().join("inventory.d");
        std::fs::create_dir_all(tree.join("group_vars")).unwrap();
        std::fs::write(tree.join("group_vars/web.yml"), "x: 1\n").unwrap();
        let into = dir.path().join("copies");
        let copies = copy_sources(&[script, tree], &into).unwrap();
        assert_eq!(
            copies,
            [into.join("0/hosts.sh"), into.join("1/inventory.d")]
        );
        let mode = std::fs::metadata(&copies[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "still executable");
        assert!(copies[1].join("group_vars/web.yml").is_file());
        let missing = copy_sources(&[dir.path().join("gone.yml")], &into).unwrap_err();
        assert!(missing.contains("gone.yml"), "{missing}");
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
        let doc = document(&[host, Host::named("b")], &logins, Some(Path::new("/k")));
        assert_eq!(
            doc["all"]["hosts"]["a"]["ansible_ssh_private_key_file"],
            "/work/secrets/host-0.key"
        );
        assert_eq!(
            doc["all"]["hosts"]["a"]["ansible_password"],
            "{{ lookup('ansible.builtin.file', \"/work/secrets/2-host-0.password\") }}"
        );
        assert_eq!(doc["all"]["hosts"]["b"], serde_json::json!({}));
        assert_eq!(doc["all"]["vars"]["ansible_ssh_private_key_file"], "/k");
        assert_eq!(document(&[], &logins, None), serde_json::json!({"all": {}}));
    }
}
