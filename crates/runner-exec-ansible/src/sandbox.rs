//! The bubblewrap (`bwrap`) sandbox that every process of a run (git, ansible-playbook and what
//! they start) runs in, when [`AnsibleConfig::sandbox`](crate::AnsibleConfig::sandbox) is set.
//!
//! What the run sees (see ARCHITECTURE.md, "What a run can and cannot see"):
//!
//! - the host's file system read-only (`--ro-bind / /`), with a fresh `/dev`, its own `/proc`
//!   and a private, empty `/tmp`;
//! - the work root replaced by an empty tmpfs, with only the run's own workspace bound back,
//!   writable: other runs' workspaces (and their key files) are absent;
//! - each [hidden path](SandboxConfig::hidden) (the server's data directory, token file, secret
//!   files) covered: a directory by an empty tmpfs, a file by `/dev/null`;
//! - its own PID namespace (`--unshare-pid`) with `--die-with-parent`: when the server (or the
//!   run's bwrap) dies, by `kill -9` too, the kernel ends every process of the run;
//! - its own IPC and UTS namespaces and session; the network is shared (plays reach their hosts);
//! - only the environment the executor sets (`--clearenv`): `PATH`, `HOME` (the private `/tmp`),
//!   `LANG`, and the variables of the command (ANSIBLE_*, git's settings, the event socket);
//!   nothing of the server's own environment (no `RUNNER_*` setting, no `DATABASE_URL`);
//! - as [`SandboxConfig::user`] when set (the server runs as root): bwrap itself is started as
//!   that user (`setuid` before `exec`, as `Command::uid` does) and makes an unprivileged user
//!   namespace, so nothing in the sandbox is root, not even a root that a user namespace maps.
//!   The workspace is handed to that user before each sandboxed command.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::process::MARKER_VARIABLE;

/// The unprivileged account a run's processes run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxUser {
    /// Its name, for messages.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
}

impl SandboxUser {
    /// Looks `name` up in the system's user database.
    pub fn lookup(name: &str) -> Result<Self, String> {
        match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => Ok(Self {
                name: name.to_owned(),
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            }),
            Ok(None) => Err(format!("there is no user named {name:?}")),
            Err(error) => Err(format!("could not look up the user {name:?}: {error}")),
        }
    }

    /// The default for a server: `nobody` when it runs as root (a run must not be root), none
    /// otherwise (runs run as the server's own unprivileged user).
    pub fn server_default() -> Result<Option<Self>, String> {
        if nix::unistd::geteuid().is_root() {
            Self::lookup("nobody").map(Some)
        } else {
            Ok(None)
        }
    }
}

/// How runs are sandboxed. See the module docs.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The `bwrap` program (bubblewrap). A bare name is looked up on `PATH`.
    pub bwrap: PathBuf,
    /// Run as this user (when the server runs as root). `None`: as the server's own user.
    pub user: Option<SandboxUser>,
    /// Paths absent from a run's view: the server's data directory, token file, secret files.
    /// Paths that do not exist when a run starts are skipped.
    pub hidden: Vec<PathBuf>,
}

impl SandboxConfig {
    /// A sandbox with `bwrap` from `PATH`, as the server's own user, hiding nothing extra.
    pub fn new() -> Self {
        Self {
            bwrap: PathBuf::from("bwrap"),
            user: None,
            hidden: Vec::new(),
        }
    }

    /// Checks that a sandbox can be made here: runs `true` in one, as a run would be, with a
    /// workspace under `work_root`. The error says why not (bwrap missing, user namespaces
    /// refused, ...).
    pub async fn check(&self, work_root: &Path) -> Result<(), String> {
        self.check_program(work_root, Path::new("true"), &[]).await
    }

    /// Runs `program` with `args` in a sandbox, as a run would be, with a workspace under
    /// `work_root`: whether it can run there (ansible-playbook, say: its interpreter must be
    /// readable by the sandbox user).
    pub async fn check_program(
        &self,
        work_root: &Path,
        program: &Path,
        args: &[&str],
    ) -> Result<(), String> {
        let workspace = work_root.join(".sandbox-check");
        let _ = std::fs::remove_dir_all(&workspace);
        std::fs::create_dir_all(&workspace)
            .map_err(|error| format!("could not create {}: {error}", workspace.display()))?;
        let mut command = Command::new(program);
        command.args(args).current_dir(&workspace);
        let result = match self.wrap(&command, work_root, &workspace, &[], "sandbox-check") {
            Ok(mut wrapped) => {
                wrapped.stdout(Stdio::null()).stderr(Stdio::piped());
                match wrapped.output().await {
                    Ok(output) if output.status.success() => Ok(()),
                    Ok(output) => Err(format!(
                        "{} failed ({}): {}",
                        self.bwrap.display(),
                        output.status,
                        String::from_utf8_lossy(&output.stderr).trim()
                    )),
                    Err(error) => Err(format!("could not run {}: {error}", self.bwrap.display())),
                }
            }
            Err(error) => Err(error.to_string()),
        };
        let _ = std::fs::remove_dir_all(&workspace);
        match (&self.user, result) {
            (Some(user), Err(error)) if error.contains("Permission denied") => Err(format!(
                "{error} (the sandbox user {} must be able to pass through every directory \
                 above the work root {})",
                user.name,
                work_root.display()
            )),
            (_, result) => result,
        }
    }

    /// The bwrap command that runs `inner` (its program, arguments, the variables it sets and
    /// its directory; stdio is not carried over: set it on the result) in the sandbox of the run
    /// whose workspace is `workspace` under `work_root`, with the directories of `binds` (a
    /// repository mirror for git) bound writable too. Hands the workspace to the sandbox user
    /// first; what `binds` holds must be the sandbox user's already.
    pub(crate) fn wrap(
        &self,
        inner: &Command,
        work_root: &Path,
        workspace: &Path,
        binds: &[&Path],
        marker: &str,
    ) -> io::Result<Command> {
        let inner = inner.as_std();
        let program = absolute_program(Path::new(inner.get_program()));
        let mut env: Vec<(OsString, OsString)> = inner
            .get_envs()
            .filter_map(|(key, value)| Some((key.to_owned(), value?.to_owned())))
            .collect();
        env.push((MARKER_VARIABLE.into(), marker.into()));
        let mut policy = Policy {
            work_root,
            workspace,
            binds,
            cwd: inner.get_current_dir().unwrap_or(workspace),
            hidden: self
                .hidden
                .iter()
                .filter_map(|path| Hidden::of(path))
                .collect(),
            path: sandbox_path(&program),
            lang: std::env::var_os("LANG").unwrap_or_else(|| "C.UTF-8".into()),
            env,
            passwd: None,
            installation: installation_under_tmp(&program),
        };
        if let Some(user) = &self.user {
            hand_over(workspace, user.uid, user.gid)?;
        }
        let uid = self
            .user
            .as_ref()
            .map_or_else(|| nix::unistd::geteuid().as_raw(), |user| user.uid);
        let passwd = write_passwd(work_root, uid)?;
        policy.passwd = Some(&passwd);
        let mut command = Command::new(absolute_program(&self.bwrap));
        command
            .args(policy.argv())
            .arg(program)
            .args(inner.get_args())
            // bwrap itself gets nothing of the server's environment either.
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null());
        if let Some(user) = &self.user {
            command.uid(user.uid).gid(user.gid);
        }
        Ok(command)
    }
}

/// `command` as it runs for a run: wrapped in `sandbox` when there is one, unchanged otherwise.
/// Stdio set on `command` is not carried over: the caller sets it on the result.
pub(crate) fn sandboxed(
    sandbox: Option<&SandboxConfig>,
    command: Command,
    work_root: &Path,
    workspace: &Path,
    binds: &[&Path],
    marker: &str,
) -> io::Result<Command> {
    match sandbox {
        Some(sandbox) => {
            let binds: Vec<PathBuf> = binds
                .iter()
                .map(std::path::absolute)
                .collect::<io::Result<_>>()?;
            let binds: Vec<&Path> = binds.iter().map(PathBuf::as_path).collect();
            sandbox.wrap(
                &command,
                &std::path::absolute(work_root)?,
                &std::path::absolute(workspace)?,
                &binds,
                marker,
            )
        }
        None => Ok(command),
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A path to hide, by its kind (a tmpfs can only cover a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hidden {
    Dir(PathBuf),
    File(PathBuf),
}

impl Hidden {
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        let path = std::fs::canonicalize(path).ok()?;
        Some(if meta.is_dir() {
            Self::Dir(path)
        } else {
            Self::File(path)
        })
    }

    fn path(&self) -> &Path {
        match self {
            Self::Dir(path) | Self::File(path) => path,
        }
    }
}

/// Everything the bwrap arguments depend on, so that building them is a pure function.
#[derive(Debug)]
struct Policy<'a> {
    work_root: &'a Path,
    workspace: &'a Path,
    /// Directories bound writable besides the workspace (see [`SandboxConfig::wrap`]).
    binds: &'a [&'a Path],
    cwd: &'a Path,
    hidden: Vec<Hidden>,
    /// `PATH` inside.
    path: OsString,
    lang: OsString,
    /// The command's own variables (set after the defaults, so they win).
    env: Vec<(OsString, OsString)>,
    /// The user database the run sees (see [`write_passwd`]).
    passwd: Option<&'a Path>,
    /// The program's installation when the private `/tmp` would hide it (see
    /// [`installation_under_tmp`]): bound back read-only.
    installation: Option<PathBuf>,
}

impl Policy<'_> {
    /// bwrap's arguments up to (not including) the program. Mount order matters: later mounts
    /// cover earlier ones, so the workspace is bound last.
    fn argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = Vec::new();
        let mut push = |items: &[&OsStr]| argv.extend(items.iter().map(|item| item.to_os_string()));
        push(&[
            "--ro-bind".as_ref(),
            "/".as_ref(),
            "/".as_ref(),
            "--dev".as_ref(),
            "/dev".as_ref(),
            "--proc".as_ref(),
            "/proc".as_ref(),
            "--tmpfs".as_ref(),
            "/tmp".as_ref(),
        ]);
        if let Some(installation) = &self.installation {
            push(&[
                "--ro-bind".as_ref(),
                installation.as_os_str(),
                installation.as_os_str(),
            ]);
        }
        if let Some(passwd) = self.passwd {
            push(&[
                "--ro-bind".as_ref(),
                passwd.as_os_str(),
                "/etc/passwd".as_ref(),
            ]);
        }
        let tmp = Path::new("/tmp");
        for hidden in &self.hidden {
            // Under /tmp it is gone already; under a hidden directory, too.
            let path = hidden.path();
            let covered = path.starts_with(tmp)
                || self.hidden.iter().any(|other| {
                    matches!(other, Hidden::Dir(dir) if dir != path && path.starts_with(dir))
                });
            if covered {
                continue;
            }
            match hidden {
                Hidden::Dir(dir) => push(&["--tmpfs".as_ref(), dir.as_os_str()]),
                Hidden::File(file) => {
                    push(&["--ro-bind".as_ref(), "/dev/null".as_ref(), file.as_os_str()])
                }
            }
        }
        if !self.work_root.starts_with(tmp) {
            push(&["--tmpfs".as_ref(), self.work_root.as_os_str()]);
        }
        for bind in self.binds {
            push(&["--bind".as_ref(), bind.as_os_str(), bind.as_os_str()]);
        }
        push(&[
            "--bind".as_ref(),
            self.workspace.as_os_str(),
            self.workspace.as_os_str(),
            "--chdir".as_ref(),
            self.cwd.as_os_str(),
            "--unshare-pid".as_ref(),
            "--unshare-ipc".as_ref(),
            "--unshare-uts".as_ref(),
            "--die-with-parent".as_ref(),
            "--new-session".as_ref(),
            "--clearenv".as_ref(),
            "--setenv".as_ref(),
            "PATH".as_ref(),
            self.path.as_os_str(),
            "--setenv".as_ref(),
            "HOME".as_ref(),
            "/tmp".as_ref(),
            "--setenv".as_ref(),
            "LANG".as_ref(),
            self.lang.as_os_str(),
        ]);
        for (key, value) in &self.env {
            push(&["--setenv".as_ref(), key.as_os_str(), value.as_os_str()]);
        }
        push(&["--".as_ref()]);
        argv
    }
}

/// Where `program` is installed, if that is under `/tmp`, which each run sees as a private empty
/// directory: a virtualenv of ansible-core made in a checkout under `/tmp` would be invisible to
/// the run that must execute it. The installation is the directory above the program's `bin`
/// (a virtualenv's root, with its `lib` and `pyvenv.cfg`), or the program's own directory.
fn installation_under_tmp(program: &Path) -> Option<PathBuf> {
    if !program.starts_with("/tmp") {
        return None;
    }
    let dir = program.parent()?;
    let root = if dir.file_name() == Some(OsStr::new("bin")) {
        dir.parent()?
    } else {
        dir
    };
    Some(root.to_path_buf())
}

/// Writes the user database a run sees: the host's `/etc/passwd` with the home of `uid` (the
/// user the run runs as) set to `/tmp`, the run's private one. ansible expands `~user` (not
/// `$HOME`) for its temporary directory, even on a local connection, and `nobody`'s home
/// (`/nonexistent`) or the server user's own (read-only here, and none of the run's business)
/// would not do. Written anew (to a temporary name, then renamed) for each command; 0644, like
/// the original, since bwrap reads it as the sandbox user.
fn write_passwd(work_root: &Path, uid: u32) -> io::Result<PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let host = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let text = passwd_with_home(&host, uid, "/tmp");
    let path = work_root.join(format!(".passwd-{uid}"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let pending = work_root.join(format!(".passwd-{uid}.{}.{nanos}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&pending)?;
    // Readable by the sandbox user whatever the server's umask (077) made of the mode above.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    file.write_all(text.as_bytes())?;
    std::fs::rename(&pending, &path)?;
    Ok(path)
}

/// `passwd` (the `/etc/passwd` format) with the home of `uid` replaced by `home`, or a line for
/// `uid` added when there is none.
fn passwd_with_home(passwd: &str, uid: u32, home: &str) -> String {
    let uid_text = uid.to_string();
    let mut found = false;
    let mut out = String::new();
    for line in passwd.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() == 7 && fields[2] == uid_text {
            found = true;
            fields[5] = home;
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !found {
        out.push_str(&format!(
            "sandbox:x:{uid}:{uid}::{home}:/usr/sbin/nologin\n"
        ));
    }
    out
}

/// `PATH` inside: the program's own directory first (a virtualenv's `bin`, so that the
/// `ansible-*` tools and its Python are found), then the system's.
fn sandbox_path(program: &Path) -> OsString {
    let mut path = OsString::new();
    if let Some(dir) = program.parent().filter(|dir| dir.is_absolute()) {
        path.push(dir);
        path.push(":");
    }
    path.push("/usr/local/bin:/usr/bin:/bin");
    path
}

/// An absolute path for `program`: bwrap changes the directory and the `PATH` before it runs
/// the program, so a relative path or a bare name from the server's `PATH` would not be found.
fn absolute_program(program: &Path) -> PathBuf {
    if program.is_absolute() {
        return program.to_path_buf();
    }
    if program.components().count() > 1 {
        return std::path::absolute(program).unwrap_or_else(|_| program.to_path_buf());
    }
    program
        .to_str()
        .and_then(crate::config::find_on_path)
        .unwrap_or_else(|| program.to_path_buf())
}

/// Gives the workspace's files to the sandbox user (it writes into its workspace, reads its keys
/// and connects to the event socket). Symlinks are not followed (`lchown`), and `checkout/` is
/// left alone: git made it inside the sandbox, as that user already.
pub(crate) fn hand_over(workspace: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(workspace)?;
    if meta.uid() != uid || meta.gid() != gid {
        std::os::unix::fs::lchown(workspace, Some(uid), Some(gid))?;
    }
    if !meta.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(workspace)? {
        let entry = entry?;
        if entry.file_name() == "checkout" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            hand_over(&entry.path(), uid, gid)?;
        } else {
            std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy<'a>(work_root: &'a Path, workspace: &'a Path, hidden: Vec<Hidden>) -> Policy<'a> {
        Policy {
            work_root,
            workspace,
            binds: &[],
            cwd: workspace,
            hidden,
            path: "/venv/bin:/usr/bin".into(),
            lang: "C.UTF-8".into(),
            env: vec![("ANSIBLE_NOCOLOR".into(), "1".into())],
            passwd: Some(Path::new("/srv/runner/work/.passwd-65534")),
            installation: None,
        }
    }

    fn strings(argv: &[OsString]) -> Vec<&str> {
        argv.iter().map(|arg| arg.to_str().unwrap()).collect()
    }

    /// The position of `window` in `argv`.
    fn find(argv: &[&str], window: &[&str]) -> Option<usize> {
        argv.windows(window.len()).position(|w| w == window)
    }

    #[test]
    fn a_program_installed_under_tmp_is_bound_back_read_only() {
        assert_eq!(
            installation_under_tmp(Path::new("/tmp/ci/.venv/bin/ansible-playbook")),
            Some(PathBuf::from("/tmp/ci/.venv"))
        );
        assert_eq!(
            installation_under_tmp(Path::new("/tmp/tools/git")),
            Some(PathBuf::from("/tmp/tools"))
        );
        assert_eq!(installation_under_tmp(Path::new("/usr/bin/git")), None);
        let mut policy = policy(
            Path::new("/srv/runner/work"),
            Path::new("/srv/runner/work/e1-0"),
            Vec::new(),
        );
        policy.installation =
            installation_under_tmp(Path::new("/tmp/ci/.venv/bin/ansible-playbook"));
        let argv = policy.argv();
        let argv = strings(&argv);
        let tmp = find(&argv, &["--tmpfs", "/tmp"]).unwrap();
        let venv = find(&argv, &["--ro-bind", "/tmp/ci/.venv", "/tmp/ci/.venv"]).unwrap();
        assert!(
            tmp < venv,
            "bound after the private /tmp, which would cover it"
        );
    }

    #[test]
    fn a_run_sees_its_workspace_only() {
        let work_root = Path::new("/srv/runner/work");
        let workspace = Path::new("/srv/runner/work/e1-0");
        let argv = policy(
            work_root,
            workspace,
            vec![
                Hidden::Dir("/srv/runner/data".into()),
                Hidden::File("/etc/runner/tokens".into()),
            ],
        )
        .argv();
        let argv = strings(&argv);
        let at = |window: &[&str]| {
            find(&argv, window).unwrap_or_else(|| panic!("{window:?} in {argv:?}"))
        };
        let root = at(&["--ro-bind", "/", "/"]);
        assert!(root < at(&["--ro-bind", "/srv/runner/work/.passwd-65534", "/etc/passwd"]));
        let tmp = at(&["--tmpfs", "/tmp"]);
        let data = at(&["--tmpfs", "/srv/runner/data"]);
        let tokens = at(&["--ro-bind", "/dev/null", "/etc/runner/tokens"]);
        let others = at(&["--tmpfs", "/srv/runner/work"]);
        let own = at(&["--bind", "/srv/runner/work/e1-0", "/srv/runner/work/e1-0"]);
        // Later mounts cover earlier ones: the own workspace comes back last.
        assert!(root < tmp && tmp < data && data < tokens && tokens < others && others < own);
        for flag in [
            "--unshare-pid",
            "--die-with-parent",
            "--clearenv",
            "--new-session",
        ] {
            assert!(argv.contains(&flag), "{flag}");
        }
        assert!(!argv.contains(&"--unshare-net"), "plays reach their hosts");
        at(&["--chdir", "/srv/runner/work/e1-0"]);
        // The allow-list, then the command's own variables, and the program follows `--`.
        let clear = at(&["--clearenv"]);
        assert!(clear < at(&["--setenv", "PATH", "/venv/bin:/usr/bin"]));
        at(&["--setenv", "HOME", "/tmp"]);
        at(&["--setenv", "ANSIBLE_NOCOLOR", "1"]);
        assert_eq!(argv.last(), Some(&"--"));
        assert_eq!(argv.iter().filter(|arg| **arg == "--setenv").count(), 4);
    }

    #[test]
    fn paths_already_hidden_are_not_mounted_again() {
        let work_root = Path::new("/tmp/x/work");
        let workspace = Path::new("/tmp/x/work/e1-0");
        let argv = policy(
            work_root,
            workspace,
            vec![
                Hidden::Dir("/var/lib/runner".into()),
                Hidden::File("/var/lib/runner/tokens".into()),
                Hidden::File("/tmp/x/tokens".into()),
            ],
        )
        .argv();
        let argv = strings(&argv);
        assert!(find(&argv, &["--tmpfs", "/var/lib/runner"]).is_some());
        assert!(!argv.contains(&"/var/lib/runner/tokens"));
        assert!(!argv.contains(&"/tmp/x/tokens"));
        // The private /tmp already hides the work root.
        assert!(find(&argv, &["--tmpfs", "/tmp/x/work"]).is_none());
        assert!(find(&argv, &["--bind", "/tmp/x/work/e1-0", "/tmp/x/work/e1-0"]).is_some());
    }

    #[test]
    fn hidden_paths_by_kind_and_missing_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "t").unwrap();
        let dir_path = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(Hidden::of(dir.path()), Some(Hidden::Dir(dir_path.clone())));
        assert_eq!(
            Hidden::of(&file),
            Some(Hidden::File(dir_path.join("tokens")))
        );
        assert_eq!(Hidden::of(&dir.path().join("missing")), None);
    }

    #[test]
    fn the_run_user_s_home_is_its_private_tmp() {
        let host = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(
            passwd_with_home(host, 65534, "/tmp"),
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n"
        );
        assert!(
            passwd_with_home(host, 1000, "/tmp")
                .ends_with("sandbox:x:1000:1000::/tmp:/usr/sbin/nologin\n")
        );
    }

    #[test]
    fn programs_get_absolute_paths_and_their_directory_on_path() {
        assert_eq!(
            absolute_program(Path::new("/usr/bin/git")),
            Path::new("/usr/bin/git")
        );
        assert!(absolute_program(Path::new(".venv/bin/ansible-playbook")).is_absolute());
        assert!(absolute_program(Path::new("sh")).is_absolute());
        assert_eq!(
            sandbox_path(Path::new("/repo/.venv/bin/ansible-playbook")),
            "/repo/.venv/bin:/usr/local/bin:/usr/bin:/bin"
        );
    }
}
