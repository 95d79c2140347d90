//! The document and the server agree (issue 20): request bodies are checked against the served
//! document, with every field error at once, and the mismatches schemathesis found stay fixed.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{Value, json};

fn document_operation<'a>(document: &'a Value, path: &str, method: &str) -> &'a Value {
    &document["paths"][path][method]
}

async fn inline_job(h: &Harness) -> String {
    let job = h
        .create_job(
            "ACME",
            ACME,
            json!({"playbook": "LSBob3N0czogYWxs", "hosts": []}),
        )
        .await;
    job["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_id_a_zero_ttl_and_an_unknown_field_come_in_one_answer() {
    let h = Harness::new();
    let reply = h
        .call(
            Method::POST,
            "/jobs/ACME",
            ACME,
            Some(json!({
                "playbook": "LSBob3N0czogYWxs",
                "hosts": [{"id": "a"}, {"id": "b"}, {"hostVars": {"x": 1}}],
                "executionTtl": 0,
                "executionTTL": 5,
            })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let mut fields = reply.fields();
    fields.sort();
    assert_eq!(
        fields,
        ["executionTTL", "executionTtl", "hosts[2].id"],
        "{}",
        reply.text
    );
    let errors = reply.body["errors"].as_array().unwrap();
    let message = |field: &str| {
        errors
            .iter()
            .find(|error| error["field"] == field)
            .map(|error| error["message"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(message("hosts[2].id"), "is required");
    assert_eq!(message("executionTtl"), "must be at least 1");
    assert_eq!(message("executionTTL"), "unknown field");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_types_everywhere_are_all_named() {
    let h = Harness::new();
    let reply = h
        .call(
            Method::POST,
            "/jobs/ACME",
            ACME,
            Some(json!({
                "playbook": 5,
                "description": ["x"],
                "hosts": [{"id": 7, "hostVars": []}],
                "callbacks": [{"url": "https://example.com/hook", "level": "LOUD"}],
            })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let mut fields = reply.fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "callbacks[0].level",
            "description",
            "hosts[0].hostVars",
            "hosts[0].id",
            "playbook"
        ],
        "{}",
        reply.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_objects_are_refused_and_null_control_bodies_are_empty() {
    let h = Harness::new();
    let job = inline_job(&h).await;
    let start = format!("/jobs/ACME/{job}/start");
    let pair = h
        .raw(
            Method::POST,
            &start,
            ACME,
            Some("application/json"),
            "[null, null]",
        )
        .await;
    assert_eq!(pair.status, StatusCode::BAD_REQUEST, "{}", pair.text);
    assert_eq!(pair.fields(), [""]);
    assert_eq!(pair.body["errors"][0]["message"], "must be an object");

    let started = h
        .raw(Method::POST, &start, ACME, Some("application/json"), "null")
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let execution = started.body["execution_id"].as_str().unwrap().to_owned();
    let stop = format!("/jobs/ACME/{job}/executions/{execution}/stop");
    let stopped = h
        .raw(Method::POST, &stop, ACME, Some("application/json"), "null")
        .await;
    assert_ne!(stopped.status, StatusCode::BAD_REQUEST, "{}", stopped.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_documents_and_refuses_launch_options() {
    let h = Harness::new();
    let document = h.call(Method::GET, "/openapi.json", ACME, None).await.body;
    let restart = document_operation(
        &document,
        "/jobs/{alias}/{jobId}/executions/{executionId}/restart",
        "post",
    );
    let schema = restart["requestBody"]["content"]["application/json"]["schema"].to_string();
    assert!(schema.contains("RestartRequest"), "{schema}");
    let properties = &document["components"]["schemas"]["RestartRequest"]["properties"];
    assert!(properties.get("hosts").is_some());
    assert!(properties.get("limit").is_none(), "{properties}");

    let job = inline_job(&h).await;
    let started = h
        .call(Method::POST, &format!("/jobs/ACME/{job}/start"), ACME, None)
        .await;
    let execution = started.body["execution_id"].as_str().unwrap();
    let reply = h
        .call(
            Method::POST,
            &format!("/jobs/ACME/{job}/executions/{execution}/restart"),
            ACME,
            Some(json!({"limit": [], "check": true})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let mut fields = reply.fields();
    fields.sort();
    assert_eq!(fields, ["check", "limit"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_alias_is_a_documented_400_on_every_account_operation() {
    let h = Harness::new();
    let document = h.call(Method::GET, "/openapi.json", ADMIN, None).await.body;
    let mut account_operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let names_account = operation["parameters"]
                .as_array()
                .is_some_and(|parameters| parameters.iter().any(|p| p["name"] == "alias"));
            if names_account {
                account_operations += 1;
                assert!(
                    operation["responses"].get("400").is_some(),
                    "{method} {path} does not document 400"
                );
            }
        }
    }
    assert!(account_operations > 20, "{account_operations}");
    let job = "01a24281-544d-75dd-8774-7ac4f7902d53";
    for uri in [
        format!("/jobs/null,null/{job}"),
        format!("/jobs/null,null/{job}/executions/{job}"),
        "/serviceAccounts/a%20b/svc".to_owned(),
    ] {
        let reply = h.call(Method::GET, &uri, ADMIN, None).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{uri}: {}",
            reply.text
        );
        assert_eq!(reply.fields(), ["accountAlias"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_bounds_match_the_document() {
    let h = Harness::new();
    let job = inline_job(&h).await;
    let beyond_int32 = h
        .call(Method::GET, "/jobs/ACME?page=2147483648", ACME, None)
        .await;
    assert_eq!(
        beyond_int32.status,
        StatusCode::BAD_REQUEST,
        "{}",
        beyond_int32.text
    );
    assert_eq!(beyond_int32.fields(), ["page"]);
    let last = h
        .call(Method::GET, "/jobs/ACME?page=2147483647", ACME, None)
        .await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.text);

    h.call(Method::POST, &format!("/jobs/ACME/{job}/start"), ACME, None)
        .await;
    // An empty range, and another job's id on this job's list: nothing, not an error.
    for query in ["since=5&until=5", "since=9223372036854775806&until=0"] {
        let reply = h
            .call(
                Method::GET,
                &format!("/executions/ACME?{query}"),
                ACME,
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
        assert_eq!(reply.body["results"], json!([]));
    }
    let other = "01a24281-544d-75dd-8774-7ac4f7902d53";
    let reply = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job}/executions?jobId={other}"),
            ACME,
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["results"], json!([]));
    let own = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job}/executions?jobId={job}"),
            ACME,
            None,
        )
        .await;
    assert_eq!(
        own.body["results"].as_array().unwrap().len(),
        1,
        "{}",
        own.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_the_server_enforces_are_in_the_document() {
    let h = Harness::new();
    let document = h.call(Method::GET, "/openapi.json", ACME, None).await.body;
    let schemas = &document["components"]["schemas"];
    assert!(schemas["JobInput"]["properties"]["playbook"]["pattern"].is_string());
    assert!(schemas["Host"]["properties"]["sshPrivateKey"]["pattern"].is_string());
    assert!(schemas["ScheduleInput"]["properties"]["serviceAccountAlias"]["pattern"].is_string());
    assert!(schemas["JobInput"]["allOf"][0]["oneOf"].is_array());
    assert_eq!(schemas["JobInput"]["additionalProperties"], false);
    // What the server does not require, the document does not either.
    assert_eq!(schemas["JobInput"]["required"], json!(["hosts"]));
    assert_eq!(schemas["Host"]["required"], json!(["id"]));
    // A trigger's expression has the form of its type.
    let forms = schemas["Trigger"]["allOf"][0]["oneOf"].to_string();
    assert!(
        forms.contains("\"cron\"") && forms.contains("future-date-time"),
        "{forms}"
    );

    // And the server keeps to them: a key that is not base64, an empty inline playbook, a
    // tag with a space, a limit naming nothing, all at once.
    let reply = h
        .call(
            Method::POST,
            "/jobs/ACME",
            ACME,
            Some(json!({
                "playbook": "",
                "hosts": [{"id": "a", "sshPrivateKey": "not base64!"}],
                "playbookTags": ["two words"],
            })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let mut fields = reply.fields();
    fields.sort();
    assert_eq!(
        fields,
        ["hosts[0].sshPrivateKey", "playbook", "playbookTags[0]"],
        "{}",
        reply.text
    );
    assert!(!reply.text.contains("not base64!"), "{}", reply.text);

    // Nullable fields take null.
    let nulls = h
        .call(
            Method::POST,
            "/jobs/ACME",
            ACME,
            Some(json!({
                "playbook": "LSBob3N0czogYWxs",
                "repository": null,
                "description": null,
                "executionTtl": null,
                "sshKeyPair": null,
                "hosts": [],
            })),
        )
        .await;
    assert_eq!(nulls.status, StatusCode::CREATED, "{}", nulls.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mask_where_no_secret_is_stored_is_refused_naming_the_field() {
    let h = Harness::new();
    let masked = json!({
        "playbook": "LSBob3N0czogYWxs",
        "sshPrivateKey": "********",
        "hosts": [{"id": "a", "sshPassword": "********"}],
    });
    let reply = h.call(Method::POST, "/jobs/ACME", ACME, Some(masked)).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    let mut fields = reply.fields();
    fields.sort();
    assert_eq!(
        fields,
        ["hosts[0].sshPassword", "sshPrivateKey"],
        "{}",
        reply.text
    );

    // Sent back as shown, a stored key's mask keeps it; a mask where nothing is stored does not.
    let job = h
        .create_job(
            "ACME",
            ACME,
            json!({"playbook": "LSBob3N0czogYWxs", "sshPrivateKey": "a2V5", "hosts": [{"id": "a"}]}),
        )
        .await;
    let href = format!("/jobs/ACME/{}", job["id"].as_str().unwrap());
    let shown = h.call(Method::GET, &href, ACME, None).await.body;
    assert_eq!(shown["sshPrivateKey"], "********");
    let kept = h.call(Method::PUT, &href, ACME, Some(shown.clone())).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.text);
    let mut with_password = shown;
    with_password["hosts"][0]["sshPassword"] = json!("********");
    let refused = h.call(Method::PUT, &href, ACME, Some(with_password)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(refused.fields(), ["hosts[0].sshPassword"]);

    // A start stores nothing to keep.
    let start = h
        .call(
            Method::POST,
            &format!("{href}/start"),
            ACME,
            Some(json!({"sshPrivateKey": "********"})),
        )
        .await;
    assert_eq!(start.status, StatusCode::CONFLICT, "{}", start.text);
    assert_eq!(start.fields(), ["sshPrivateKey"]);
}
