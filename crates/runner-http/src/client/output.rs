//! How the client prints what the server answered: the JSON as it came (`--output json`), or
//! tables for a person (`--output table`). Table cells escape control characters, so a job
//! description cannot move a terminal's cursor or recolour it.

use serde_json::Value;

/// The output format of the client commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for a person.
    Table,
    /// The server's JSON, pretty-printed.
    Json,
}

/// A cell: strings as they are (control characters escaped), `null` as `-`, other JSON as JSON.
pub fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    text.chars()
        .flat_map(|c| -> Box<dyn Iterator<Item = char>> {
            if c.is_control() {
                Box::new(c.escape_default())
            } else {
                Box::new(std::iter::once(c))
            }
        })
        .collect()
}

/// An epoch-milliseconds time as `2026-12-03 16:40:05Z`, `-` for none.
pub fn time(value: &Value) -> String {
    value
        .as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "-".to_owned(),
            |at| at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|name| name.chars().count()).collect();
    for row in rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (value, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(value);
            } else {
                text.push_str(&format!("{value:<width$}  "));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

/// `key  value` lines.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(key, value)| format!("{key:<width$}  {value}\n"))
        .collect()
}

/// A page's rows, and a line saying what else there is when the page does not hold it all.
pub fn page(page: &Value, header: &[&str], row: impl Fn(&Value) -> Vec<String>) -> String {
    let results = page["results"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = results.iter().map(row).collect();
    let mut text = table(header, &rows);
    let total = page["totalSize"].as_u64().unwrap_or(0);
    if total > rows.len() as u64 {
        let number = page["page"].as_u64().unwrap_or(0);
        text.push_str(&format!(
            "({} of {total} on page {number}; see --page and --size)\n",
            rows.len()
        ));
    }
    text
}

/// A job's row: id, description, where its playbook is, hosts, status, created.
pub fn job_row(job: &Value) -> Vec<String> {
    let playbook = if job["repository"].is_object() {
        cell(&job["repository"]["url"])
    } else {
        "inline".to_owned()
    };
    let hosts = job["hosts"].as_array().map_or(0, Vec::len);
    vec![
        cell(&job["id"]),
        cell(&job["description"]),
        playbook,
        hosts.to_string(),
        cell(&job["status"]),
        time(&job["createdTime"]),
    ]
}

/// The header of [`job_row`].
pub const JOB_HEADER: &[&str] = &[
    "ID",
    "DESCRIPTION",
    "PLAYBOOK",
    "HOSTS",
    "STATUS",
    "CREATED",
];

/// An execution's handle, `JOB/EXECUTION`, as the commands that take one accept it.
pub fn execution_handle(execution: &Value) -> String {
    format!(
        "{}/{}",
        cell(&execution["job_id"]),
        cell(&execution["execution_id"])
    )
}

/// An execution's row.
pub fn execution_row(execution: &Value) -> Vec<String> {
    let failed = execution["failed_hosts"]
        .as_array()
        .map(|hosts| hosts.iter().map(cell).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    vec![
        execution_handle(execution),
        cell(&execution["status"]),
        time(&execution["start"]),
        time(&execution["end"]),
        if failed.is_empty() {
            "-".into()
        } else {
            failed
        },
    ]
}

/// The header of [`execution_row`].
pub const EXECUTION_HEADER: &[&str] = &["EXECUTION", "STATUS", "START", "END", "FAILED HOSTS"];

/// One execution: its fields, then its per-host recap.
pub fn execution(execution: &Value) -> String {
    let mut pairs = vec![
        ("execution", execution_handle(execution)),
        ("status", cell(&execution["status"])),
        ("start", time(&execution["start"])),
        ("end", time(&execution["end"])),
    ];
    if !execution["message"].is_null() {
        pairs.push(("message", cell(&execution["message"])));
    }
    let mut text = fields(&pairs);
    if let Some(stats) = execution["host_stats"]
        .as_object()
        .filter(|s| !s.is_empty())
    {
        const COUNTS: [&str; 7] = [
            "ok",
            "changed",
            "failed",
            "skipped",
            "unreachable",
            "rescued",
            "ignored",
        ];
        let rows: Vec<Vec<String>> = stats
            .iter()
            .map(|(host, counts)| {
                std::iter::once(cell(&Value::String(host.clone())))
                    .chain(COUNTS.iter().map(|name| cell(&counts[*name])))
                    .collect()
            })
            .collect();
        text.push('\n');
        text.push_str(&table(
            &[
                "HOST",
                "OK",
                "CHANGED",
                "FAILED",
                "SKIPPED",
                "UNREACHABLE",
                "RESCUED",
                "IGNORED",
            ],
            &rows,
        ));
    }
    text
}

/// A schedule's row.
pub fn schedule_row(schedule: &Value) -> Vec<String> {
    let trigger = format!(
        "{} {}",
        cell(&schedule["trigger"]["type"]),
        cell(&schedule["trigger"]["expression"])
    );
    vec![
        cell(&schedule["id"]),
        cell(&schedule["description"]),
        cell(&schedule["serviceAccountAlias"]),
        trigger,
        time(&schedule["nextFireTime"]),
        time(&schedule["lastFireTime"]),
    ]
}

/// The header of [`schedule_row`].
pub const SCHEDULE_HEADER: &[&str] = &[
    "ID",
    "DESCRIPTION",
    "SERVICE ACCOUNT",
    "TRIGGER",
    "NEXT FIRE",
    "LAST FIRE",
];

/// A service account's row.
pub fn service_account_row(account: &Value) -> Vec<String> {
    vec![
        cell(&account["alias"]),
        cell(&account["description"]),
        time(&account["createdTime"]),
    ]
}

/// The header of [`service_account_row`].
pub const SERVICE_ACCOUNT_HEADER: &[&str] = &["NAME", "DESCRIPTION", "CREATED"];

/// One inventory host: its id, groups, how many variables, how it logs in, when it changed.
pub fn host_row(host: &Value) -> Vec<String> {
    let groups: Vec<String> = host["groups"]
        .as_array()
        .map(|groups| groups.iter().map(cell).collect())
        .unwrap_or_default();
    let vars = host["hostVars"].as_object().map_or(0, serde_json::Map::len);
    let login = if host["sshKeyPair"].is_string() {
        format!("key pair {}", cell(&host["sshKeyPair"]))
    } else if host["sshPrivateKey"].is_string() {
        "key".to_owned()
    } else if host["sshPassword"].is_string() {
        "password".to_owned()
    } else {
        "-".to_owned()
    };
    vec![
        cell(&host["id"]),
        if groups.is_empty() {
            "-".into()
        } else {
            groups.join(",")
        },
        vars.to_string(),
        login,
        time(&host["lastUpdatedTime"]),
    ]
}

/// The header of [`host_row`].
pub const HOST_HEADER: &[&str] = &["ID", "GROUPS", "VARS", "LOGIN", "UPDATED"];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cells_escape_terminal_control_characters() {
        assert_eq!(cell(&json!("red \u{1b}[31m!\n")), "red \\u{1b}[31m!\\n");
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(3)), "3");
    }

    #[test]
    fn tables_align_on_the_widest_cell() {
        let text = table(
            &["A", "B"],
            &[
                vec!["long value".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        );
        assert_eq!(text, "A           B\nlong value  x\ns           y\n");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(time(&json!(0)), "1970-01-01 00:00:00Z");
        assert_eq!(time(&json!(null)), "-");
    }
}
