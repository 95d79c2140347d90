//! The SSRF guard: which callback addresses the delivery service may reach.
//!
//! A callback URL comes from a user, and the node that POSTs to it usually sits inside a network
//! the user cannot reach: a metadata service on `169.254.169.254`, a database on `10.0.0.5`, an
//! admin port on `127.0.0.1`. So unless the server is configured to allow it
//! ([`WebhookConfig::allow_private`](crate::WebhookConfig::allow_private)), a callback may only
//! reach globally reachable unicast addresses, by the rules of [`runner_core::net`]. The rule is
//! checked twice:
//!
//! - when a job is created or updated, by [`vet_callback_url`], so the user learns at once (a
//!   name that does not resolve is refused then: `http://localhost./` must not slip through);
//! - at every delivery attempt, because a name can resolve elsewhere later (DNS rebinding): the
//!   service's resolver drops refused addresses, and IP-literal hosts (which no resolver sees) are
//!   checked before the request.
//!
//! ```
//! use std::net::IpAddr;
//! use runner_webhook::guard::{classify, AddressClass};
//!
//! let metadata: IpAddr = "169.254.169.254".parse().unwrap();
//! assert_eq!(classify(metadata), Some(AddressClass::LinkLocal));
//! let mapped: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
//! assert_eq!(classify(mapped), Some(AddressClass::Private));
//! assert_eq!(classify("93.184.215.14".parse().unwrap()), None);
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// How long [`vet_callback_url`] waits for a name to resolve before refusing it.
const VET_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a callback URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlRefused {
    /// It does not parse as an absolute URL.
    #[error("is not a valid URL: {0}")]
    Invalid(String),
    /// Only `http` and `https` are delivered to.
    #[error("uses the scheme `{0}`; only http and https are allowed")]
    Scheme(String),
    /// An http(s) URL without a host.
    #[error("has no host")]
    NoHost,
    /// The host name does not resolve (or not within a few seconds): nothing shows where it
    /// leads, so it is refused.
    #[error("does not resolve ({0})")]
    Unresolvable(String),
    /// The host is, or resolves to, an address callbacks may not reach.
    #[error("resolves to a {class} address ({address})")]
    Address {
        /// The refused address.
        address: IpAddr,
        /// Why it is refused.
        class: AddressClass,
    },
}

/// The address rules are [`runner_core::net`]'s (one place for them); re-exported here for the
/// callers that knew them from this module.
pub use runner_core::net::{AddressClass, classify};

/// Refuses callback URLs that are not http(s), or whose host is (or resolves to) an address that
/// is not globally reachable ([`runner_core::net::classify`]), unless `allow_private`. A host
/// name that does not resolve (or not within a few seconds) is refused too, unless
/// `allow_private`: the delivery checks each attempt's addresses again.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use runner_webhook::guard::vet_callback_url;
///
/// let refused = vet_callback_url("http://10.0.0.5/hook", false).await.unwrap_err();
/// assert_eq!(refused.to_string(), "resolves to a private address (10.0.0.5)");
/// assert!(vet_callback_url("http://10.0.0.5/hook", true).await.is_ok());
/// assert!(vet_callback_url("ftp://files.example.com/", true).await.is_err());
/// # });
/// ```
pub async fn vet_callback_url(url: &str, allow_private: bool) -> Result<(), UrlRefused> {
    let url = Url::parse(url).map_err(|error| UrlRefused::Invalid(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::Scheme(url.scheme().to_owned()));
    }
    let host = url.host().ok_or(UrlRefused::NoHost)?;
    if allow_private {
        return Ok(());
    }
    match host {
        Host::Ipv4(address) => check(address.into()),
        Host::Ipv6(address) => check(address.into()),
        Host::Domain(name) => {
            let port = url.port_or_known_default().unwrap_or(80);
            let lookup = tokio::net::lookup_host((name, port));
            match tokio::time::timeout(VET_LOOKUP_TIMEOUT, lookup).await {
                Ok(Ok(addresses)) => {
                    let addresses: Vec<SocketAddr> = addresses.collect();
                    if addresses.is_empty() {
                        return Err(UrlRefused::Unresolvable(format!("{name} has no address")));
                    }
                    addresses.iter().try_for_each(|address| check(address.ip()))
                }
                // A name that resolves nowhere now may resolve to 127.0.0.1 later.
                Ok(Err(_)) => Err(UrlRefused::Unresolvable(format!("{name} has no address"))),
                Err(_) => Err(UrlRefused::Unresolvable(format!(
                    "{name} did not resolve within {} s",
                    VET_LOOKUP_TIMEOUT.as_secs()
                ))),
            }
        }
    }
}

/// `Err` if callbacks may not reach `address`.
pub(crate) fn check(address: IpAddr) -> Result<(), UrlRefused> {
    match classify(address) {
        Some(class) => Err(UrlRefused::Address { address, class }),
        None => Ok(()),
    }
}

/// The check of an IP-literal host at delivery (the resolver never sees those).
pub(crate) fn check_literal_host(url: &Url) -> Result<(), UrlRefused> {
    match url.host() {
        Some(Host::Ipv4(address)) => check(address.into()),
        Some(Host::Ipv6(address)) => check(address.into()),
        Some(Host::Domain(_)) => Ok(()),
        None => Err(UrlRefused::NoHost),
    }
}

/// The delivery client's resolver: the system's, minus the refused addresses. A name left with
/// none fails the request, naming the first refused address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| match check(address.ip()) {
                    Ok(()) => true,
                    Err(error) => {
                        refused.get_or_insert(error);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(refused)) => Err(Box::new(refused) as _),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_uses_the_core_rules() {
        // The table and its tests live in runner_core::net; a sample of the new blocks here.
        for address in ["198.18.0.1", "240.0.0.1", "192.0.0.1", "2002:7f00:1::1"] {
            assert!(check(address.parse().unwrap()).is_err(), "{address}");
        }
        assert!(check("93.184.215.14".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn vetting_refuses_private_targets() {
        for (url, message) in [
            (
                "http://127.0.0.1:8080/hook",
                "resolves to a loopback address (127.0.0.1)",
            ),
            (
                "http://[::ffff:10.0.0.5]/",
                "resolves to a private address (::ffff:10.0.0.5)",
            ),
            (
                "https://[fe80::1]/",
                "resolves to a link-local address (fe80::1)",
            ),
            (
                "http://100.64.1.2/",
                "resolves to a shared (CGNAT) address (100.64.1.2)",
            ),
            // The WHATWG parser reads a bare number as an IPv4 address, as browsers and reqwest do.
            (
                "http://2130706433/",
                "resolves to a loopback address (127.0.0.1)",
            ),
            (
                "ftp://example.com/",
                "uses the scheme `ftp`; only http and https are allowed",
            ),
        ] {
            let refused = vet_callback_url(url, false).await.unwrap_err();
            assert_eq!(refused.to_string(), message, "{url}");
        }
        assert!(matches!(
            vet_callback_url("not a url", false).await,
            Err(UrlRefused::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn vetting_resolves_names() {
        // `localhost` resolves from the hosts file, without any network.
        let refused = vet_callback_url("http://localhost:9/hook", false)
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                UrlRefused::Address {
                    class: AddressClass::Loopback,
                    ..
                }
            ),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn names_that_do_not_resolve_are_refused() {
        // `.invalid` never resolves (RFC 6761); `localhost.` is not in the hosts file.
        for url in ["http://hooks.invalid/x", "http://localhost./"] {
            match vet_callback_url(url, false).await {
                Err(UrlRefused::Unresolvable(_) | UrlRefused::Address { .. }) => {}
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn allow_private_accepts_them() {
        vet_callback_url("http://127.0.0.1:8080/hook", true)
            .await
            .unwrap();
        vet_callback_url("http://localhost:8080/hook", true)
            .await
            .unwrap();
        // A name that does not resolve is only taken when private targets are.
        vet_callback_url("http://localhost./hook", true)
            .await
            .unwrap();
        // Public literals need no lookup.
        vet_callback_url("https://93.184.215.14/hook", false)
            .await
            .unwrap();
    }

    #[test]
    fn literal_hosts_are_checked_at_delivery() {
        let url = Url::parse("http://[::ffff:127.0.0.1]:8080/").unwrap();
        assert!(check_literal_host(&url).is_err());
        let url = Url::parse("http://hooks.example.com/").unwrap();
        assert!(check_literal_host(&url).is_ok());
    }
}
