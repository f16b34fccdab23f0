//! Which addresses a webhook may reach: the SSRF policy, as a pure function of one IP address.
//!
//! Loopback, private (RFC 1918, shared CGNAT space, IPv6 unique-local and site-local) addresses are refused
//! unless `webhooks.allow_private` is set. Link-local addresses (169.254.0.0/16 with the cloud metadata
//! service, fe80::/10), the unspecified, broadcast and multicast addresses are refused always. IPv6 forms that
//! carry an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`) are judged by that IPv4 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address was refused; `Display` is a sentence for the job document and the upload's 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusedAddress {
    /// The address that was refused.
    pub address: IpAddr,
    /// The range it is in, e.g. `loopback`.
    pub range: &'static str,
    /// Whether `webhooks.allow_private` would admit it.
    pub private: bool,
}

impl fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is a {} address", self.address, self.range)?;
        if self.private {
            f.write_str("; webhooks.allow_private is off")
        } else {
            f.write_str(", which webhooks never reach")
        }
    }
}

impl std::error::Error for RefusedAddress {}

/// Admits `address` when a webhook may connect to it, given `allow_private`.
pub fn check_address(address: IpAddr, allow_private: bool) -> Result<(), RefusedAddress> {
    let Some((range, private)) = classify(address) else { return Ok(()) };
    if private && allow_private {
        return Ok(());
    }
    Err(RefusedAddress { address, range, private })
}

/// The special range `address` is in, and whether it counts as private (admitted by `allow_private`); `None`
/// for a public address.
fn classify(address: IpAddr) -> Option<(&'static str, bool)> {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(address: Ipv4Addr) -> Option<(&'static str, bool)> {
    let [a, b, ..] = address.octets();
    if address.is_loopback() {
        Some(("loopback", true))
    } else if address.is_private() {
        Some(("private", true))
    } else if a == 100 && (64..128).contains(&b) {
        Some(("shared (carrier-grade NAT)", true))
    } else if address.is_link_local() {
        Some(("link-local", false))
    } else if a == 0 {
        Some(("unspecified", false))
    } else if address.is_broadcast() {
        Some(("broadcast", false))
    } else if address.is_multicast() || a >= 240 {
        Some(("multicast or reserved", false))
    } else {
        None
    }
}

fn classify_v6(address: Ipv6Addr) -> Option<(&'static str, bool)> {
    let first = address.segments()[0];
    if address.is_loopback() {
        Some(("loopback", true))
    } else if first & 0xfe00 == 0xfc00 {
        Some(("unique-local", true))
    } else if first & 0xffc0 == 0xfec0 {
        Some(("site-local", true))
    } else if first & 0xffc0 == 0xfe80 {
        Some(("link-local", false))
    } else if address.is_unspecified() {
        Some(("unspecified", false))
    } else if address.is_multicast() {
        Some(("multicast", false))
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for, when it is one of the forms that carry one.
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = address.segments();
    let octets = address.octets();
    let last_four = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    match segments {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible; ::1 and :: are IPv6's own loopback and unspecified).
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(last_four),
        [0, 0, 0, 0, 0, 0, _, _] if !address.is_loopback() && !address.is_unspecified() => Some(last_four),
        // NAT64 well-known prefix.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last_four),
        // 6to4 carries the IPv4 address in the second and third segments.
        [0x2002, ..] => Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        check_address(text.parse().unwrap(), false).is_err()
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for address in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
        ] {
            assert!(refused(address), "{address} was admitted");
        }
    }

    #[test]
    fn public_addresses_are_admitted() {
        for address in ["93.184.215.14", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!refused(address), "{address} was refused");
        }
    }

    #[test]
    fn allow_private_admits_private_ranges_but_never_link_local() {
        for address in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "::1", "fd00::1", "::ffff:127.0.0.1"] {
            assert!(check_address(address.parse().unwrap(), true).is_ok(), "{address}");
        }
        for address in ["169.254.169.254", "fe80::1", "0.0.0.0", "::ffff:169.254.169.254"] {
            let error = check_address(address.parse().unwrap(), true).unwrap_err();
            assert!(!error.private, "{address}");
        }
    }

    #[test]
    fn the_reason_names_the_range() {
        let error = check_address("10.0.0.7".parse().unwrap(), false).unwrap_err();
        assert_eq!(error.to_string(), "10.0.0.7 is a private address; webhooks.allow_private is off");
    }
}
