//! The account inventory through the real router (`oneshot`), with a memory store and scripted
//! runs: create, read, replace, list and delete hosts; secrets masked and kept; every field
//! error named; accounts apart; and what a `useDynamicInventory` run is given.

mod common;

use axum::http::{Method, StatusCode, header};
use common::*;
use runner_core::secret::MASK;
use serde_json::{Value, json};

fn host(id: &str, groups: &[&str]) -> Value {
    json!({"id": id, "groups": groups, "hostVars": {"ansible_port": 2222},
           "sshPassword": format!("password-of-{id}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_hosts_are_kept_per_account_with_their_secrets_masked() {
    let h = Harness::new();
    let created = h
        .call(
            Method::POST,
            "/inventory/ACME/hosts",
            ACME,
            Some(host("web-2", &["web"])),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        created.headers[header::LOCATION].to_str().unwrap(),
        "/inventory/ACME/hosts/web-2"
    );
    assert_eq!(created.body["sshPassword"], MASK);
    assert_eq!(created.body["groups"], json!(["web"]));
    assert_eq!(created.body["accountAlias"], "ACME");
    assert!(!created.text.contains("password-of"), "{}", created.text);
    for id in ["db-1", "web-1"] {
        h.call(
            Method::POST,
            "/inventory/ACME/hosts",
            ACME,
            Some(host(id, &[])),
        )
        .await;
    }

    let got = h
        .call(Method::GET, "/inventory/ACME/hosts/web-2", ACME, None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created.body);
    let page = h
        .call(
            Method::GET,
            "/inventory/ACME/hosts?page=0&size=2",
            ACME,
            None,
        )
        .await;
    assert_eq!(page.body["totalSize"], 3);
    let ids: Vec<&str> = page.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|host| host["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["db-1", "web-1"], "by id");

    let taken = h
        .call(
            Method::POST,
            "/inventory/ACME/hosts",
            ACME,
            Some(host("db-1", &[])),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);

    // A replace: the mask keeps the stored password, the rest is the body's.
    let mut replaced = created.body.clone();
    replaced["groups"] = json!(["web", "eu"]);
    replaced["hostVars"] = json!({"ansible_port": 22});
    let put = h
        .call(
            Method::PUT,
            "/inventory/ACME/hosts/web-2",
            ACME,
            Some(replaced),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["groups"], json!(["web", "eu"]));
    assert_eq!(put.body["createdTime"], created.body["createdTime"]);
    let stored = h
        .engine
        .get_inventory_host(&"ACME".parse().unwrap(), "web-2")
        .await
        .unwrap();
    assert_eq!(
        stored.host.ssh_password.unwrap().expose(),
        "password-of-web-2"
    );

    // Another account sees none of it, and has its own ids.
    let beta = h
        .call(Method::GET, "/inventory/BETA/hosts", BETA, None)
        .await;
    assert_eq!(beta.body["totalSize"], 0);
    let foreign = h
        .call(Method::GET, "/inventory/ACME/hosts/web-2", BETA, None)
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let own = h
        .call(
            Method::POST,
            "/inventory/BETA/hosts",
            BETA,
            Some(host("web-2", &[])),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);

    let deleted = h
        .call(Method::DELETE, "/inventory/ACME/hosts/web-2", ACME, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = h
        .call(Method::GET, "/inventory/ACME/hosts/web-2", ACME, None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let again = h
        .call(Method::DELETE, "/inventory/ACME/hosts/web-2", ACME, None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let still = h
        .call(Method::GET, "/inventory/BETA/hosts/web-2", BETA, None)
        .await;
    assert_eq!(
        still.status,
        StatusCode::OK,
        "BETA's host of the same id stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inventory_hosts_get_every_field_named() {
    let h = Harness::new();
    let bad = json!({"id": "has space", "groups": ["ok", "9lives"], "sshPrivateKey": "not base64!",
                     "colour": "blue"});
    let reply = h
        .call(Method::POST, "/inventory/ACME/hosts", ACME, Some(bad))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let fields = reply.fields();
    for field in ["id", "groups[1]", "sshPrivateKey", "colour"] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }

    let masked = json!({"id": "a", "sshPassword": MASK});
    let reply = h
        .call(Method::POST, "/inventory/ACME/hosts", ACME, Some(masked))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_eq!(reply.fields(), ["sshPassword"]);
    let missing_pair = json!({"id": "a", "sshKeyPair": "nope"});
    let reply = h
        .call(
            Method::POST,
            "/inventory/ACME/hosts",
            ACME,
            Some(missing_pair),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_eq!(reply.fields(), ["sshKeyPair"]);

    h.call(
        Method::POST,
        "/inventory/ACME/hosts",
        ACME,
        Some(json!({"id": "a"})),
    )
    .await;
    let renamed = h
        .call(
            Method::PUT,
            "/inventory/ACME/hosts/a",
            ACME,
            Some(json!({"id": "b"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(
        renamed.body["id"], "a",
        "the path names the host: no rename"
    );
    let both = json!({"id": "a", "sshKeyPair": "deploy", "sshPrivateKey": "a2V5"});
    let refused = h
        .call(Method::PUT, "/inventory/ACME/hosts/a", ACME, Some(both))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    let absent = h
        .call(
            Method::PUT,
            "/inventory/ACME/hosts/zz",
            ACME,
            Some(json!({"id": "zz"})),
        )
        .await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_inventory_run_gets_the_accounts_hosts_under_its_own() {
    let h = Harness::new();
    for id in ["web-1", "db-1"] {
        h.call(
            Method::POST,
            "/inventory/ACME/hosts",
            ACME,
            Some(host(id, &["all_of_them"])),
        )
        .await;
    }
    h.call(
        Method::POST,
        "/inventory/BETA/hosts",
        BETA,
        Some(host("beta-1", &[])),
    )
    .await;
    let mut job = inline_job(&["web-1", "own-1"]);
    job["useDynamicInventory"] = json!(true);
    let job = h.create_job("ACME", ACME, job).await;
    let job_id = job["id"].as_str().unwrap();
    let execution = h.start("ACME", job_id, ACME).await;
    let href = format!(
        "/jobs/ACME/{job_id}/executions/{}",
        execution["execution_id"].as_str().unwrap()
    );
    h.wait_for(&href, ACME, "SUCCESS").await;
    let runs = h.executor.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].hosts,
        ["db-1", "web-1", "own-1"],
        "the inventory's, then the job's"
    );

    // Without the flag, the inventory is not used.
    let plain = h.create_job("ACME", ACME, inline_job(&["own-1"])).await;
    let plain_id = plain["id"].as_str().unwrap();
    let execution = h.start("ACME", plain_id, ACME).await;
    let href = format!(
        "/jobs/ACME/{plain_id}/executions/{}",
        execution["execution_id"].as_str().unwrap()
    );
    h.wait_for(&href, ACME, "SUCCESS").await;
    assert_eq!(h.executor.runs()[1].hosts, ["own-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_pair_an_inventory_host_names_is_not_deleted() {
    let h = Harness::new();
    let pair = h
        .call(
            Method::POST,
            "/keyPairs/ACME",
            ACME,
            Some(json!({"name": "deploy"})),
        )
        .await;
    assert_eq!(pair.status, StatusCode::CREATED, "{}", pair.text);
    let host = json!({"id": "web-1", "sshKeyPair": "deploy"});
    let created = h
        .call(Method::POST, "/inventory/ACME/hosts", ACME, Some(host))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let refused = h
        .call(Method::DELETE, "/keyPairs/ACME/deploy", ACME, None)
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert!(
        refused.text.contains("inventory hosts web-1"),
        "{}",
        refused.text
    );
    h.call(Method::DELETE, "/inventory/ACME/hosts/web-1", ACME, None)
        .await;
    let deleted = h
        .call(Method::DELETE, "/keyPairs/ACME/deploy", ACME, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
}
