//! A run's work directory and the files in it. See the crate docs for the layout.
//!
//! Secret files (keys, the git password, the inventory with its hostVars, the extra vars) live in
//! `secrets/`, created 0700 with files 0600, and are removed when the [`Workspace`] is dropped,
//! whatever way the run ended. The rest, the node-local `ansible.log` included, goes with the
//! directory when the run ends (the run log is in the store), unless
//! [`AnsibleConfig::keep_work_dirs`](crate::AnsibleConfig::keep_work_dirs) keeps everything but
//! the secrets.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
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
    /// The secrets always go; the rest, the node-local log included (the run log is in the
    /// store), unless the work directory is kept.
    fn drop(&mut self) {
        self.remove_secrets();
        if !self.keep {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
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
    fn tail_starts_at_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "first line\nsecond line\nthird\n").unwrap();
        assert_eq!(tail(&path, 15), "third");
        assert_eq!(tail(&path, 1000), "first line\nsecond line\nthird");
    }
}
