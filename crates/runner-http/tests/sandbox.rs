//! What a run can and cannot see, and what it leaves behind: the real `runner` binary (sled store),
//! real `ansible-playbook`, real bubblewrap. Each playbook tries what a hostile tenant would, and
//! prints what it got into a task failure, which the execution's events carry; the tests assert
//! that nothing of the server or of another run is in them.
//!
//! The server's directory is under /var/tmp, not /tmp: every run has a private /tmp, so a server
//! under /tmp would be hidden by that alone, and the explicit hiding would go untested.
#![cfg(all(feature = "sled", feature = "ansible"))]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::process::{
    Api, Runner, SseClient, admin_token, ansible_path, is_final, localhost, playbook,
    reachable_by_runs,
};
use serde_json::json;

/// A play whose first task holds until `go` appears in its workspace (the test writes it there),
/// after writing `secret` into `b-secret.txt` in the workspace.
fn holding_play(secret: &str) -> String {
    format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: write a secret\n      ansible.builtin.copy: {{content: '{secret}', dest: '{{{{ playbook_dir }}}}/b-secret.txt'}}\n    - name: hold\n      ansible.builtin.wait_for: {{path: '{{{{ playbook_dir }}}}/go', timeout: 600}}\n    - name: after\n      ansible.builtin.debug: {{msg: after}}\n"
    )
}

/// A task that runs `script` (a shell line) on the controller, in a `lookup('pipe')` (which is
/// where a playbook reads the controller's files even when every host is remote), and fails with
/// its output, so that the output lands in the events. Failures are ignored: the play goes on.
fn prying_task(name: &str, script: &str) -> String {
    // A JSON string is a YAML string; `; true` because the lookup drops the output of a failure.
    let script = serde_json::to_string(&format!("{script}; true")).unwrap();
    format!(
        "    - name: {name}\n      ansible.builtin.fail:\n        msg: \"{{{{ lookup('pipe', script) }}}}\"\n      vars:\n        script: {script}\n      ignore_errors: true\n"
    )
}

/// A server in `dir` (sled data in `data`, work root `w`), with canaries in its environment.
struct Server {
    runner: Runner,
    api: Api,
    dir: PathBuf,
}

const DB_CANARY: &str = "postgres://canary-user:canary-DB-PASSWORD@db.invalid/runner";
const SETTING_CANARY: &str = "canary-SETTING-value";

impl Server {
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    fn start_with(dir: &Path, more: &[&str]) -> Self {
        let path = ansible_path();
        let store = format!("sled:{}", dir.join("data").display());
        let work = dir.join("w");
        let mut args = vec!["--store", &store, "--work-root", work.to_str().unwrap()];
        args.extend(more);
        let runner = Runner::spawn(
            dir,
            &args,
            &[
                ("PATH", &path),
                ("DATABASE_URL", DB_CANARY),
                ("RUNNER_TEST_CANARY", SETTING_CANARY),
            ],
        );
        let api = Api::new(&runner.base, &admin_token(&dir.join("data/tokens")));
        Self {
            runner,
            api,
            dir: dir.to_owned(),
        }
    }

    /// Starts a job of ACME with `play` on localhost; returns (execution id, execution path).
    async fn run(&self, play: &str) -> (String, String) {
        let job = json!({"playbook": playbook(play), "hosts": [localhost()]});
        self.api.run(job).await
    }

    async fn stream(&self, href: &str) -> SseClient {
        let url = format!("{}{href}/events", self.api.base);
        SseClient::connect(&self.api.client, &url, &self.api.token, None).await
    }

    /// Reads the execution's live stream until `task` starts.
    async fn until_task_starts(&self, href: &str, task: &str) {
        let mut stream = self.stream(href).await;
        loop {
            let event = stream.next().await;
            assert!(
                !is_final(&event.data),
                "ended before {task}: {:?}",
                event.data
            );
            if event.event == "task_start" && event.data["task"] == task {
                return;
            }
        }
    }

    /// Reads the execution's live stream until its final status; returns every event as text.
    async fn until_final(&self, href: &str) -> (String, String) {
        let mut stream = self.stream(href).await;
        let mut seen = Vec::new();
        loop {
            let event = stream.next().await;
            seen.push(event.data.to_string());
            if is_final(&event.data) {
                let status = event.data["status"].as_str().unwrap().to_owned();
                return (status, seen.join("\n"));
            }
        }
    }

    fn work_root(&self) -> PathBuf {
        self.dir.join("w")
    }

    /// The workspace of execution `id` (any node, any attempt), if it exists.
    fn workspace(&self, id: &str) -> Option<PathBuf> {
        let nodes = std::fs::read_dir(self.work_root()).ok()?;
        nodes.flatten().find_map(|node| {
            std::fs::read_dir(node.path())
                .ok()?
                .flatten()
                .find_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    name.starts_with(id).then(|| entry.path())
                })
        })
    }

    async fn post(&self, href: &str, verb: &str) {
        self.api
            .send(reqwest::Method::POST, &format!("{href}/{verb}"), None)
            .await;
    }
}

fn server_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    reachable_by_runs(dir.path());
    dir
}

fn running_as_root() -> bool {
    let output = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// Live processes whose environment carries the run marker of execution `id`.
fn processes_of(id: &str) -> Vec<u32> {
    let marker = format!("RUNNER_RUN_MARKER={id}-");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = state
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            !zombie
                && environ
                    .split(|byte| *byte == 0)
                    .any(|var| var.starts_with(marker.as_bytes()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_sees_neither_the_server_nor_another_run() {
    let dir = server_dir();
    let server = Server::start(dir.path());
    let data = dir.path().join("data");
    let tokens = data.join("tokens");
    let token_text = std::fs::read_to_string(&tokens).unwrap();
    // The key that seals the store's secrets, made at first start beside the token file.
    let secret_key = data.join("secret.key");
    let key_text = std::fs::read_to_string(&secret_key).unwrap();
    let admin = server.api.token.clone();

    // Run B holds, with a secret in its workspace and its key files beside it.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let b_secret = format!("B-SECRET-{nanos}");
    let (b_id, b_href) = server.run(&holding_play(&b_secret)).await;
    server.until_task_starts(&b_href, "hold").await;
    let b_workspace = server.workspace(&b_id).expect("B's workspace");
    assert!(b_workspace.join("secrets").is_dir());

    // Run A pries.
    let work_root = server.work_root();
    let mut play = String::from("- hosts: all\n  gather_facts: false\n  tasks:\n");
    play.push_str(&prying_task(
        "server files",
        &format!(
            "id; echo TOKENS[; cat {tokens} 2>/dev/null; echo ]TOKENS; echo KEY[; cat {key} 2>/dev/null; echo ]KEY; echo DATA[; ls -A {data} 2>&1; echo ]DATA",
            tokens = tokens.display(),
            key = secret_key.display(),
            data = data.display()
        ),
    ));
    play.push_str(&prying_task(
        "other runs",
        &format!(
            "echo RUNS[; ls {root}/*/; cat {root}/*/{b_id}*/b-secret.txt {root}/*/{b_id}*/secrets/* 2>/dev/null; echo ]RUNS",
            root = work_root.display()
        ),
    ));
    play.push_str(&prying_task("environment", "env"));
    let (_, a_href) = server.run(&play).await;
    let (status, events) = server.until_final(&a_href).await;
    assert_eq!(
        status, "SUCCESS",
        "the prying tasks fail on purpose, ignored"
    );

    // It ran, and printed what it got.
    assert!(
        events.contains("TOKENS[") && events.contains("]RUNS"),
        "{events}"
    );
    if running_as_root() {
        assert!(
            events.contains("uid=65534(nobody)"),
            "runs as nobody: {events}"
        );
    }
    // The token file and the data directory: empty (or absent).
    assert!(events.contains(r"TOKENS[\n]TOKENS"), "{events}");
    assert!(events.contains(r"KEY[\n]KEY"), "{events}");
    assert!(!events.contains(key_text.trim()), "the secret key leaked");
    assert!(events.contains(r"DATA[\n]DATA"), "{events}");
    assert!(!events.contains(&admin), "the admin token leaked: {events}");
    for line in token_text.lines().filter(|line| !line.trim().is_empty()) {
        assert!(!events.contains(line.trim()), "a token line leaked");
    }
    // Another run: neither its workspace nor its files.
    assert!(
        !events.contains(&b_id),
        "B's workspace is visible: {events}"
    );
    assert!(!events.contains(&b_secret), "B's secret leaked: {events}");
    // The environment: the executor's variables only.
    assert!(events.contains("HOME=/tmp"), "{events}");
    for leaked in [
        "DATABASE_URL",
        "canary-DB-PASSWORD",
        SETTING_CANARY,
        "RUNNER_TEST_CANARY",
    ] {
        assert!(!events.contains(leaked), "{leaked} leaked: {events}");
    }
    let unescaped = events.replace("\\n", "\n");
    for variable in unescaped
        .split(['\n', '"', ' '])
        .filter(|word| word.starts_with("RUNNER_"))
    {
        let name = variable.split('=').next().unwrap();
        assert!(
            [
                "RUNNER_EVENTS_SOCKET",
                "RUNNER_STOP_FILE",
                "RUNNER_RUN_MARKER"
            ]
            .contains(&name),
            "{name} reached the run"
        );
    }

    // B is killed; its workspace goes with it.
    server.post(&b_href, "kill").await;
    let (status, _) = server.until_final(&b_href).await;
    assert_eq!(status, "KILLED");
    assert_eq!(server.workspace(&b_id), None);

    let Server { runner, .. } = server;
    let (exit, stdout, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    let printed = format!("{}\n{}", stdout.join("\n"), stderr.join("\n"));
    assert!(!printed.contains(&admin), "the token was logged");
    assert!(!printed.contains(&b_secret));
}

/// A repository job runs from the node's mirror of its repository (fetched as the sandbox user),
/// and its playbook finds neither the mirrors nor their directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_sees_no_repository_mirror() {
    let dir = server_dir();
    let cache = dir.path().join("runner-repositories");
    let origin = dir.path().join("origin");
    std::fs::create_dir(&origin).unwrap();
    let mut play = String::from("- hosts: all\n  gather_facts: false\n  tasks:\n");
    play.push_str(&prying_task(
        "mirrors",
        &format!(
            "echo CACHE[; ls -A {cache} 2>/dev/null; cat {cache}/*/config 2>/dev/null; echo ]CACHE",
            cache = cache.display()
        ),
    ));
    std::fs::write(origin.join("site.yml"), play).unwrap();
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(&origin)
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "pry"]);
    let server = Server::start_with(dir.path(), &["--allow-local-repositories"]);
    let job = json!({
        "repository": {"url": format!("file://{}", origin.display()), "defaultPlaybook": "site.yml"},
        "hosts": [localhost()],
    });
    for round in ["first run: a new mirror", "second run: the same mirror"] {
        let (_, href) = server.api.run(job.clone()).await;
        let (status, events) = server.until_final(&href).await;
        if status != "SUCCESS" {
            let log = server.api.run_log(&href).await;
            panic!("{round}: {status}\n{events}\nrun log:\n{log}");
        }
        assert!(events.contains(r"CACHE[\n]CACHE"), "{round}: {events}");
        let mirrors: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .filter(|entry| entry.path().is_dir())
            .collect();
        assert_eq!(mirrors.len(), 1, "{round}: one mirror on the server's side");
    }
    let Server { runner, .. } = server;
    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_go_with_every_ending_and_no_process_outlives_a_killed_server() {
    let dir = server_dir();
    let server = Server::start(dir.path());

    // Success and failure.
    let ok =
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: {msg: hi}\n";
    let (id, href) = server.run(ok).await;
    assert_eq!(server.until_final(&href).await.0, "SUCCESS");
    assert_eq!(server.workspace(&id), None, "after SUCCESS");
    let failing =
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.fail: {msg: no}\n";
    let (id, href) = server.run(failing).await;
    assert_eq!(server.until_final(&href).await.0, "FAILURE");
    assert_eq!(server.workspace(&id), None, "after FAILURE");

    // A graceful stop: the held task ends (the test lets it), no further task starts.
    let (id, href) = server.run(&holding_play("s")).await;
    server.until_task_starts(&href, "hold").await;
    server.post(&href, "stop").await;
    let workspace = server.workspace(&id).expect("a workspace while it runs");
    std::fs::write(workspace.join("go"), "go").unwrap();
    assert_eq!(server.until_final(&href).await.0, "STOPPED");
    assert_eq!(server.workspace(&id), None, "after STOPPED");

    // A kill.
    let (id, href) = server.run(&holding_play("k")).await;
    server.until_task_starts(&href, "hold").await;
    server.post(&href, "kill").await;
    assert_eq!(server.until_final(&href).await.0, "KILLED");
    assert_eq!(server.workspace(&id), None, "after KILLED");

    // kill -9 of the server: within a second, no process of its run is left.
    let sleeper = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: sleep\n      ansible.builtin.command: sleep 300\n";
    let (id, href) = server.run(sleeper).await;
    server.until_task_starts(&href, "sleep").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    // The task has started; its `sleep` follows as soon as the module runs.
    while !processes_of(&id).iter().any(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| cmd.starts_with(b"sleep\0"))
    }) {
        assert!(Instant::now() < deadline, "the sleep never started");
        std::thread::yield_now();
    }
    let status = std::process::Command::new("kill")
        .args(["-KILL", &server.runner.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let killed_at = Instant::now();
    loop {
        let left = processes_of(&id);
        if left.is_empty() {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(1),
            "processes of the run outlived the server by a second: {left:?}"
        );
        std::thread::yield_now();
    }
    assert!(
        server.workspace(&id).is_some(),
        "a dead node cannot clean up"
    );
    drop(server);

    // The next incarnation removes what the dead one left.
    let server = Server::start(dir.path());
    assert_eq!(server.workspace(&id), None, "after a restart");
    let leftovers: Vec<String> = std::fs::read_dir(server.work_root())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "only the new node's directory and lock: {leftovers:?}"
    );
    // A request first: SIGTERM right after the "listening" line can come before the server has
    // installed its handler (it does when it starts serving), and would end it abruptly.
    server
        .api
        .send(reqwest::Method::GET, "/jobs/ACME", None)
        .await;
    let Server { runner, .. } = server;
    let (exit, _, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
}

/// A host of ACME's inventory (or the script source's listing) that runs on this machine.
fn local_vars(role: &str) -> serde_json::Value {
    let mut vars = localhost()["hostVars"].clone();
    if !role.is_empty() {
        vars["role"] = json!(role);
    }
    vars
}

/// A `useDynamicInventory` job runs on its account's inventory hosts, in their groups, with the
/// job's own hostVars over them, and on its account's inventory source (a script); another
/// account's source is out of its reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_inventory_run_gets_its_accounts_hosts_groups_and_sources() {
    let dir = server_dir();
    let listing = json!({
        "_meta": {"hostvars": {"scripted-1": local_vars("script")}},
        "scripted": {"hosts": ["scripted-1"]},
    });
    let script = dir.path().join("acme-hosts.sh");
    std::fs::write(&script, format!("#!/bin/sh\ncat <<'EOF'\n{listing}\nEOF\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let beta = dir.path().join("beta.yml");
    std::fs::write(&beta, "all:\n  hosts:\n    beta-SOURCE-SECRET-host: {}\n").unwrap();
    let acme_source = format!("ACME={}", script.display());
    let beta_source = format!("BETA={}", beta.display());
    let server = Server::start_with(
        dir.path(),
        &[
            "--inventory-source",
            &acme_source,
            "--inventory-source",
            &beta_source,
        ],
    );
    let api = &server.api;
    for (id, group) in [("web-1", "web"), ("db-1", "db")] {
        let host = json!({"id": id, "groups": [group], "hostVars": local_vars("inventory")});
        api.send(reqwest::Method::POST, "/inventory/ACME/hosts", Some(host))
            .await;
    }
    let play = format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: \"SEEN {{{{ inventory_hostname }}}} {{{{ role }}}} {{{{ group_names | join(',') }}}}\"\n    - shell: \"echo BETA[; cat {beta} 2>&1; echo ]BETA\"\n      run_once: true\n      ignore_errors: true\n",
        beta = beta.display()
    );
    let job = json!({
        "playbook": playbook(&play),
        "useDynamicInventory": true,
        "hosts": [{"id": "web-1", "hostVars": {"role": "job"}, "groups": ["canary"]}],
    });
    let (_, href) = api.run(job).await;
    let (status, events) = server.until_final(&href).await;
    assert_eq!(status, "SUCCESS", "{events}");
    let log = api.run_log(&href).await;
    for seen in [
        "SEEN web-1 job canary,web",
        "SEEN db-1 inventory db",
        "SEEN scripted-1 script scripted",
    ] {
        assert!(log.contains(seen), "{seen} in:\n{log}");
    }
    assert!(events.contains("BETA["), "the prying task ran: {events}");
    assert!(
        !log.contains("SOURCE-SECRET") && !events.contains("SOURCE-SECRET"),
        "another account's source leaked: {log}"
    );
    let execution = api.send(reqwest::Method::GET, &href, None).await;
    let mut ran: Vec<&str> = execution["host_stats"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    ran.sort_unstable();
    assert_eq!(ran, ["db-1", "scripted-1", "web-1"]);
}
