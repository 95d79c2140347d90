//! Key pairs end to end over real SSH: the real `runner` binary (sled store, sandboxed runs,
//! real ansible-playbook) and a real sshd on 127.0.0.1 started by the test with a throwaway
//! configuration. The server generates two key pairs; `bootstrap` is authorized by hand (the way
//! in), `deploy` is distributed by the server with `bootstrap`; a job that knows only `deploy`
//! then reaches the host; after the key is removed (again by distribution) the same job fails
//! with the host unreachable.
//!
//! sshd reads two files (`AuthorizedKeysFile`): the bootstrap key's, and the one distribution
//! writes (`authorizedKeysFile` of the request), so the test never touches a real `~/.ssh`.
//! Needs `/usr/sbin/sshd` (or `RUNNER_SSHD`): run `scripts/ensure-sshd.sh`.
#![cfg(all(feature = "sled", feature = "ansible"))]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::process::{
    Api, Runner, SseClient, admin_token, ansible_path, is_final, playbook, reachable_by_runs,
};
use reqwest::Method;
use serde_json::{Value, json};

/// An sshd on 127.0.0.1 with a fresh host key and public keys only; killed on drop.
struct Sshd {
    child: Child,
    port: u16,
}

impl Sshd {
    /// An sshd that takes keys only.
    fn start(dir: &Path, authorized_files: &[PathBuf]) -> Self {
        Self::start_with(dir, authorized_files, "publickey")
    }

    /// An sshd that takes `methods` (`AuthenticationMethods`: "publickey", "publickey password").
    fn start_with(dir: &Path, authorized_files: &[PathBuf], methods: &str) -> Self {
        let program = std::env::var_os("RUNNER_SSHD")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"));
        assert!(
            program.is_file(),
            "sshd not found at {} (RUNNER_SSHD, else /usr/sbin/sshd): run scripts/ensure-sshd.sh",
            program.display()
        );
        let host_key = dir.join("host_ed25519");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .status()
            .expect("ssh-keygen runs");
        assert!(made.success());
        let files: Vec<String> = authorized_files
            .iter()
            .map(|file| file.display().to_string())
            .collect();
        // A port found by binding and releasing it; should another process take it in
        // between, sshd says so and another is tried.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1:{port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                     PidFile {}\nAuthenticationMethods {methods}\nPubkeyAuthentication yes\n\
                     PasswordAuthentication {}\nKbdInteractiveAuthentication no\n\
                     PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n\
                     LogLevel VERBOSE\n",
                    host_key.display(),
                    files.join(" "),
                    dir.join("sshd.pid").display(),
                    if methods.contains("password") {
                        "yes"
                    } else {
                        "no"
                    },
                ),
            )
            .unwrap();
            let mut child = Command::new(&program)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|error| panic!("{} does not run: {error}", program.display()));
            let stderr = child.stderr.take().unwrap();
            let (sender, lines) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
            let mut seen = Vec::new();
            loop {
                match lines.recv_timeout(Duration::from_secs(60)) {
                    Ok(line)
                        if line.contains(&format!("Server listening on 127.0.0.1 port {port}")) =>
                    {
                        // Keep draining sshd's log so that it never blocks on a full pipe.
                        std::thread::spawn(move || while lines.recv().is_ok() {});
                        return Self { child, port };
                    }
                    Ok(line) => seen.push(line),
                    Err(_) => break,
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            if seen
                .iter()
                .any(|line| line.contains("Address already in use"))
            {
                continue;
            }
            panic!("sshd did not start; its log:\n{}", seen.join("\n"));
        }
        panic!("sshd found no free port on 127.0.0.1 in five tries");
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the execution's live stream until its final status; returns it and every event.
async fn until_final(api: &Api, href: &str) -> (String, String) {
    let url = format!("{}{href}/events", api.base);
    let mut stream = SseClient::connect(&api.client, &url, &api.token, None).await;
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

/// POSTs and returns the Location of the answer (an execution's path).
async fn post_for_location(api: &Api, path: &str, body: Value) -> String {
    let response = api
        .client
        .post(format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::CREATED, "{path}: {text}");
    location.expect("a Location")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributed_key_pair_lets_a_job_in_until_it_is_removed() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    reachable_by_runs(dir.path());
    let path = ansible_path();
    let store = format!("sled:{}", dir.path().join("data").display());
    let work = dir.path().join("w");
    let runner = Runner::spawn(
        dir.path(),
        &["--store", &store, "--work-root", work.to_str().unwrap()],
        &[("PATH", &path)],
    );
    let api = Api::new(&runner.base, &admin_token(&dir.path().join("data/tokens")));

    let bootstrap = api
        .send(
            Method::POST,
            "/keyPairs/ACME",
            Some(json!({"name": "bootstrap"})),
        )
        .await;
    let deploy = api
        .send(
            Method::POST,
            "/keyPairs/ACME",
            Some(json!({"name": "deploy"})),
        )
        .await;
    let deploy_key = deploy["publicKey"].as_str().unwrap().to_owned();
    let by_hand = dir.path().join("authorized_by_hand");
    let distributed = dir.path().join("ssh").join("authorized_keys");
    std::fs::write(
        &by_hand,
        format!("{}\n", bootstrap["publicKey"].as_str().unwrap()),
    )
    .unwrap();
    let sshd = Sshd::start(dir.path(), &[by_hand, distributed.clone()]);

    let host = json!({"id": "target", "hostVars": {
        "ansible_host": "127.0.0.1",
        "ansible_port": sshd.port,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args":
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
    }});
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let distribute = |remove: bool| {
        json!({"hosts": [host.clone()], "user": user, "remove": remove,
               "authorizedKeysFile": distributed.display().to_string(),
               "sshKeyPair": "bootstrap"})
    };

    // Distribution installs the key (twice: the second run changes nothing).
    for _ in 0..2 {
        let href =
            post_for_location(&api, "/keyPairs/ACME/deploy/distribute", distribute(false)).await;
        let (status, events) = until_final(&api, &href).await;
        assert_eq!(status, "SUCCESS", "{events}");
    }
    let written = std::fs::read_to_string(&distributed).unwrap();
    assert_eq!(written.matches(deploy_key.as_str()).count(), 1, "{written}");

    // A job that knows only the key pair gets in.
    let mut job_host = host.clone();
    job_host["hostVars"]["ansible_user"] = json!(user);
    let job = json!({
        "playbook": playbook("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"),
        "hosts": [job_host],
        "sshKeyPair": "deploy",
    });
    let created = api.send(Method::POST, "/jobs/ACME", Some(job)).await;
    let job_id = created["id"].as_str().unwrap().to_owned();
    let start = format!("/jobs/ACME/{job_id}/start");
    let href = post_for_location(&api, &start, json!({})).await;
    let (status, events) = until_final(&api, &href).await;
    assert_eq!(status, "SUCCESS", "{events}");
    let pair = api.send(Method::GET, "/keyPairs/ACME/deploy", None).await;
    assert!(pair.get("privateKey").is_none());

    // Removed, the same job cannot reach the host.
    let href = post_for_location(&api, "/keyPairs/ACME/deploy/distribute", distribute(true)).await;
    let (status, events) = until_final(&api, &href).await;
    assert_eq!(status, "SUCCESS", "{events}");
    let written = std::fs::read_to_string(&distributed).unwrap();
    assert!(!written.contains(deploy_key.as_str()), "{written}");
    let href = post_for_location(&api, &start, json!({})).await;
    let (status, events) = until_final(&api, &href).await;
    assert_eq!(status, "FAILURE", "{events}");
    assert!(events.contains("unreachable"), "{events}");

    // No private key in the server's output.
    drop(sshd);
    let (_, stdout, stderr) = runner.terminate();
    let output = format!("{}\n{}", stdout.join("\n"), stderr.join("\n"));
    // A private key as a file holds it, and as the server keeps it (base64 of the file).
    for marker in [
        "PRIVATE KEY",
        "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0",
    ] {
        assert!(
            !output.contains(marker),
            "a private key in the server's output"
        );
    }
}

/// The user `scripts/ensure-sshd.sh` creates for password logins.
const PASSWORD_USER: &str = "runner-ssh-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_is_the_way_in_for_a_first_distribution() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    reachable_by_runs(dir.path());
    let path = ansible_path();
    let store = format!("sled:{}", dir.path().join("data").display());
    let work = dir.path().join("w");
    let runner = Runner::spawn(
        dir.path(),
        &["--store", &store, "--work-root", work.to_str().unwrap()],
        &[("PATH", &path)],
    );
    let api = Api::new(&runner.base, &admin_token(&dir.path().join("data/tokens")));

    // A fresh password for the test user (made by scripts/ensure-sshd.sh), set as root.
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .expect("chpasswd runs (as root)");
    std::io::Write::write_all(
        chpasswd.stdin.as_mut().unwrap(),
        format!("{PASSWORD_USER}:{password}\n").as_bytes(),
    )
    .unwrap();
    assert!(
        chpasswd.wait().unwrap().success(),
        "chpasswd failed: is {PASSWORD_USER} missing? run scripts/ensure-sshd.sh as root"
    );
    // The user's own directory for the distributed file, outside any real ~/.ssh.
    let keys_dir = dir.path().join("pw");
    std::fs::create_dir(&keys_dir).unwrap();
    let chown = Command::new("chown")
        .arg(format!("{PASSWORD_USER}:"))
        .arg(&keys_dir)
        .status()
        .unwrap();
    assert!(chown.success());
    let distributed = keys_dir.join("authorized_keys");
    let sshd = Sshd::start_with(
        dir.path(),
        std::slice::from_ref(&distributed),
        "publickey password",
    );

    let deploy = api
        .send(
            Method::POST,
            "/keyPairs/ACME",
            Some(json!({"name": "deploy"})),
        )
        .await;
    let deploy_key = deploy["publicKey"].as_str().unwrap().to_owned();
    let host = json!({"id": "fresh", "hostVars": {
        "ansible_host": "127.0.0.1",
        "ansible_port": sshd.port,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args":
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
    }});

    // The first way in is the password.
    let body = json!({"hosts": [host.clone()], "user": PASSWORD_USER,
                      "authorizedKeysFile": distributed.display().to_string(),
                      "sshPassword": password});
    let href = post_for_location(&api, "/keyPairs/ACME/deploy/distribute", body).await;
    let (status, events) = until_final(&api, &href).await;
    assert_eq!(status, "SUCCESS", "{events}");
    let written = std::fs::read_to_string(&distributed).unwrap();
    assert_eq!(written.matches(deploy_key.as_str()).count(), 1, "{written}");
    let log = api.run_log(&href).await;
    let execution = api.send(Method::GET, &href, None).await;
    let job_path = href.split("/executions/").next().unwrap().to_owned();
    let distribution_job = api.send(Method::GET, &job_path, None).await;

    // From now on the key pair alone gets in.
    let mut job_host = host.clone();
    job_host["hostVars"]["ansible_user"] = json!(PASSWORD_USER);
    let job = json!({
        "playbook": playbook("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"),
        "hosts": [job_host],
        "sshKeyPair": "deploy",
    });
    let created = api.send(Method::POST, "/jobs/ACME", Some(job)).await;
    let start = format!("/jobs/ACME/{}/start", created["id"].as_str().unwrap());
    let href = post_for_location(&api, &start, json!({})).await;
    let (status, job_events) = until_final(&api, &href).await;
    assert_eq!(status, "SUCCESS", "{job_events}");

    // The password is nowhere to be read: not in the feed, the run log, the execution, the
    // distribution's job, or the server's output.
    drop(sshd);
    let (_, stdout, stderr) = runner.terminate();
    for (place, text) in [
        ("events", events),
        ("log", log),
        ("execution", execution.to_string()),
        ("job", distribution_job.to_string()),
        (
            "server output",
            format!("{}\n{}", stdout.join("\n"), stderr.join("\n")),
        ),
    ] {
        assert!(!text.contains(&password), "the password in the {place}");
    }
}
