//! The `runner` binary's parts: command line ([`cli`]), the store chosen at run time
//! ([`any_store`]), the token bootstrap ([`tokens`]), the key that seals secrets at rest
//! ([`secret_key`]) and the serve loop ([`serve()`]).
//!
//! The backends are cargo features of this crate, all on by default: `sled`, `postgres` and
//! `ansible`. Without `ansible`, the server runs with [`executor::NoExecutor`], which fails every
//! run with a message saying that no executor was built in.

pub mod any_store;
pub mod cli;
pub mod executor;
pub mod secret_key;
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

/// Creates `path` holding `contents`, mode 0600 (its missing parent directories 0700), unless it
/// exists. Returns true when it was created; false when it existed (or another process created
/// it meanwhile: theirs is kept).
pub(crate) fn create_private_file(path: &std::path::Path, contents: &str) -> std::io::Result<bool> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // A directory made here holds only server files: private from the start.
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(error) => return Err(error),
    };
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(true)
}
