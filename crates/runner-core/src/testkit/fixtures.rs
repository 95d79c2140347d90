//! Small jobs for tests.

use base64::Engine as _;

use crate::ids::AccountAlias;
use crate::job::{Callback, CallbackLevel, Credentials, Host, Job, JobSpec, Repository};
use crate::secret::Secret;
use crate::time::Timestamp;

/// An account alias from a literal.
pub fn alias(name: &str) -> AccountAlias {
    name.parse().expect("test alias is valid")
}

/// A valid inline-playbook job spec with the given host ids.
pub fn inline_spec(hosts: &[&str]) -> JobSpec {
    JobSpec {
        playbook: Some(
            base64::engine::general_purpose::STANDARD.encode("- hosts: all\n  tasks: []\n"),
        ),
        hosts: Some(hosts.iter().map(|id| Host::named(*id)).collect()),
        ..JobSpec::default()
    }
}

/// A job of `account` created at `now`.
pub fn job(account: &str, now: Timestamp) -> Job {
    Job::new(alias(account), inline_spec(&["a", "b"]), now)
}

/// A repository job with every kind of secret set.
pub fn job_with_secrets(account: &str, now: Timestamp) -> Job {
    let mut spec = inline_spec(&["a"]);
    spec.playbook = None;
    spec.repository = Some(Repository {
        url: "https://git.example.com/playbooks.git".into(),
        branch: Some("main".into()),
        default_playbook: "site.yml".into(),
        credentials: Some(Credentials {
            username: Some("deploy".into()),
            password: Some(Secret::new("repository-password")),
            ssh_private_key: None,
            ssh_key_pair: None,
        }),
    });
    spec.ssh_private_key = Some(Secret::new("ZGVmYXVsdC1rZXk="));
    if let Some(hosts) = spec.hosts.as_mut() {
        hosts[0].ssh_private_key = Some(Secret::new("aG9zdC1rZXk="));
        hosts[0].ssh_password = Some(Secret::new("host-password"));
    }
    Job::new(alias(account), spec, now)
}

/// A job of `account` with one callback per level, at `https://hooks.example.com/<index>`.
pub fn job_with_callbacks(account: &str, now: Timestamp, levels: &[CallbackLevel]) -> Job {
    let mut spec = inline_spec(&["a", "b"]);
    spec.callbacks = levels
        .iter()
        .enumerate()
        .map(|(index, level)| Callback {
            url: format!("https://hooks.example.com/{index}"),
            level: *level,
        })
        .collect();
    Job::new(alias(account), spec, now)
}
