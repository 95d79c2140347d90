//! The address rules: which IP addresses a user-supplied URL (a webhook callback, a job's
//! repository) may make a node connect to. One place for the rule; no IO here.
//!
//! A node usually sits inside a network its users cannot reach: a metadata service on
//! `169.254.169.254`, a database on `10.0.0.5`, an admin port on `127.0.0.1`. So a URL a user
//! gives may only lead to a globally reachable unicast address. [`classify`] says why an address
//! is not one, from a table ([`BLOCKS`]) of the IANA special-purpose blocks whose *globally
//! reachable* column is false (IPv4 and IPv6 special-purpose address registries), plus
//! multicast and the deprecated site-local `fec0::/10`. The few sub-blocks IANA marks globally
//! reachable inside a refused one (`192.0.0.9`, `192.0.0.10`, `2001:1::1`-`3`, `2001:3::/32`,
//! `2001:4:112::/48`, `2001:20::/27`) are allowed, as in `std`'s unstable `is_global`.
//!
//! IPv6 addresses that carry an IPv4 address are judged by that IPv4 address as well, since that
//! is where the connection ends up: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`,
//! NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:AABB:CCDD::/48`.
//!
//! ```
//! use std::net::IpAddr;
//! use runner_core::net::{classify, AddressClass};
//!
//! let metadata: IpAddr = "169.254.169.254".parse().unwrap();
//! assert_eq!(classify(metadata), Some(AddressClass::LinkLocal));
//! let mapped: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
//! assert_eq!(classify(mapped), Some(AddressClass::Private));
//! let six_to_four: IpAddr = "2002:7f00:1::1".parse().unwrap();
//! assert_eq!(classify(six_to_four), Some(AddressClass::Loopback));
//! assert_eq!(classify("198.18.0.1".parse().unwrap()), Some(AddressClass::Benchmarking));
//! assert_eq!(classify("93.184.215.14".parse().unwrap()), None);
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why an address is not globally reachable.
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
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// Blocks set aside by the IETF and not reachable on the Internet: `192.0.0.0/24`,
    /// `192.88.99.0/24` (the retired 6to4 relays), `240.0.0.0/4`, `100::/64` (discard-only),
    /// `2001::/23` (Teredo, ORCHID and other protocol assignments), `64:ff9b:1::/48` (local
    /// NAT64), `5f00::/16` (SRv6).
    Reserved,
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
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Reserved => "reserved",
        })
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix))
}

const fn v6(segments: [u16; 8], prefix: u8) -> IpNet {
    let [a, b, c, d, e, f, g, h] = segments;
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(a, b, c, d, e, f, g, h),
        prefix,
    ))
}

/// Blocks inside [`BLOCKS`] that IANA marks globally reachable: allowed.
pub const GLOBAL_EXCEPTIONS: &[IpNet] = &[
    // Port Control Protocol anycast, TURN anycast.
    v4(192, 0, 0, 9, 32),
    v4(192, 0, 0, 10, 32),
    // PCP anycast, TURN anycast, DNS-SD SRP anycast.
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128),
    // AMT, AS112-v6, ORCHIDv2 and drone remote ID (2001:20::/28, 2001:30::/28).
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48),
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 27),
];

/// The blocks that are not globally reachable, and their class. More specific blocks come
/// first where they overlap (`255.255.255.255` inside `240.0.0.0/4`).
pub const BLOCKS: &[(IpNet, AddressClass)] = &[
    (v4(0, 0, 0, 0, 8), AddressClass::Unspecified),
    (v4(10, 0, 0, 0, 8), AddressClass::Private),
    (v4(100, 64, 0, 0, 10), AddressClass::SharedCgnat),
    (v4(127, 0, 0, 0, 8), AddressClass::Loopback),
    (v4(169, 254, 0, 0, 16), AddressClass::LinkLocal),
    (v4(172, 16, 0, 0, 12), AddressClass::Private),
    (v4(192, 0, 0, 0, 24), AddressClass::Reserved),
    (v4(192, 0, 2, 0, 24), AddressClass::Documentation),
    (v4(192, 88, 99, 0, 24), AddressClass::Reserved),
    (v4(192, 168, 0, 0, 16), AddressClass::Private),
    (v4(198, 18, 0, 0, 15), AddressClass::Benchmarking),
    (v4(198, 51, 100, 0, 24), AddressClass::Documentation),
    (v4(203, 0, 113, 0, 24), AddressClass::Documentation),
    (v4(224, 0, 0, 0, 4), AddressClass::Multicast),
    (v4(255, 255, 255, 255, 32), AddressClass::Broadcast),
    (v4(240, 0, 0, 0, 4), AddressClass::Reserved),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), AddressClass::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), AddressClass::Loopback),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        AddressClass::Reserved,
    ),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), AddressClass::Reserved),
    (
        v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),
        AddressClass::Benchmarking,
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        AddressClass::Reserved,
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        AddressClass::Documentation,
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        AddressClass::Documentation,
    ),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        AddressClass::Reserved,
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        AddressClass::UniqueLocal,
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        AddressClass::LinkLocal,
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        AddressClass::UniqueLocal,
    ),
    (
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        AddressClass::Multicast,
    ),
];

/// The class of `address` if it is not globally reachable, `None` for a global unicast address.
/// An IPv6 address that embeds an IPv4 address (see the module docs) is refused if either is.
pub fn classify(address: IpAddr) -> Option<AddressClass> {
    if let IpAddr::V6(v6) = address {
        if let Some(embedded) = embedded_v4(v6) {
            if let Some(class) = classify(IpAddr::V4(embedded)) {
                return Some(class);
            }
        }
    }
    if GLOBAL_EXCEPTIONS.iter().any(|net| net.contains(&address)) {
        return None;
    }
    BLOCKS
        .iter()
        .find(|(net, _)| net.contains(&address))
        .map(|(_, class)| *class)
}

/// True when `address` is a globally reachable unicast address.
pub fn is_global(address: IpAddr) -> bool {
    classify(address).is_none()
}

/// The IPv4 address an IPv6 address stands for, if it embeds one: IPv4-mapped, IPv4-compatible
/// (except `::` and `::1`, which are IPv6's own), NAT64 well-known prefix, 6to4.
pub fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(mapped) = address.to_ipv4_mapped() {
        return Some(mapped);
    }
    let segments = address.segments();
    let octets = address.octets();
    let [.., a, b, c, d] = octets;
    let low = Ipv4Addr::new(a, b, c, d);
    if segments[..6] == [0; 6] && u32::from(low) > 1 {
        return Some(low);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    // 6to4: 2002:V4HI:V4LO::/48 routes to the IPv4 address in bits 16 to 47.
    if segments[0] == 0x2002 {
        return Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(address: &str) -> Option<AddressClass> {
        classify(address.parse().expect("test address"))
    }

    #[test]
    fn every_ipv4_block_is_refused_at_both_ends() {
        use AddressClass::*;
        for (first, last, expected) in [
            ("0.0.0.0", "0.255.255.255", Unspecified),
            ("10.0.0.0", "10.255.255.255", Private),
            ("100.64.0.0", "100.127.255.255", SharedCgnat),
            ("127.0.0.0", "127.255.255.255", Loopback),
            ("169.254.0.0", "169.254.255.255", LinkLocal),
            ("172.16.0.0", "172.31.255.255", Private),
            ("192.0.0.0", "192.0.0.255", Reserved),
            ("192.0.2.0", "192.0.2.255", Documentation),
            ("192.88.99.0", "192.88.99.255", Reserved),
            ("192.168.0.0", "192.168.255.255", Private),
            ("198.18.0.0", "198.19.255.255", Benchmarking),
            ("198.51.100.0", "198.51.100.255", Documentation),
            ("203.0.113.0", "203.0.113.255", Documentation),
            ("224.0.0.0", "239.255.255.255", Multicast),
            ("240.0.0.0", "255.255.255.254", Reserved),
            ("255.255.255.255", "255.255.255.255", Broadcast),
        ] {
            assert_eq!(class(first), Some(expected), "{first}");
            assert_eq!(class(last), Some(expected), "{last}");
        }
    }

    #[test]
    fn ipv4_neighbours_and_exceptions_stay_global() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.0.9",
            "192.0.0.10",
            "192.0.1.0",
            "192.0.3.0",
            "192.88.98.255",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "203.0.112.255",
            "223.255.255.255",
            "93.184.215.14",
        ] {
            assert_eq!(class(address), None, "{address}");
        }
    }

    #[test]
    fn every_ipv6_block_is_refused() {
        use AddressClass::*;
        for (address, expected) in [
            ("::", Unspecified),
            ("::1", Loopback),
            ("64:ff9b:1::1", Reserved),
            ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Reserved),
            ("100::", Reserved),
            ("100::ffff:ffff:ffff:ffff", Reserved),
            ("2001::1", Reserved),
            ("2001:1::4", Reserved),
            ("2001:2::1", Benchmarking),
            ("2001:10::1", Reserved),
            ("2001:1ff:ffff::1", Reserved),
            ("2001:db8::1", Documentation),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Documentation),
            ("3fff::1", Documentation),
            ("3fff:fff::1", Documentation),
            ("5f00::1", Reserved),
            ("fc00::1", UniqueLocal),
            ("fdff:ffff::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("febf:ffff::1", LinkLocal),
            ("fec0::1", UniqueLocal),
            ("ff02::1", Multicast),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Multicast),
        ] {
            assert_eq!(class(address), Some(expected), "{address}");
        }
    }

    #[test]
    fn ipv6_neighbours_and_exceptions_stay_global() {
        for address in [
            "2606:4700::1111",
            "2001:200::1",
            "2001:1::1",
            "2001:1::2",
            "2001:1::3",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001:3f::1",
            "2001:db9::1",
            "3fff:1000::1",
            "64:ff9b:2::1",
            "100:0:0:1::1",
            "fe00::1",
            "5eff::1",
        ] {
            assert_eq!(class(address), None, "{address}");
        }
    }

    #[test]
    fn ipv6_embedding_ipv4_is_judged_by_it() {
        use AddressClass::*;
        for (address, expected) in [
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.0.0.5", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:100.64.0.1", Some(SharedCgnat)),
            ("::ffff:198.18.0.1", Some(Benchmarking)),
            ("::ffff:240.0.0.1", Some(Reserved)),
            ("::127.0.0.1", Some(Loopback)),
            ("64:ff9b::192.168.0.1", Some(Private)),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:a00:5::", Some(Private)),
            ("2002:c000:1::1", Some(Reserved)),
            ("::ffff:93.184.215.14", None),
            ("64:ff9b::8.8.8.8", None),
            ("2002:808:808::1", None),
        ] {
            assert_eq!(class(address), expected, "{address}");
        }
        assert!(is_global("2002:808:808::1".parse().unwrap()));
        assert!(!is_global("2002:7f00:1::1".parse().unwrap()));
    }
}
