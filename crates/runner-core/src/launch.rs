//! Launch-time options: what a start may vary without editing the job (AWX's "prompt on
//! launch", Rundeck's job options), recorded on the execution and reused by its restarts.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::job::{Job, is_plain_word};
use crate::validation::ValidationErrors;

/// The options of one launch. Every field is optional; an absent one leaves the job's setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LaunchOptions {
    /// Extra variables merged over the job's `properties` (a key given here wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<Object>))]
    pub properties: Option<Map<String, Value>>,
    /// Run only the plays and tasks with these tags, instead of the job's `playbookTags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook_tags: Option<Vec<String>>,
    /// Skip the plays and tasks with these tags (`--skip-tags`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_tags: Option<Vec<String>>,
    /// Run only on these hosts or groups (ansible host patterns, `--limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Vec<String>>,
    /// Ansible's check mode (`--check`): report what would change, change nothing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub check: bool,
    /// Show the differences of the files and templates a task changes (`--diff`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub diff: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl LaunchOptions {
    /// True when nothing is varied: the job runs as it is defined.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Adds an error, with its field named after `prefix` (`""` in a start body,
    /// `"launchOptions."` in a schedule), for each bad tag or host pattern.
    pub fn validate(&self, prefix: &str, errors: &mut ValidationErrors) {
        for (field, tags) in [
            ("playbookTags", &self.playbook_tags),
            ("skipTags", &self.skip_tags),
        ] {
            for (index, tag) in tags.iter().flatten().enumerate() {
                errors.check(
                    is_plain_word(tag),
                    format!("{prefix}{field}[{index}]"),
                    "must be a non-empty tag without spaces or commas",
                );
            }
        }
        if let Some(limit) = &self.limit {
            errors.check(
                !limit.is_empty(),
                format!("{prefix}limit"),
                "must name at least one host or group",
            );
            for (index, pattern) in limit.iter().enumerate() {
                errors.check(
                    is_plain_word(pattern),
                    format!("{prefix}limit[{index}]"),
                    "must be a non-empty host or group pattern without spaces or commas",
                );
            }
        }
    }

    /// The job's properties with these over them.
    pub fn properties(&self, job: &Job) -> Map<String, Value> {
        let mut merged = job.spec.properties.clone();
        if let Some(over) = &self.properties {
            merged.extend(over.iter().map(|(key, value)| (key.clone(), value.clone())));
        }
        merged
    }

    /// The tags to run: these, else the job's.
    pub fn playbook_tags<'a>(&'a self, job: &'a Job) -> &'a [String] {
        self.playbook_tags
            .as_deref()
            .unwrap_or(&job.spec.playbook_tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::fixtures;

    #[test]
    fn launch_properties_win_over_the_jobs_and_tags_replace_them() {
        let mut job = fixtures::job("ACME", 0);
        job.spec.properties = serde_json::from_str(r#"{"a": 1, "b": 2}"#).unwrap();
        job.spec.playbook_tags = vec!["web".into()];
        let options = LaunchOptions {
            properties: Some(serde_json::from_str(r#"{"b": 3, "c": 4}"#).unwrap()),
            ..LaunchOptions::default()
        };
        assert_eq!(
            Value::Object(options.properties(&job)),
            serde_json::json!({"a": 1, "b": 3, "c": 4})
        );
        assert_eq!(options.playbook_tags(&job), ["web"]);
        let tagged = LaunchOptions {
            playbook_tags: Some(vec!["db".into()]),
            ..LaunchOptions::default()
        };
        assert_eq!(tagged.playbook_tags(&job), ["db"]);
    }

    #[test]
    fn bad_tags_and_patterns_are_named() {
        let options = LaunchOptions {
            playbook_tags: Some(vec!["ok".into(), "a,b".into()]),
            skip_tags: Some(vec![String::new()]),
            limit: Some(vec!["web one".into()]),
            ..LaunchOptions::default()
        };
        let mut errors = ValidationErrors::default();
        options.validate("", &mut errors);
        let fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["playbookTags[1]", "skipTags[0]", "limit[0]"]);
        let mut empty = ValidationErrors::default();
        LaunchOptions {
            limit: Some(vec![]),
            ..LaunchOptions::default()
        }
        .validate("launchOptions.", &mut empty);
        assert_eq!(empty.errors[0].field, "launchOptions.limit");
    }
}
