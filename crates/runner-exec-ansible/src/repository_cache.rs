//! The node's repository cache: one bare mirror per repository URL, fetched into incrementally
//! by each run of a repository job, so that a run fetches only what is new since the last one
//! instead of cloning again; each run still gets a checkout of its own (see [`crate::git`]).
//!
//! The rules:
//!
//! - A mirror is named by a hash of the URL (`<dir>/<sha256 of the url>`), so the URL, which
//!   may name a host or an account, is not in a file name; no credential is ever in a mirror's
//!   configuration (git is given the URL and the credentials on each fetch, never a remote).
//! - Every run fetches: the remote decides, with the run's own credentials, whether the run may
//!   have the repository; a run never gets from the cache what its fetch was refused.
//! - One run at a time works in a mirror: an in-process lock, and a `flock` on `<hash>.lock` for
//!   other servers sharing the directory. It is held from the fetch until the run's checkout is
//!   made, so a concurrent fetch never moves the commit another run resolved, and eviction never
//!   removes a mirror under a run.
//! - The cache keeps to [`RepositoryCacheConfig::max_bytes`]: after each fetch, the mirrors used
//!   least recently (by the lock file's modification time, touched at every use) are removed until
//!   the others fit; a mirror in use is never removed, nor the one just fetched. Lock files stay
//!   (they are empty): removing one could let two holders lock different files of one name.
//! - Runs never see the cache: the executor hides its directory from the sandbox, and binds a
//!   mirror into a run's sandbox only for the git commands that fetch into it and check out from
//!   it, before the playbook starts.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

use crate::sandbox::SandboxUser;

/// Where a node keeps its repository mirrors, and how much of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryCacheConfig {
    /// The cache's directory; created when missing. It must not be inside the work root (whose
    /// leftovers a starting node removes).
    pub dir: PathBuf,
    /// The most bytes the mirrors may hold together, beyond the mirror in use by each run
    /// (a mirror larger than the cap is still used, and removed once it is no longer).
    pub max_bytes: u64,
}

impl RepositoryCacheConfig {
    /// The default size cap: 2 GiB.
    pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

    /// A cache in `dir` with the [default cap](Self::DEFAULT_MAX_BYTES).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// A node's cache (see the [module docs](self)). Shared by the clones of an executor.
#[derive(Debug)]
pub(crate) struct RepositoryCache {
    config: RepositoryCacheConfig,
    /// The sandbox user, who owns the mirrors (git writes them in the sandbox).
    owner: Option<SandboxUser>,
    /// One lock per mirror, for the runs of this process.
    locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

/// A run's hold on the mirror of its URL: nobody else fetches into it, checks out from it or
/// removes it until this is dropped.
#[derive(Debug)]
pub(crate) struct MirrorHold {
    path: PathBuf,
    _flock: Flock<File>,
    _lock: tokio::sync::OwnedMutexGuard<()>,
}

impl MirrorHold {
    /// The mirror: a bare repository.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl RepositoryCache {
    /// The cache of `config`, its mirrors owned by `owner` (the sandbox user) when set.
    pub(crate) fn new(config: RepositoryCacheConfig, owner: Option<SandboxUser>) -> Self {
        Self {
            config,
            owner,
            locks: Mutex::default(),
        }
    }

    fn lock_of(&self, mirror: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("mirror locks poisoned");
        Arc::clone(locks.entry(mirror.to_path_buf()).or_default())
    }

    /// Waits for the mirror of `url` to be free, and holds it; creates it (an empty bare
    /// repository, owned by the sandbox user) when it does not exist yet. `init` makes the bare
    /// repository in the directory it is given.
    pub(crate) async fn hold<F, Fut>(&self, url: &str, init: F) -> Result<MirrorHold, String>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let name = mirror_name(url);
        let path = self.config.dir.join(&name);
        let lock = self.lock_of(&path).lock_owned().await;
        let dir = self.config.dir.clone();
        let lock_path = dir.join(format!("{name}.lock"));
        let flock = tokio::task::spawn_blocking(move || lock_file(&dir, &lock_path, true))
            .await
            .map_err(|error| format!("could not lock the repository cache: {error}"))?
            .map_err(|error| format!("could not lock the repository cache: {error}"))?
            .ok_or("could not lock the repository cache")?;
        let owned_by = |owner: &SandboxUser| {
            fs::metadata(&path).is_ok_and(|meta| meta.uid() == owner.uid && meta.gid() == owner.gid)
        };
        if let Some(owner) = self.owner.as_ref().filter(|owner| !owned_by(owner)) {
            // Made under another sandbox user (the setting changed): git runs as this one now.
            if path.join("HEAD").is_file() {
                crate::sandbox::hand_over(&path, owner.uid, owner.gid)
                    .map_err(|error| format!("could not hand the mirror over: {error}"))?;
            }
        }
        if !path.join("HEAD").is_file() {
            // What an interrupted creation left.
            let _ = fs::remove_dir_all(&path);
            DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .map_err(|error| format!("could not create a repository mirror: {error}"))?;
            init(path.clone()).await?;
            if let Some(owner) = &self.owner {
                crate::sandbox::hand_over(&path, owner.uid, owner.gid)
                    .map_err(|error| format!("could not hand the mirror over: {error}"))?;
            }
        }
        Ok(MirrorHold {
            path,
            _flock: flock,
            _lock: lock,
        })
    }

    /// Removes the mirrors used least recently until the others fit in the cap, sparing `keep`
    /// and every mirror in use. Returns how many went.
    pub(crate) fn evict(&self, keep: &Path) -> io::Result<usize> {
        let mut mirrors = Vec::new();
        for entry in fs::read_dir(&self.config.dir)?.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            if !entry.file_type()?.is_dir() || !is_mirror_name(name) {
                continue;
            }
            let used = fs::metadata(self.config.dir.join(format!("{name}.lock")))
                .and_then(|meta| meta.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            mirrors.push((used, disk_usage(&path), path));
        }
        let mut total: u64 = mirrors.iter().map(|(_, size, _)| size).sum();
        mirrors.sort();
        let mut removed = 0;
        for (_, size, path) in mirrors {
            if total <= self.config.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            // In use here, or by another server sharing the directory: spared.
            let Ok(_local) = self.lock_of(&path).try_lock_owned() else {
                continue;
            };
            let name = path.file_name().expect("a mirror has a name").to_owned();
            let lock_path = self
                .config
                .dir
                .join(format!("{}.lock", name.to_string_lossy()));
            let Some(_flock) = lock_file(&self.config.dir, &lock_path, false)? else {
                continue;
            };
            fs::remove_dir_all(&path)?;
            total = total.saturating_sub(size);
            removed += 1;
            tracing::info!(
                mirror = %path.display(),
                bytes = size,
                "removed a repository mirror used least recently: the cache is over its cap"
            );
        }
        Ok(removed)
    }
}

/// The name of the mirror of `url`: the hex SHA-256 of the URL as the job gives it (trimmed).
fn mirror_name(url: &str) -> String {
    Sha256::digest(url.trim().as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn is_mirror_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Creates the cache's directory `dir` when missing. 0711, as the work root: the sandbox user
/// must pass through it to the mirror bound into its sandbox, and may list nothing.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o711).create(dir)?;
    if fs::metadata(dir)?.mode() & 0o777 != 0o711 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o711))?;
    }
    Ok(())
}

/// Opens (creating) and locks `path`, in the cache's directory `dir` (created when missing);
/// marks it used now. Without `wait`, `None` when someone else holds it.
fn lock_file(dir: &Path, path: &Path, wait: bool) -> io::Result<Option<Flock<File>>> {
    create_dir(dir)?;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let arg = if wait {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockExclusiveNonblock
    };
    match Flock::lock(file, arg) {
        Ok(lock) => {
            if wait {
                lock.set_modified(SystemTime::now())?;
            }
            Ok(Some(lock))
        }
        Err((_, nix::errno::Errno::EWOULDBLOCK)) if !wait => Ok(None),
        Err((_, errno)) => Err(io::Error::from(errno)),
    }
}

/// The bytes the files under `path` take, as far as they can be read.
fn disk_usage(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => disk_usage(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |meta| meta.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn made(path: PathBuf) -> Result<(), String> {
        fs::write(path.join("HEAD"), "ref: refs/heads/main\n").map_err(|e| e.to_string())
    }

    fn fill(mirror: &Path, bytes: usize) {
        fs::write(mirror.join("pack"), vec![0u8; bytes]).unwrap();
    }

    #[test]
    fn names_are_hashes_of_the_url() {
        let name = mirror_name(" https://example.com/acme/site.git ");
        assert!(is_mirror_name(&name), "{name}");
        assert_eq!(name, mirror_name("https://example.com/acme/site.git"));
        assert_ne!(name, mirror_name("https://example.com/acme/other.git"));
        assert!(!name.contains("example"));
    }

    #[tokio::test]
    async fn one_holder_at_a_time_per_url() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(RepositoryCache::new(
            RepositoryCacheConfig::new(dir.path().join("cache")),
            None,
        ));
        let first = cache.hold("https://h/a.git", made).await.unwrap();
        // Another URL is not held up.
        let other = cache.hold("https://h/b.git", made).await.unwrap();
        assert_ne!(first.path(), other.path());
        let waiting = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.hold("https://h/a.git", made).await.map(drop) })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a second run waits for the first");
        drop(first);
        waiting.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn least_recently_used_mirrors_go_first_and_held_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RepositoryCache::new(
            RepositoryCacheConfig {
                dir: dir.path().join("cache"),
                max_bytes: 2500,
            },
            None,
        );
        let url = |n: u32| format!("https://h/{n}.git");
        let mut paths = Vec::new();
        for n in 0..4 {
            let hold = cache.hold(&url(n), made).await.unwrap();
            fill(hold.path(), 1000);
            paths.push(hold.path().to_path_buf());
            // Distinct use times, oldest first.
            let lock = cache
                .config
                .dir
                .join(format!("{}.lock", mirror_name(&url(n))));
            File::options()
                .write(true)
                .open(&lock)
                .unwrap()
                .set_modified(
                    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + u64::from(n)),
                )
                .unwrap();
        }
        // The oldest is in use: it stays, and the next oldest ones go instead.
        let held = cache.hold(&url(0), made).await.unwrap();
        File::options()
            .write(true)
            .open(
                cache
                    .config
                    .dir
                    .join(format!("{}.lock", mirror_name(&url(0)))),
            )
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH)
            .unwrap();
        let removed = cache.evict(&paths[3]).unwrap();
        assert_eq!(removed, 2);
        assert!(paths[0].exists(), "held");
        assert!(
            !paths[1].exists() && !paths[2].exists(),
            "least recently used"
        );
        assert!(paths[3].exists(), "just fetched");
        drop(held);
        // Under the cap now: nothing more goes.
        assert_eq!(cache.evict(&paths[3]).unwrap(), 0);
    }
}
