//! The `runner` binary: the server (`runner serve [--listen ADDR] [--store STORE] ...`) and its
//! command-line client (`runner job ...`, `runner start ...`, ...). See the `runner_http` crate
//! docs for every option, and [`runner_http::client`] for the client.

use clap::Parser;
use runner_http::server::{Cli, Command, serve::init_logging};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runner_http::server::private_files();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format);
            match runner_http::server::serve(args).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "runner failed");
                    eprintln!("runner: {error}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Secrets(args) => {
            init_logging(runner_http::server::LogFormat::Text);
            match runner_http::server::secret_key::run(args).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("runner: {error}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Client(command) => runner_http::client::run(command).await,
    }
}
