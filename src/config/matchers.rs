//! Address and domain matchers shared by relay control and routing.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, de};

/// A network in CIDR notation; a bare address means a single host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network(pub IpNet);

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client reaching a dual-stack socket appears as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Network(net.trunc()));
        }
        s.parse::<IpAddr>()
            .map(|ip| Network(IpNet::from(ip)))
            .map_err(|_| format!("invalid network {s:?}: expected CIDR notation such as \"10.0.0.0/8\" or an address"))
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(de::Error::custom)
    }
}

/// A set of networks; membership is a linear scan, which beats a trie for the handful
/// of entries real configs have.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct NetworkList(pub Vec<Network>);

impl NetworkList {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }
}

/// `example.com` matches that domain only, `*.example.com` its subdomains (not the domain
/// itself) and `*` every domain. Matching ignores ASCII case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainPattern {
    Any,
    Exact(String),
    SubdomainsOf(String),
}

impl DomainPattern {
    pub fn matches(&self, domain: &str) -> bool {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        match self {
            DomainPattern::Any => true,
            DomainPattern::Exact(d) => domain.eq_ignore_ascii_case(d),
            DomainPattern::SubdomainsOf(parent) => {
                domain.len() > parent.len() + 1
                    && domain.as_bytes()[domain.len() - parent.len() - 1] == b'.'
                    && domain[domain.len() - parent.len()..].eq_ignore_ascii_case(parent)
            }
        }
    }
}

impl FromStr for DomainPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().trim_end_matches('.');
        if s == "*" {
            return Ok(DomainPattern::Any);
        }
        let (pattern, name) = match s.strip_prefix("*.") {
            Some(parent) => (DomainPattern::SubdomainsOf(parent.to_ascii_lowercase()), parent),
            None => (DomainPattern::Exact(s.to_ascii_lowercase()), s),
        };
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return Err(format!("invalid domain pattern {s:?}: expected \"example.com\", \"*.example.com\" or \"*\""));
        }
        Ok(pattern)
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Any => f.write_str("*"),
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::SubdomainsOf(d) => write!(f, "*.{d}"),
        }
    }
}

impl<'de> Deserialize<'de> for DomainPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(de::Error::custom)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DomainList(pub Vec<DomainPattern>);

impl DomainList {
    pub fn matches(&self, domain: &str) -> bool {
        self.0.iter().any(|p| p.matches(domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_patterns() {
        let exact: DomainPattern = "Example.com".parse().unwrap();
        assert!(exact.matches("example.COM"));
        assert!(exact.matches("example.com."));
        assert!(!exact.matches("mail.example.com"));
        let sub: DomainPattern = "*.example.com".parse().unwrap();
        assert!(sub.matches("mail.example.com"));
        assert!(!sub.matches("example.com"));
        assert!(!sub.matches("badexample.com"));
        assert!("*".parse::<DomainPattern>().unwrap().matches("anything.test"));
        assert!("exa mple.com".parse::<DomainPattern>().is_err());
        assert!("".parse::<DomainPattern>().is_err());
    }

    #[test]
    fn networks() {
        let list = NetworkList(vec!["127.0.0.0/8".parse().unwrap(), "2001:db8::1".parse().unwrap()]);
        assert!(list.contains("127.1.2.3".parse().unwrap()));
        assert!(list.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(list.contains("2001:db8::1".parse().unwrap()));
        assert!(!list.contains("2001:db8::2".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
    }
}
