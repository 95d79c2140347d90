//! The rules that keep a job definition from reaching outside its run: which repository URLs git
//! may fetch, and where the playbook of a checkout may be.

use std::path::{Component, Path, PathBuf};

/// How git reaches a repository URL that passed [`check_url`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `https://` (or `http://` when local URLs are allowed).
    Http,
    /// `ssh://` or scp-like `user@host:path`.
    Ssh,
    /// `file://`, only when local URLs are allowed.
    File,
}

/// Checks a repository URL: `https://`, `ssh://` or scp-like `user@host:path`; `file://` and
/// `http://` only when `allow_local` is set. Returns the transport, or why the URL is refused.
pub(crate) fn check_url(url: &str, allow_local: bool) -> Result<Transport, String> {
    if url.is_empty() {
        return Err("is required".into());
    }
    if url.starts_with('-') {
        return Err("must not start with '-'".into());
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    let lower = url.to_ascii_lowercase();
    if let Some((scheme, rest)) = lower.split_once("://") {
        let transport = match scheme {
            "https" => Transport::Http,
            "ssh" => Transport::Ssh,
            "http" if allow_local => Transport::Http,
            "file" if allow_local => Transport::File,
            "http" | "file" => {
                return Err(format!(
                    "{scheme}:// URLs are not allowed (only https:// and ssh://)"
                ));
            }
            _ => return Err("must be an https:// or ssh:// URL, or user@host:path".into()),
        };
        if transport != Transport::File {
            let authority = rest.split('/').next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            if host.is_empty() || host.starts_with('-') {
                return Err("must name a host that does not start with '-'".into());
            }
        }
        return Ok(transport);
    }
    // Anything else with "::" is a git remote helper (`ext::sh -c ...`, `fd::`): refused.
    if url.contains("::") {
        return Err("remote helper transports (such as ext::) are not allowed".into());
    }
    // scp-like syntax: [user@]host:path, with no slash before the colon (git's own rule).
    if let Some((authority, path)) = url.split_once(':') {
        let host = authority.rsplit('@').next().unwrap_or_default();
        let plain = |part: &str| {
            !part.is_empty()
                && !part.starts_with('-')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        let user_ok = authority
            .rsplit_once('@')
            .is_none_or(|(user, _)| plain(user));
        if authority.contains('@') && user_ok && plain(host) && !path.is_empty() {
            return Ok(Transport::Ssh);
        }
    }
    Err("must be an https:// or ssh:// URL, or user@host:path".into())
}

/// Static check of `defaultPlaybook`: relative, without `..`, not empty.
pub(crate) fn check_playbook_path(path: &str) -> Result<(), String> {
    if path.trim().is_empty() {
        return Err("is required".into());
    }
    if path.contains('\0') {
        return Err("must not contain NUL".into());
    }
    let path = Path::new(path);
    for component in path.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("must not contain '..'".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("must be a path relative to the repository root".into());
            }
        }
    }
    Ok(())
}

/// Resolves `defaultPlaybook` inside a checkout, following symlinks, and refuses anything that
/// lands outside the checkout or is not a file.
pub(crate) fn resolve_playbook(checkout: &Path, path: &str) -> Result<PathBuf, String> {
    check_playbook_path(path)?;
    let root = checkout
        .canonicalize()
        .map_err(|error| format!("the checkout cannot be read: {error}"))?;
    let resolved = root
        .join(path)
        .canonicalize()
        .map_err(|error| format!("{path} is not in the repository: {error}"))?;
    if !resolved.starts_with(&root) {
        return Err(format!("{path} resolves to a file outside the repository"));
    }
    if !resolved.is_file() {
        return Err(format!("{path} is not a file"));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls() {
        for url in [
            "https://github.com/acme/playbooks.git",
            "ssh://git@github.com/acme/playbooks.git",
            "git@github.com:acme/playbooks.git",
            "deploy@git.example.com:playbooks",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
        assert_eq!(check_url("git@h:x", false), Ok(Transport::Ssh));
        assert_eq!(check_url("https://h/x", false), Ok(Transport::Http));
    }

    #[test]
    fn hostile_urls() {
        for url in [
            "-oProxyCommand=touch /tmp/pwned",
            "-uhttps://x",
            "ext::sh -c touch% /tmp/pwned",
            "ext::sh",
            "fd::17",
            "file:///srv/repo.git",
            "http://example.com/repo.git",
            "ssh://-oProxyCommand=x/repo",
            "ssh://user@-oProxyCommand=x/repo",
            "/srv/repo.git",
            "../repo",
            "host:path",
            "-x@host:path",
            "git@-host:path",
            "ftp://example.com/repo.git",
            "https://host/a b",
            "",
        ] {
            assert!(check_url(url, false).is_err(), "{url} was accepted");
        }
        assert!(check_url("ext::sh -c x", true).is_err());
        assert_eq!(check_url("file:///srv/repo.git", true), Ok(Transport::File));
        assert_eq!(
            check_url("http://127.0.0.1:1/r.git", true),
            Ok(Transport::Http)
        );
    }

    #[test]
    fn playbook_paths() {
        assert!(check_playbook_path("site.yml").is_ok());
        assert!(check_playbook_path("./deploy/site.yml").is_ok());
        for path in ["../x", "a/../../x", "/etc/passwd", "", " "] {
            assert!(check_playbook_path(path).is_err(), "{path}");
        }
    }

    #[test]
    fn symlinks_out_of_the_checkout_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let checkout = dir.path().join("checkout");
        std::fs::create_dir(&checkout).unwrap();
        std::fs::write(dir.path().join("outside.yml"), "- hosts: all\n").unwrap();
        std::fs::write(checkout.join("inside.yml"), "- hosts: all\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.yml"), checkout.join("out.yml"))
            .unwrap();
        std::os::unix::fs::symlink("inside.yml", checkout.join("alias.yml")).unwrap();
        assert!(
            resolve_playbook(&checkout, "out.yml")
                .unwrap_err()
                .contains("outside the repository")
        );
        assert!(resolve_playbook(&checkout, "alias.yml").is_ok());
        assert!(resolve_playbook(&checkout, "missing.yml").is_err());
        std::fs::create_dir(checkout.join("dir")).unwrap();
        assert!(
            resolve_playbook(&checkout, "dir")
                .unwrap_err()
                .contains("not a file")
        );
    }
}
