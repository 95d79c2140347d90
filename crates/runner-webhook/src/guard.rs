//! The SSRF guard: which callback addresses the delivery service may reach.
//!
//! A callback URL comes from a user, and the node that POSTs to it usually sits inside a network
//! the user cannot reach: a metadata service on `169.254.169.254`, a database on `10.0.0.5`, an
//! admin port on `127.0.0.1`. So unless the server is configured to allow it
//! ([`WebhookConfig::allow_private`](crate::WebhookConfig::allow_private)), a callback may only
//! reach public unicast addresses. The rule is checked twice:
//!
//! - when a job is created or updated, by [`vet_callback_url`], so the user learns at once;
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

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// How long [`vet_callback_url`] waits for a name to resolve before accepting it anyway (the
/// delivery checks again).
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
    /// The host is, or resolves to, an address callbacks may not reach.
    #[error("resolves to a {class} address ({address})")]
    Address {
        /// The refused address.
        address: IpAddr,
        /// Why it is refused.
        class: AddressClass,
    },
}

/// The address classes a callback may not reach unless private targets are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `100.64.0.0/10`, the carrier-grade NAT range.
    SharedCgnat,
    /// `169.254.0.0/16` (cloud metadata services live here), `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`, and the deprecated site-local `fec0::/10`.
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `0.0.0.0/8` (Linux connects `0.0.0.0` to the local host), `::`.
    Unspecified,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedCgnat => "shared (CGNAT)",
            Self::LinkLocal => "link-local",
            Self::UniqueLocal => "unique-local",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Unspecified => "unspecified",
        })
    }
}

/// The class of `address` if callbacks may not reach it, `None` for an allowed (public) address.
///
/// IPv6 addresses that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) are judged by that IPv4 address, since that is where
/// the connection ends up.
pub fn classify(address: IpAddr) -> Option<AddressClass> {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(address: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, ..] = address.octets();
    if address.is_loopback() {
        Some(AddressClass::Loopback)
    } else if address.is_private() {
        Some(AddressClass::Private)
    } else if a == 100 && (b & 0b1100_0000) == 64 {
        Some(AddressClass::SharedCgnat)
    } else if address.is_link_local() {
        Some(AddressClass::LinkLocal)
    } else if address.is_multicast() {
        Some(AddressClass::Multicast)
    } else if address.is_broadcast() {
        Some(AddressClass::Broadcast)
    } else if a == 0 {
        Some(AddressClass::Unspecified)
    } else {
        None
    }
}

fn classify_v6(address: Ipv6Addr) -> Option<AddressClass> {
    if let Some(v4) = embedded_v4(address) {
        return classify_v4(v4);
    }
    let first = address.segments()[0];
    if address.is_loopback() {
        Some(AddressClass::Loopback)
    } else if address.is_unspecified() {
        Some(AddressClass::Unspecified)
    } else if (first & 0xffc0) == 0xfe80 {
        Some(AddressClass::LinkLocal)
    } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfec0 {
        Some(AddressClass::UniqueLocal)
    } else if address.is_multicast() {
        Some(AddressClass::Multicast)
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for, if it embeds one.
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(mapped) = address.to_ipv4_mapped() {
        return Some(mapped);
    }
    let segments = address.segments();
    let [.., a, b, c, d] = address.octets();
    let low = Ipv4Addr::new(a, b, c, d);
    // IPv4-compatible (deprecated): ::a.b.c.d, except :: and ::1 which are IPv6's own.
    if segments[..6] == [0; 6] && u32::from(low) > 1 {
        return Some(low);
    }
    // The NAT64 well-known prefix 64:ff9b::/96.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    None
}

/// Refuses callback URLs that are not http(s), or whose host is (or resolves to) a loopback,
/// private, link-local, unique-local, CGNAT, multicast, broadcast or unspecified address
/// (IPv4-mapped IPv6 too), unless `allow_private`. A host name that does not resolve (or not
/// within a few seconds) is accepted here: the delivery checks again.
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
                Ok(Ok(mut addresses)) => addresses.try_for_each(|address| check(address.ip())),
                // Unresolvable now is not proof of anything: the delivery resolves again.
                Ok(Err(_)) | Err(_) => Ok(()),
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

    fn class(address: &str) -> Option<AddressClass> {
        classify(address.parse().expect("test address"))
    }

    #[test]
    fn ipv4_classes() {
        for (address, expected) in [
            ("127.0.0.1", Some(AddressClass::Loopback)),
            ("127.255.255.254", Some(AddressClass::Loopback)),
            ("10.0.0.5", Some(AddressClass::Private)),
            ("172.16.0.1", Some(AddressClass::Private)),
            ("172.31.255.255", Some(AddressClass::Private)),
            ("192.168.1.1", Some(AddressClass::Private)),
            ("100.64.0.1", Some(AddressClass::SharedCgnat)),
            ("100.127.255.255", Some(AddressClass::SharedCgnat)),
            ("169.254.169.254", Some(AddressClass::LinkLocal)),
            ("224.0.0.1", Some(AddressClass::Multicast)),
            ("239.255.255.250", Some(AddressClass::Multicast)),
            ("255.255.255.255", Some(AddressClass::Broadcast)),
            ("0.0.0.0", Some(AddressClass::Unspecified)),
            ("0.1.2.3", Some(AddressClass::Unspecified)),
            // Neighbours of the refused ranges stay allowed.
            ("172.32.0.1", None),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("11.0.0.1", None),
            ("93.184.215.14", None),
            ("8.8.8.8", None),
        ] {
            assert_eq!(class(address), expected, "{address}");
        }
    }

    #[test]
    fn ipv6_classes() {
        for (address, expected) in [
            ("::1", Some(AddressClass::Loopback)),
            ("::", Some(AddressClass::Unspecified)),
            ("fe80::1", Some(AddressClass::LinkLocal)),
            ("febf:ffff::1", Some(AddressClass::LinkLocal)),
            ("fc00::1", Some(AddressClass::UniqueLocal)),
            ("fd12:3456::1", Some(AddressClass::UniqueLocal)),
            ("fec0::1", Some(AddressClass::UniqueLocal)),
            ("ff02::1", Some(AddressClass::Multicast)),
            ("2001:db8::1", None),
            ("2606:4700::1111", None),
            ("fe00::1", None),
        ] {
            assert_eq!(class(address), expected, "{address}");
        }
    }

    #[test]
    fn ipv6_embedding_ipv4_is_judged_by_it() {
        for (address, expected) in [
            ("::ffff:127.0.0.1", Some(AddressClass::Loopback)),
            ("::ffff:10.0.0.5", Some(AddressClass::Private)),
            ("::ffff:169.254.169.254", Some(AddressClass::LinkLocal)),
            ("::ffff:100.64.0.1", Some(AddressClass::SharedCgnat)),
            ("::127.0.0.1", Some(AddressClass::Loopback)),
            ("64:ff9b::192.168.0.1", Some(AddressClass::Private)),
            ("::ffff:93.184.215.14", None),
            ("64:ff9b::8.8.8.8", None),
        ] {
            assert_eq!(class(address), expected, "{address}");
        }
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
    async fn allow_private_accepts_them() {
        vet_callback_url("http://127.0.0.1:8080/hook", true)
            .await
            .unwrap();
        vet_callback_url("http://localhost:8080/hook", true)
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
