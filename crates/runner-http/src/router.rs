//! The router: routes, authentication, body limit, tracing, panic catching and JSON fallbacks.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, middleware};
use runner_core::engine::Engine;
use runner_core::executor::Executor;
use runner_core::notifier::Notifier;
use runner_core::store::ScheduleStore;
use runner_core::time::Clock;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::api::events::{self, LiveFeeds};
use crate::api::{self, AppState, schedules, service_accounts};
use crate::auth::{SharedAuthenticator, require_bearer};
use crate::error::ApiError;
use crate::extract::{BodyLimit, DEFAULT_BODY_LIMIT};

/// How the router is configured.
#[derive(Clone)]
pub struct ApiConfig {
    /// Verifies bearer tokens.
    pub authenticator: SharedAuthenticator,
    /// The largest request body accepted (413 beyond). Default 1 MiB.
    pub body_limit: usize,
    /// Accept job callbacks whose URL is (or resolves to) a loopback, private or link-local
    /// address. Default false: such URLs are 400 (the SSRF guard of `runner-webhook`).
    pub allow_private_callbacks: bool,
    /// Ends the open live event streams; close it when the server shuts down, or a graceful
    /// shutdown waits for their clients.
    pub live_feeds: LiveFeeds,
}

impl ApiConfig {
    /// A configuration with the default body limit, private callbacks refused.
    pub fn new(authenticator: SharedAuthenticator) -> Self {
        Self {
            authenticator,
            body_limit: DEFAULT_BODY_LIMIT,
            allow_private_callbacks: false,
            live_feeds: LiveFeeds::new(),
        }
    }

    /// Accepts (or refuses) callbacks to loopback, private and link-local addresses.
    pub fn with_private_callbacks(mut self, allow: bool) -> Self {
        self.allow_private_callbacks = allow;
        self
    }
}

/// The Job Service router over an engine. See the [crate docs](crate) for the routes.
pub fn router<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    engine: Engine<S, E, N, C>,
    config: ApiConfig,
) -> Router {
    let state = AppState {
        engine,
        allow_private_callbacks: config.allow_private_callbacks,
        live_feeds: config.live_feeds.clone(),
    };
    let openapi: Arc<str> = crate::openapi::document_json().into();
    let authenticated = Router::new()
        .route(
            "/jobs/{alias}",
            post(api::create_job::<S, E, N, C>).get(api::list_jobs::<S, E, N, C>),
        )
        .route(
            "/jobs/{alias}/{job_id}",
            get(api::get_job::<S, E, N, C>)
                .put(api::update_job::<S, E, N, C>)
                .delete(api::delete_job::<S, E, N, C>),
        )
        .route(
            "/jobs/{alias}/{job_id}/start",
            post(api::start_job::<S, E, N, C>),
        )
        .route(
            "/jobs/{alias}/{job_id}/executions",
            get(api::list_executions::<S, E, N, C>),
        )
        .route(
            "/jobs/{alias}/{job_id}/executions/{execution_id}",
            get(api::get_execution::<S, E, N, C>),
        )
        .route(
            "/jobs/{alias}/{job_id}/executions/{execution_id}/events",
            get(events::list_events::<S, E, N, C>),
        )
        .route(
            "/jobs/{alias}/{job_id}/executions/{execution_id}/restart",
            post(api::restart_execution::<S, E, N, C>),
        )
        .route(
            "/jobs/{alias}/{job_id}/executions/{execution_id}/stop",
            post(api::stop_execution::<S, E, N, C>),
        )
        .route(
            "/jobs/{alias}/{job_id}/executions/{execution_id}/kill",
            post(api::kill_execution::<S, E, N, C>),
        )
        .route(
            "/jobs/{alias}/{job_id}/schedules",
            post(schedules::create_schedule::<S, E, N, C>)
                .get(schedules::list_schedules::<S, E, N, C>),
        )
        .route(
            "/jobs/{alias}/{job_id}/schedules/{schedule_id}",
            get(schedules::get_schedule::<S, E, N, C>)
                .put(schedules::update_schedule::<S, E, N, C>)
                .delete(schedules::delete_schedule::<S, E, N, C>),
        )
        .route(
            "/serviceAccounts/{alias}",
            post(service_accounts::create_service_account::<S, E, N, C>)
                .get(service_accounts::list_service_accounts::<S, E, N, C>),
        )
        .route(
            "/serviceAccounts/{alias}/{service_account}",
            get(service_accounts::get_service_account::<S, E, N, C>)
                .delete(service_accounts::delete_service_account::<S, E, N, C>),
        )
        .route(
            "/openapi.json",
            get(move || {
                let openapi = Arc::clone(&openapi);
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        openapi.to_string(),
                    )
                }
            }),
        )
        .route_layer(middleware::from_fn_with_state(
            config.authenticator.clone(),
            require_bearer,
        ));

    Router::new()
        .merge(authenticated)
        .route("/healthz", get(api::healthz::<S, E, N, C>))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(Extension(BodyLimit(config.body_limit)))
        // Innermost of the three: a panic becomes a bare 500 that the trace layer still logs.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http()
                // Method and path only: never headers (Authorization) nor bodies (secrets).
                .make_span_with(|request: &Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The panic payload could hold request data; it is not logged nor sent.
    tracing::error!("a handler panicked");
    let mut response = ApiError::Internal.into_response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
