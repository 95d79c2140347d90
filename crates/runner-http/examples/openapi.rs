//! Prints the OpenAPI document: `cargo run -p runner-http --example openapi > openapi.json`.

fn main() {
    println!("{}", runner_http::openapi::document_json());
}
