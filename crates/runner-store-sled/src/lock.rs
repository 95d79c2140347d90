//! The lock that keeps a second runner off a data directory.
//!
//! sled locks its own `db` file too, but reports a contended lock as a generic I/O error. This
//! lock is taken first, on `runner.lock`, so the refusal is a typed error that names the directory
//! and the process holding it. It is an advisory `flock` (through `fs2`): the kernel releases it
//! when the holder exits, even on `kill -9`, so no stale lock is ever left behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs2::FileExt;

/// The name of the lock file inside the data directory.
pub(crate) const LOCK_FILE: &str = "runner.lock";

/// Why a lock was not taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another runner holds the lock of `dir`.
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The process id the holder wrote into the lock file, if it could be read.
        holder: Option<u32>,
    },
    /// The lock file cannot be opened or written.
    Io {
        /// The lock file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// A held lock; released when dropped (the file closes).
#[derive(Debug)]
pub(crate) struct DirectoryLock {
    _file: File,
}

impl DirectoryLock {
    /// Takes the lock of `dir` at once, or says who holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_error = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        if let Err(error) = file.try_lock_exclusive() {
            if error.kind() == fs2::lock_contended_error().kind() {
                let mut holder = String::new();
                // Best effort: the holder wrote its pid after locking.
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().parse::<u32>().ok();
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            return Err(io_error(error));
        }
        // Tell a second runner who holds the directory.
        file.set_len(0).map_err(io_error)?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        writeln!(file, "{}", std::process::id()).map_err(io_error)?;
        Ok(Self { _file: file })
    }
}
