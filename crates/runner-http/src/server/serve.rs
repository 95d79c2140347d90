//! `runner serve`: logging, store, engine (with the scheduler), router, listener, graceful
//! shutdown.

use std::time::Duration;

use runner_core::engine::Engine;
use runner_core::notifier::{Notification, NotificationKind, Notifier};
use tracing_subscriber::EnvFilter;

use super::any_store::AnyStore;
use super::cli::{LogFormat, ServeArgs};
use crate::router::{ApiConfig, router};

/// Logs every status change of an execution (events stay at debug level).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    async fn notify(&self, notification: Notification) {
        match &notification.kind {
            NotificationKind::Status {
                status, message, ..
            } => tracing::info!(
                execution = %notification.execution_id,
                job = %notification.job_id,
                account = %notification.account_alias,
                %status,
                message = message.as_deref().unwrap_or(""),
                "execution status"
            ),
            NotificationKind::Event(event) => tracing::debug!(
                execution = %notification.execution_id,
                kind = ?event.kind,
                host = event.host.as_deref().unwrap_or(""),
                "executor event"
            ),
        }
    }
}

/// Sets up the global tracing subscriber (`RUST_LOG` filters; default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr; stdout carries only the few lines meant for the operator.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Why the server could not start.
pub type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown requested");
}

/// Runs the server until SIGINT or SIGTERM, then drains requests and shuts the engine down.
pub async fn serve(args: ServeArgs) -> Result<(), ServeError> {
    tracing::info!(store = %args.store.redacted(), "opening store");
    let store = AnyStore::open(&args.store).await?;
    if matches!(store, AnyStore::Memory(_)) {
        tracing::warn!("memory store: jobs and executions are lost when the process ends");
    }
    let authenticator = super::tokens::authenticator(&args)?;
    let executor = super::executor::build(args.allow_local_repositories);
    let engine = Engine::builder()
        .store(store)
        .executor(executor)
        .notifier(LogNotifier)
        .concurrency(usize::from(args.concurrency))
        .build();
    let app = router(
        engine.clone(),
        ApiConfig {
            authenticator,
            body_limit: args.body_limit,
        },
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    // Every node fires due schedules; the store makes each due time one execution.
    let running = engine.start().with_scheduler();
    println!("runner: listening on http://{address}");
    tracing::info!(%address, concurrency = args.concurrency, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("HTTP server stopped; shutting the engine down");
    let grace = running.engine().config().shutdown_grace;
    if tokio::time::timeout(grace + Duration::from_secs(5), running.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("engine shutdown did not finish in time");
    }
    tracing::info!("stopped");
    Ok(())
}
