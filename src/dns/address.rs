//! Which addresses are the inside of the network: a name that a plugin (or its
//! config) names may only lead to a public address unless that address itself is
//! listed (plugin-chosen next hops, plugin HTTP requests).

use std::net::IpAddr;

/// Loopback, private, link-local (cloud metadata included), shared (CGNAT),
/// unspecified, multicast, documentation, benchmarking, reserved and unique-local
/// addresses: the inside of the network.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 198 && (b & 0xfe) == 18)
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || first == 0x2001 && v6.segments()[1] == 0x0db8)
            }
        },
    }
}
