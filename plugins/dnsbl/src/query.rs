//! DNSBL query names and answers (RFC 5782).

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

/// The address in DNSBL order: IPv4 octets reversed (`192.0.2.1` → `1.2.0.192`), IPv6
/// nibbles reversed, all 32 of them (`2001:db8::1` → `1.0.0.0.…8.b.d.0.1.0.0.2`).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(64);
            for byte in v6.octets().iter().rev() {
                let _ = write!(out, "{:x}.{:x}.", byte & 0xf, byte >> 4);
            }
            out.pop();
            out
        }
    }
}

/// The name to look up for `ip` in `zone`.
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    format!("{}.{zone}", reverse_name(ip))
}

/// What a zone's A answer says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Classified {
    /// Answers that mean "listed": 127.0.0.x, and among the zone's `return_codes` if it
    /// has them.
    pub listed: Vec<Ipv4Addr>,
    /// Answers that mean something else: 127.0.0.x codes the zone does not count, or
    /// codes outside 127.0.0.0/24 (Spamhaus answers 127.255.255.x when it refuses a
    /// query, and a resolver that rewrites NXDOMAIN answers a public address). Logged,
    /// never counted.
    pub ignored: Vec<String>,
}

impl Classified {
    pub fn is_listed(&self) -> bool {
        !self.listed.is_empty()
    }
}

pub fn classify(answers: &[String], return_codes: &[Ipv4Addr]) -> Classified {
    let mut out = Classified::default();
    for answer in answers {
        match answer.parse::<Ipv4Addr>() {
            Ok(ip) if is_listing_code(ip) && (return_codes.is_empty() || return_codes.contains(&ip)) => {
                out.listed.push(ip)
            }
            _ => out.ignored.push(answer.clone()),
        }
    }
    out
}

fn is_listing_code(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 127 && b == 0 && c == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn reverses_ipv4() {
        assert_eq!(reverse_name(ip("192.0.2.1")), "1.2.0.192");
        assert_eq!(reverse_name(ip("127.0.0.2")), "2.0.0.127");
        assert_eq!(query_name(ip("192.0.2.99"), "zen.example.test"), "99.2.0.192.zen.example.test");
        assert_eq!(reverse_name(ip("::ffff:198.51.100.7")), "7.100.51.198", "mapped addresses are IPv4");
    }

    #[test]
    fn reverses_ipv6_nibbles() {
        // RFC 5782 section 2.4's example.
        assert_eq!(
            reverse_name(ip("2001:db8:1:2:3:4:567:89ab")),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2"
        );
        let short = reverse_name(ip("2001:db8::1"));
        assert_eq!(short.split('.').count(), 32);
        assert!(short.starts_with("1.0.0.0.") && short.ends_with(".8.b.d.0.1.0.0.2"));
    }

    #[test]
    fn classifies_answers() {
        let answers = vec!["127.0.0.2".to_string(), "127.0.0.10".to_string()];
        let any = classify(&answers, &[]);
        assert_eq!(any.listed.len(), 2);
        assert!(any.ignored.is_empty());
        let some = classify(&answers, &[Ipv4Addr::new(127, 0, 0, 2)]);
        assert_eq!(some.listed, vec![Ipv4Addr::new(127, 0, 0, 2)]);
        assert_eq!(some.ignored, vec!["127.0.0.10".to_string()]);
        let refused = classify(&["127.255.255.254".to_string()], &[]);
        assert!(!refused.is_listed());
        assert_eq!(refused.ignored.len(), 1);
        let hijacked = classify(&["198.51.100.1".to_string(), "junk".to_string()], &[]);
        assert!(!hijacked.is_listed());
        assert_eq!(hijacked.ignored.len(), 2);
        assert!(!classify(&[], &[]).is_listed());
    }
}
