//! Every endpoint through the real router (`oneshot`), with a memory store and scripted runs.

mod common;

use axum::http::{Method, StatusCode, header};
use common::*;
use runner_core::ids::{AccountAlias, JobId};
use runner_core::secret::MASK;
use runner_core::store::prelude::*;
use runner_core::testkit::Script;
use serde_json::{Value, json};

fn id(value: &Value, field: &str) -> String {
    value[field].as_str().expect("id is a string").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_crud_and_listing() {
    let h = Harness::new();
    let created = h.create_job("ACME", ACME, inline_job(&["a", "b"])).await;
    let job_id = id(&created, "id");
    assert_eq!(created["accountAlias"], "ACME");
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["executionTtl"], Value::Null);
    assert_eq!(
        created["links"],
        json!([{"ref": "self", "id": job_id, "href": format!("/jobs/ACME/{job_id}"),
                "verbs": ["GET", "PUT", "DELETE"]}])
    );

    // Location of the create.
    let reply = h
        .call(Method::POST, "/jobs/ACME", ACME, Some(inline_job(&["c"])))
        .await;
    let second = id(&reply.body, "id");
    assert_eq!(
        reply.headers[header::LOCATION].to_str().unwrap(),
        format!("/jobs/ACME/{second}")
    );

    let got = h
        .call(Method::GET, &format!("/jobs/ACME/{job_id}"), ACME, None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created);

    // Newest first, paged.
    let page = h
        .call(Method::GET, "/jobs/ACME?page=0&size=1", ACME, None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["totalSize"], 2);
    assert_eq!(page.body["page"], 0);
    assert_eq!(page.body["size"], 1);
    assert_eq!(page.body["results"][0]["id"], second.as_str());
    let page = h
        .call(Method::GET, "/jobs/ACME?page=1&size=1", ACME, None)
        .await;
    assert_eq!(page.body["results"][0]["id"], job_id.as_str());
    let all = h.call(Method::GET, "/jobs/ACME", ACME, None).await;
    assert_eq!(all.body["results"].as_array().unwrap().len(), 2);
    assert!(all.body["results"][0]["links"].is_array());

    // Update: the whole definition, read-only fields sent back are ignored.
    let mut changed = got.body.clone();
    changed["description"] = json!("changed");
    changed["executionTtl"] = json!(60);
    let updated = h
        .call(
            Method::PUT,
            &format!("/jobs/ACME/{job_id}"),
            ACME,
            Some(changed),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.body["description"], "changed");
    assert_eq!(updated.body["executionTtl"], 60);
    assert_eq!(updated.body["createdTime"], created["createdTime"]);

    // Delete, then it is gone.
    let deleted = h
        .call(Method::DELETE, &format!("/jobs/ACME/{job_id}"), ACME, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.text.is_empty());
    let gone = h
        .call(Method::GET, &format!("/jobs/ACME/{job_id}"), ACME, None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body["message"], "not found");
    let again = h
        .call(Method::DELETE, &format!("/jobs/ACME/{job_id}"), ACME, None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_run_and_read_executions() {
    let h = Harness::new();
    let job = h.create_job("ACME", ACME, inline_job(&["a", "b"])).await;
    let job_id = id(&job, "id");
    let reply = h
        .call(
            Method::POST,
            &format!("/jobs/ACME/{job_id}/start"),
            ACME,
            Some(json!({"hosts": [{"id": "a"}]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let execution_id = id(&reply.body, "execution_id");
    let href = format!("/jobs/ACME/{job_id}/executions/{execution_id}");
    assert_eq!(reply.headers[header::LOCATION].to_str().unwrap(), href);
    assert_eq!(reply.body["job_id"], job_id.as_str());
    assert_eq!(reply.body["account_alias"], "ACME");
    assert_eq!(reply.body["status"], "PENDING");
    assert_eq!(reply.body["start"], Value::Null);
    assert_eq!(reply.body["is_vpn_established"], false);
    assert_eq!(reply.body["repository_log"], Value::Null);

    let done = h.wait_for(&href, ACME, "SUCCESS").await;
    assert_eq!(done["timers"].as_array().unwrap().len(), 1);
    assert!(done["start"].is_i64() && done["end"].is_i64());
    // The start body's hosts replaced the job's for this execution.
    assert_eq!(h.executor.runs()[0].hosts, vec!["a".to_owned()]);

    // An empty JSON object and an empty JSON body both start on the job's hosts.
    h.call(
        Method::POST,
        &format!("/jobs/ACME/{job_id}/start"),
        ACME,
        Some(json!({})),
    )
    .await;
    let list = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/executions?size=1"),
            ACME,
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["totalSize"], 2);
    assert_eq!(list.body["size"], 1);
    assert_ne!(
        list.body["results"][0]["execution_id"],
        execution_id.as_str(),
        "newest first"
    );
    let list = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/executions?page=1&size=1"),
            ACME,
            None,
        )
        .await;
    assert_eq!(
        list.body["results"][0]["execution_id"],
        execution_id.as_str()
    );

    // A job without executions lists an empty page; an unknown job is 404.
    let other = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let empty = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{}/executions", id(&other, "id")),
            ACME,
            None,
        )
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body["totalSize"], 0);
    let unknown = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{}/executions", JobId::new()),
            ACME,
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_create_and_update_start_an_execution() {
    let h = Harness::new();
    let reply = h
        .call(
            Method::POST,
            "/jobs/ACME?immediate=true",
            ACME,
            Some(inline_job(&["a"])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let links = reply.body["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[1]["ref"], "execution");
    let href = links[1]["href"].as_str().unwrap().to_owned();
    h.wait_for(&href, ACME, "SUCCESS").await;

    let job_id = id(&reply.body, "id");
    let updated = h
        .call(
            Method::PUT,
            &format!("/jobs/ACME/{job_id}?immediate=true"),
            ACME,
            Some(inline_job(&["a"])),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["links"][1]["ref"], "execution");
    let list = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/executions"),
            ACME,
            None,
        )
        .await;
    assert_eq!(list.body["totalSize"], 2);

    // immediate=false starts nothing; a bad value is 400 naming the parameter.
    let plain = h
        .call(
            Method::POST,
            "/jobs/ACME?immediate=false",
            ACME,
            Some(inline_job(&["a"])),
        )
        .await;
    assert_eq!(plain.body["links"].as_array().unwrap().len(), 1);
    let bad = h
        .call(
            Method::POST,
            "/jobs/ACME?immediate=yes",
            ACME,
            Some(inline_job(&["a"])),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.fields(), ["immediate"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kill_restart_and_delete_conflicts() {
    let h = Harness::with_script(Script::UntilCancelled);

    // stop
    let job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let job_id = id(&job, "id");
    let execution = h.start("ACME", &job_id, ACME).await;
    let href = format!(
        "/jobs/ACME/{job_id}/executions/{}",
        id(&execution, "execution_id")
    );
    h.wait_for(&href, ACME, "RUNNING").await;

    let busy = h
        .call(Method::DELETE, &format!("/jobs/ACME/{job_id}"), ACME, None)
        .await;
    assert_eq!(busy.status, StatusCode::CONFLICT, "{}", busy.text);
    assert!(busy.body["message"].as_str().unwrap().len() > 5);

    let restart_running = h
        .call(Method::POST, &format!("{href}/restart"), ACME, None)
        .await;
    assert_eq!(restart_running.status, StatusCode::CONFLICT);
    assert!(
        restart_running.body["message"]
            .as_str()
            .unwrap()
            .contains("RUNNING"),
        "{}",
        restart_running.text
    );

    let stopped = h
        .call(
            Method::POST,
            &format!("{href}/stop"),
            ACME,
            Some(json!({"expiryDuration": 0})),
        )
        .await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert!(["STOPPING", "STOPPED"].contains(&stopped.body["status"].as_str().unwrap()));
    h.wait_for(&href, ACME, "STOPPED").await;
    // A repeated stop answers with the final status; a kill of a stopped execution is refused.
    let again = h
        .call(Method::POST, &format!("{href}/stop"), ACME, None)
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["status"], "STOPPED");
    let late = h
        .call(Method::POST, &format!("{href}/kill"), ACME, None)
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(
        late.body["message"].as_str().unwrap().contains("STOPPED"),
        "{}",
        late.text
    );
    let deleted = h
        .call(Method::DELETE, &format!("/jobs/ACME/{job_id}"), ACME, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // The executions of a deleted job stay readable.
    let kept = h.call(Method::GET, &href, ACME, None).await;
    assert_eq!(kept.status, StatusCode::OK);
    let listed = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/executions"),
            ACME,
            None,
        )
        .await;
    assert_eq!(listed.body["totalSize"], 1);

    // kill, with an empty body and with an expiry
    let job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let job_id = id(&job, "id");
    let execution = h.start("ACME", &job_id, ACME).await;
    let href = format!(
        "/jobs/ACME/{job_id}/executions/{}",
        id(&execution, "execution_id")
    );
    h.wait_for(&href, ACME, "RUNNING").await;
    let killed = h
        .call(
            Method::POST,
            &format!("{href}/kill"),
            ACME,
            Some(json!({"expiryDuration": 5})),
        )
        .await;
    assert_eq!(killed.status, StatusCode::OK, "{}", killed.text);
    assert!(["KILLING", "KILLED"].contains(&killed.body["status"].as_str().unwrap()));
    h.wait_for(&href, ACME, "KILLED").await;

    // restart from FAILURE
    let job = h.create_job("ACME", ACME, inline_job(&["a", "b"])).await;
    let job_id = id(&job, "id");
    h.executor
        .script(job_id.parse().unwrap(), Script::Fail(vec!["b".to_owned()]));
    let execution = h.start("ACME", &job_id, ACME).await;
    let href = format!(
        "/jobs/ACME/{job_id}/executions/{}",
        id(&execution, "execution_id")
    );
    let failed = h.wait_for(&href, ACME, "FAILURE").await;
    assert_eq!(failed["failed_hosts"], json!(["b"]));
    h.executor.script(job_id.parse().unwrap(), Script::Succeed);
    let restarted = h
        .call(
            Method::POST,
            &format!("{href}/restart"),
            ACME,
            Some(json!({})),
        )
        .await;
    assert_eq!(restarted.status, StatusCode::OK, "{}", restarted.text);
    assert_eq!(restarted.body["status"], "PENDING");
    assert_eq!(restarted.body["execution_id"], execution["execution_id"]);
    let done = h.wait_for(&href, ACME, "SUCCESS").await;
    assert_eq!(done["timers"].as_array().unwrap().len(), 2);
    assert_eq!(done["failed_hosts"], json!([]));
    let last_run = h.executor.runs().last().cloned().unwrap();
    assert_eq!(last_run.limit, Some(vec!["b".to_owned()]));
    h.shutdown().await;
}

/// The ids of a page of executions, in order.
fn listed_ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .expect("a page has results")
        .iter()
        .map(|execution| id(execution, "execution_id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_are_found_across_jobs_by_filter() {
    let h = Harness::new();
    let first = id(&h.create_job("ACME", ACME, inline_job(&["a"])).await, "id");
    let second = id(&h.create_job("ACME", ACME, inline_job(&["a"])).await, "id");
    let beta = id(&h.create_job("BETA", BETA, inline_job(&["a"])).await, "id");
    let mut started = Vec::new();
    for job in [&first, &second, &first] {
        let execution = id(&h.start("ACME", job, ACME).await, "execution_id");
        h.wait_for(
            &format!("/jobs/ACME/{job}/executions/{execution}"),
            ACME,
            "SUCCESS",
        )
        .await;
        started.push(execution);
    }
    let beta_execution = id(&h.start("BETA", &beta, BETA).await, "execution_id");
    started.reverse();
    let harness = &h;
    let get = |uri: String| async move {
        let reply = harness.call(Method::GET, &uri, ACME, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text);
        reply.body
    };

    // Every job's executions, newest first, in pages; nothing of BETA's.
    let all = get("/executions/ACME".into()).await;
    assert_eq!(all["totalSize"], 3);
    assert_eq!(listed_ids(&all), started);
    assert!(!all.to_string().contains(&beta_execution));
    let second_page = get("/executions/ACME?page=1&size=2".into()).await;
    assert_eq!(listed_ids(&second_page), started[2..]);
    assert_eq!(second_page["page"], 1);

    // Status: one, several with commas, several repeated.
    assert_eq!(
        get("/executions/ACME?status=FAILURE".into()).await["totalSize"],
        0
    );
    for query in [
        "status=SUCCESS",
        "status=FAILURE,SUCCESS",
        "status=FAILURE&status=SUCCESS",
    ] {
        let found = get(format!("/executions/ACME?{query}")).await;
        assert_eq!(listed_ids(&found), started, "{query}");
    }
    // A job, and a job of another account (nothing, not an error).
    let of_first = get(format!("/executions/ACME?jobId={first}")).await;
    assert_eq!(
        listed_ids(&of_first),
        [started[0].clone(), started[2].clone()]
    );
    let of_beta = get(format!("/executions/ACME?jobId={beta}")).await;
    assert_eq!(of_beta["totalSize"], 0);
    // Creation time: all of them lie between the epoch and an hour from now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let later = i64::try_from(now).unwrap() + 3_600_000;
    assert_eq!(
        get(format!("/executions/ACME?since={later}")).await["totalSize"],
        0
    );
    assert_eq!(get("/executions/ACME?until=1".into()).await["totalSize"], 0);
    let window = get(format!(
        "/executions/ACME?since=0&until={later}&status=SUCCESS"
    ))
    .await;
    assert_eq!(window["totalSize"], 3);

    // The job's own list takes the same filters.
    let job_list = get(format!(
        "/jobs/ACME/{first}/executions?status=SUCCESS&until={later}"
    ))
    .await;
    assert_eq!(
        listed_ids(&job_list),
        [started[0].clone(), started[2].clone()]
    );
    let none = get(format!("/jobs/ACME/{first}/executions?status=KILLED")).await;
    assert_eq!(none["totalSize"], 0);
    let same_job = get(format!("/jobs/ACME/{first}/executions?jobId={first}")).await;
    assert_eq!(same_job["totalSize"], 2);
    let unknown = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{}/executions?status=SUCCESS", JobId::new()),
            ACME,
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);

    // Bad values: 400 naming each parameter, on both lists.
    for (query, fields) in [
        ("status=LOST", vec!["status"]),
        ("status=SUCCESS,", vec!["status"]),
        ("jobId=nope", vec!["jobId"]),
        ("since=yesterday&until=-5", vec!["since", "until"]),
        ("status=pending", vec!["status"]),
    ] {
        for base in [
            "/executions/ACME".to_owned(),
            format!("/jobs/ACME/{first}/executions"),
        ] {
            let uri = format!("{base}?{query}");
            let reply = h.call(Method::GET, &uri, ACME, None).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{uri}: {}",
                reply.text
            );
            let mut named = reply.fields();
            named.sort();
            let mut want: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
            want.sort();
            assert_eq!(named, want, "{uri}: {}", reply.text);
        }
    }
    let other_job = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{first}/executions?jobId={second}"),
            ACME,
            None,
        )
        .await;
    // Another job's id filters everything out.
    assert_eq!(other_job.status, StatusCode::OK, "{}", other_job.text);
    assert_eq!(other_job.body["results"], json!([]));
    h.shutdown().await;
}

/// Every endpoint of account BETA, as a token for ACME sees it: 403, whatever the ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_isolation_matrix() {
    let h = Harness::with_script(Script::UntilCancelled);
    let beta_job = h.create_job("BETA", BETA, inline_job(&["a"])).await;
    let beta_job_id = id(&beta_job, "id");
    let beta_exec = h.start("BETA", &beta_job_id, BETA).await;
    let beta_exec_id = id(&beta_exec, "execution_id");
    let acme_job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let acme_job_id = id(&acme_job, "id");
    let acme_exec = h.start("ACME", &acme_job_id, ACME).await;
    let acme_exec_id = id(&acme_exec, "execution_id");

    let endpoints = |alias: &str, job: &str, exec: &str| -> Vec<(Method, String, Option<Value>)> {
        vec![
            (
                Method::POST,
                format!("/jobs/{alias}"),
                Some(inline_job(&["a"])),
            ),
            (
                Method::POST,
                format!("/jobs/{alias}?immediate=true"),
                Some(inline_job(&["a"])),
            ),
            (Method::GET, format!("/jobs/{alias}"), None),
            (Method::GET, format!("/jobs/{alias}/{job}"), None),
            (
                Method::PUT,
                format!("/jobs/{alias}/{job}"),
                Some(inline_job(&["a"])),
            ),
            (Method::DELETE, format!("/jobs/{alias}/{job}"), None),
            (Method::POST, format!("/jobs/{alias}/{job}/start"), None),
            (Method::GET, format!("/jobs/{alias}/{job}/executions"), None),
            (Method::GET, format!("/executions/{alias}"), None),
            (
                Method::GET,
                format!("/jobs/{alias}/{job}/executions/{exec}"),
                None,
            ),
            (
                Method::POST,
                format!("/jobs/{alias}/{job}/executions/{exec}/restart"),
                None,
            ),
            (
                Method::POST,
                format!("/jobs/{alias}/{job}/executions/{exec}/stop"),
                None,
            ),
            (
                Method::POST,
                format!("/jobs/{alias}/{job}/executions/{exec}/kill"),
                None,
            ),
        ]
    };

    // A token for ACME on BETA's paths: 403 everywhere, and nothing about BETA in the answer.
    for (method, uri, body) in endpoints("BETA", &beta_job_id, &beta_exec_id) {
        let reply = h.call(method.clone(), &uri, ACME, body).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {uri}: {}",
            reply.text
        );
        assert!(!reply.text.contains(&beta_job_id), "{}", reply.text);
    }
    // BETA's IDs under ACME's path, with ACME's token: 404 (except the account-level routes).
    for (method, uri, body) in endpoints("ACME", &beta_job_id, &beta_exec_id)
        .into_iter()
        .filter(|(_, uri, _)| uri.contains(&beta_job_id))
    {
        let reply = h.call(method.clone(), &uri, ACME, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            reply.text
        );
    }
    // ACME's job with BETA's execution id: 404 too.
    for suffix in ["", "/restart", "/stop", "/kill"] {
        let method = if suffix.is_empty() {
            Method::GET
        } else {
            Method::POST
        };
        let uri = format!("/jobs/ACME/{acme_job_id}/executions/{beta_exec_id}{suffix}");
        let reply = h.call(method, &uri, ACME, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}: {}", reply.text);
    }
    // ACME's listing does not show BETA's jobs.
    let list = h.call(Method::GET, "/jobs/ACME", ACME, None).await;
    assert!(!list.text.contains(&beta_job_id));

    // BETA's job and execution were not touched by any of that.
    let beta = AccountAlias::try_from("BETA".to_owned()).unwrap();
    let stored = h
        .engine
        .store()
        .get_job(&beta, beta_job_id.parse().unwrap())
        .await
        .unwrap()
        .expect("BETA's job survives");
    assert_eq!(stored.spec.description.as_deref(), Some("test job"));
    let page = h.call(Method::GET, "/jobs/BETA", BETA, None).await;
    assert_eq!(page.body["totalSize"], 1, "ACME created nothing under BETA");
    let exec = h
        .call(
            Method::GET,
            &format!("/jobs/BETA/{beta_job_id}/executions/{beta_exec_id}"),
            BETA,
            None,
        )
        .await;
    assert!(
        ["PENDING", "INITIALIZING", "RUNNING"].contains(&exec.body["status"].as_str().unwrap())
    );

    // A multi-account token reaches both its accounts, and only those.
    assert_eq!(
        h.call(Method::GET, "/jobs/ACME", MULTI, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.call(Method::GET, "/jobs/GAMMA", MULTI, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.call(Method::GET, "/jobs/BETA", MULTI, None).await.status,
        StatusCode::FORBIDDEN
    );
    // The admin token reaches every account.
    assert_eq!(
        h.call(Method::GET, "/jobs/BETA", ADMIN, None).await.status,
        StatusCode::OK
    );

    // Clean up the running executions.
    for (alias, token, job, exec) in [
        ("ACME", ACME, &acme_job_id, &acme_exec_id),
        ("BETA", BETA, &beta_job_id, &beta_exec_id),
    ] {
        let href = format!("/jobs/{alias}/{job}/executions/{exec}");
        h.call(Method::POST, &format!("{href}/kill"), token, None)
            .await;
        h.wait_for(&href, token, "KILLED").await;
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_is_required_except_for_health() {
    let h = Harness::new();
    let no_token = h
        .send(
            axum::http::Request::get("/jobs/ACME")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    assert!(no_token.headers.contains_key(header::WWW_AUTHENTICATE));
    assert!(
        no_token.body["message"]
            .as_str()
            .unwrap()
            .contains("Bearer")
    );

    let wrong = h
        .call(Method::GET, "/jobs/ACME", "not-a-token-at-all-000000", None)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let basic = h
        .send(
            axum::http::Request::get("/jobs/ACME")
                .header(header::AUTHORIZATION, format!("Basic {ACME}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    // 401 comes before anything else, even for a bad alias or body.
    let bad_everything = h
        .raw(
            Method::POST,
            "/jobs/bad%20alias",
            "nope-nope-nope-nope",
            Some("text/plain"),
            "x",
        )
        .await;
    assert_eq!(bad_everything.status, StatusCode::UNAUTHORIZED);

    let openapi = h
        .send(
            axum::http::Request::get("/openapi.json")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(openapi.status, StatusCode::UNAUTHORIZED);
    let openapi = h.call(Method::GET, "/openapi.json", ACME, None).await;
    assert_eq!(openapi.status, StatusCode::OK);
    assert_eq!(openapi.body["openapi"], "3.1.0");

    let health = h
        .send(
            axum::http::Request::get("/healthz")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, json!({"status": "ok"}));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_field_errors() {
    let h = Harness::new();
    let post = |body: &'static str| {
        h.raw(
            Method::POST,
            "/jobs/ACME",
            ACME,
            Some("application/json"),
            body,
        )
    };

    let truncated = post(r#"{"hosts": [{"id": "a"#).await;
    assert_eq!(
        truncated.status,
        StatusCode::BAD_REQUEST,
        "{}",
        truncated.text
    );
    assert!(
        truncated.body["message"].as_str().unwrap().contains("EOF"),
        "{}",
        truncated.text
    );

    let wrong_type = post(r#"{"playbook": "LQ==", "hosts": [{"id": 7}]}"#).await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_type.fields(), ["hosts[0].id"]);
    assert_eq!(wrong_type.body["errors"][0]["message"], "must be a string");

    let ttl_type = post(r#"{"playbook": "LQ==", "hosts": [], "executionTtl": "soon"}"#).await;
    assert_eq!(ttl_type.fields(), ["executionTtl"]);

    let unknown =
        post(r#"{"playbook": "LQ==", "hosts": [], "executionTTL": 5, "id": "ignored"}"#).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.fields(), ["executionTTL"]);
    assert_eq!(unknown.body["errors"][0]["message"], "unknown field");

    let nested_unknown =
        post(r#"{"playbook": "LQ==", "hosts": [{"id": "a", "sshKey": "x"}]}"#).await;
    assert_eq!(nested_unknown.fields(), ["hosts[0].sshKey"]);

    // Domain rules: every broken rule at once.
    let rules = post(r#"{"hosts": [{"id": "a"}, {"id": "a"}], "executionTtl": 0}"#).await;
    assert_eq!(rules.status, StatusCode::BAD_REQUEST);
    let fields = rules.fields();
    for expected in ["playbook", "executionTtl", "hosts[1].id"] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} missing in {fields:?}"
        );
    }

    let not_object = post("[1, 2]").await;
    assert_eq!(not_object.status, StatusCode::BAD_REQUEST);
    let empty = post("").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(
        empty.body["message"]
            .as_str()
            .unwrap()
            .contains("body is required")
    );
    let trailing = post(r#"{"playbook": "LQ==", "hosts": []} {}"#).await;
    assert_eq!(trailing.status, StatusCode::BAD_REQUEST);

    // Wrong content types: 415.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let reply = h
            .raw(
                Method::POST,
                "/jobs/ACME",
                ACME,
                content_type,
                inline_job(&["a"]).to_string(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    // Parameters are allowed (other JSON types are 415: see tests/hardening.rs).
    let charset = h
        .raw(
            Method::POST,
            "/jobs/ACME",
            ACME,
            Some("application/json; charset=utf-8"),
            inline_job(&["a"]).to_string(),
        )
        .await;
    assert_eq!(charset.status, StatusCode::CREATED, "{}", charset.text);

    // Over the limit: 413, declared or not.
    let huge = format!(r#"{{"description": "{}"}}"#, "x".repeat(10 * 1024 * 1024));
    let too_big = h
        .raw(
            Method::POST,
            "/jobs/ACME",
            ACME,
            Some("application/json"),
            huge.clone(),
        )
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        too_big.body["message"]
            .as_str()
            .unwrap()
            .contains("1048576")
    );
    let stream = axum::body::Body::from_stream(futures_stream(huge.into_bytes()));
    let chunked = h
        .raw(
            Method::POST,
            "/jobs/ACME",
            ACME,
            Some("application/json"),
            stream,
        )
        .await;
    assert_eq!(chunked.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Start, restart, stop and kill bodies are checked the same way.
    let job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let job_id = id(&job, "id");
    let start = h
        .raw(
            Method::POST,
            &format!("/jobs/ACME/{job_id}/start"),
            ACME,
            Some("application/json"),
            r#"{"hosts": [{"id": ""}], "sshPrivateKey": "not base64!", "extra": 1}"#,
        )
        .await;
    assert_eq!(start.status, StatusCode::BAD_REQUEST);
    // Every error at once: the unknown field with the values the document refuses.
    let mut fields = start.fields();
    fields.sort();
    assert_eq!(
        fields,
        ["extra", "hosts[0].id", "sshPrivateKey"],
        "{}",
        start.text
    );
    let start = h
        .raw(
            Method::POST,
            &format!("/jobs/ACME/{job_id}/start"),
            ACME,
            Some("application/json"),
            r#"{"hosts": [{"id": ""}], "sshPrivateKey": "not base64!"}"#,
        )
        .await;
    assert_eq!(start.fields(), ["hosts[0].id", "sshPrivateKey"]);
    let start = h
        .raw(
            Method::POST,
            &format!("/jobs/ACME/{job_id}/start"),
            ACME,
            Some("text/plain"),
            "{}",
        )
        .await;
    assert_eq!(start.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let execution = h.start("ACME", &job_id, ACME).await;
    let href = format!(
        "/jobs/ACME/{job_id}/executions/{}",
        id(&execution, "execution_id")
    );
    for body in [r#"{"expiryDuration": -1}"#, r#"{"expiryDuration": 1e12}"#] {
        let reply = h
            .raw(
                Method::POST,
                &format!("{href}/stop"),
                ACME,
                Some("application/json"),
                body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.fields(), ["expiryDuration"]);
    }
    let reply = h
        .raw(
            Method::POST,
            &format!("{href}/kill"),
            ACME,
            Some("application/json"),
            r#"{"expiryDuration": "5"}"#,
        )
        .await;
    assert_eq!(reply.fields(), ["expiryDuration"]);
    let reply = h
        .raw(
            Method::POST,
            &format!("{href}/kill"),
            ACME,
            Some("application/json"),
            r#"{"expiry": 5}"#,
        )
        .await;
    assert_eq!(reply.fields(), ["expiry"]);
    h.shutdown().await;
}

fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    tokio_stream::iter(chunks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_and_queries_are_checked() {
    let h = Harness::new();
    let job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let job_id = id(&job, "id");

    // Malformed IDs: 404, never 400 or 500.
    for uri in [
        "/jobs/ACME/not-a-uuid".to_owned(),
        "/jobs/ACME/1234".to_owned(),
        format!("/jobs/ACME/{job_id}/executions/not-a-uuid"),
        format!("/jobs/ACME/{}x/executions", &job_id),
        "/jobs/ACME/%FF%FE".to_owned(),
    ] {
        let reply = h.call(Method::GET, &uri, ACME, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}: {}", reply.text);
    }
    let stop = h
        .call(
            Method::POST,
            &format!("/jobs/ACME/{job_id}/executions/zzz/stop"),
            ACME,
            None,
        )
        .await;
    assert_eq!(stop.status, StatusCode::NOT_FOUND);
    let start = h
        .call(Method::POST, "/jobs/ACME/zzz/start", ACME, None)
        .await;
    assert_eq!(start.status, StatusCode::NOT_FOUND);

    // Malformed aliases: 400 naming accountAlias.
    for alias in ["bad%20alias", &"A".repeat(33), "a.b", "%C3%A9"] {
        let reply = h
            .call(Method::GET, &format!("/jobs/{alias}"), ADMIN, None)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{alias}: {}",
            reply.text
        );
        assert_eq!(reply.fields(), ["accountAlias"]);
    }

    // page and size out of range: 400 naming the field(s).
    for (query, fields) in [
        ("size=0", vec!["size"]),
        ("size=101", vec!["size"]),
        ("size=abc", vec!["size"]),
        ("page=-1", vec!["page"]),
        ("page=x&size=1000", vec!["page", "size"]),
    ] {
        let reply = h
            .call(Method::GET, &format!("/jobs/ACME?{query}"), ACME, None)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.fields(), fields, "{query}");
        let reply = h
            .call(
                Method::GET,
                &format!("/jobs/ACME/{job_id}/executions?{query}"),
                ACME,
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
    }
    // The last page the document's int32 allows is empty; one beyond it is refused.
    let far = h
        .call(
            Method::GET,
            "/jobs/ACME?page=2147483647&size=100",
            ACME,
            None,
        )
        .await;
    assert_eq!(far.status, StatusCode::OK);
    assert_eq!(far.body["results"], json!([]));
    let beyond = h
        .call(
            Method::GET,
            "/jobs/ACME?page=4000000000&size=100",
            ACME,
            None,
        )
        .await;
    assert_eq!(beyond.status, StatusCode::BAD_REQUEST);
    assert_eq!(beyond.fields(), ["page"]);

    // Unknown routes and methods: JSON 404 and 405.
    let unknown = h.call(Method::GET, "/nope", ACME, None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body["message"].is_string());
    let method = h
        .call(Method::PATCH, &format!("/jobs/ACME/{job_id}"), ACME, None)
        .await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(method.body["message"].is_string());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_write_only() {
    let h = Harness::new();
    let created = h
        .call(Method::POST, "/jobs/ACME", ACME, Some(secret_job()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let job_id = id(&created.body, "id");
    let check = |text: &str| {
        for secret in SECRET_VALUES {
            assert!(!text.contains(secret), "secret leaked: {text}");
        }
    };
    check(&created.text);
    assert_eq!(created.body["repository"]["credentials"]["password"], MASK);
    assert_eq!(
        created.body["repository"]["credentials"]["username"],
        "deploy"
    );
    assert_eq!(created.body["sshPrivateKey"], MASK);
    assert_eq!(created.body["hosts"][0]["sshPrivateKey"], MASK);
    assert_eq!(
        created.body["callbacks"][0],
        json!({"url": "https://93.184.215.14/x", "level": "DEBUG"})
    );

    let got = h
        .call(Method::GET, &format!("/jobs/ACME/{job_id}"), ACME, None)
        .await;
    check(&got.text);
    let list = h.call(Method::GET, "/jobs/ACME", ACME, None).await;
    check(&list.text);

    // Sending the masks back keeps the stored secrets.
    let mut back = got.body.clone();
    back["description"] = json!("renamed");
    let updated = h
        .call(
            Method::PUT,
            &format!("/jobs/ACME/{job_id}"),
            ACME,
            Some(back),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    check(&updated.text);
    let alias: AccountAlias = "ACME".parse().unwrap();
    let stored = h
        .engine
        .store()
        .get_job(&alias, job_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let credentials = stored
        .spec
        .repository
        .as_ref()
        .unwrap()
        .credentials
        .as_ref()
        .unwrap();
    assert_eq!(
        credentials.password.as_ref().unwrap().expose(),
        "repo-password-S3CRET"
    );
    assert_eq!(
        stored.spec.ssh_private_key.as_ref().unwrap().expose(),
        "ZGVmYXVsdC1rZXktUzNDUkVU"
    );
    assert_eq!(
        stored.hosts()[0].ssh_private_key.as_ref().unwrap().expose(),
        "aG9zdC1rZXktUzNDUkVU"
    );
    assert_eq!(
        stored.hosts()[0].ssh_password.as_ref().unwrap().expose(),
        "host-password-S3CRET"
    );
    assert_eq!(stored.spec.description.as_deref(), Some("renamed"));

    // A new value replaces the stored one, and is not shown either.
    let mut replaced = updated.body.clone();
    replaced["repository"]["credentials"]["password"] = json!("new-password-N3W");
    let reply = h
        .call(
            Method::PUT,
            &format!("/jobs/ACME/{job_id}"),
            ACME,
            Some(replaced),
        )
        .await;
    assert!(!reply.text.contains("new-password-N3W"));
    let stored = h
        .engine
        .store()
        .get_job(&alias, job_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let credentials = stored.spec.repository.unwrap().credentials.unwrap();
    assert_eq!(credentials.password.unwrap().expose(), "new-password-N3W");

    // A start with its own key: the execution view shows no key at all.
    let start = h
        .call(
            Method::POST,
            &format!("/jobs/ACME/{job_id}/start"),
            ACME,
            Some(json!({"sshPrivateKey": "c3RhcnQta2V5LVMzQ1JFVA=="})),
        )
        .await;
    assert_eq!(start.status, StatusCode::CREATED, "{}", start.text);
    assert!(!start.text.contains("c3RhcnQta2V5LVMzQ1JFVA=="));
    assert!(!start.text.contains("sshPrivateKey") && !start.text.contains("ssh_private_key"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_ok() {
    let h = Harness::new();
    let reply = h.call(Method::GET, "/healthz", "", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "ok");
    h.shutdown().await;
}

/// The document against the router itself, not its route table: every documented operation is
/// answered by a handler (not the fallback's 404 or 405), and every other method of a
/// documented path is 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_serves_the_documented_operations_and_no_other_method() {
    let h = Harness::new();
    let document = h.call(Method::GET, "/openapi.json", ADMIN, None).await.body;
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    assert!(paths.len() > 10, "{paths:?}");
    for (template, item) in paths {
        let uri = template
            .replace("{alias}", "ACME")
            .replace("{jobId}", &JobId::new().to_string())
            .replace("{executionId}", &JobId::new().to_string())
            .replace("{scheduleId}", &JobId::new().to_string())
            .replace("{serviceAccountAlias}", "svc")
            .replace("{keyPairName}", "deploy")
            .replace("{hostId}", "web-1")
            .replace("{asset}", "app.js");
        assert!(!uri.contains('{'), "{template} has an unknown parameter");
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            let documented = item.get(method.as_str().to_ascii_lowercase()).is_some();
            let reply = h.call(method.clone(), &uri, ADMIN, None).await;
            if documented {
                assert_ne!(
                    reply.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {template}"
                );
                assert_ne!(
                    reply.body["message"], "no such route",
                    "{method} {template}"
                );
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {template} is served but not documented"
                );
            }
        }
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_skips_overlapping_runs_refuses_a_second_start() {
    let h = Harness::with_script(Script::UntilCancelled);
    let mut body = inline_job(&["a"]);
    body["overlap"] = json!("skip");
    let job = h.create_job("ACME", ACME, body.clone()).await;
    assert_eq!(job["overlap"], "skip");
    let job_id = id(&job, "id");
    let execution = h.start("ACME", &job_id, ACME).await;
    let execution_id = id(&execution, "execution_id");
    let href = format!("/jobs/ACME/{job_id}/executions/{execution_id}");
    h.wait_for(&href, ACME, "RUNNING").await;
    let start = format!("/jobs/ACME/{job_id}/start");

    let refused = h.call(Method::POST, &start, ACME, None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains(&execution_id),
        "names the execution that has not ended: {}",
        refused.text
    );
    let listed = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/executions"),
            ACME,
            None,
        )
        .await;
    assert_eq!(
        listed.body["totalSize"], 1,
        "the refused start stored nothing"
    );

    h.call(Method::POST, &format!("{href}/kill"), ACME, None)
        .await;
    h.wait_for(&href, ACME, "KILLED").await;
    let again = h.call(Method::POST, &start, ACME, None).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);

    body["overlap"] = json!("sometimes");
    let bad = h.call(Method::POST, "/jobs/ACME", ACME, Some(body)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(
        bad.text.contains("overlap"),
        "the field is named: {}",
        bad.text
    );
    let plain = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    assert_eq!(plain["overlap"], "allow", "allow is the default");
}
