//! The client subcommands of the `runner` binary against a real `runner serve` (sled store, real
//! ansible-playbook): every command is the real binary in a child process, over HTTP. Waits wake
//! on what they wait for (a line of a followed log, a process's exit); nothing sleeps.
#![cfg(all(feature = "sled", feature = "ansible"))]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use common::process::{
    Runner, admin_token, ansible_path, localhost, playbook, seen_by_runs, sled_dir,
};
use serde_json::{Value, json};

/// What one client command did.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The stdout as JSON (for `--output json`).
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| panic!("{error}: {self:?}"))
    }
}

/// The client binary with nothing from the test's own environment: no `RUNNER_*`, a `HOME` of
/// its own (so no config file but the one a test writes).
struct Client {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Client {
    fn new(url: &str, token: &str) -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            env: vec![
                ("RUNNER_URL".into(), url.into()),
                ("RUNNER_TOKEN".into(), token.into()),
                ("RUNNER_ACCOUNT".into(), "ACME".into()),
            ],
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runner"));
        command.args(args).env("HOME", self.home.path());
        command.env_remove("XDG_CONFIG_HOME");
        for (key, _) in std::env::vars() {
            if key.starts_with("RUNNER_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    fn run(&self, args: &[&str]) -> Ran {
        let output = self.command(args).output().expect("the client runs");
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// Runs and asserts success.
    fn ok(&self, args: &[&str]) -> Ran {
        let ran = self.run(args);
        assert_eq!(ran.code, 0, "{args:?}: {ran:?}");
        ran
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn server(dir: &Path) -> (Runner, String) {
    let path = ansible_path();
    let (store, tokens) = sled_dir(dir);
    let runner = Runner::spawn(dir, &["--store", &store], &[("PATH", &path)]);
    let token = admin_token(&tokens);
    (runner, token)
}

/// The localhost inventory in YAML.
fn hosts_yaml() -> String {
    let host = localhost();
    format!(
        "hosts:\n  - id: localhost\n    hostVars:\n      ansible_connection: local\n      ansible_python_interpreter: \"{}\"\n",
        host["hostVars"]["ansible_python_interpreter"]
            .as_str()
            .unwrap()
    )
}

#[test]
fn jobs_are_created_from_yaml_with_a_playbook_file_run_followed_and_managed() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, token) = server(dir.path());
    let client = Client::new(&runner.base, &token);
    let files = tempfile::tempdir().unwrap();
    write(
        files.path(),
        "site.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: greet\n      ansible.builtin.debug: {msg: hello from the cli}\n",
    );
    let job_file = write(
        files.path(),
        "job.yaml",
        &format!(
            "description: cli job\nplaybookFile: site.yml\n{}",
            hosts_yaml()
        ),
    );

    // Create (table), list, get (JSON).
    let created = client.ok(&["job", "create", "-f", &job_file]);
    assert!(created.stdout.starts_with("ID "), "{created:?}");
    assert!(created.stdout.contains("cli job"), "{created:?}");
    let listed = client.ok(&["job", "list", "-o", "json"]).json();
    assert_eq!(listed["totalSize"], 1);
    let job_id = listed["results"][0]["id"].as_str().unwrap().to_owned();
    assert!(created.stdout.contains(&job_id));
    let table = client.ok(&["job", "list"]);
    assert!(table.stdout.contains(&job_id) && table.stdout.contains("inline"));
    let got = client
        .ok(&["job", "get", &job_id, "--output", "json"])
        .json();
    use base64::Engine as _;
    let sent = base64::engine::general_purpose::STANDARD
        .decode(got["playbook"].as_str().unwrap())
        .unwrap();
    assert!(
        String::from_utf8(sent)
            .unwrap()
            .contains("hello from the cli")
    );

    // Start and follow: the output streams, exit 0 on SUCCESS.
    let run = client.ok(&["start", &job_id, "--follow"]);
    assert!(run.stdout.contains("TASK [greet]"), "{run:?}");
    assert!(run.stdout.contains("hello from the cli"), "{run:?}");
    assert!(run.stdout.contains("PLAY RECAP"), "{run:?}");
    assert!(run.stderr.contains("ended SUCCESS"), "{run:?}");

    // Executions, status with the per-host recap, logs.
    let executions = client.ok(&["executions", &job_id, "-o", "json"]).json();
    assert_eq!(executions["results"][0]["status"], "SUCCESS");
    let execution_id = executions["results"][0]["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let handle = format!("{job_id}/{execution_id}");
    let table = client.ok(&["executions", &job_id]);
    assert!(
        table.stdout.contains(&handle) && table.stdout.contains("SUCCESS"),
        "{table:?}"
    );
    let status = client.ok(&["status", &handle]);
    assert!(status.stdout.contains("HOST"), "{status:?}");
    assert!(status.stdout.contains("localhost"), "{status:?}");
    let by_flag = client.ok(&["status", &execution_id, "--job", &job_id, "-o", "json"]);
    assert_eq!(by_flag.json()["host_stats"]["localhost"]["ok"], 1);
    let logs = client.ok(&["logs", &handle]);
    assert_eq!(logs.stdout, run.stdout, "the log reads as it was followed");
    let followed_again = client.ok(&["logs", &handle, "--follow"]);
    assert_eq!(followed_again.stdout, run.stdout);

    // Update (a JSON file this time; --playbook gives the playbook), then start on one host.
    write(
        files.path(),
        "fail.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: break\n      ansible.builtin.fail: {msg: broken on purpose}\n",
    );
    let definition = json!({"description": "now failing", "hosts": [localhost()]});
    let json_file = write(files.path(), "job.json", &definition.to_string());
    let fail_playbook = files.path().join("fail.yml").display().to_string();
    let updated = client.ok(&[
        "job",
        "update",
        &job_id,
        "-f",
        &json_file,
        "--playbook",
        &fail_playbook,
    ]);
    assert!(updated.stdout.contains("now failing"), "{updated:?}");
    let failed = client.run(&["start", &job_id, "--host", "localhost", "--follow"]);
    assert_eq!(failed.code, 1, "a FAILURE exits non-zero: {failed:?}");
    assert!(failed.stdout.contains("broken on purpose"), "{failed:?}");
    assert!(failed.stderr.contains("ended FAILURE"), "{failed:?}");
    let latest = client
        .ok(&["executions", &job_id, "--size", "1", "-o", "json"])
        .json();
    let failed_id = latest["results"][0]["execution_id"].as_str().unwrap();
    let failed_handle = format!("{job_id}/{failed_id}");
    let restarted = client.ok(&["restart", &failed_handle, "-o", "json"]).json();
    assert_eq!(restarted["status"], "PENDING", "{restarted}");
    let again = client.run(&["logs", &failed_handle, "--follow"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("FAILURE"), "{again:?}");
    // A restart of what is not in FAILURE any more... is; of a SUCCESS it is the server's 409.
    let refused = client.run(&["restart", &handle]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("409"), "{refused:?}");

    // Delete.
    let deleted = client.ok(&["job", "delete", &job_id]);
    assert!(deleted.stdout.contains("deleted job"), "{deleted:?}");
    let gone = client.run(&["job", "get", &job_id]);
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("404"), "{gone:?}");

    let (exit, stdout, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    let printed = format!("{}\n{}", stdout.join("\n"), stderr.join("\n"));
    assert!(!printed.contains(&token), "the token was logged");
}

#[test]
fn a_running_execution_is_stopped_and_another_killed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, token) = server(dir.path());
    let client = Client::new(&runner.base, &token);
    let shared = seen_by_runs();
    let go = shared.path().join("go");
    let files = tempfile::tempdir().unwrap();
    write(
        files.path(),
        "hold.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: hold\n      ansible.builtin.wait_for: {{path: '{}', timeout: 600}}\n    - name: after\n      ansible.builtin.debug: {{msg: after}}\n",
            go.display()
        ),
    );
    let job_file = write(
        files.path(),
        "job.yaml",
        &format!(
            "description: holding\nplaybookFile: hold.yml\n{}",
            hosts_yaml()
        ),
    );
    let job = client
        .ok(&["job", "create", "-f", &job_file, "-o", "json"])
        .json();
    let job_id = job["id"].as_str().unwrap();

    // `start --follow` in the background; once the held task's line is out, stop it.
    let mut follower = client
        .command(&["start", job_id, "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(follower.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("TASK [hold]") {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the log ended early: {seen}"
        );
        seen.push_str(&line);
    }
    let executions = client.ok(&["executions", job_id, "-o", "json"]).json();
    let execution = &executions["results"][0];
    assert_eq!(execution["status"], "RUNNING", "output came before the end");
    let handle = format!("{job_id}/{}", execution["execution_id"].as_str().unwrap());
    let stopping = client
        .ok(&["stop", &handle, "--expiry", "120", "-o", "json"])
        .json();
    assert!(
        ["STOPPING", "STOPPED"].contains(&stopping["status"].as_str().unwrap()),
        "{stopping}"
    );
    // The held task ends; no further task starts.
    std::fs::write(&go, "go").unwrap();
    let status = follower.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    follower
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "STOPPED is not SUCCESS: {stderr}");
    assert!(stderr.contains("ended STOPPED"), "{stderr}");
    assert!(!rest.contains("TASK [after]"), "{rest}");
    std::fs::remove_file(&go).unwrap();

    // A kill, with an expiry, answered at once; the followed log ends KILLED.
    let started = client.ok(&["start", job_id, "-o", "json"]).json();
    let handle = format!("{job_id}/{}", started["execution_id"].as_str().unwrap());
    let killed = client.ok(&["kill", &handle, "--expiry", "30"]);
    assert!(killed.stdout.contains("status"), "{killed:?}");
    let ended = client.run(&["logs", &handle, "--follow"]);
    assert_eq!(ended.code, 1, "{ended:?}");
    assert!(ended.stderr.contains("KILLED"), "{ended:?}");
    // Stopping what has ended is the server's 409, shown as it gave it.
    let late = client.run(&["stop", &handle]);
    assert_eq!(late.code, 1);
    assert!(late.stderr.contains("409 Conflict"), "{late:?}");
    drop(runner);
}

#[test]
fn schedules_service_accounts_errors_and_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, token) = server(dir.path());
    let mut client = Client::new(&runner.base, &token);
    let files = tempfile::tempdir().unwrap();

    // The server's 400, every field named, on stderr; nothing on stdout.
    let bad = write(
        files.path(),
        "bad.yaml",
        "description: bad\nexecutionTtl: 0\nplaybook: \"- hosts: all\"\nhosts: []\n",
    );
    let refused = client.run(&["job", "create", "-f", &bad]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stdout.is_empty(), "{refused:?}");
    assert!(refused.stderr.contains("400 Bad Request"), "{refused:?}");
    for field in ["executionTtl:", "playbook:"] {
        assert!(refused.stderr.contains(field), "{field} in {refused:?}");
    }
    // A file that is not YAML: said before anything is sent.
    let broken = write(files.path(), "broken.yaml", "hosts: [unclosed\n");
    let broken = client.run(&["job", "create", "-f", &broken]);
    assert_eq!(broken.code, 2, "{broken:?}");
    assert!(broken.stderr.contains("broken.yaml"), "{broken:?}");

    // Service accounts and schedules.
    let job = write(
        files.path(),
        "job.yaml",
        &format!(
            "description: scheduled\nplaybook: {}\n{}",
            playbook("- hosts: all\n  gather_facts: false\n  tasks: []\n"),
            hosts_yaml()
        ),
    );
    let job = client
        .ok(&["job", "create", "-f", &job, "-o", "json"])
        .json();
    let job_id = job["id"].as_str().unwrap();
    let account = client.ok(&[
        "service-account",
        "create",
        "nightly",
        "--description",
        "the night shift",
    ]);
    assert!(account.stdout.contains("the night shift"), "{account:?}");
    let listed = client.ok(&["service-account", "list", "-o", "json"]).json();
    assert_eq!(listed["results"][0]["alias"], "nightly");
    client.ok(&["service-account", "get", "nightly"]);
    let schedule = client
        .ok(&[
            "schedule",
            "create",
            job_id,
            "--cron",
            "0 3 * * *",
            "--service-account",
            "nightly",
            "--description",
            "at three",
            "-o",
            "json",
        ])
        .json();
    let schedule_id = schedule["id"].as_str().unwrap();
    assert!(schedule["nextFireTime"].is_i64(), "{schedule}");
    let table = client.ok(&["schedule", "list", job_id]);
    assert!(table.stdout.contains("cron 0 3 * * *"), "{table:?}");
    let moved = client
        .ok(&[
            "schedule",
            "update",
            job_id,
            schedule_id,
            "--cron",
            "30 4 * * 1",
            "--service-account",
            "nightly",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(moved["trigger"]["expression"], "30 4 * * 1");
    let got = client
        .ok(&["schedule", "get", job_id, schedule_id, "-o", "json"])
        .json();
    assert_eq!(got["trigger"]["expression"], "30 4 * * 1");
    let bad_cron = client.run(&[
        "schedule",
        "create",
        job_id,
        "--cron",
        "not cron",
        "--service-account",
        "nightly",
    ]);
    assert_eq!(bad_cron.code, 1, "{bad_cron:?}");
    assert!(
        bad_cron.stderr.contains("trigger.expression:"),
        "{bad_cron:?}"
    );
    let in_use = client.run(&["service-account", "delete", "nightly"]);
    assert!(in_use.stderr.contains("409"), "{in_use:?}");
    client.ok(&["schedule", "delete", job_id, schedule_id]);
    client.ok(&["service-account", "delete", "nightly"]);
    let none = client
        .ok(&["schedule", "list", job_id, "-o", "json"])
        .json();
    assert_eq!(none["totalSize"], 0);

    // A wrong token is the server's 401; no account is a usage error.
    let mut wrong = Client::new(&runner.base, "wrong-token-0123456789abcdef");
    let unauthorized = wrong.run(&["job", "list"]);
    assert_eq!(unauthorized.code, 1);
    assert!(
        unauthorized.stderr.contains("401 Unauthorized"),
        "{unauthorized:?}"
    );
    wrong.env.retain(|(key, _)| key != "RUNNER_ACCOUNT");
    let no_account = wrong.run(&["job", "list"]);
    assert_eq!(no_account.code, 2);
    assert!(no_account.stderr.contains("--account"), "{no_account:?}");

    // The config file: used when private, refused when others may read it; flags win.
    client.env.clear();
    let config_dir = client.home.path().join(".config/runner");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("url: {}\ntoken: {token}\naccount: ACME\n", runner.base),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = client.run(&["job", "list"]);
    assert_eq!(open.code, 2, "{open:?}");
    assert!(open.stderr.contains("chmod 600"), "{open:?}");
    assert!(!open.stderr.contains(&token), "{open:?}");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let listed = client.ok(&["job", "list", "-o", "json"]).json();
    assert_eq!(listed["totalSize"], 1);
    let other = client.run(&["job", "list", "--account", "BETA", "-o", "json"]);
    assert_eq!(other.json()["totalSize"], 0, "the flag wins over the file");
    drop(runner);
}

#[test]
fn inventory_hosts_are_added_listed_replaced_and_removed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, token) = server(dir.path());
    let client = Client::new(&runner.base, &token);
    let files = tempfile::tempdir().unwrap();

    let added = client
        .ok(&[
            "host",
            "add",
            "web-1",
            "--group",
            "web",
            "--var",
            "ansible_port=2222",
            "--var",
            "role=front",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(added["groups"], json!(["web"]));
    assert_eq!(
        added["hostVars"],
        json!({"ansible_port": 2222, "role": "front"})
    );
    let file = write(
        files.path(),
        "db.yaml",
        "groups: [db]\nhostVars:\n  ansible_host: 10.0.0.7\nsshPassword: hunter22-db\n",
    );
    let db = client
        .ok(&["host", "add", "db-1", "-f", &file, "-o", "json"])
        .json();
    assert_eq!(db["sshPassword"], "********", "write-only");

    let listed = client.ok(&["host", "list"]).stdout;
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines[0].starts_with("ID"), "{listed}");
    assert!(
        lines[1].starts_with("db-1") && lines[1].contains("password"),
        "{listed}"
    );
    assert!(
        lines[2].starts_with("web-1") && lines[2].contains("web"),
        "{listed}"
    );
    assert!(!listed.contains("hunter22"), "{listed}");

    let replaced = client
        .ok(&["host", "update", "web-1", "--group", "canary", "-o", "json"])
        .json();
    assert_eq!(replaced["groups"], json!(["canary"]));
    assert_eq!(
        replaced["hostVars"],
        json!({}),
        "an update replaces the host"
    );

    let bad = client.run(&["host", "add", "bad", "--group", "9lives"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("groups[0]"), "{bad:?}");

    client.ok(&["host", "delete", "web-1"]);
    let gone = client.run(&["host", "get", "web-1"]);
    assert_eq!(gone.code, 1, "{gone:?}");
    assert!(gone.stderr.contains("404"), "{gone:?}");
    assert!(client.ok(&["host", "get", "db-1"]).stdout.contains("db-1"));
}
