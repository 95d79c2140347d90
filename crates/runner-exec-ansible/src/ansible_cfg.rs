//! The callback settings of the `ansible.cfg` a run would use, so that the executor's plugin is
//! added to the repository's (or the server's) own callbacks instead of replacing them.
//!
//! The executor has to name its plugin's directory in `ANSIBLE_CALLBACK_PLUGINS` and enable it in
//! `ANSIBLE_CALLBACKS_ENABLED`, and an environment variable overrides the file's setting
//! entirely. So it reads what ansible would have read, and passes the user's list with its own
//! item added: the callback plugins of the repository keep running.
//!
//! Which file, as ansible-core finds it (`ansible/config/manager.py`, `find_ini_config_file`):
//! `ANSIBLE_CONFIG` (a file, or a directory holding `ansible.cfg`), then `ansible.cfg` in the
//! working directory (unless the directory is world-writable), then `~/.ansible.cfg`, then
//! `/etc/ansible/ansible.cfg`; the first readable one is used, alone. The server's own
//! `ANSIBLE_CALLBACK_PLUGINS` / `ANSIBLE_CALLBACKS_ENABLED`, when set, override the file, as they
//! would for ansible.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The callback settings ansible would use, before the executor adds its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallbackSettings {
    /// `callback_plugins`: directories, relative ones resolved against the config file's.
    pub plugin_paths: Vec<PathBuf>,
    /// `callbacks_enabled`: plugin names.
    pub enabled: Vec<String>,
}

/// The environment variables that give ansible-playbook `dir` and `name` on top of what it would
/// use in `cwd` with the server's environment (`env` reads a variable; `std::env::var_os` in the
/// executor, a map in tests).
pub(crate) fn callback_env(
    cwd: &Path,
    dir: &Path,
    name: &str,
    env: impl Fn(&str) -> Option<OsString>,
) -> Vec<(OsString, OsString)> {
    let settings = effective(cwd, &env);
    let mut paths = OsString::from(dir);
    for path in &settings.plugin_paths {
        paths.push(":");
        paths.push(path);
    }
    let mut enabled = vec![name.to_owned()];
    enabled.extend(settings.enabled.into_iter().filter(|item| item != name));
    vec![
        ("ANSIBLE_CALLBACK_PLUGINS".into(), paths),
        ("ANSIBLE_CALLBACKS_ENABLED".into(), enabled.join(",").into()),
    ]
}

/// The callback settings of a run in `cwd`.
pub(crate) fn effective(cwd: &Path, env: &impl Fn(&str) -> Option<OsString>) -> CallbackSettings {
    let home = env("HOME").map(PathBuf::from);
    let file = config_file(cwd, home.as_deref(), env);
    let ini = file
        .as_deref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .map(|text| parse_defaults(&text))
        .unwrap_or_default();
    let base = file
        .as_deref()
        .and_then(Path::parent)
        .unwrap_or(cwd)
        .to_path_buf();
    let setting = |variable: &str, key: &str| -> Option<(String, PathBuf)> {
        if let Some(value) = env(variable).filter(|value| !value.is_empty()) {
            // Relative paths from the environment are ansible's to resolve (against its cwd).
            return Some((value.to_string_lossy().into_owned(), cwd.to_path_buf()));
        }
        ini.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, value)| (value.clone(), base.clone()))
    };
    let ansible_home = setting("ANSIBLE_HOME", "home")
        .map(|(value, base)| resolve(&value, &base, home.as_deref()))
        .unwrap_or_else(|| resolve("~/.ansible", cwd, home.as_deref()));
    let plugin_paths = match setting("ANSIBLE_CALLBACK_PLUGINS", "callback_plugins") {
        Some((value, base)) => value
            .split(':')
            .filter(|path| !path.trim().is_empty())
            .map(|path| resolve(path.trim(), &base, home.as_deref()))
            .collect(),
        // The default of DEFAULT_CALLBACK_PLUGIN_PATH, which the variable would otherwise drop.
        None => vec![
            ansible_home.join("plugins/callback"),
            PathBuf::from("/usr/share/ansible/plugins/callback"),
        ],
    };
    let enabled = setting("ANSIBLE_CALLBACKS_ENABLED", "callbacks_enabled")
        .or_else(|| setting("ANSIBLE_CALLBACK_WHITELIST", "callback_whitelist"))
        .map(|(value, _)| {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    CallbackSettings {
        plugin_paths,
        enabled,
    }
}

/// The config file ansible would read in `cwd`, if any.
fn config_file(
    cwd: &Path,
    home: Option<&Path>,
    env: &impl Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(value) = env("ANSIBLE_CONFIG") {
        let path = resolve(&value.to_string_lossy(), cwd, home);
        candidates.push(if path.is_dir() {
            path.join("ansible.cfg")
        } else {
            path
        });
    }
    let world_writable = std::fs::metadata(cwd)
        .map(|meta| meta.permissions().mode() & 0o002 != 0)
        .unwrap_or(true);
    if !world_writable {
        candidates.push(cwd.join("ansible.cfg"));
    }
    if let Some(home) = home {
        candidates.push(home.join(".ansible.cfg"));
    }
    candidates.push(PathBuf::from("/etc/ansible/ansible.cfg"));
    candidates.into_iter().find(|path| {
        std::fs::File::open(path).is_ok_and(|file| file.metadata().is_ok_and(|m| m.is_file()))
    })
}

/// `~` expanded, relative paths joined to `base`.
fn resolve(path: &str, base: &Path, home: Option<&Path>) -> PathBuf {
    let expanded = match (path.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    };
    if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    }
}

/// The `key = value` pairs of the `[defaults]` section, in order, keys lower-cased, as Python's
/// `configparser` reads them for ansible: `=` or `:` delimiters, `#` and `;` comment lines, `;`
/// inline comments after whitespace, indented lines continuing the previous value.
fn parse_defaults(text: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut in_defaults = false;
    let mut continuing = false;
    for raw in text.lines() {
        let line = strip_inline_comment(raw);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continuing = continuing && !trimmed.is_empty();
            continue;
        }
        if raw.starts_with([' ', '\t']) && continuing {
            if let Some((_, value)) = pairs.last_mut() {
                value.push('\n');
                value.push_str(trimmed);
            }
            continue;
        }
        if let Some(section) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            in_defaults = section.trim() == "defaults";
            continuing = false;
            continue;
        }
        continuing = false;
        if !in_defaults {
            continue;
        }
        let split = trimmed.find(['=', ':']);
        let (key, value) = match split {
            Some(at) => (&trimmed[..at], trimmed[at + 1..].trim()),
            None => (trimmed, ""),
        };
        pairs.push((key.trim().to_lowercase(), value.to_owned()));
        continuing = true;
    }
    // Continued values are lists on several lines: one item per line, as ansible joins them.
    for (_, value) in &mut pairs {
        if value.contains('\n') {
            *value = value.replace('\n', ",");
        }
    }
    pairs
}

fn strip_inline_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        if *byte == b';' && index > 0 && bytes[index - 1].is_ascii_whitespace() {
            return &line[..index];
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ansible-cfg-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn uuid_like() -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    #[test]
    fn the_repository_config_keeps_its_callbacks() {
        let cwd = dir();
        std::fs::write(
            cwd.join("ansible.cfg"),
            "[defaults]\ncallbacks_enabled = timer, mine ; ours\ncallback_plugins = ./cb:/abs/cb\n[other]\ncallbacks_enabled = no\n",
        )
        .unwrap();
        let home = dir();
        let vars = env(&[("HOME", home.to_str().unwrap())]);
        let out = callback_env(&cwd, Path::new("/work/plugins"), "runner_events", vars);
        assert_eq!(
            out[0].1,
            OsString::from(format!("/work/plugins:{}/./cb:/abs/cb", cwd.display()))
        );
        assert_eq!(out[1].1, OsString::from("runner_events,timer,mine"));
    }

    #[test]
    fn without_settings_the_defaults_stay() {
        let cwd = dir();
        let home = dir();
        let vars = env(&[("HOME", home.to_str().unwrap())]);
        let settings = effective(&cwd, &vars);
        assert_eq!(
            settings.plugin_paths,
            [
                home.join(".ansible/plugins/callback"),
                PathBuf::from("/usr/share/ansible/plugins/callback")
            ]
        );
        assert!(settings.enabled.is_empty());
    }

    #[test]
    fn the_environment_and_ansible_config_win() {
        let cwd = dir();
        std::fs::write(
            cwd.join("ansible.cfg"),
            "[defaults]\ncallbacks_enabled = local\n",
        )
        .unwrap();
        let other = dir();
        std::fs::write(
            other.join("ansible.cfg"),
            "[defaults]\ncallbacks_enabled =\n  one\n  two\n",
        )
        .unwrap();
        let vars = env(&[("ANSIBLE_CONFIG", other.to_str().unwrap())]);
        assert_eq!(effective(&cwd, &vars).enabled, ["one", "two"]);
        let vars = env(&[("ANSIBLE_CALLBACKS_ENABLED", "server")]);
        assert_eq!(effective(&cwd, &vars).enabled, ["server"]);
        // A world-writable working directory's file is ignored, as ansible ignores it.
        std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(effective(&cwd, &env(&[])).enabled.is_empty());
    }
}
