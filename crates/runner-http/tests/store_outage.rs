//! A request while the PostgreSQL server is down answers 503 with `Retry-After` at once (within
//! the router's store patience), although the store itself would retry for half a minute; the
//! same requests work again once the server is back.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use runner_core::engine::Engine;
use runner_core::testkit::fixtures::inline_spec;
use runner_core::testkit::{Script, ScriptedExecutor};
use runner_http::{ApiConfig, TokenFile, router};
use runner_store_postgres::PgStoreOptions;
use tower::ServiceExt;

#[path = "../../runner-store-postgres/tests/common/mod.rs"]
mod postgres_common;

use postgres_common::cluster::Cluster;

const TOKEN: &str = "admin-token-0123456789abcdef";
/// Far above the router's patience and far below the store's retry_for: a request that waited
/// for the store would miss it.
const BOUND: Duration = Duration::from_secs(15);

async fn get(app: &axum::Router, path: &str) -> (StatusCode, Option<String>) {
    let request = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = tokio::time::timeout(BOUND, app.clone().oneshot(request))
        .await
        .expect("the request answered without waiting out the store's retries")
        .unwrap();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status(), retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_during_an_outage_answer_503_at_once() {
    let cluster = Cluster::start();
    let options = PgStoreOptions::new(cluster.url()).retry_for(Duration::from_secs(30));
    let store = postgres_common::connect(options).await;
    let engine = Engine::builder()
        .store(store)
        .executor(ScriptedExecutor::new(Script::Succeed))
        .build();
    let tokens = TokenFile::parse(&format!("{TOKEN} *\n")).unwrap();
    let app = router(engine.clone(), ApiConfig::new(Arc::new(tokens)));
    let account = runner_core::testkit::fixtures::alias("ACME");
    let job = engine
        .create_job(&account, inline_spec(&["a"]))
        .await
        .unwrap();
    let path = format!("/jobs/ACME/{}", job.id);
    assert_eq!(get(&app, &path).await, (StatusCode::OK, None));

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .unwrap();
    for path in [path.as_str(), "/jobs/ACME"] {
        assert_eq!(
            get(&app, path).await,
            (StatusCode::SERVICE_UNAVAILABLE, Some("1".into())),
            "{path}"
        );
    }
    assert_eq!(
        get(&app, "/healthz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.resume();
        cluster
    })
    .await
    .unwrap();
    // The pool reconnects on the next requests: a client that retries as told gets through.
    let mut answered = get(&app, &path).await;
    for _ in 0..50 {
        if answered.0 != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        answered = get(&app, &path).await;
    }
    assert_eq!(answered, (StatusCode::OK, None));
    drop(cluster);
}
