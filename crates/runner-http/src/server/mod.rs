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

/// Makes every file and directory the process creates from now on private to its user (umask
/// 077): the data directory, the sled files, the token file, logs. The binary calls it first
/// thing, before any file is written, so no file is ever readable by others, not even briefly.
pub fn private_files() {
    #[cfg(unix)]
    {
        use nix::sys::stat::{Mode, umask};
        umask(Mode::from_bits_truncate(0o077));
    }
}
