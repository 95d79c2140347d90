//! The web console at `/ui` against a real `runner serve` (sled store, real ansible-playbook):
//! its headers, and a person's session in headless Chromium (Debian's `chromium`, driven by
//! playwright-core from `tests/ui/console.mjs`; `scripts/ensure-chromium.sh` installs both and
//! its absence fails the test). Screenshots land in `target/ui-screenshots/`.
#![cfg(all(feature = "sled", feature = "ansible"))]

mod common;

use std::path::Path;
use std::process::Command;

use common::process::{
    Api, Runner, admin_token, ansible_path, localhost, playbook, seen_by_runs, sled_dir,
};
use runner_http::console::CONTENT_SECURITY_POLICY;
use serde_json::json;

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Chromium's path; installs it (and playwright-core) when missing, and fails loudly if it cannot.
fn chromium() -> String {
    let found = Command::new("bash")
        .arg(workspace().join("scripts/ensure-chromium.sh"))
        .output()
        .expect("bash runs");
    assert!(
        found.status.success(),
        "headless Chromium is required for the console tests: {}",
        String::from_utf8_lossy(&found.stderr)
    );
    String::from_utf8(found.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_strict_policy_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = sled_dir(dir.path());
    let runner = Runner::spawn(dir.path(), &["--store", &store], &[]);
    let client = reqwest::Client::new();
    for (path, kind) in [
        ("/ui", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let response = client
            .get(format!("{}{path}", runner.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
    for directive in [
        "script-src 'self'",
        "style-src 'self'",
        "default-src 'none'",
    ] {
        assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    let missing = client
        .get(format!("{}/ui/other.js", runner.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    drop(runner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_starts_watches_stops_and_restarts_in_chromium() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let (store, tokens) = sled_dir(dir.path());
    let runner = Runner::spawn(
        dir.path(),
        &["--store", &store],
        &[("PATH", &ansible_path())],
    );
    let token = admin_token(&tokens);
    let api = Api::new(&runner.base, &token);
    let shared = seen_by_runs();
    let (greet_go, hold_go) = (
        shared.path().join("greet-go"),
        shared.path().join("hold-go"),
    );
    let holding = |go: &Path, before: &str| {
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n{before}    - name: hold\n      ansible.builtin.wait_for: {{path: '{}', timeout: 600}}\n    - name: after\n      ansible.builtin.debug: {{msg: after}}\n",
            go.display()
        )
    };
    // Markup and terminal colours in the output and the playbook: both must stay text.
    let greet = "    - name: greet\n      ansible.builtin.debug:\n        msg: \"<script>document.title = 'owned'</script> \\e[31mred\\e[0m\"\n";
    let mut ids = Vec::new();
    for (description, play) in [
        ("greeter", holding(&greet_go, greet)),
        ("holder", holding(&hold_go, "")),
        (
            "failer",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: break\n      ansible.builtin.fail: {msg: broken}\n".to_owned(),
        ),
    ] {
        let job = api
            .send(
                reqwest::Method::POST,
                "/jobs/ACME",
                Some(json!({"description": description, "playbook": playbook(&play),
                            "hosts": [localhost()]})),
            )
            .await;
        ids.push(job["id"].as_str().unwrap().to_owned());
    }

    // The inventory page: a host with markup in its variables and a password that must never
    // show; the failer job skips overlapping runs, as its page says.
    api.send(
        reqwest::Method::POST,
        "/inventory/ACME/hosts",
        Some(json!({"id": "web-1", "groups": ["web", "eu"],
                    "hostVars": {"motd": "<b>bold</b>", "ansible_port": 2222},
                    "sshPassword": "inventory-PASSWORD-canary"})),
    )
    .await;
    let failer = format!("/jobs/ACME/{}", ids[2]);
    let mut definition = api.send(reqwest::Method::GET, &failer, None).await;
    definition["overlap"] = json!("skip");
    api.send(reqwest::Method::PUT, &failer, Some(definition))
        .await;

    let shots = workspace().join("target/ui-screenshots");
    let script = workspace().join("crates/runner-http/tests/ui/console.mjs");
    let ran = tokio::task::spawn_blocking({
        let (base, token) = (runner.base.clone(), token.clone());
        let ids = ids.clone();
        move || {
            Command::new("node")
                .arg(&script)
                .env("RUNNER_URL", base)
                .env("RUNNER_TOKEN", token)
                .env("CHROMIUM", chromium)
                .env("SCREENSHOTS", &shots)
                .env("GREET_JOB", &ids[0])
                .env("HOLD_JOB", &ids[1])
                .env("FAIL_JOB", &ids[2])
                .env("GREET_GO", greet_go)
                .env("HOLD_GO", hold_go)
                .output()
                .expect("node runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(
        ran.status.success(),
        "the browser test failed (screenshots in target/ui-screenshots):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");

    // What the browser saw is what the server holds.
    for (job, want) in [
        (&ids[0], "SUCCESS"),
        (&ids[1], "STOPPED"),
        (&ids[2], "FAILURE"),
    ] {
        let page = api
            .send(
                reqwest::Method::GET,
                &format!("/jobs/ACME/{job}/executions"),
                None,
            )
            .await;
        assert_eq!(page["results"][0]["status"], want, "{page}");
    }
    let (exit, stdout, stderr) = runner.terminate();
    assert!(exit.success(), "{stderr:#?}");
    let printed = format!("{}\n{}", stdout.join("\n"), stderr.join("\n"));
    assert!(!printed.contains(&token), "the token was logged");
}
