//! A run's work directory and the files in it. See the crate docs for the layout.
//!
//! Secret files (keys, the git password, the inventory with its hostVars, the extra vars) live in
//! `secrets/`, created 0700 with files 0600, and are removed when the [`Workspace`] is dropped,
//! whatever way the run ended; then the whole directory goes, the node-local `ansible.log`
//! included (the run log is in the store), unless
//! [`AnsibleConfig::keep_work_dirs`](crate::AnsibleConfig::keep_work_dirs) keeps everything but
//! the secrets. [`NodeRoot`] removes what runs of a node that died left behind.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use nix::fcntl::{Flock, FlockArg};
use runner_core::secret::Secret;

/// The name of the run's node-local log file (a copy of the run log while the run goes; kept
/// after it only with `keep_work_dirs`).
pub const LOG_FILE: &str = "ansible.log";

/// A run's work directory.
#[derive(Debug)]
pub(crate) struct Workspace {
    root: PathBuf,
    keep: bool,
    /// Counts secret files, to give each a fresh name.
    secrets: usize,
}

impl Workspace {
    /// Creates `<work_root>/<name>` (0700). An existing directory of that name (an earlier
    /// attempt that crashed) is removed first.
    pub(crate) fn create(work_root: &Path, name: &str, keep: bool) -> io::Result<Self> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(work_root)?;
        let root = work_root.join(name);
        match fs::remove_dir_all(&root) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        DirBuilder::new().mode(0o700).create(&root)?;
        DirBuilder::new().mode(0o700).create(root.join("secrets"))?;
        Ok(Self {
            root,
            keep,
            secrets: 0,
        })
    }

    /// The directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The log file path.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.path(LOG_FILE)
    }

    /// Writes a non-secret file.
    pub(crate) fn write(&self, name: &str, contents: &[u8], mode: u32) -> io::Result<PathBuf> {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        write_new(&path, contents, mode)?;
        Ok(path)
    }

    /// Writes a secret file (0600, or `mode`) under `secrets/`, named `<n>-<label>`.
    pub(crate) fn write_secret(
        &mut self,
        label: &str,
        contents: &[u8],
        mode: u32,
    ) -> io::Result<PathBuf> {
        self.secrets += 1;
        let dir = self.root.join("secrets");
        // Created again after an earlier removal (the git credentials go before the run starts).
        DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        let path = dir.join(format!("{}-{label}", self.secrets));
        write_new(&path, contents, mode)?;
        Ok(path)
    }

    /// Decodes a base64 private key and writes it as a 0600 key file. ssh refuses a key without a
    /// final newline, so one is added when missing.
    pub(crate) fn write_key(&mut self, label: &str, key: &Secret) -> Result<PathBuf, String> {
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(key.expose().trim())
            .map_err(|_| format!("the {label} is not valid base64"))?;
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        self.write_secret(&format!("{label}.key").replace(' ', "-"), &bytes, 0o600)
            .map_err(|error| format!("could not write the {label}: {error}"))
    }

    /// Removes the secrets now (also done on drop).
    pub(crate) fn remove_secrets(&self) {
        let _ = fs::remove_dir_all(self.root.join("secrets"));
    }
}

impl Drop for Workspace {
    /// The run is over: its secrets go, and the whole directory unless it is kept.
    fn drop(&mut self) {
        self.remove_secrets();
        if !self.keep {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// A node's own directory under the shared work root, for as long as the node lives. A lock
/// file next to it (`<name>.lock`, under `flock`) tells live nodes from dead ones, so that
/// several nodes can share a work root and each one, starting, removes only what dead ones left.
#[derive(Debug)]
pub(crate) struct NodeRoot {
    dir: PathBuf,
    /// Held (locked) until the node's executor is dropped; the kernel lets go when the process
    /// dies, however it dies.
    _lock: Flock<File>,
}

impl NodeRoot {
    /// Creates a fresh node directory under `work_root` and removes what nodes that are no
    /// longer alive left there (their workspaces, key files included); returns it and the number
    /// of entries removed.
    pub(crate) fn claim(work_root: &Path) -> io::Result<(Self, usize)> {
        // 0711, here and for the node directory: a sandboxed run's user (not the server's) must
        // pass through them to its own workspace (its, 0700), and may list neither.
        // Set explicitly as well: the server's umask (077) masks the mode given at creation.
        DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(work_root)?;
        fs::set_permissions(work_root, fs::Permissions::from_mode(0o711))?;
        // Short (the event socket's path must fit in 107 bytes) and unique enough; a clash is
        // caught (`create_new`, `hard_link` refuse an existing name) and another name tried.
        // Locked under a temporary name first: no other node ever sees the lock file unlocked.
        let mut attempt = 0u32;
        let (name, lock) = loop {
            attempt += 1;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.subsec_nanos());
            let tag =
                nanos ^ std::process::id().rotate_left(16) ^ attempt.wrapping_mul(0x9e37_79b9);
            let name = format!("node-{tag:08x}");
            let pending = work_root.join(format!("{name}.lock.new"));
            let clash =
                |error: &io::Error| error.kind() == io::ErrorKind::AlreadyExists && attempt < 100;
            let file = match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&pending)
            {
                Ok(file) => file,
                Err(error) if clash(&error) => continue,
                Err(error) => return Err(error),
            };
            let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
                .map_err(|(_, errno)| io::Error::from(errno))?;
            let linked = fs::hard_link(&pending, work_root.join(format!("{name}.lock")));
            let _ = fs::remove_file(&pending);
            match linked {
                Ok(()) => break (name, lock),
                Err(error) if clash(&error) => continue,
                Err(error) => return Err(error),
            }
        };
        let dir = work_root.join(&name);
        let _ = fs::remove_dir_all(&dir);
        DirBuilder::new().mode(0o711).create(&dir)?;
        // Not left to the umask.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o711))?;
        let removed = remove_dead(work_root, &name)?;
        Ok((Self { dir, _lock: lock }, removed))
    }

    /// The node's directory: its runs' workspaces go in it.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Removes from `work_root` every node directory whose lock nobody holds (with its lock file),
/// and anything else that is not a live node's (workspaces of the layout without node
/// directories, a sandbox check's directory). `own` is skipped.
fn remove_dead(work_root: &Path, own: &str) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(work_root)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == own || name == format!("{own}.lock") || name.ends_with(".lock.new") {
            continue;
        }
        let path = entry.path();
        if let Some(node) = name.strip_suffix(".lock") {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            // Taken: its node is gone. Refused: it is alive, leave it be.
            if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                let _ = fs::remove_dir_all(work_root.join(node));
                let _ = fs::remove_file(&path);
                drop(lock);
                removed += 1;
            }
            continue;
        }
        if name.starts_with("node-") && work_root.join(format!("{name}.lock")).exists() {
            continue;
        }
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        let removal = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        // A dead node's directory may still be listed after its lock's branch removed it.
        if removal.is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    // No fsync: the files only need to outlive the run in the page cache, for a child process.
    file.write_all(contents)
}

/// The last `bytes` bytes of a file, as text, starting at a line boundary when possible.
pub(crate) fn tail(path: &Path, bytes: usize) -> String {
    let Ok(contents) = fs::read(path) else {
        return String::new();
    };
    let start = contents.len().saturating_sub(bytes);
    let text = String::from_utf8_lossy(&contents[start..]).into_owned();
    let text = if start > 0 {
        text.split_once('\n')
            .map_or(text.clone(), |(_, rest)| rest.to_owned())
    } else {
        text
    };
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secrets_are_private_and_removed_with_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let key;
        {
            let mut workspace = Workspace::create(root.path(), "run-1", false).unwrap();
            key = workspace
                .write_key("default key", &Secret::new("a2V5"))
                .unwrap();
            assert_eq!(fs::read(&key).unwrap(), b"key\n");
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let dir_mode = fs::metadata(workspace.root()).unwrap().permissions().mode() & 0o777;
            assert_eq!(dir_mode, 0o700);
            workspace
                .write("playbook.yml", b"- hosts: all\n", 0o600)
                .unwrap();
            fs::write(workspace.log_path(), b"output\n").unwrap();
            assert!(workspace.write_key("bad", &Secret::new("!!")).is_err());
        }
        assert!(!key.exists());
        assert!(!root.path().join("run-1").exists(), "the log goes too");
    }

    #[test]
    fn a_kept_workspace_keeps_all_but_the_secrets() {
        let root = tempfile::tempdir().unwrap();
        {
            let mut workspace = Workspace::create(root.path(), "run-1", true).unwrap();
            workspace
                .write_key("default key", &Secret::new("a2V5"))
                .unwrap();
            fs::write(workspace.log_path(), b"output\n").unwrap();
        }
        let left: Vec<_> = fs::read_dir(root.path().join("run-1"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left, [LOG_FILE]);
    }

    #[test]
    fn a_starting_node_removes_what_dead_nodes_left_and_nothing_of_live_ones() {
        let root = tempfile::tempdir().unwrap();
        // A dead node: its lock file is not held by anyone.
        let dead = root.path().join("node-1-1");
        fs::create_dir_all(dead.join("e1-0/secrets")).unwrap();
        fs::write(dead.join("e1-0/secrets/1-host.key"), "KEY").unwrap();
        fs::write(root.path().join("node-1-1.lock"), "").unwrap();
        // A workspace of the layout without node directories.
        fs::create_dir_all(root.path().join("e2-0")).unwrap();
        let (live, removed) = NodeRoot::claim(root.path()).unwrap();
        assert_eq!(removed, 2);
        assert!(!dead.exists() && !root.path().join("node-1-1.lock").exists());
        assert!(!root.path().join("e2-0").exists());
        // A second node leaves the first one's directory alone while it lives.
        fs::create_dir_all(live.dir().join("e3-0")).unwrap();
        let (second, removed) = NodeRoot::claim(root.path()).unwrap();
        assert_eq!(removed, 0);
        assert!(live.dir().join("e3-0").exists());
        let first = live.dir().to_path_buf();
        drop(live);
        let (_third, removed) = NodeRoot::claim(root.path()).unwrap();
        assert_eq!(removed, 1, "the first node is gone");
        assert!(!first.exists() && second.dir().exists());
    }

    #[test]
    fn tail_starts_at_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "first line\nsecond line\nthird\n").unwrap();
        assert_eq!(tail(&path, 15), "third");
        assert_eq!(tail(&path, 1000), "first line\nsecond line\nthird");
    }
}
