//! The rules that keep a job definition from reaching outside its run: which repository URLs git
//! may fetch, and where the playbook of a checkout may be.
//!
//! A repository URL is checked when the job is saved ([`check_url`], static: scheme, length,
//! credentials, IP-literal hosts and `localhost` names) and again when git connects
//! ([`pin_host`]: the name is resolved, every address must be globally reachable by the rules of
//! [`runner_core::net`], and git is made to connect to the address that was checked, so a DNS
//! answer that changes in between cannot lead it to a local port).

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use runner_core::net::classify;

/// The longest repository URL taken, in characters.
pub(crate) const MAX_URL_CHARS: usize = 2048;

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

/// Checks a repository URL: `https://`, `ssh://` or scp-like `user@host:path`, at most
/// [`MAX_URL_CHARS`], without credentials in it, and (unless `allow_local`) not naming a host
/// that is not globally reachable (an IP literal, `localhost`); `file://` and `http://` only
/// when `allow_local` is set. Returns the transport, or why the URL is refused.
pub(crate) fn check_url(url: &str, allow_local: bool) -> Result<Transport, String> {
    let transport = check_syntax(url, allow_local)?;
    if transport == Transport::File {
        return Ok(transport);
    }
    let target = target_of(url).ok_or("must name a host")?;
    if target.has_password || (target.has_user && target.http_scheme) {
        return Err(
            "must not hold credentials (user:password@): give them in repository.credentials"
                .into(),
        );
    }
    if !allow_local {
        check_host(&target.host)?;
    }
    Ok(transport)
}

/// The host of a repository URL and what else its authority holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The host, without IPv6 brackets.
    pub(crate) host: String,
    /// The port git connects to (the scheme's default when the URL has none).
    pub(crate) port: u16,
    has_user: bool,
    has_password: bool,
    http_scheme: bool,
}

/// The host and port of a URL that passed [`check_syntax`] (not `file://`).
pub(crate) fn target_of(url: &str) -> Option<Target> {
    let default_port = |scheme: &str| match scheme {
        "https" => 443,
        "http" => 80,
        _ => 22,
    };
    let (scheme, authority) = match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            (scheme.to_ascii_lowercase(), &rest[..end])
        }
        // scp-like user@host:path (check_syntax allows no brackets or port there).
        None => ("ssh".to_string(), url.split_once(':')?.0),
    };
    let scp_like = !url.contains("://");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let (host, port) = if scp_like {
        (hostport, None)
    } else if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => default_port(&scheme),
        Some(port) => port.parse().ok()?,
    };
    if host.is_empty() {
        return None;
    }
    Some(Target {
        host: host.to_owned(),
        port,
        has_user: userinfo.is_some_and(|user| !user.is_empty()),
        has_password: userinfo.is_some_and(|user| user.contains(':')),
        http_scheme: scheme == "https" || scheme == "http",
    })
}

/// The address a host names without DNS: an IP literal, or a number form that the resolver
/// reads as IPv4 (`2130706433`, `0x7f.1`), read by the WHATWG host parser.
fn literal_address(host: &str) -> Option<IpAddr> {
    if let Ok(address) = host.parse::<IpAddr>() {
        return Some(address);
    }
    match url::Host::parse(host) {
        Ok(url::Host::Ipv4(address)) => Some(address.into()),
        Ok(url::Host::Ipv6(address)) => Some(address.into()),
        _ => None,
    }
}

/// Refuses a host that is, without any lookup, not globally reachable.
fn check_host(host: &str) -> Result<(), String> {
    if let Some(address) = literal_address(host) {
        return check_address(address);
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    // RFC 6761: localhost and every name under it are the local host, whatever DNS says.
    if name == "localhost" || name.ends_with(".localhost") {
        return Err(format!(
            "names the local host ({host}): only globally reachable hosts are allowed"
        ));
    }
    Ok(())
}

fn check_address(address: IpAddr) -> Result<(), String> {
    match classify(address) {
        Some(class) => Err(format!(
            "leads to a {class} address ({address}): only globally reachable hosts are allowed"
        )),
        None => Ok(()),
    }
}

/// Where git must connect: the host of the URL and the address it was checked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pin {
    /// The host as the URL names it.
    pub(crate) host: String,
    /// The port.
    pub(crate) port: u16,
    /// The checked address git connects to.
    pub(crate) address: IpAddr,
}

/// Resolves the host of a checked URL (not `file://`) and refuses it unless every address is
/// globally reachable; returns the address git is to connect to. An IP-literal host needs no
/// pin (no resolver sees it) and gives `None` once checked.
pub(crate) async fn pin_host(url: &str) -> Result<Option<Pin>, String> {
    let target = target_of(url).ok_or("must name a host")?;
    if let Some(address) = literal_address(&target.host) {
        check_address(address)?;
        return Ok(None);
    }
    check_host(&target.host)?;
    let resolved: Vec<IpAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|_| format!("names a host that does not resolve ({})", target.host))?
        .map(|address| address.ip())
        .collect();
    pin_to(target, &resolved).map(Some)
}

/// The pin of `target` to the first of the addresses its name resolved to, if every one is
/// globally reachable (one bad answer is enough to refuse: a rebinding name mixes them).
fn pin_to(target: Target, resolved: &[IpAddr]) -> Result<Pin, String> {
    let Some(&first) = resolved.first() else {
        return Err(format!(
            "names a host that does not resolve ({})",
            target.host
        ));
    };
    resolved
        .iter()
        .try_for_each(|address| check_address(*address))?;
    Ok(Pin {
        host: target.host,
        port: target.port,
        address: first,
    })
}

/// The scheme, dash and transport rules of [`check_url`].
fn check_syntax(url: &str, allow_local: bool) -> Result<Transport, String> {
    if url.is_empty() {
        return Err("is required".into());
    }
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters"));
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
    fn hosts_that_are_not_globally_reachable_are_refused() {
        for url in [
            "https://127.0.0.1/r.git",
            "ssh://git@127.0.0.1:3306/x.git",
            "https://localhost/r.git",
            "https://LOCALHOST./r.git",
            "ssh://git@db.localhost/r.git",
            "git@localhost:r.git",
            "git@10.0.0.5:r.git",
            "https://[::1]:8443/r.git",
            "https://[::ffff:169.254.169.254]/r.git",
            "ssh://git@[fe80::1]/r.git",
            "https://2130706433/r.git",
            "https://0x7f.1/r.git",
            "https://198.18.0.1/r.git",
            "https://240.0.0.1/r.git",
            "https://192.0.0.1/r.git",
            "https://[2002:7f00:1::1]/r.git",
            "https://[64:ff9b::a00:1]/r.git",
        ] {
            let refused = check_url(url, false).unwrap_err();
            assert!(refused.contains("globally reachable"), "{url}: {refused}");
            // The operator may allow them.
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        assert!(check_url("https://93.184.215.14/r.git", false).is_ok());
        assert!(check_url("ssh://git@[2606:4700::1111]:2222/r.git", false).is_ok());
    }

    #[test]
    fn credentials_in_the_url_and_long_urls_are_refused() {
        for url in [
            "https://user:PASSWORD@example.com/r.git",
            "https://TOKEN@example.com/r.git",
            "ssh://git:PASSWORD@example.com/r.git",
        ] {
            for allow_local in [false, true] {
                let refused = check_url(url, allow_local).unwrap_err();
                assert!(
                    refused.contains("repository.credentials"),
                    "{url}: {refused}"
                );
                assert!(!refused.contains("PASSWORD") && !refused.contains("TOKEN"));
            }
        }
        assert!(check_url("ssh://git@example.com/r.git", false).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert_eq!(
            check_url(&long, true).unwrap_err(),
            "must be at most 2048 characters"
        );
        let just = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS - 20));
        assert_eq!(just.len(), MAX_URL_CHARS);
        assert!(check_url(&just, false).is_ok());
    }

    #[test]
    fn targets_and_their_ports() {
        let target = |url: &str| {
            let target = target_of(url).unwrap();
            (target.host, target.port)
        };
        assert_eq!(
            target("https://example.com/r.git"),
            ("example.com".into(), 443)
        );
        assert_eq!(
            target("https://example.com:8443"),
            ("example.com".into(), 8443)
        );
        assert_eq!(target("http://example.com/r"), ("example.com".into(), 80));
        assert_eq!(
            target("ssh://git@example.com:2222/r"),
            ("example.com".into(), 2222)
        );
        assert_eq!(
            target("ssh://[2001:db8::1]:2222/r"),
            ("2001:db8::1".into(), 2222)
        );
        assert_eq!(
            target("git@example.com:acme/r.git"),
            ("example.com".into(), 22)
        );
    }

    #[tokio::test]
    async fn the_connect_time_check_resolves_and_pins() {
        // `localhost` resolves from the hosts file, without any network.
        let refused = pin_host("ssh://git@localhost:3306/x.git")
            .await
            .unwrap_err();
        assert!(refused.contains("local host"), "{refused}");
        let refused = pin_host("https://127.0.0.1/r.git").await.unwrap_err();
        assert!(refused.contains("loopback"), "{refused}");
        // `.invalid` never resolves (RFC 6761).
        let refused = pin_host("https://git.invalid/r.git").await.unwrap_err();
        assert!(refused.contains("does not resolve"), "{refused}");
        // The addresses a name resolves to: all must be global, and the first is pinned.
        let target = target_of("https://git.example.com/r.git").unwrap();
        let public: IpAddr = "93.184.215.14".parse().unwrap();
        let pin = pin_to(target.clone(), &[public]).unwrap();
        assert_eq!(
            (pin.host.as_str(), pin.port, pin.address),
            ("git.example.com", 443, public)
        );
        let rebound = pin_to(target.clone(), &[public, "127.0.0.1".parse().unwrap()]);
        assert!(rebound.unwrap_err().contains("loopback"));
        assert!(
            pin_to(target, &[])
                .unwrap_err()
                .contains("does not resolve")
        );
        // A public literal needs no pin.
        assert_eq!(pin_host("https://93.184.215.14/r.git").await, Ok(None));
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
