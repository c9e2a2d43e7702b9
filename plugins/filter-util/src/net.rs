//! IP addresses and networks: parsing client addresses, CIDR allow-lists, and the
//! network a client belongs to (greylisting and rate limits group IPv6 clients by /64).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Loopback networks: the usual default allow-list (local scripts, the host itself).
pub const LOOPBACK: &[&str] = &["127.0.0.0/8", "::1/128"];

/// Parses an address as the host gives it (`192.0.2.1`, `2001:db8::1`). An IPv4-mapped
/// IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports) becomes the IPv4
/// address, so that IPv4 lists and DNSBLs apply to it.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// A network in CIDR notation, stored with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

fn max_prefix(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) };
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

impl Cidr {
    /// Parses `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a network of one).
    /// Host bits are accepted and cleared (`192.0.2.7/24` is `192.0.2.0/24`).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        // Not `parse_ip`: `::ffff:0:0/96` must stay an IPv6 network.
        let addr: IpAddr = addr.parse().map_err(|_| format!("{text:?} is not an IP address or CIDR network"))?;
        let max = max_prefix(&addr);
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("{text:?} has an invalid prefix length (0 to {max})")),
            },
        };
        Ok(Cidr { addr: mask(addr, prefix), prefix })
    }

    /// The network of `prefix` bits that contains `ip` (the prefix is capped at the
    /// address family's length).
    pub fn of(ip: IpAddr, prefix: u8) -> Cidr {
        let ip = ip.to_canonical();
        let prefix = prefix.min(max_prefix(&ip));
        Cidr { addr: mask(ip, prefix), prefix }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A list of networks, such as an allow-list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetList(Vec<Cidr>);

impl NetList {
    /// Parses every entry; the ones that do not parse are left out and described in the
    /// second list (for the plugin to log as configuration warnings).
    pub fn parse_all<'a>(items: impl IntoIterator<Item = &'a str>) -> (NetList, Vec<String>) {
        let mut nets = Vec::new();
        let mut errors = Vec::new();
        for item in items {
            match Cidr::parse(item) {
                Ok(net) => nets.push(net),
                Err(e) => errors.push(e),
            }
        }
        (NetList(nets), errors)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The text form of the network a client is grouped by: `/v4_prefix` for IPv4 and
/// `/v6_prefix` for IPv6 (one IPv6 host usually owns a whole /64).
pub fn client_network(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> String {
    let ip = ip.to_canonical();
    let prefix = if ip.is_ipv4() { v4_prefix } else { v6_prefix };
    Cidr::of(ip, prefix).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_client_addresses() {
        assert_eq!(parse_ip("192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(parse_ip(" 2001:db8::1 "), Some(ip("2001:db8::1")));
        assert_eq!(parse_ip("::ffff:192.0.2.1"), Some(ip("192.0.2.1")), "mapped becomes IPv4");
        assert_eq!(parse_ip("[192.0.2.1]"), Some(ip("192.0.2.1")));
        assert_eq!(parse_ip("192.0.2"), None);
        assert_eq!(parse_ip(""), None);
        assert_eq!(parse_ip("example.com"), None);
    }

    #[test]
    fn cidr_parsing_and_display() {
        assert_eq!(Cidr::parse("192.0.2.0/24").unwrap().to_string(), "192.0.2.0/24");
        assert_eq!(Cidr::parse("192.0.2.77/24").unwrap().to_string(), "192.0.2.0/24", "host bits cleared");
        assert_eq!(Cidr::parse("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(Cidr::parse("2001:db8:1:2::5/64").unwrap().to_string(), "2001:db8:1:2::/64");
        assert_eq!(Cidr::parse("::1").unwrap().to_string(), "::1/128");
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert!(Cidr::parse("192.0.2.0/33").is_err());
        assert!(Cidr::parse("2001:db8::/129").is_err());
        assert!(Cidr::parse("192.0.2.0/").is_err());
        assert!(Cidr::parse("192.0.2.0/-1").is_err());
        assert!(Cidr::parse("example.com/24").is_err());
        assert!(Cidr::parse("").is_err());
    }

    #[test]
    fn cidr_membership() {
        let v4 = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(v4.contains(ip("10.255.1.2")));
        assert!(!v4.contains(ip("11.0.0.1")));
        assert!(v4.contains(ip("::ffff:10.1.2.3")), "mapped addresses match IPv4 networks");
        assert!(!v4.contains(ip("2001:db8::1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let odd = Cidr::parse("192.0.2.128/25").unwrap();
        assert!(odd.contains(ip("192.0.2.200")) && !odd.contains(ip("192.0.2.100")));
    }

    #[test]
    fn net_lists_keep_good_entries_and_report_bad_ones() {
        let (list, errors) = NetList::parse_all(["127.0.0.0/8", "bogus", "::1/128", "10.0.0.0/40"]);
        assert_eq!(list.len(), 2);
        assert_eq!(errors.len(), 2);
        assert!(errors[0].contains("bogus"));
        assert!(list.contains(ip("127.0.0.1")));
        assert!(list.contains(ip("::1")));
        assert!(!list.contains(ip("192.0.2.1")));
        let (loopback, errors) = NetList::parse_all(LOOPBACK.iter().copied());
        assert!(errors.is_empty() && loopback.contains(ip("127.1.2.3")));
        assert!(!NetList::default().contains(ip("127.0.0.1")));
    }

    #[test]
    fn client_networks_group_by_prefix() {
        assert_eq!(client_network(ip("192.0.2.77"), 24, 64), "192.0.2.0/24");
        assert_eq!(client_network(ip("2001:db8:1:2:3:4:5:6"), 24, 64), "2001:db8:1:2::/64");
        assert_eq!(client_network(ip("::ffff:198.51.100.9"), 24, 64), "198.51.100.0/24");
        assert_eq!(client_network(ip("192.0.2.77"), 32, 128), "192.0.2.77/32");
        assert_eq!(client_network(ip("192.0.2.77"), 99, 64), "192.0.2.77/32", "prefix capped");
    }
}
