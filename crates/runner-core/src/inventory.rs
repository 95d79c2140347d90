//! The account inventory: hosts kept once per account, in their groups, that every job of the
//! account with `useDynamicInventory` runs on.
//!
//! A host of the inventory is a [`Host`], as a job gives one (`id`, `hostVars`, `groups`, a key
//! or a key pair, a password), stored under its account and named by its `id`. When a job with
//! `useDynamicInventory` runs, the engine reads the account's inventory and merges the run's own
//! hosts over it ([`merge`]): a job's host adds to the inventory, and where both name the same
//! host, the job's `hostVars` win key by key, its key wins, and the groups of both apply.
//! Operator-configured inventory sources (files, directories, plugin configurations, scripts)
//! come on top in the executor (`runner-exec-ansible`).

use serde::{Deserialize, Serialize};

use crate::ids::AccountAlias;
use crate::job::{Host, NOTHING_TO_KEEP};
use crate::secret::{self, Secret};
use crate::time::Timestamp;
use crate::validation::ValidationErrors;

/// The keys of an inventory host response that a client may send back; they are ignored.
pub const INVENTORY_HOST_READ_ONLY_FIELDS: &[&str] =
    &["accountAlias", "createdTime", "lastUpdatedTime"];

/// A host of the inventory as a create or replace request gives it: a [`Host`], as a job gives
/// one. (Its own type, so that the document can let it take a response's read-only fields
/// back, which a job's hosts do not take.)
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct InventoryHostSpec {
    /// The host.
    #[serde(flatten)]
    #[cfg_attr(feature = "utoipa", schema(inline))]
    pub host: Host,
}

/// A host of an account's inventory, as stored and as shown (its secrets masked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InventoryHost {
    /// The account it belongs to.
    pub account_alias: AccountAlias,
    /// The host, as a job gives one; its `id` names it in the account.
    #[serde(flatten)]
    #[cfg_attr(feature = "utoipa", schema(inline))]
    pub host: Host,
    /// When it was created (epoch ms).
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub created_time: Timestamp,
    /// When it was last replaced (epoch ms).
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub last_updated_time: Timestamp,
}

impl InventoryHost {
    /// A new host of `alias`'s inventory, made at `now`, once `host` is valid (400 naming each
    /// field otherwise).
    pub fn new(alias: AccountAlias, host: Host, now: Timestamp) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        host.validate("", &mut errors);
        errors.into_result()?;
        Ok(Self {
            account_alias: alias,
            host,
            created_time: now,
            last_updated_time: now,
        })
    }

    /// The secrets still sent as the mask `********`, where no secret was stored to keep (a 409
    /// naming each, as for jobs).
    pub fn unkept_masks(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        for (field, secret) in [
            ("sshPrivateKey", &self.host.ssh_private_key),
            ("sshPassword", &self.host.ssh_password),
        ] {
            if secret.as_ref().is_some_and(Secret::is_mask) {
                errors.add(field, NOTHING_TO_KEEP);
            }
        }
        errors
    }

    /// This host replaced by `host` at `now` (a PUT): a secret sent back as the mask keeps the
    /// stored one; the id stays (the path names it).
    pub fn replaced(&self, mut host: Host, now: Timestamp) -> Result<Self, ValidationErrors> {
        host.ssh_private_key = secret::merge(
            host.ssh_private_key.take(),
            self.host.ssh_private_key.as_ref(),
        );
        host.ssh_password =
            secret::merge(host.ssh_password.take(), self.host.ssh_password.as_ref());
        let mut replaced = Self::new(self.account_alias.clone(), host, now)?;
        replaced.created_time = self.created_time;
        Ok(replaced)
    }
}

/// The hosts a `useDynamicInventory` run runs on: the account's `inventory`, with the run's
/// `own` hosts merged over it (see the module docs), the inventory's order first.
pub fn merge(inventory: Vec<Host>, own: Vec<Host>) -> Vec<Host> {
    let mut hosts = inventory;
    for host in own {
        match hosts.iter_mut().find(|known| known.id == host.id) {
            Some(known) => {
                known.host_vars.extend(host.host_vars);
                for group in host.groups {
                    if !known.groups.contains(&group) {
                        known.groups.push(group);
                    }
                }
                if host.ssh_private_key.is_some() || host.ssh_key_pair.is_some() {
                    known.ssh_private_key = host.ssh_private_key;
                    known.ssh_key_pair = host.ssh_key_pair;
                }
                if host.ssh_password.is_some() {
                    known.ssh_password = host.ssh_password;
                }
            }
            None => hosts.push(host),
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::MASK;

    fn alias() -> AccountAlias {
        "ACME".parse().unwrap()
    }

    #[test]
    fn the_runs_own_hosts_win_key_by_key_and_add_groups() {
        let mut stored = Host::named("web-1");
        stored.host_vars.insert("port".into(), 22.into());
        stored.host_vars.insert("role".into(), "web".into());
        stored.groups = vec!["web".into()];
        stored.ssh_key_pair = Some("deploy".into());
        let mut own = Host::named("web-1");
        own.host_vars.insert("port".into(), 2222.into());
        own.groups = vec!["canary".into(), "web".into()];
        let merged = merge(
            vec![stored, Host::named("db-1")],
            vec![own, Host::named("new")],
        );
        let ids: Vec<&str> = merged.iter().map(|host| host.id.as_str()).collect();
        assert_eq!(ids, ["web-1", "db-1", "new"]);
        assert_eq!(merged[0].host_vars["port"], 2222, "the job's value wins");
        assert_eq!(
            merged[0].host_vars["role"], "web",
            "the inventory's others stay"
        );
        assert_eq!(merged[0].groups, ["web", "canary"]);
        assert_eq!(
            merged[0].ssh_key_pair.as_deref(),
            Some("deploy"),
            "no key of its own"
        );
    }

    #[test]
    fn a_host_is_checked_and_a_mask_keeps_the_stored_secret() {
        let mut bad = Host::named("has space");
        bad.groups = vec!["ok".into(), "9lives".into(), "ok".into()];
        let errors = InventoryHost::new(alias(), bad, 1).unwrap_err();
        let fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["id", "groups[1]", "groups[2]"]);

        let mut masked = Host::named("a");
        masked.ssh_password = Some(Secret::new(MASK));
        let unkept = InventoryHost::new(alias(), masked.clone(), 1)
            .unwrap()
            .unkept_masks();
        assert_eq!(unkept.errors[0].field, "sshPassword");

        let mut host = Host::named("a");
        host.ssh_password = Some(Secret::new("hunter22"));
        let stored = InventoryHost::new(alias(), host, 1).unwrap();
        let replaced = stored.replaced(masked, 5).unwrap();
        assert_eq!(replaced.host.ssh_password.unwrap().expose(), "hunter22");
        assert_eq!((replaced.created_time, replaced.last_updated_time), (1, 5));
    }
}
