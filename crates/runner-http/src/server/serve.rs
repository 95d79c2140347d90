//! `runner serve`: logging, store, engine (with the scheduler), webhook delivery, router,
//! listener, graceful shutdown.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use runner_core::engine::{Engine, EngineConfig};
use runner_core::notifier::{Notification, NotificationKind, Notifier};
use runner_core::secret::Secret;
use runner_core::time::SystemClock;
use runner_webhook::WebhookConfig;
use tracing_subscriber::EnvFilter;

use super::any_store::AnyStore;
use super::cli::{LogFormat, ServeArgs};
use crate::api::events::LiveFeeds;
use crate::api::operations::{Operations, Readiness};
use crate::router::{ApiConfig, router};
use crate::telemetry::{Metrics, metrics_router};

/// Logs every status change of an execution (events stay at debug level).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    async fn notify(&self, notification: Notification) {
        match &notification.kind {
            NotificationKind::Status {
                status, message, ..
            } => tracing::info!(
                execution_id = %notification.execution_id,
                job_id = %notification.job_id,
                account_alias = %notification.account_alias,
                %status,
                // Not `message`: that is the event's own text, and a JSON line must have one.
                detail = message.as_deref().unwrap_or(""),
                "execution status"
            ),
            NotificationKind::Event(event) => tracing::debug!(
                execution_id = %notification.execution_id,
                kind = ?event.kind,
                host = event.host.as_deref().unwrap_or(""),
                "executor event"
            ),
        }
    }
}

/// Sets up the global tracing subscriber (`RUST_LOG` filters; default `info`; sled's own
/// records at `warn` and above unless `RUST_LOG` names sled).
pub fn init_logging(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // sled logs from closures that its epoch collector runs while a thread's locals are torn
    // down; a debug or trace record from there reaches the formatter's thread-local buffer
    // after it is gone, and the thread panics as the server shuts down.
    if !std::env::var("RUST_LOG").is_ok_and(|directives| directives.contains("sled")) {
        filter = filter.add_directive("sled=warn".parse().expect("a valid directive"));
    }
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

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that comes right after the server said it listens is
/// not the default action (the end of the process without a drain).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
        let terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        (interrupt, terminate)
    };
    async move {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = handlers;
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
    }
}

/// Reads the webhook signing key from a file: its text without the trailing line break. Errors
/// name the file, never its content.
pub fn read_signing_secret(path: &Path) -> Result<Secret, ServeError> {
    let bytes = std::fs::read(path).map_err(|error| {
        format!(
            "cannot read the callback signing secret file {}: {error}",
            path.display()
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        format!(
            "the callback signing secret file {} is not UTF-8 text",
            path.display()
        )
    })?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.trim().is_empty() {
        return Err(format!(
            "the callback signing secret file {} is empty",
            path.display()
        )
        .into());
    }
    Ok(Secret::new(secret))
}

/// The webhook delivery settings of the command line; flags left out keep
/// [`WebhookConfig::default`].
pub fn webhook_config(args: &ServeArgs) -> Result<WebhookConfig, ServeError> {
    let mut config = WebhookConfig::default();
    config.allow_private = args.allow_private_callbacks;
    if let Some(path) = &args.callback_signing_secret_file {
        config.signing_secret = Some(read_signing_secret(path)?);
    }
    if let Some(attempts) = args.callback_max_attempts {
        config.max_attempts = attempts;
    }
    if let Some(ms) = args.callback_retry_base_ms {
        config.backoff_base = Duration::from_millis(ms);
    }
    if let Some(ms) = args.callback_retry_max_ms {
        config.backoff_max = Duration::from_millis(ms);
    }
    if let Some(ms) = args.callback_timeout_ms {
        config.request_timeout = Duration::from_millis(ms);
    }
    if config.backoff_max < config.backoff_base {
        return Err("--callback-retry-max-ms must not be below --callback-retry-base-ms".into());
    }
    Ok(config)
}

/// The engine settings the flags give; the rest are the engine's defaults.
pub fn engine_config(args: &ServeArgs) -> EngineConfig {
    EngineConfig {
        concurrency: usize::from(args.concurrency),
        lease: Duration::from_secs(args.lease_secs),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
        event_field_bytes: args.event_field_bytes,
        run_log_cap: runner_core::run_log::LogCap::new(args.run_log_cap),
        retain: (args.retain_days > 0)
            .then(|| Duration::from_secs(u64::from(args.retain_days) * 24 * 3600)),
        ..EngineConfig::default()
    }
}

/// Runs the server until SIGINT or SIGTERM, then drains requests and shuts the engine down, then
/// the webhook delivery.
pub async fn serve(args: ServeArgs) -> Result<(), ServeError> {
    let webhooks = webhook_config(&args)?;
    tracing::info!(store = %args.store.redacted(), "opening store");
    let keys = super::secret_key::keyring(args.secret_key_file.as_deref(), &args.store)?;
    let store = Arc::new(AnyStore::open(&args.store, args.pg_schema.as_deref(), keys).await?);
    if matches!(*store, AnyStore::Memory(_)) {
        tracing::warn!("memory store: jobs and executions are lost when the process ends");
    }
    let authenticator = super::tokens::authenticator(&args)?;
    let executor = super::executor::build(&args).await?;
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .executor(executor)
        .notifier(LogNotifier)
        .config(engine_config(&args))
        .build();
    let live_feeds = LiveFeeds::new();
    let metrics = Metrics::global();
    let readiness = Readiness::new();
    let app = router(
        engine.clone(),
        ApiConfig {
            authenticator,
            body_limit: args.body_limit,
            allow_private_callbacks: args.allow_private_callbacks,
            live_feeds: live_feeds.clone(),
            operations: Operations {
                readiness: readiness.clone(),
                // On the API only when there is no address of their own.
                metrics: args.metrics_listen.is_none().then(|| metrics.clone()),
            },
        },
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    let metrics_server = match args.metrics_listen {
        Some(metrics_address) => {
            let metrics_listener = tokio::net::TcpListener::bind(metrics_address).await?;
            let metrics_address = metrics_listener.local_addr()?;
            println!("runner: metrics on http://{metrics_address}/metrics");
            tracing::info!(address = %metrics_address, "serving metrics");
            let app = metrics_router(metrics, Arc::clone(&store));
            // Ends with the process: a scrape during the drain still answers.
            Some(tokio::spawn(async move {
                if let Err(error) = axum::serve(metrics_listener, app).await {
                    tracing::error!(%error, "the metrics server stopped");
                }
            }))
        }
        None => None,
    };
    // Every node fires due schedules; the store makes each due time one execution.
    let running = engine.start().with_scheduler();
    if args.allow_private_callbacks {
        tracing::warn!("callbacks to loopback, private and link-local addresses are allowed");
    }
    let delivery_timeout = webhooks.request_timeout;
    tracing::info!(
        signed = webhooks.signing_secret.is_some(),
        max_attempts = webhooks.max_attempts,
        "starting webhook delivery"
    );
    let delivery = runner_webhook::start(Arc::clone(&store), SystemClock, webhooks);
    let shutdown = shutdown_signal();
    let drain_delay = Duration::from_millis(args.drain_delay_ms);
    println!("runner: listening on http://{address}");
    tracing::info!(%address, concurrency = args.concurrency, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Readiness fails first, while the node still serves; then it drains.
            readiness.start_draining();
            tracing::info!(
                delay_ms = drain_delay.as_millis(),
                "draining: /readyz fails from now on"
            );
            tokio::time::sleep(drain_delay).await;
            // Live event streams never end by themselves: end them, or the drain waits for ever.
            live_feeds.close();
        })
        .await?;
    tracing::info!("HTTP server stopped; shutting the engine down");
    let grace = running.engine().config().shutdown_grace;
    if tokio::time::timeout(grace + Duration::from_secs(5), running.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("engine shutdown did not finish in time");
    }
    // After the engine, so that the events of its last outcomes are delivered too (or stay in
    // the outbox for the next start).
    tracing::info!("shutting the webhook delivery down");
    if tokio::time::timeout(
        delivery_timeout + Duration::from_secs(5),
        delivery.shutdown(),
    )
    .await
    .is_err()
    {
        tracing::warn!("webhook delivery shutdown did not finish in time");
    }
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::server::cli::{Cli, Command};

    fn args(extra: &[&str]) -> ServeArgs {
        let mut line = vec!["runner", "serve", "--store", "memory"];
        line.extend_from_slice(extra);
        match Cli::try_parse_from(line).expect("valid arguments").command {
            Command::Serve(args) => args,
            other => panic!("`runner serve` parsed as {other:?}"),
        }
    }

    #[test]
    fn engine_flags_reach_the_engine_config() {
        let defaults = engine_config(&args(&[]));
        let engine = EngineConfig::default();
        assert_eq!(
            (
                defaults.concurrency,
                defaults.lease,
                defaults.shutdown_grace
            ),
            (engine.concurrency, engine.lease, engine.shutdown_grace)
        );
        let config = engine_config(&args(&[
            "--concurrency",
            "8",
            "--lease-secs",
            "120",
            "--shutdown-grace-secs",
            "600",
            "--event-field-bytes",
            "1000",
        ]));
        assert_eq!(config.event_field_bytes, 1000);
        assert_eq!(defaults.event_field_bytes, 16 * 1024);
        assert_eq!(defaults.retain, Some(Duration::from_secs(30 * 24 * 3600)));
        let keep = engine_config(&args(&["--retain-days", "0"]));
        assert_eq!(keep.retain, None, "0 keeps everything");
        let week = engine_config(&args(&["--retain-days", "7"]));
        assert_eq!(week.retain, Some(Duration::from_secs(7 * 24 * 3600)));
        assert!(
            Cli::try_parse_from([
                "runner",
                "serve",
                "--store",
                "memory",
                "--event-field-bytes",
                "10"
            ])
            .is_err()
        );
        assert_eq!(config.concurrency, 8);
        assert_eq!(config.lease, Duration::from_secs(120));
        assert_eq!(config.shutdown_grace, Duration::from_secs(600));
        assert!(Cli::try_parse_from(["runner", "serve", "--lease-secs", "2"]).is_err());
    }

    #[test]
    fn webhook_flags_reach_the_delivery_config() {
        let defaults = webhook_config(&args(&[])).unwrap();
        assert_eq!(defaults.max_attempts, WebhookConfig::default().max_attempts);
        assert!(defaults.signing_secret.is_none());
        assert!(!defaults.allow_private);

        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "unit-test-signing-S3CRET\r\n").unwrap();
        let config = webhook_config(&args(&[
            "--allow-private-callbacks",
            "--callback-signing-secret-file",
            key.to_str().unwrap(),
            "--callback-max-attempts",
            "3",
            "--callback-retry-base-ms",
            "20",
            "--callback-retry-max-ms",
            "300",
            "--callback-timeout-ms",
            "1500",
        ]))
        .unwrap();
        assert!(config.allow_private);
        assert_eq!(
            config.signing_secret.as_ref().map(Secret::expose),
            Some("unit-test-signing-S3CRET"),
            "the trailing line break is not part of the key"
        );
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.backoff_base, Duration::from_millis(20));
        assert_eq!(config.backoff_max, Duration::from_millis(300));
        assert_eq!(config.request_timeout, Duration::from_millis(1500));
        assert!(
            !format!("{config:?}").contains("S3CRET"),
            "Debug masks the key"
        );
    }

    #[test]
    fn bad_webhook_flags_are_refused_without_showing_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let missing = dir.path().join("missing");
        for path in [&empty, &missing] {
            let error = webhook_config(&args(&[
                "--callback-signing-secret-file",
                path.to_str().unwrap(),
            ]))
            .unwrap_err()
            .to_string();
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
        let inverted = webhook_config(&args(&[
            "--callback-retry-base-ms",
            "500",
            "--callback-retry-max-ms",
            "100",
        ]));
        assert!(inverted.is_err());
        for zero in ["--callback-max-attempts", "--callback-retry-base-ms"] {
            assert!(Cli::try_parse_from(["runner", "serve", zero, "0"]).is_err());
        }
    }
}
