//! Response bodies: a job with its links, and the paths (`Location`, links) of every resource.

use runner_core::execution::Execution;
use runner_core::ids::{AccountAlias, ExecutionId};
use runner_core::job::Job;
use serde::Serialize;
use utoipa::ToSchema;

/// A related resource of a job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Link {
    /// What the link is: `self`, or `execution` for the execution an immediate start made.
    #[serde(rename = "ref")]
    pub rel: &'static str,
    /// The ID of the linked resource.
    pub id: String,
    /// Its path (root-relative).
    pub href: String,
    /// The methods it answers.
    pub verbs: &'static [&'static str],
}

/// The path of a job.
pub fn job_href(alias: &AccountAlias, job: impl std::fmt::Display) -> String {
    format!("/jobs/{alias}/{job}")
}

/// The path of an execution.
pub fn execution_href(
    alias: &AccountAlias,
    job: impl std::fmt::Display,
    execution: ExecutionId,
) -> String {
    format!("/jobs/{alias}/{job}/executions/{execution}")
}

/// The path of a service account.
pub fn service_account_href(alias: &AccountAlias, name: &str) -> String {
    format!("/serviceAccounts/{alias}/{name}")
}

/// The path of a key pair.
pub fn key_pair_href(alias: &AccountAlias, name: &str) -> String {
    format!("/keyPairs/{alias}/{name}")
}

/// What a path segment leaves as it is: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The path of a host of an account's inventory (its id percent-encoded: an id may hold `/`).
pub fn inventory_host_href(alias: &AccountAlias, id: &str) -> String {
    let id = percent_encoding::utf8_percent_encode(id, UNRESERVED);
    format!("/inventory/{alias}/hosts/{id}")
}

/// The path of a job schedule.
pub fn schedule_href(
    alias: &AccountAlias,
    job: impl std::fmt::Display,
    schedule: impl std::fmt::Display,
) -> String {
    format!("/jobs/{alias}/{job}/schedules/{schedule}")
}

/// A job as the API shows it: the job's own (camelCase) fields, secrets masked, plus `links`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Job)]
pub struct JobResponse {
    /// The job; its secrets serialize as `********`.
    #[serde(flatten)]
    #[schema(inline)]
    pub job: Job,
    /// `self`, and `execution` after an immediate start.
    pub links: Vec<Link>,
}

impl JobResponse {
    /// The job with its `self` link.
    pub fn new(job: Job) -> Self {
        let links = vec![Link {
            rel: "self",
            id: job.id.to_string(),
            href: job_href(&job.account_alias, job.id),
            verbs: &["GET", "PUT", "DELETE"],
        }];
        Self { job, links }
    }

    /// Adds the link of an execution started with the job (`?immediate=true`).
    pub fn with_execution(mut self, execution: &Execution) -> Self {
        self.links.push(Link {
            rel: "execution",
            id: execution.execution_id.to_string(),
            href: execution_href(
                &execution.account_alias,
                execution.job_id,
                execution.execution_id,
            ),
            verbs: &["GET"],
        });
        self
    }
}
