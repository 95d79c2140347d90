//! Job schedules and the service accounts they run under.
//!
//! A schedule fires its job at each due time of a trigger: a 5-field Unix cron expression (UTC),
//! or one ISO-8601 instant. The rule for firing lives in [`Schedule::fire`], which stores call in
//! their atomic section, so one due time creates one execution whatever the number of nodes.
//!
//! **Missed due times.** A schedule whose node(s) were down over several due times fires once,
//! for the latest due time that passed, and then continues with the next one in the future.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountAlias, ExecutionId, JobId, ScheduleId};
use crate::launch::LaunchOptions;
use crate::time::Timestamp;
use crate::validation::ValidationErrors;

/// The keys of a schedule response a client may send back on update; they are ignored.
pub const SCHEDULE_READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "scheduleId",
    "jobId",
    "accountAlias",
    "nextFireTime",
    "createdTime",
    "lastUpdatedTime",
    "lastFireTime",
    "lastSkippedFire",
];

/// A service account: the identity schedules run under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    /// Its name, unique within the account.
    pub alias: String,
    /// The account it belongs to.
    pub account_alias: AccountAlias,
    /// Free text.
    #[cfg_attr(feature = "utoipa", schema(required = true))]
    pub description: Option<String>,
    /// When it was created, in milliseconds since the Unix epoch.
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub created_time: Timestamp,
}

/// A service account as a client sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = ServiceAccountInput))]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSpec {
    /// Its name, unique in the account: 1 to 64 characters of `A-Z a-z 0-9 - _ .`.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(
        value_type = String,
        required = true,
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]+$"
    ))]
    pub alias: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

impl ServiceAccountSpec {
    /// Checks the alias.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        match &self.alias {
            None => errors.add("alias", "is required"),
            Some(alias) => errors.check(
                is_service_account_alias(alias),
                "alias",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
            ),
        }
        errors.into_result()
    }
}

/// True for a well-formed service account alias.
pub fn is_service_account_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias.len() <= 64
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The kind of a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// A 5-field Unix cron expression, in UTC.
    Cron,
    /// One ISO-8601 instant (UTC when no offset is given).
    Date,
}

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Trigger {
    /// Cron or date.
    #[serde(rename = "type")]
    pub kind: TriggerKind,
    /// For `cron`: 5-field Unix cron (minute hour day-of-month month day-of-week), in UTC. For
    /// `date`: an ISO-8601 instant (UTC when no offset is given) that lies in the future.
    pub expression: String,
}

impl Trigger {
    /// Checks the expression; a date must lie after `now`. Errors name `field`.
    pub fn validate(&self, field: &str, now: Timestamp, errors: &mut ValidationErrors) {
        let expression_field = format!("{field}.expression");
        match self.kind {
            TriggerKind::Cron => {
                if let Err(message) = parse_cron(&self.expression) {
                    errors.add(expression_field, message);
                }
            }
            TriggerKind::Date => match parse_date(&self.expression) {
                Err(message) => errors.add(expression_field, message),
                Ok(at) if at <= now => errors.add(expression_field, "lies in the past"),
                Ok(_) => {}
            },
        }
    }

    /// The first due time strictly after `after`, if any.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self.kind {
            TriggerKind::Cron => {
                let cron = parse_cron(&self.expression).ok()?;
                let start = to_datetime(after)?;
                let next = cron.find_next_occurrence(&start, false).ok()?;
                Some(next.timestamp_millis())
            }
            TriggerKind::Date => parse_date(&self.expression).ok().filter(|at| *at > after),
        }
    }

    /// The latest due time at or before `at`, if any.
    fn latest_at_or_before(&self, at: Timestamp) -> Option<Timestamp> {
        match self.kind {
            TriggerKind::Cron => {
                let cron = parse_cron(&self.expression).ok()?;
                let start = to_datetime(at)?;
                let previous = cron.find_previous_occurrence(&start, true).ok()?;
                Some(previous.timestamp_millis())
            }
            TriggerKind::Date => parse_date(&self.expression).ok().filter(|due| *due <= at),
        }
    }
}

fn to_datetime(at: Timestamp) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(at).single()
}

/// Parses a 5-field cron expression (minute hour day-of-month month day-of-week), UTC. When both
/// day fields are restricted, a day matches either (as Vixie cron does).
pub fn parse_cron(expression: &str) -> Result<Cron, String> {
    let fields = expression.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "must have 5 fields (minute hour day-of-month month day-of-week), found {fields}"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
        .map_err(|error| format!("is not a valid cron expression: {error}"))
}

/// Parses an ISO-8601 instant: RFC 3339 with an offset, or without one (taken as UTC).
pub fn parse_date(expression: &str) -> Result<Timestamp, String> {
    let text = expression.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc().timestamp_millis());
        }
    }
    Err("must be an ISO-8601 date and time, e.g. 2030-01-31T12:00:00Z".into())
}

/// A schedule as a client sends it: the trigger under `"trigger"` (as the table says) or under
/// `"type"` (as the example body says), not both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema), schema(as = ScheduleInput))]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// Free text (required by the documents).
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, required = true))]
    pub description: Option<String>,
    /// The service account the schedule runs under (see `/serviceAccounts/{alias}`); it must
    /// exist.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(value_type = String, required = true,
        min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$"))]
    pub service_account_alias: Option<String>,
    /// The trigger.
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// The trigger, as the documents' example names it.
    #[serde(default, rename = "type")]
    pub type_: Option<Trigger>,
    /// What each execution it starts varies, as a start's launch options do
    /// ([`LaunchOptions`]).
    #[serde(default)]
    pub launch_options: Option<LaunchOptions>,
}

impl ScheduleSpec {
    /// Checks every field at `now` and returns the trigger.
    pub fn validate(&self, now: Timestamp) -> Result<Trigger, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        errors.check(self.description.is_some(), "description", "is required");
        match &self.service_account_alias {
            None => errors.add("serviceAccountAlias", "is required"),
            Some(alias) => errors.check(
                is_service_account_alias(alias),
                "serviceAccountAlias",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
            ),
        }
        let trigger = match (&self.trigger, &self.type_) {
            (Some(_), Some(_)) => {
                errors.add(
                    "trigger",
                    "give the trigger under \"trigger\" or \"type\", not both",
                );
                None
            }
            (None, None) => {
                errors.add(
                    "trigger",
                    "is required: {\"type\": \"cron\" | \"date\", \"expression\": ...}",
                );
                None
            }
            (Some(trigger), None) => Some(("trigger", trigger)),
            (None, Some(trigger)) => Some(("type", trigger)),
        };
        if let Some((field, trigger)) = trigger {
            trigger.validate(field, now, &mut errors);
        }
        if let Some(options) = &self.launch_options {
            options.validate("launchOptions.", &mut errors);
        }
        errors.into_result()?;
        Ok(trigger
            .map(|(_, trigger)| trigger.clone())
            .expect("checked above"))
    }
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Its ID.
    pub id: ScheduleId,
    /// The same ID, as the documents also name it.
    pub schedule_id: ScheduleId,
    /// The job it starts.
    pub job_id: JobId,
    /// The job's account.
    pub account_alias: AccountAlias,
    /// Free text.
    pub description: String,
    /// The service account it runs under.
    pub service_account_alias: String,
    /// When it fires.
    pub trigger: Trigger,
    /// The next due time (epoch ms), or `null` once a date schedule fired.
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<i64>, required = true))]
    pub next_fire_time: Option<Timestamp>,
    /// The due time it fired for last (epoch ms), or `null`.
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<i64>, required = true))]
    pub last_fire_time: Option<Timestamp>,
    /// When it was created, in milliseconds since the Unix epoch.
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub created_time: Timestamp,
    /// When it was last updated, in milliseconds since the Unix epoch.
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub last_updated_time: Timestamp,
    /// The launch options of every execution it starts; left out when it varies nothing.
    #[serde(default, skip_serializing_if = "LaunchOptions::is_default")]
    pub launch_options: LaunchOptions,
    /// The latest due time at which it started nothing, because its job skips overlapping runs
    /// (`overlap: skip`) and an execution of the job had not ended; left out until one is
    /// skipped. `lastFireTime` counts skipped fires too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_skipped_fire: Option<SkippedFire>,
}

/// A due time at which a schedule started nothing (see [`crate::overlap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SkippedFire {
    /// The due time (epoch ms).
    #[cfg_attr(feature = "utoipa", schema(value_type = i64))]
    pub due_time: Timestamp,
    /// The execution of the job that had not ended.
    pub active_execution_id: ExecutionId,
}

impl Schedule {
    /// A new schedule from a validated spec.
    pub fn new(
        account_alias: AccountAlias,
        job_id: JobId,
        description: String,
        service_account_alias: String,
        trigger: Trigger,
        now: Timestamp,
    ) -> Self {
        let id = ScheduleId::new();
        let next_fire_time = trigger.next_after(now);
        Self {
            id,
            schedule_id: id,
            job_id,
            account_alias,
            description,
            service_account_alias,
            trigger,
            next_fire_time,
            last_fire_time: None,
            created_time: now,
            last_updated_time: now,
            launch_options: LaunchOptions::default(),
            last_skipped_fire: None,
        }
    }

    /// Replaces what a client may change, and plans the next due time from `now`.
    pub fn update(
        &mut self,
        description: String,
        service_account_alias: String,
        trigger: Trigger,
        now: Timestamp,
    ) {
        self.description = description;
        self.service_account_alias = service_account_alias;
        self.next_fire_time = trigger.next_after(now);
        self.trigger = trigger;
        self.last_updated_time = now;
    }

    /// If the schedule is due at `now`, returns the due time to fire for — the latest one that
    /// passed, when several did — and moves `next_fire_time` to the first due time after `now`.
    ///
    /// ```
    /// use runner_core::schedule::{Schedule, Trigger, TriggerKind};
    /// # let job = runner_core::ids::JobId::new();
    /// let every_minute = Trigger { kind: TriggerKind::Cron, expression: "* * * * *".into() };
    /// let mut schedule = Schedule::new("ACME".parse().unwrap(), job, "demo".into(), "svc".into(), every_minute, 0);
    /// assert_eq!(schedule.next_fire_time, Some(60_000));
    /// assert_eq!(schedule.fire(59_999), None);
    /// // Down for three minutes: one fire, for the latest due time.
    /// assert_eq!(schedule.fire(200_000), Some(180_000));
    /// assert_eq!(schedule.next_fire_time, Some(240_000));
    /// ```
    pub fn fire(&mut self, now: Timestamp) -> Option<Timestamp> {
        let next = self.next_fire_time?;
        if next > now {
            return None;
        }
        let due = self
            .trigger
            .latest_at_or_before(now)
            .unwrap_or(next)
            .max(next);
        self.last_fire_time = Some(due);
        self.next_fire_time = self.trigger.next_after(now.max(due));
        Some(due)
    }
}

impl FromStr for TriggerKind {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "cron" => Ok(TriggerKind::Cron),
            "date" => Ok(TriggerKind::Date),
            other => Err(format!(
                "unknown trigger type {other:?}; use \"cron\" or \"date\""
            )),
        }
    }
}

#[cfg(test)]
mod tests;
