//! What a HELO/EHLO argument is: a host name, an address literal, or neither.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use filter_util::domain;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeloForm {
    /// A fully qualified name, lower-cased, without a trailing dot.
    Name(String),
    /// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 section 4.1.3).
    Literal(IpAddr),
    /// Neither: a bare word (`localhost`), a bare IP address, a malformed literal.
    Invalid,
}

pub fn classify(helo: &str) -> HeloForm {
    let helo = helo.trim();
    if let Some(inner) = helo.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return literal(inner).map_or(HeloForm::Invalid, HeloForm::Literal);
    }
    if domain::is_fqdn(helo) { HeloForm::Name(domain::normalize(helo)) } else { HeloForm::Invalid }
}

/// The inside of an address literal: dotted IPv4, or `IPv6:` and an IPv6 address (the
/// tag is required; other tags are not address literals we can check).
fn literal(inner: &str) -> Option<IpAddr> {
    if let Some(v6) = inner.get(..5).filter(|tag| tag.eq_ignore_ascii_case("IPv6:")).and(inner.get(5..)) {
        let ip: Ipv6Addr = v6.parse().ok()?;
        return Some(IpAddr::V6(ip).to_canonical());
    }
    // Strict dotted quad: Rust's parser already refuses octal-looking and short forms.
    inner.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(classify("Mail.Example.ORG"), HeloForm::Name("mail.example.org".into()));
        assert_eq!(classify("mail.example.org."), HeloForm::Name("mail.example.org".into()));
        for bad in ["localhost", "mail", "192.0.2.1", "", "mail..example.org", "-x.example.org", "a b.example"] {
            assert_eq!(classify(bad), HeloForm::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn literals() {
        assert_eq!(classify("[192.0.2.1]"), HeloForm::Literal("192.0.2.1".parse().unwrap()));
        assert_eq!(classify("[IPv6:2001:db8::1]"), HeloForm::Literal("2001:db8::1".parse().unwrap()));
        assert_eq!(classify("[ipv6:2001:DB8::1]"), HeloForm::Literal("2001:db8::1".parse().unwrap()));
        assert_eq!(classify("[IPv6:::ffff:192.0.2.1]"), HeloForm::Literal("192.0.2.1".parse().unwrap()));
        for bad in [
            "[2001:db8::1]",
            "[192.0.2]",
            "[192.0.2.256]",
            "[010.0.0.1]",
            "[]",
            "[IPv6:]",
            "[x400:foo]",
            "[192.0.2.1",
            "192.0.2.1]",
        ] {
            assert_eq!(classify(bad), HeloForm::Invalid, "{bad:?}");
        }
    }
}
