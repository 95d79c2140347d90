//! The key-pair routes through the real router (memory store, scripted runs): generate, import,
//! list, read, delete (409 while a job names the pair), account isolation, jobs naming a pair
//! (`sshKeyPair`), and distribution as an execution. The private key is never in a response.

mod common;

use axum::http::{Method, StatusCode, header};
use common::*;
use runner_core::ids::AccountAlias;
use serde_json::{Value, json};

fn acme() -> AccountAlias {
    "ACME".parse().unwrap()
}

/// The stored private key of a pair (what no response may hold).
async fn private_key(h: &Harness, name: &str) -> String {
    let pair = h.engine.get_key_pair(&acme(), name).await.unwrap();
    pair.private_key.expose().to_owned()
}

/// Generates key pair `name` of ACME; returns the answer's body.
async fn create_pair(h: &Harness, name: &str) -> Value {
    let created = h
        .call(
            Method::POST,
            "/keyPairs/ACME",
            ACME,
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.body
}

fn assert_no_private_key(reply: &Reply, key: &str) {
    assert!(
        !reply.text.contains(key),
        "a response carries the private key"
    );
    // The key file's body (base64 inside the base64) is not there either.
    use base64::Engine as _;
    let pem = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap(),
    )
    .unwrap();
    let line = pem.lines().nth(1).unwrap();
    assert!(
        !reply.text.contains(line),
        "a response carries the private key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pairs_are_generated_imported_listed_and_never_show_the_private_key() {
    let h = Harness::new();
    let created = h
        .call(
            Method::POST,
            "/keyPairs/ACME",
            ACME,
            Some(json!({"name": "deploy", "description": "for deploys"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        created.headers[header::LOCATION].to_str().unwrap(),
        "/keyPairs/ACME/deploy"
    );
    let body = &created.body;
    assert_eq!(body["type"], "ed25519");
    assert_eq!(body["accountAlias"], "ACME");
    assert_eq!(body["description"], "for deploys");
    assert!(
        body["publicKey"]
            .as_str()
            .unwrap()
            .starts_with("ssh-ed25519 AAAA")
    );
    assert!(body["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    assert!(body["createdTime"].is_i64());
    assert!(body.get("privateKey").is_none());
    let key = private_key(&h, "deploy").await;
    assert_no_private_key(&created, &key);

    // RSA, and an import of an existing key (same fingerprint).
    let rsa = h
        .call(
            Method::POST,
            "/keyPairs/ACME",
            ACME,
            Some(json!({"name": "legacy", "type": "rsa"})),
        )
        .await;
    assert_eq!(rsa.status, StatusCode::CREATED, "{}", rsa.text);
    assert!(
        rsa.body["publicKey"]
            .as_str()
            .unwrap()
            .starts_with("ssh-rsa ")
    );
    let imported = h
        .call(
            Method::POST,
            "/keyPairs/ACME",
            ACME,
            Some(json!({"name": "again", "privateKey": key})),
        )
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    assert_eq!(imported.body["fingerprint"], body["fingerprint"]);
    assert_no_private_key(&imported, &key);

    // Bad requests name their fields; a taken name is 409.
    let bad = h
        .call(
            Method::POST,
            "/keyPairs/ACME",
            ACME,
            Some(json!({"name": "a b", "privateKey": "bm90IGEga2V5"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert_eq!(bad.fields(), ["name"], "{}", bad.text);
    let bad_key = h
        .call(
            Method::POST,
            "/keyPairs/ACME",
            ACME,
            Some(json!({"name": "ab", "privateKey": "bm90IGEga2V5"})),
        )
        .await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST, "{}", bad_key.text);
    assert_eq!(bad_key.fields(), ["privateKey"], "{}", bad_key.text);
    let bad_type = h
        .call(
            Method::POST,
            "/keyPairs/ACME",
            ACME,
            Some(json!({"name": "x", "type": "dsa"})),
        )
        .await;
    assert_eq!(
        bad_type.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_type.text
    );
    let taken = h
        .call(
            Method::POST,
            "/keyPairs/ACME",
            ACME,
            Some(json!({"name": "deploy"})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);

    // Listing by name, paged; reading one.
    let page = h
        .call(Method::GET, "/keyPairs/ACME?page=0&size=2", ACME, None)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.body["totalSize"], 3);
    let names: Vec<_> = page.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["again", "deploy"]);
    assert_no_private_key(&page, &key);
    let one = h
        .call(Method::GET, "/keyPairs/ACME/deploy", ACME, None)
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body, created.body);
    assert_no_private_key(&one, &key);

    // Account isolation, as for jobs.
    let foreign = h
        .call(Method::GET, "/keyPairs/ACME/deploy", BETA, None)
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let list_foreign = h.call(Method::GET, "/keyPairs/ACME", BETA, None).await;
    assert_eq!(list_foreign.status, StatusCode::FORBIDDEN);
    let beta = h
        .call(Method::GET, "/keyPairs/BETA/deploy", BETA, None)
        .await;
    assert_eq!(beta.status, StatusCode::NOT_FOUND);
    let missing = h
        .call(Method::DELETE, "/keyPairs/ACME/nothing", ACME, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_name_key_pairs_which_cannot_be_deleted_while_named() {
    let h = Harness::new();
    create_pair(&h, "deploy").await;

    // An unknown name is 409 naming the field (create it, then retry); both ways is 400.
    let mut job = inline_job(&["a"]);
    job["hosts"][0]["sshKeyPair"] = json!("nothing");
    let unknown = h.call(Method::POST, "/jobs/ACME", ACME, Some(job)).await;
    assert_eq!(unknown.status, StatusCode::CONFLICT, "{}", unknown.text);
    assert_eq!(unknown.fields(), ["hosts[0].sshKeyPair"]);
    assert!(
        unknown.text.contains("hosts[0].sshKeyPair"),
        "{}",
        unknown.text
    );
    let mut both = inline_job(&["a"]);
    both["sshKeyPair"] = json!("deploy");
    both["sshPrivateKey"] = json!("a2V5");
    let both = h.call(Method::POST, "/jobs/ACME", ACME, Some(both)).await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST, "{}", both.text);
    assert!(both.text.contains("\"sshKeyPair\""), "{}", both.text);
    // Another account's pair is unknown.
    let mut theirs = inline_job(&["a"]);
    theirs["sshKeyPair"] = json!("deploy");
    let theirs = h.call(Method::POST, "/jobs/BETA", BETA, Some(theirs)).await;
    assert_eq!(theirs.status, StatusCode::CONFLICT, "{}", theirs.text);

    let mut job = inline_job(&["a"]);
    job["sshKeyPair"] = json!("deploy");
    let job = h.create_job("ACME", ACME, job).await;
    assert_eq!(job["sshKeyPair"], "deploy");
    let job_id = job["id"].as_str().unwrap().to_owned();
    let started = h
        .call(
            Method::POST,
            &format!("/jobs/ACME/{job_id}/start"),
            ACME,
            None,
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let href = started.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    h.wait_for(&href, ACME, "SUCCESS").await;

    let refused = h
        .call(Method::DELETE, "/keyPairs/ACME/deploy", ACME, None)
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert!(refused.text.contains(&job_id), "{}", refused.text);
    let deleted = h
        .call(Method::DELETE, &format!("/jobs/ACME/{job_id}"), ACME, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = h
        .call(Method::DELETE, "/keyPairs/ACME/deploy", ACME, None)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    let read = h
        .call(Method::GET, "/keyPairs/ACME/deploy", ACME, None)
        .await;
    assert_eq!(read.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_or_restart_names_a_key_pair_as_its_default_key() {
    let h = Harness::with_script(runner_core::testkit::Script::Fail(vec!["a".into()]));
    create_pair(&h, "deploy").await;
    create_pair(&h, "other").await;
    let job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let start = format!("/jobs/ACME/{}/start", job["id"].as_str().unwrap());
    let start_with = async |body: Value| h.call(Method::POST, &start, ACME, Some(body)).await;

    let unknown = start_with(json!({"sshKeyPair": "nothing"})).await;
    assert_eq!(unknown.status, StatusCode::CONFLICT, "{}", unknown.text);
    assert!(unknown.text.contains("\"sshKeyPair\""), "{}", unknown.text);
    let both = start_with(json!({"sshKeyPair": "deploy", "sshPrivateKey": "a2V5"})).await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST, "{}", both.text);
    assert!(both.text.contains("not both"), "{}", both.text);

    let started = start_with(json!({"sshKeyPair": "deploy"})).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let href = started.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    h.wait_for(&href, ACME, "FAILURE").await;
    let deploy = private_key(&h, "deploy").await;
    let key_of = |run: usize| {
        h.executor.runs()[run]
            .ssh_private_key
            .as_ref()
            .map(|key| key.expose().to_owned())
    };
    assert_eq!(key_of(0), Some(deploy));

    // A restart may name another; the run gets that one.
    let restarted = h
        .call(
            Method::POST,
            &format!("{href}/restart"),
            ACME,
            Some(json!({"sshKeyPair": "other"})),
        )
        .await;
    assert_eq!(restarted.status, StatusCode::OK, "{}", restarted.text);
    assert_no_private_key(&restarted, &private_key(&h, "other").await);
    h.wait_for(&href, ACME, "FAILURE").await;
    assert_eq!(key_of(1), Some(private_key(&h, "other").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributing_starts_an_execution_of_a_job_of_builtin_tasks() {
    use base64::Engine as _;
    let h = Harness::new();
    let created = create_pair(&h, "deploy").await;
    let public_key = created["publicKey"].as_str().unwrap().to_owned();

    let bad = h
        .call(
            Method::POST,
            "/keyPairs/ACME/deploy/distribute",
            ACME,
            Some(json!({"hosts": [], "user": "-x", "sshKeyPair": "nothing"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(
        bad.text.contains("\"user\"") && bad.text.contains("\"hosts\""),
        "{}",
        bad.text
    );
    let unknown_way_in = h
        .call(
            Method::POST,
            "/keyPairs/ACME/deploy/distribute",
            ACME,
            Some(json!({"hosts": [{"id": "web"}], "user": "deploy", "sshKeyPair": "nothing"})),
        )
        .await;
    assert_eq!(
        unknown_way_in.status,
        StatusCode::CONFLICT,
        "{}",
        unknown_way_in.text
    );
    assert!(unknown_way_in.text.contains("sshKeyPair"));
    let missing = h
        .call(
            Method::POST,
            "/keyPairs/ACME/nothing/distribute",
            ACME,
            Some(json!({"hosts": [{"id": "web"}], "user": "deploy"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let foreign = h
        .call(
            Method::POST,
            "/keyPairs/ACME/deploy/distribute",
            BETA,
            Some(json!({"hosts": [{"id": "web"}], "user": "deploy"})),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);

    let started = h
        .call(
            Method::POST,
            "/keyPairs/ACME/deploy/distribute",
            ACME,
            Some(json!({"hosts": [{"id": "web"}], "user": "deploy", "sshPrivateKey": "a2V5"})),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let href = started.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(href.starts_with("/jobs/ACME/"), "{href}");
    h.wait_for(&href, ACME, "SUCCESS").await;

    let job_href: String = href.split("/executions/").next().unwrap().to_owned();
    let job: Value = h.call(Method::GET, &job_href, ACME, None).await.body;
    assert_eq!(job["hosts"][0]["hostVars"]["ansible_user"], "deploy");
    let playbook = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(job["playbook"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(
        playbook.contains("ansible.builtin.lineinfile"),
        "{playbook}"
    );
    assert!(playbook.contains(&public_key), "{playbook}");
    assert!(playbook.contains("state: present"));
    assert!(
        !playbook.contains("authorized_key:"),
        "builtin modules only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_key_pair_is_gone_fails_saying_so() {
    use runner_core::store::KeyPairStore;
    let h = Harness::new();
    create_pair(&h, "deploy").await;
    let mut job = inline_job(&["a"]);
    job["hosts"][0]["sshKeyPair"] = json!("deploy");
    let job = h.create_job("ACME", ACME, job).await;
    // Gone behind the engine's back (as a delete racing the job's create could leave it).
    h.engine
        .store()
        .delete_key_pair(&acme(), "deploy")
        .await
        .unwrap();
    let started = h
        .call(
            Method::POST,
            &format!("/jobs/ACME/{}/start", job["id"].as_str().unwrap()),
            ACME,
            None,
        )
        .await;
    let href = started.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let failed = h.wait_for(&href, ACME, "FAILURE").await;
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("key pair deploy does not exist"),
        "{failed}"
    );
}
