//! The `runner` binary's parts: command line ([`cli`]), the store chosen at run time
//! ([`any_store`]), the token bootstrap ([`tokens`]) and the serve loop ([`serve()`]).
//!
//! The backends are cargo features of this crate, all on by default: `sled`, `postgres` and
//! `ansible`. Without `ansible`, the server runs with [`executor::NoExecutor`], which fails every
//! run with a message saying that no executor was built in.

pub mod any_store;
pub mod cli;
pub mod executor;
pub mod serve;
pub mod tokens;

pub use any_store::{AnyStore, StoreSpec};
pub use cli::{Cli, Command, LogFormat, ServeArgs};
pub use serve::serve;
