//! For the tests of secrets at rest: a store filled with one of every kind of secret, and the
//! texts a backend's raw files or rows must then not hold.

use crate::execution::Execution;
use crate::ids::{ExecutionId, JobId};
use crate::secret::Secret;
use crate::store::{ExecutionStore, InventoryStore, KeyPairStore};

use super::fixtures::{alias, job_with_secrets};
use super::inventory_conformance::inventory_host;
use super::key_pair_conformance::key_pair;

/// What [`store_every_secret`] stored, to read back.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    /// The job (account `ACME`).
    pub job: JobId,
    /// Its execution, started with a key of its own.
    pub execution: ExecutionId,
}

/// Every secret [`store_every_secret`] stores, as the client sent it.
pub const SECRETS: [&str; 8] = [
    "repository-password",
    "ZGVmYXVsdC1rZXk=",
    "aG9zdC1rZXk=",
    "c3RhcnQ=",
    "cHJpdmF0ZS1zZWFsZWQ=",
    "host-password",
    "aW52ZW50b3J5LWtleQ==",
    "inventory-password",
];

/// Stores a job with a repository password, a job key, a host key and a host password; an execution of it (which
/// copies them) started with a key of its own; a key pair; and an inventory host with a key and
/// a password.
pub async fn store_every_secret(
    store: &(impl ExecutionStore + KeyPairStore + InventoryStore),
) -> Stored {
    let job = job_with_secrets("ACME", 1);
    store.insert_job(&job).await.expect("insert the job");
    let execution = Execution::new(&job, None, Some(Secret::new(SECRETS[3])), 2);
    store
        .insert_execution(&execution)
        .await
        .expect("insert the execution");
    let mut pair = key_pair("ACME", "sealed");
    pair.private_key = Secret::new(SECRETS[4]);
    store
        .insert_key_pair(&pair)
        .await
        .expect("insert the key pair");
    let mut host = inventory_host("ACME", "sealed");
    host.host.ssh_private_key = Some(Secret::new(SECRETS[6]));
    host.host.ssh_password = Some(Secret::new(SECRETS[7]));
    store
        .insert_inventory_host(&host)
        .await
        .expect("insert the inventory host");
    Stored {
        job: job.id,
        execution: execution.execution_id,
    }
}

/// Panics unless every secret [`store_every_secret`] stored reads back as it was.
pub async fn assert_secrets_read_back(
    store: &(impl ExecutionStore + KeyPairStore + InventoryStore),
    stored: Stored,
) {
    let acme = alias("ACME");
    let job = store
        .get_job(&acme, stored.job)
        .await
        .unwrap()
        .expect("the job");
    let password = job.spec.repository.as_ref().and_then(|repository| {
        repository
            .credentials
            .as_ref()
            .and_then(|credentials| credentials.password.as_ref())
    });
    assert_eq!(password.map(Secret::expose), Some(SECRETS[0]));
    assert_eq!(
        job.spec.ssh_private_key.as_ref().map(Secret::expose),
        Some(SECRETS[1])
    );
    let execution = store
        .get_execution(&acme, stored.job, stored.execution)
        .await
        .unwrap()
        .expect("the execution");
    assert_eq!(
        execution.ssh_private_key.as_ref().map(Secret::expose),
        Some(SECRETS[3])
    );
    assert_eq!(
        execution.hosts[0]
            .ssh_private_key
            .as_ref()
            .map(Secret::expose),
        Some(SECRETS[2])
    );
    assert_eq!(
        execution.hosts[0].ssh_password.as_ref().map(Secret::expose),
        Some(SECRETS[5])
    );
    let pair = store
        .get_key_pair(&acme, "sealed")
        .await
        .unwrap()
        .expect("the key pair");
    assert_eq!(pair.private_key.expose(), SECRETS[4]);
    let host = store
        .get_inventory_host(&acme, "sealed")
        .await
        .unwrap()
        .expect("the inventory host")
        .host;
    assert_eq!(
        host.ssh_private_key.as_ref().map(Secret::expose),
        Some(SECRETS[6])
    );
    assert_eq!(
        host.ssh_password.as_ref().map(Secret::expose),
        Some(SECRETS[7])
    );
}

/// The secrets of [`SECRETS`] that `raw` (a store's file or row) holds in clear.
pub fn secrets_in(raw: &[u8]) -> Vec<&'static str> {
    SECRETS
        .into_iter()
        .filter(|secret| {
            raw.windows(secret.len())
                .any(|window| window == secret.as_bytes())
        })
        .collect()
}
