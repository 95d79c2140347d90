//! A bare axum "hello world" server: the baseline of `benches/http.sh`.
//!
//! `cargo run --release -p runner-http --example hello -- 127.0.0.1:18081`

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = Router::new().route("/", get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("hello: listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
