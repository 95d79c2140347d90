//! The Job Schedule Service through the real router (`oneshot`): service accounts, schedules,
//! their errors, malformed bodies and tenant isolation. No scheduler runs here, so nothing fires;
//! firing over a real listening server is in `server.rs`.

mod common;

use axum::http::{Method, StatusCode, header};
use common::*;
use runner_core::ids::{AccountAlias, ScheduleId};
use runner_core::store::ScheduleStore;
use serde_json::{Value, json};

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is a string in {value}"))
        .to_owned()
}

/// A schedule body with the trigger under `key` (`trigger` or `type`).
fn schedule(key: &str, kind: &str, expression: &str, account: &str) -> Value {
    json!({
        "description": "nightly",
        "serviceAccountAlias": account,
        key: {"type": kind, "expression": expression},
    })
}

fn cron(expression: &str) -> Value {
    schedule("trigger", "cron", expression, "svc")
}

impl Harness {
    async fn service_account(&self, alias: &str, token: &str, name: &str) -> Value {
        let reply = self
            .call(
                Method::POST,
                &format!("/serviceAccounts/{alias}"),
                token,
                Some(json!({"alias": name, "description": "robot"})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body
    }

    async fn schedule(&self, alias: &str, job: &str, token: &str, body: Value) -> Value {
        let reply = self
            .call(
                Method::POST,
                &format!("/jobs/{alias}/{job}/schedules"),
                token,
                Some(body),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_crud_and_listing() {
    let h = Harness::new();
    let reply = h
        .call(
            Method::POST,
            "/serviceAccounts/ACME",
            ACME,
            Some(json!({"alias": "deploy.bot-1", "description": "deploys"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        reply.headers[header::LOCATION].to_str().unwrap(),
        "/serviceAccounts/ACME/deploy.bot-1"
    );
    let created = reply.body;
    assert_eq!(created["alias"], "deploy.bot-1");
    assert_eq!(created["accountAlias"], "ACME");
    assert_eq!(created["description"], "deploys");
    assert!(created["createdTime"].is_i64());
    assert_eq!(
        created.as_object().unwrap().len(),
        4,
        "exactly alias, accountAlias, description, createdTime: {created}"
    );

    // The same name again: 409, and the first one is unchanged.
    let duplicate = h
        .call(
            Method::POST,
            "/serviceAccounts/ACME",
            ACME,
            Some(json!({"alias": "deploy.bot-1", "description": "other"})),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.text);
    assert!(duplicate.body["message"].is_string());
    let got = h
        .call(
            Method::GET,
            "/serviceAccounts/ACME/deploy.bot-1",
            ACME,
            None,
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created);

    // A response sent back as a body: the read-only fields are ignored.
    let mut echoed = created.clone();
    echoed["alias"] = json!("second");
    echoed["accountAlias"] = json!("SOMEONE-ELSE");
    let second = h
        .call(Method::POST, "/serviceAccounts/ACME", ACME, Some(echoed))
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    assert_eq!(second.body["accountAlias"], "ACME");
    // Without a description.
    let third = h
        .call(
            Method::POST,
            "/serviceAccounts/ACME",
            ACME,
            Some(json!({"alias": "third"})),
        )
        .await;
    assert_eq!(third.status, StatusCode::CREATED);
    assert_eq!(third.body["description"], Value::Null);

    // Paged, newest first.
    let page = h
        .call(
            Method::GET,
            "/serviceAccounts/ACME?page=0&size=2",
            ACME,
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.body["totalSize"], 3);
    assert_eq!(page.body["page"], 0);
    assert_eq!(page.body["size"], 2);
    assert_eq!(page.body["results"][0]["alias"], "third");
    assert_eq!(page.body["results"][1]["alias"], "second");
    let last = h
        .call(
            Method::GET,
            "/serviceAccounts/ACME?page=1&size=2",
            ACME,
            None,
        )
        .await;
    assert_eq!(last.body["results"], json!([created]));
    let bad_size = h
        .call(Method::GET, "/serviceAccounts/ACME?size=0", ACME, None)
        .await;
    assert_eq!(bad_size.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_size.fields(), ["size"]);
    let empty = h
        .call(Method::GET, "/serviceAccounts/GAMMA", MULTI, None)
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body["totalSize"], 0);

    // Unknown and malformed names: 404.
    for uri in [
        "/serviceAccounts/ACME/nobody",
        "/serviceAccounts/ACME/bad%20name",
        "/serviceAccounts/ACME/%FF",
    ] {
        for method in [Method::GET, Method::DELETE] {
            let reply = h.call(method.clone(), uri, ACME, None).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {uri}");
        }
    }
    // A malformed account alias: 400 naming accountAlias.
    let bad_alias = h
        .call(Method::GET, "/serviceAccounts/a.b", ADMIN, None)
        .await;
    assert_eq!(bad_alias.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_alias.fields(), ["accountAlias"]);
    // Wrong method on a known path: 405.
    let put = h
        .call(
            Method::PUT,
            "/serviceAccounts/ACME/third",
            ACME,
            Some(json!({})),
        )
        .await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);

    // Delete: 204, then gone.
    let deleted = h
        .call(Method::DELETE, "/serviceAccounts/ACME/second", ACME, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.text.is_empty());
    let gone = h
        .call(Method::GET, "/serviceAccounts/ACME/second", ACME, None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let listed = h
        .call(Method::GET, "/serviceAccounts/ACME", ACME, None)
        .await;
    assert_eq!(listed.body["totalSize"], 2);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_crud_and_listing() {
    let h = Harness::new();
    let job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let job_id = text(&job, "id");
    h.service_account("ACME", ACME, "svc").await;
    h.service_account("ACME", ACME, "other").await;

    let reply = h
        .call(
            Method::POST,
            &format!("/jobs/ACME/{job_id}/schedules"),
            ACME,
            Some(cron("*/5 * * * *")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let created = reply.body;
    let schedule_id = text(&created, "id");
    let href = format!("/jobs/ACME/{job_id}/schedules/{schedule_id}");
    assert_eq!(reply.headers[header::LOCATION].to_str().unwrap(), href);
    assert_eq!(created["scheduleId"], schedule_id.as_str());
    assert_eq!(created["jobId"], job_id.as_str());
    assert_eq!(created["accountAlias"], "ACME");
    assert_eq!(created["description"], "nightly");
    assert_eq!(created["serviceAccountAlias"], "svc");
    assert_eq!(
        created["trigger"],
        json!({"type": "cron", "expression": "*/5 * * * *"})
    );
    assert_eq!(created["lastFireTime"], Value::Null);
    let created_time = created["createdTime"].as_i64().unwrap();
    let next = created["nextFireTime"]
        .as_i64()
        .expect("a cron has a next time");
    assert!(next > created_time && next - created_time <= 5 * 60_000);
    assert_eq!(next % (5 * 60_000), 0, "on a five-minute boundary (UTC)");
    assert_eq!(created["lastUpdatedTime"], created["createdTime"]);

    // The documents' example: the trigger under "type"; the response shows it as "trigger".
    let by_type = h
        .schedule(
            "ACME",
            &job_id,
            ACME,
            json!({
                "description": "Job Schedule demo.",
                "type": {"type": "date", "expression": "2999-01-31T12:00:00Z"},
                "serviceAccountAlias": "other"
            }),
        )
        .await;
    assert_eq!(
        by_type["trigger"],
        json!({"type": "date", "expression": "2999-01-31T12:00:00Z"})
    );
    assert!(by_type.get("type").is_none());
    assert_eq!(by_type["nextFireTime"], 32_474_779_200_000_i64);

    let got = h.call(Method::GET, &href, ACME, None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created);

    // Paged, newest first.
    let list = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/schedules?size=1"),
            ACME,
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["totalSize"], 2);
    assert_eq!(list.body["size"], 1);
    assert_eq!(list.body["results"], json!([by_type]));
    let list = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/schedules?page=1&size=1"),
            ACME,
            None,
        )
        .await;
    assert_eq!(list.body["results"], json!([created]));

    // Update: the whole schedule, the response sent back with changes (read-only fields ignored).
    let mut changed = got.body.clone();
    changed["description"] = json!("hourly now");
    changed["serviceAccountAlias"] = json!("other");
    changed["trigger"] = json!({"type": "cron", "expression": "0 * * * *"});
    changed["nextFireTime"] = json!(1);
    let updated = h.call(Method::PUT, &href, ACME, Some(changed)).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.body["id"], schedule_id.as_str());
    assert_eq!(updated.body["description"], "hourly now");
    assert_eq!(updated.body["serviceAccountAlias"], "other");
    assert_eq!(
        updated.body["trigger"],
        json!({"type": "cron", "expression": "0 * * * *"})
    );
    assert_eq!(updated.body["createdTime"], created["createdTime"]);
    let next = updated.body["nextFireTime"].as_i64().unwrap();
    assert_eq!(next % 3_600_000, 0, "replanned on the hour");
    assert_eq!(
        h.call(Method::GET, &href, ACME, None).await.body,
        updated.body
    );
    // Update with the trigger under "type".
    let retyped = h
        .call(
            Method::PUT,
            &href,
            ACME,
            Some(schedule("type", "cron", "30 2 * * 1", "svc")),
        )
        .await;
    assert_eq!(retyped.status, StatusCode::OK, "{}", retyped.text);
    assert_eq!(retyped.body["trigger"]["expression"], "30 2 * * 1");

    // Delete: 204, then 404 for read, update and delete.
    let deleted = h.call(Method::DELETE, &href, ACME, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.text.is_empty());
    assert_eq!(
        h.call(Method::GET, &href, ACME, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.call(Method::PUT, &href, ACME, Some(cron("* * * * *")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.call(Method::DELETE, &href, ACME, None).await.status,
        StatusCode::NOT_FOUND
    );
    let list = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/schedules"),
            ACME,
            None,
        )
        .await;
    assert_eq!(list.body["totalSize"], 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_in_use_and_job_deletion() {
    let h = Harness::new();
    let job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let job_id = text(&job, "id");
    h.service_account("ACME", ACME, "svc").await;
    let first = h.schedule("ACME", &job_id, ACME, cron("* * * * *")).await;
    let second = h
        .schedule(
            "ACME",
            &job_id,
            ACME,
            schedule("type", "cron", "0 0 * * *", "svc"),
        )
        .await;

    // In use by a schedule: 409, and it stays.
    let in_use = h
        .call(Method::DELETE, "/serviceAccounts/ACME/svc", ACME, None)
        .await;
    assert_eq!(in_use.status, StatusCode::CONFLICT, "{}", in_use.text);
    assert!(in_use.body["message"].as_str().unwrap().contains("svc"));
    assert_eq!(
        h.call(Method::GET, "/serviceAccounts/ACME/svc", ACME, None)
            .await
            .status,
        StatusCode::OK
    );

    // Deleting the job deletes its schedules: gone from the store, and the account is free.
    let deleted = h
        .call(Method::DELETE, &format!("/jobs/ACME/{job_id}"), ACME, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let acme = AccountAlias::try_from("ACME".to_owned()).unwrap();
    for schedule in [&first, &second] {
        let id: ScheduleId = text(schedule, "id").parse().unwrap();
        let stored = h
            .engine
            .store()
            .get_schedule(&acme, job_id.parse().unwrap(), id)
            .await
            .unwrap();
        assert_eq!(stored, None, "the job's schedule {id} was deleted with it");
        let reply = h
            .call(
                Method::GET,
                &format!("/jobs/ACME/{job_id}/schedules/{id}"),
                ACME,
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    let list = h
        .call(
            Method::GET,
            &format!("/jobs/ACME/{job_id}/schedules"),
            ACME,
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::NOT_FOUND, "the job is gone");
    let freed = h
        .call(Method::DELETE, "/serviceAccounts/ACME/svc", ACME, None)
        .await;
    assert_eq!(freed.status, StatusCode::NO_CONTENT, "{}", freed.text);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_errors_name_the_field() {
    let h = Harness::new();
    let job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let job_id = text(&job, "id");
    h.service_account("ACME", ACME, "svc").await;
    let existing = h.schedule("ACME", &job_id, ACME, cron("0 * * * *")).await;
    let href = format!("/jobs/ACME/{job_id}/schedules/{}", text(&existing, "id"));
    let create = format!("/jobs/ACME/{job_id}/schedules");

    for (body, field, hint) in [
        (cron("not a cron"), "trigger.expression", "5 fields"),
        (cron("* * * *"), "trigger.expression", "5 fields"),
        (cron("* * * * * *"), "trigger.expression", "5 fields"),
        (cron("61 * * * *"), "trigger.expression", "cron"),
        (
            schedule("type", "cron", "99 * * * *", "svc"),
            "type.expression",
            "cron",
        ),
        (
            schedule("trigger", "date", "tomorrow", "svc"),
            "trigger.expression",
            "ISO-8601",
        ),
        (
            schedule("type", "date", "2001-01-01T00:00:00Z", "svc"),
            "type.expression",
            "past",
        ),
        (
            schedule("trigger", "date", "2020-06-01T00:00:00+02:00", "svc"),
            "trigger.expression",
            "past",
        ),
        (
            schedule("trigger", "cron", "* * * * *", "bad name"),
            "serviceAccountAlias",
            "characters",
        ),
    ] {
        for (method, uri) in [(Method::POST, &create), (Method::PUT, &href)] {
            let reply = h.call(method.clone(), uri, ACME, Some(body.clone())).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{method} {body}: {}",
                reply.text
            );
            assert_eq!(reply.fields(), [field], "{method} {body}: {}", reply.text);
            let message = reply.body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains(hint), "{body}: {message}");
        }
    }
    // A service account the account does not have: 409 naming the field (create it, retry).
    let nobody = schedule("trigger", "cron", "* * * * *", "nobody");
    for (method, uri) in [(Method::POST, &create), (Method::PUT, &href)] {
        let reply = h
            .call(method.clone(), uri, ACME, Some(nobody.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CONFLICT,
            "{method}: {}",
            reply.text
        );
        assert_eq!(reply.fields(), ["serviceAccountAlias"]);
        assert!(reply.text.contains("does not exist"), "{}", reply.text);
    }
    // Several wrong fields at once.
    let many = h
        .call(
            Method::POST,
            &create,
            ACME,
            Some(
                json!({"serviceAccountAlias": "", "trigger": {"type": "cron", "expression": "x"}}),
            ),
        )
        .await;
    assert_eq!(many.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        many.fields(),
        ["description", "serviceAccountAlias", "trigger.expression"]
    );

    // Nothing was created or changed by any of that.
    let list = h.call(Method::GET, &create, ACME, None).await;
    assert_eq!(list.body["totalSize"], 1);
    assert_eq!(list.body["results"], json!([existing]));

    // Unknown or malformed job and schedule IDs: 404.
    let unknown_job = runner_core::ids::JobId::new();
    for (method, uri, body) in [
        (
            Method::POST,
            format!("/jobs/ACME/{unknown_job}/schedules"),
            Some(cron("* * * * *")),
        ),
        (
            Method::GET,
            format!("/jobs/ACME/{unknown_job}/schedules"),
            None,
        ),
        (
            Method::POST,
            "/jobs/ACME/not-a-uuid/schedules".to_owned(),
            Some(cron("* * * * *")),
        ),
        (
            Method::GET,
            format!("/jobs/ACME/{job_id}/schedules/{}", ScheduleId::new()),
            None,
        ),
        (
            Method::PUT,
            format!("/jobs/ACME/{job_id}/schedules/{}", ScheduleId::new()),
            Some(cron("* * * * *")),
        ),
        (
            Method::DELETE,
            format!("/jobs/ACME/{job_id}/schedules/{}", ScheduleId::new()),
            None,
        ),
        (
            Method::GET,
            format!("/jobs/ACME/{job_id}/schedules/zzz"),
            None,
        ),
        (
            Method::DELETE,
            format!("/jobs/ACME/{job_id}/schedules/1234"),
            None,
        ),
        (
            Method::GET,
            format!(
                "/jobs/ACME/{unknown_job}/schedules/{}",
                text(&existing, "id")
            ),
            None,
        ),
    ] {
        let reply = h.call(method.clone(), &uri, ACME, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            reply.text
        );
        assert!(reply.body["message"].is_string());
    }
    // page and size are checked as for the other listings.
    let bad_page = h
        .call(
            Method::GET,
            &format!("{create}?page=x&size=101"),
            ACME,
            None,
        )
        .await;
    assert_eq!(bad_page.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_page.fields(), ["page", "size"]);
    // Wrong method: 405.
    let patch = h.call(Method::PATCH, &href, ACME, None).await;
    assert_eq!(patch.status, StatusCode::METHOD_NOT_ALLOWED);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_schedule_and_service_account_bodies() {
    let h = Harness::new();
    let job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let job_id = text(&job, "id");
    h.service_account("ACME", ACME, "svc").await;
    let existing = h.schedule("ACME", &job_id, ACME, cron("0 * * * *")).await;
    let create = format!("/jobs/ACME/{job_id}/schedules");
    let href = format!("{create}/{}", text(&existing, "id"));

    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            r#"{"description": "d", "serviceAccountAlias": "svc", "trigger": {"type": "cron", "expression": "* * * * *"}, "bogus": 1}"#,
            vec!["bogus"],
            "unknown field",
        ),
        (
            r#"{"description": "d", "serviceAccountAlias": "svc", "trigger": {"type": "cron", "expression": "* * * * *", "timezone": "CET"}}"#,
            vec!["trigger.timezone"],
            "unknown field",
        ),
        (
            r#"{"description": 5, "serviceAccountAlias": "svc", "trigger": {"type": "cron", "expression": "* * * * *"}}"#,
            vec!["description"],
            "must be ",
        ),
        (
            r#"{"description": "d", "serviceAccountAlias": ["svc"], "trigger": {"type": "cron", "expression": "* * * * *"}}"#,
            vec!["serviceAccountAlias"],
            "must be ",
        ),
        (
            r#"{"description": "d", "serviceAccountAlias": "svc", "trigger": "* * * * *"}"#,
            vec!["trigger"],
            "must be ",
        ),
        (
            r#"{"description": "d", "serviceAccountAlias": "svc", "trigger": {"type": "weekly", "expression": "* * * * *"}}"#,
            vec!["trigger.type"],
            "must be one of cron, date",
        ),
        (
            r#"{"description": "d", "serviceAccountAlias": "svc", "type": {"type": "cron", "expression": 5}}"#,
            vec!["type.expression"],
            "must be ",
        ),
        (
            r#"{"description": "d", "serviceAccountAlias": "svc", "trigger": {"type": "cron"}}"#,
            vec!["trigger.expression"],
            "is required",
        ),
        (
            r#"{"description": "d", "serviceAccountAlias": "svc"}"#,
            vec!["trigger"],
            "is required",
        ),
        (
            r#"{"description": "d", "serviceAccountAlias": "svc", "trigger": null}"#,
            vec!["trigger"],
            "is required",
        ),
        (
            r#"{"description": "d", "serviceAccountAlias": "svc", "trigger": {"type": "cron", "expression": "* * * * *"}, "type": {"type": "cron", "expression": "* * * * *"}}"#,
            vec!["trigger"],
            "not both",
        ),
        (r#"[1, 2]"#, vec![""], "must be an object"),
        (r#"{"description": "d", "#, vec![""], "EOF"),
    ];
    for (body, fields, hint) in &cases {
        for (method, uri) in [(Method::POST, &create), (Method::PUT, &href)] {
            let reply = h
                .raw(method.clone(), uri, ACME, Some("application/json"), *body)
                .await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{method} {body}: {}",
                reply.text
            );
            if fields != &[""] {
                assert_eq!(&reply.fields(), fields, "{method} {body}: {}", reply.text);
            }
            assert!(reply.text.contains(hint), "{body}: {}", reply.text);
        }
    }

    // Empty body, wrong content type, over the limit.
    let empty = h
        .raw(Method::POST, &create, ACME, Some("application/json"), "")
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(empty.fields(), [""]);
    let yaml = h
        .raw(
            Method::PUT,
            &href,
            ACME,
            Some("text/yaml"),
            "description: x",
        )
        .await;
    assert_eq!(yaml.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = format!(
        r#"{{"description": "{}", "serviceAccountAlias": "svc"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let too_large = h
        .raw(Method::POST, &create, ACME, Some("application/json"), huge)
        .await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);

    // The schedule was never changed, and nothing was added.
    let list = h.call(Method::GET, &create, ACME, None).await;
    assert_eq!(list.body["results"], json!([existing]));

    // Service account bodies.
    for (body, fields, hint) in [
        (
            r#"{"alias": "a", "bogus": true}"#,
            vec!["bogus"],
            "unknown field",
        ),
        (r#"{"alias": 7}"#, vec!["alias"], "must be "),
        (
            r#"{"alias": "a", "description": {"x": 1}}"#,
            vec!["description"],
            "must be ",
        ),
        (
            r#"{"description": "no name"}"#,
            vec!["alias"],
            "is required",
        ),
        (r#"{"alias": ""}"#, vec!["alias"], "64 characters"),
        (r#"{"alias": "has space"}"#, vec!["alias"], "64 characters"),
        (r#"{"alias": "a/b"}"#, vec!["alias"], "64 characters"),
    ] {
        let reply = h
            .raw(
                Method::POST,
                "/serviceAccounts/ACME",
                ACME,
                Some("application/json"),
                body,
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.fields(), fields, "{body}: {}", reply.text);
        assert!(reply.text.contains(hint), "{body}: {}", reply.text);
    }
    let long = json!({"alias": "a".repeat(65)});
    let reply = h
        .call(Method::POST, "/serviceAccounts/ACME", ACME, Some(long))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.fields(), ["alias"]);
    let no_body = h
        .call(Method::POST, "/serviceAccounts/ACME", ACME, None)
        .await;
    assert_eq!(no_body.status, StatusCode::BAD_REQUEST);
    let text_body = h
        .raw(
            Method::POST,
            "/serviceAccounts/ACME",
            ACME,
            Some("text/plain"),
            "svc2",
        )
        .await;
    assert_eq!(text_body.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let listed = h
        .call(Method::GET, "/serviceAccounts/ACME", ACME, None)
        .await;
    assert_eq!(listed.body["totalSize"], 1, "only svc exists");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_tenant_isolation_matrix() {
    let h = Harness::new();
    let beta_job = h.create_job("BETA", BETA, inline_job(&["a"])).await;
    let beta_job_id = text(&beta_job, "id");
    h.service_account("BETA", BETA, "beta-svc").await;
    let beta_schedule = h
        .schedule(
            "BETA",
            &beta_job_id,
            BETA,
            schedule("trigger", "cron", "0 * * * *", "beta-svc"),
        )
        .await;
    let beta_schedule_id = text(&beta_schedule, "id");
    let acme_job = h.create_job("ACME", ACME, inline_job(&["a"])).await;
    let acme_job_id = text(&acme_job, "id");
    h.service_account("ACME", ACME, "svc").await;

    let endpoints = |alias: &str, job: &str, schedule_id: &str, account: &str| {
        vec![
            (
                Method::POST,
                format!("/serviceAccounts/{alias}"),
                Some(json!({"alias": "intruder"})),
            ),
            (Method::GET, format!("/serviceAccounts/{alias}"), None),
            (
                Method::GET,
                format!("/serviceAccounts/{alias}/{account}"),
                None,
            ),
            (
                Method::DELETE,
                format!("/serviceAccounts/{alias}/{account}"),
                None,
            ),
            (
                Method::POST,
                format!("/jobs/{alias}/{job}/schedules"),
                Some(cron("* * * * *")),
            ),
            (Method::GET, format!("/jobs/{alias}/{job}/schedules"), None),
            (
                Method::GET,
                format!("/jobs/{alias}/{job}/schedules/{schedule_id}"),
                None,
            ),
            (
                Method::PUT,
                format!("/jobs/{alias}/{job}/schedules/{schedule_id}"),
                Some(cron("* * * * *")),
            ),
            (
                Method::DELETE,
                format!("/jobs/{alias}/{job}/schedules/{schedule_id}"),
                None,
            ),
        ]
    };

    // A token for ACME on BETA's paths: 403 everywhere, and nothing of BETA's in the answer.
    for (method, uri, body) in endpoints("BETA", &beta_job_id, &beta_schedule_id, "beta-svc") {
        let reply = h.call(method.clone(), &uri, ACME, body).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {uri}: {}",
            reply.text
        );
        assert!(!reply.text.contains(&beta_schedule_id), "{}", reply.text);
        assert!(!reply.text.contains("beta-svc"), "{}", reply.text);
        // And without a token: 401.
        let mut anonymous = axum::http::Request::builder()
            .method(method.clone())
            .uri(&uri);
        anonymous = anonymous.header(header::CONTENT_TYPE, "application/json");
        let reply = h
            .send(anonymous.body(axum::body::Body::from("{}")).unwrap())
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }

    // BETA's job, schedule and service account under ACME's path with ACME's token: 404.
    for (method, uri, body) in endpoints("ACME", &beta_job_id, &beta_schedule_id, "beta-svc")
        .into_iter()
        .filter(|(_, uri, _)| uri.contains(&beta_job_id) || uri.contains("beta-svc"))
    {
        let reply = h.call(method.clone(), &uri, ACME, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            reply.text
        );
    }
    // BETA's schedule id under ACME's own job: 404.
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(cron("* * * * *"))),
        (Method::DELETE, None),
    ] {
        let uri = format!("/jobs/ACME/{acme_job_id}/schedules/{beta_schedule_id}");
        let reply = h.call(method.clone(), &uri, ACME, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            reply.text
        );
    }
    // ACME cannot run a schedule under BETA's service account.
    let borrowed = h
        .call(
            Method::POST,
            &format!("/jobs/ACME/{acme_job_id}/schedules"),
            ACME,
            Some(schedule("trigger", "cron", "* * * * *", "beta-svc")),
        )
        .await;
    // As far as ACME can tell, it does not exist.
    assert_eq!(borrowed.status, StatusCode::CONFLICT);
    assert_eq!(borrowed.fields(), ["serviceAccountAlias"]);
    // Names are per account: ACME may have its own "beta-svc".
    h.service_account("ACME", ACME, "beta-svc").await;
    // ACME's listings show nothing of BETA's.
    let accounts = h
        .call(Method::GET, "/serviceAccounts/ACME", ACME, None)
        .await;
    assert!(
        accounts.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|account| account["accountAlias"] == "ACME")
    );

    // BETA's schedule and service account are untouched; nothing was created under BETA.
    let still = h
        .call(
            Method::GET,
            &format!("/jobs/BETA/{beta_job_id}/schedules/{beta_schedule_id}"),
            BETA,
            None,
        )
        .await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.body, beta_schedule);
    let beta_accounts = h
        .call(Method::GET, "/serviceAccounts/BETA", BETA, None)
        .await;
    assert_eq!(beta_accounts.body["totalSize"], 1);
    assert_eq!(beta_accounts.body["results"][0]["alias"], "beta-svc");
    let beta_schedules = h
        .call(
            Method::GET,
            &format!("/jobs/BETA/{beta_job_id}/schedules"),
            BETA,
            None,
        )
        .await;
    assert_eq!(beta_schedules.body["totalSize"], 1);

    // The admin and multi-account tokens reach what their scope covers.
    assert_eq!(
        h.call(Method::GET, "/serviceAccounts/BETA", ADMIN, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        h.call(Method::GET, "/serviceAccounts/GAMMA", MULTI, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        h.call(Method::GET, "/serviceAccounts/BETA", MULTI, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    h.shutdown().await;
}
