//! The Job Service router over a memory store, for `benches/http.sh`: the same router, auth,
//! tracing and layers as `runner serve`, minus the process around it. Creates one job of account
//! BENCH and prints its ID; the bearer token is the first argument's companion below.
//!
//! `cargo run --release -p runner-http --example bench_server -- 127.0.0.1:18080`

use std::sync::Arc;

use runner_core::engine::Engine;
use runner_core::job::{Host, JobSpec};
use runner_http::server::executor::NoExecutor;
use runner_http::{ApiConfig, TokenFile, router};
use runner_store_memory::MemoryStore;

/// The benchmark's bearer token (scope: account BENCH).
const TOKEN: &str = "bench-token-0123456789abcdef";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .executor(NoExecutor)
        .build();
    let tokens = TokenFile::parse(&format!("{TOKEN} BENCH"))?;
    let alias = "BENCH".parse()?;
    let job = engine
        .create_job(
            &alias,
            JobSpec {
                description: Some("benchmark job".into()),
                playbook: Some("LSBob3N0czogYWxsCiAgdGFza3M6IFtdCg==".into()),
                hosts: Some(vec![Host::named("web1"), Host::named("web2")]),
                ..JobSpec::default()
            },
        )
        .await?;
    let app = router(engine, ApiConfig::new(Arc::new(tokens)));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("job: {}", job.id);
    println!("token: {TOKEN}");
    println!(
        "bench_server: listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
