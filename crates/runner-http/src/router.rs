//! The router: routes, authentication, body limit, tracing, panic catching and JSON fallbacks.

use axum::Router;
use axum::handler::Handler;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
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
use utoipa::openapi::HttpMethod;

use crate::api::events::{self, LiveFeeds};
use crate::api::operations::{self, Operations};
use crate::api::run_log;
use crate::api::{self, AppState, deliveries, inventory, key_pairs, schedules, service_accounts};
use crate::auth::{SharedAuthenticator, require_bearer};
use crate::console;
use crate::error::ApiError;
use crate::extract::{BodyLimit, DEFAULT_BODY_LIMIT};
use crate::openapi;

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
    /// Whether the node drains (`/readyz`), and the metrics `GET /metrics` serves (none by
    /// default: 404).
    pub operations: Operations,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The authenticator holds secrets (token hashes, a JWT key): it is not shown.
        f.debug_struct("ApiConfig")
            .field("body_limit", &self.body_limit)
            .field("allow_private_callbacks", &self.allow_private_callbacks)
            .field("live_feeds", &self.live_feeds)
            .field("operations", &self.operations)
            .finish_non_exhaustive()
    }
}

impl ApiConfig {
    /// A configuration with the default body limit, private callbacks refused.
    pub fn new(authenticator: SharedAuthenticator) -> Self {
        Self {
            authenticator,
            body_limit: DEFAULT_BODY_LIMIT,
            allow_private_callbacks: false,
            live_feeds: LiveFeeds::new(),
            operations: Operations::default(),
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
    routes(engine, config).router
}

/// The router, and the routes it serves as (path, method) pairs in the OpenAPI document's
/// spelling: what a test compares with the document, since axum cannot list a router's routes.
pub(crate) struct Routes {
    pub(crate) router: Router,
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "read by the test that holds the document to the router"
        )
    )]
    pub(crate) served: Vec<(String, HttpMethod)>,
}

/// Routes under construction. Each handler is served at the path and methods its own
/// `#[utoipa::path]` operation declares, so the two cannot disagree, and is recorded in
/// [`Routes::served`] for the test that holds the document to the router. Every route goes
/// through [`Table::add`] (none through a bare `Router::route`), so that list is complete.
struct Table<St> {
    router: Router<St>,
    served: Vec<(String, HttpMethod)>,
}

impl<St: Clone + Send + Sync + 'static> Table<St> {
    fn new() -> Self {
        Self {
            router: Router::new(),
            served: Vec::new(),
        }
    }

    /// Serves `handler` where `operation` (the `__path_` type `#[utoipa::path]` made for it)
    /// says.
    fn add<P: utoipa::Path, H: Handler<T, St>, T: 'static>(
        mut self,
        _operation: P,
        handler: H,
    ) -> Self {
        let path = P::path();
        let mut methods = MethodRouter::new();
        for method in P::methods() {
            methods = methods.on(method_filter(&method), handler.clone());
            self.served.push((path.clone(), method));
        }
        self.router = self.router.route(&path, methods);
        self
    }
}

fn method_filter(method: &HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}

/// Every route, with its layers.
pub(crate) fn routes<S: ScheduleStore, E: Executor, N: Notifier, C: Clock>(
    engine: Engine<S, E, N, C>,
    config: ApiConfig,
) -> Routes {
    let state = AppState {
        engine,
        allow_private_callbacks: config.allow_private_callbacks,
        live_feeds: config.live_feeds.clone(),
        operations: config.operations.clone(),
    };
    let authenticated = Table::new()
        .add(api::__path_create_job, api::create_job::<S, E, N, C>)
        .add(api::__path_list_jobs, api::list_jobs::<S, E, N, C>)
        .add(api::__path_get_job, api::get_job::<S, E, N, C>)
        .add(api::__path_update_job, api::update_job::<S, E, N, C>)
        .add(api::__path_delete_job, api::delete_job::<S, E, N, C>)
        .add(api::__path_start_job, api::start_job::<S, E, N, C>)
        .add(
            api::__path_list_executions,
            api::list_executions::<S, E, N, C>,
        )
        .add(
            api::__path_find_executions,
            api::find_executions::<S, E, N, C>,
        )
        .add(api::__path_get_execution, api::get_execution::<S, E, N, C>)
        .add(
            events::__path_list_events,
            events::list_events::<S, E, N, C>,
        )
        .add(
            deliveries::__path_list_given_up_deliveries,
            deliveries::list_given_up_deliveries::<S, E, N, C>,
        )
        .add(run_log::__path_get_log, run_log::get_log::<S, E, N, C>)
        .add(
            api::__path_restart_execution,
            api::restart_execution::<S, E, N, C>,
        )
        .add(
            api::__path_stop_execution,
            api::stop_execution::<S, E, N, C>,
        )
        .add(
            api::__path_kill_execution,
            api::kill_execution::<S, E, N, C>,
        )
        .add(
            schedules::__path_create_schedule,
            schedules::create_schedule::<S, E, N, C>,
        )
        .add(
            schedules::__path_list_schedules,
            schedules::list_schedules::<S, E, N, C>,
        )
        .add(
            schedules::__path_get_schedule,
            schedules::get_schedule::<S, E, N, C>,
        )
        .add(
            schedules::__path_update_schedule,
            schedules::update_schedule::<S, E, N, C>,
        )
        .add(
            schedules::__path_delete_schedule,
            schedules::delete_schedule::<S, E, N, C>,
        )
        .add(
            service_accounts::__path_create_service_account,
            service_accounts::create_service_account::<S, E, N, C>,
        )
        .add(
            service_accounts::__path_list_service_accounts,
            service_accounts::list_service_accounts::<S, E, N, C>,
        )
        .add(
            service_accounts::__path_get_service_account,
            service_accounts::get_service_account::<S, E, N, C>,
        )
        .add(
            service_accounts::__path_delete_service_account,
            service_accounts::delete_service_account::<S, E, N, C>,
        )
        .add(
            key_pairs::__path_create_key_pair,
            key_pairs::create_key_pair::<S, E, N, C>,
        )
        .add(
            key_pairs::__path_list_key_pairs,
            key_pairs::list_key_pairs::<S, E, N, C>,
        )
        .add(
            key_pairs::__path_get_key_pair,
            key_pairs::get_key_pair::<S, E, N, C>,
        )
        .add(
            key_pairs::__path_delete_key_pair,
            key_pairs::delete_key_pair::<S, E, N, C>,
        )
        .add(
            key_pairs::__path_distribute_key_pair,
            key_pairs::distribute_key_pair::<S, E, N, C>,
        )
        .add(
            inventory::__path_create_inventory_host,
            inventory::create_inventory_host::<S, E, N, C>,
        )
        .add(
            inventory::__path_list_inventory_hosts,
            inventory::list_inventory_hosts::<S, E, N, C>,
        )
        .add(
            inventory::__path_get_inventory_host,
            inventory::get_inventory_host::<S, E, N, C>,
        )
        .add(
            inventory::__path_update_inventory_host,
            inventory::update_inventory_host::<S, E, N, C>,
        )
        .add(
            inventory::__path_delete_inventory_host,
            inventory::delete_inventory_host::<S, E, N, C>,
        )
        .add(openapi::__path_serve_document, openapi::serve_document)
        .add(
            operations::__path_metrics,
            operations::metrics::<S, E, N, C>,
        );
    let public = Table::new()
        .add(api::__path_healthz, api::healthz::<S, E, N, C>)
        .add(operations::__path_readyz, operations::readyz::<S, E, N, C>)
        .add(console::__path_serve_page, console::serve_page)
        .add(console::__path_serve_asset, console::serve_asset);

    let served = [authenticated.served, public.served].concat();
    let router = Router::new()
        .merge(
            authenticated
                .router
                .route_layer(middleware::from_fn_with_state(
                    config.authenticator.clone(),
                    require_bearer,
                )),
        )
        .merge(public.router)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(Extension(BodyLimit(config.body_limit)))
        .layer(middleware::from_fn(with_store_patience))
        // Inside the routing (a `Router::layer` wraps each route), so it sees the matched path.
        .layer(middleware::from_fn(crate::telemetry::track_http))
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
        ]));
    Routes { router, served }
}

/// How long a request waits for a store that does not answer before it gives up with 503: a
/// person or a script at the other end hears "try again" at once rather than after the store's
/// own retries (the PostgreSQL store's `retry_for`), which the engine keeps.
pub const STORE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

async fn with_store_patience(request: axum::extract::Request, next: middleware::Next) -> Response {
    runner_core::store::patience::with_patience(STORE_PATIENCE, next.run(request)).await
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The panic payload could hold request data; it is not logged nor sent.
    tracing::error!("a handler panicked");
    let mut response = ApiError::Internal.into_response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use runner_core::testkit::{Script, ScriptedExecutor};
    use runner_store_memory::MemoryStore;

    use super::*;
    use crate::auth::TokenFile;

    #[tokio::test]
    async fn the_document_lists_exactly_the_routes_the_router_serves() {
        let engine = Engine::builder()
            .store(MemoryStore::new())
            .executor(ScriptedExecutor::new(Script::Succeed))
            .build();
        let tokens = TokenFile::parse("admin-token-0123456789 *").expect("a valid token file");
        let Routes { served, .. } = routes(engine, ApiConfig::new(Arc::new(tokens)));
        let served_routes: BTreeSet<(String, String)> = served
            .iter()
            .map(|(path, method)| {
                let method = serde_json::to_value(method).expect("a method serializes");
                (path.clone(), method.as_str().unwrap_or_default().to_owned())
            })
            .collect();
        assert_eq!(served_routes.len(), served.len(), "a route is served twice");

        let document = crate::openapi::document();
        let documented: BTreeSet<(String, String)> = document["paths"]
            .as_object()
            .expect("the document has paths")
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().expect("a path item is an object");
                methods
                    .keys()
                    .map(move |method| (path.clone(), method.clone()))
            })
            .collect();
        let undocumented: Vec<_> = served_routes.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served_routes).collect();
        assert!(
            undocumented.is_empty(),
            "served, not documented: {undocumented:?}"
        );
        assert!(unserved.is_empty(), "documented, not served: {unserved:?}");
    }
}
