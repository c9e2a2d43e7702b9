//! `[[route]]`: where mail goes. Rules are tried in order; the first whose `domains`
//! match the recipient's domain wins. A plugin may pick a route by name instead.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::matchers::DomainList;
use super::recipients::RecipientsConfig;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: Spanned<String>,
    /// Recipient domains this rule matches. A route without domains is only used when
    /// a plugin names it.
    #[serde(default)]
    pub domains: DomainList,
    /// Fixed next hops, tried in order (each one's addresses in turn).
    #[serde(default)]
    pub next_hop: Option<Spanned<NextHops>>,
    /// Look up the recipient domain's MX hosts (falling back to its A/AAAA records).
    #[serde(default)]
    pub mx: Option<Spanned<bool>>,
    #[serde(default)]
    pub tls: TlsMode,
    /// The port for MX hosts and for next hops written without one.
    #[serde(default = "smtp_port")]
    pub port: u16,
    /// Overrides `[delivery] connections_per_destination` for this route.
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    /// Authenticate to the next hop (a smarthost), inside TLS only.
    #[serde(default)]
    pub auth: Option<Spanned<RouteAuth>>,
    /// Recipient verification at RCPT for this route's domains.
    #[serde(default)]
    pub recipients: RecipientsConfig,
}

/// Credentials for SMTP AUTH towards a route's next hops.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAuth {
    pub user: String,
    /// The password itself, or
    #[serde(default)]
    pub password: Option<String>,
    /// a file holding it (first line; relative to the config file), kept out of the config.
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// Defer instead of sending unauthenticated when the next hop offers no usable AUTH.
    #[serde(default)]
    pub required: bool,
}

fn smtp_port() -> u16 {
    25
}

impl RouteConfig {
    pub fn uses_mx(&self) -> bool {
        self.mx.as_ref().is_some_and(|mx| *mx.get_ref())
    }
}

/// How a route uses TLS towards its next hops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Never STARTTLS.
    None,
    /// STARTTLS when offered, without checking the certificate; plain text otherwise
    /// (and after a failed handshake).
    #[default]
    Opportunistic,
    /// STARTTLS or no delivery; the certificate is not checked.
    Required,
    /// STARTTLS with a certificate valid for the host name, or no delivery.
    Verify,
}

impl TlsMode {
    pub fn requires_tls(self) -> bool {
        matches!(self, TlsMode::Required | TlsMode::Verify)
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::None => "none",
            TlsMode::Opportunistic => "opportunistic",
            TlsMode::Required => "required",
            TlsMode::Verify => "verify",
        })
    }
}

/// A host: an IP address used as it is, or a name resolved through A/AAAA (never MX).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// `host`, `host:port`, `[host]:port`, `192.0.2.1:25` or `[2001:db8::1]:25`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NextHop {
    pub host: Host,
    pub port: Option<u16>,
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

impl FromStr for NextHop {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid next hop {text:?}: expected \"host\", \"host:port\" or \"[2001:db8::1]:25\"");
        let s = text.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(NextHop { host: Host::Ip(ip), port: None });
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let end = rest.find(']').ok_or_else(bad)?;
            let port = match &rest[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (&rest[..end], port)
        } else {
            match s.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (s, None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad)?),
            None => None,
        };
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => {
                let name = host.strip_suffix('.').unwrap_or(host);
                if !crate::mail::address::is_domain(name) {
                    return Err(bad());
                }
                Host::Name(name.to_ascii_lowercase())
            }
        };
        Ok(NextHop { host, port })
    }
}

/// One next hop or a list of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHops(pub Vec<NextHop>);

impl<'de> Deserialize<'de> for NextHops {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HopsVisitor;
        impl<'de> Visitor<'de> for HopsVisitor {
            type Value = NextHops;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a next hop such as \"10.0.0.5:25\", or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NextHops, E> {
                Ok(NextHops(vec![v.parse().map_err(E::custom)?]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NextHops, A::Error> {
                let mut hops = Vec::new();
                while let Some(text) = seq.next_element::<String>()? {
                    hops.push(text.parse().map_err(de::Error::custom)?);
                }
                if hops.is_empty() {
                    return Err(de::Error::custom("next_hop needs at least one host"));
                }
                Ok(NextHops(hops))
            }
        }
        deserializer.deserialize_any(HopsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hops_parse() {
        let hop = |s: &str| s.parse::<NextHop>();
        assert_eq!(hop("10.0.0.5:25").unwrap(), NextHop { host: Host::Ip([10, 0, 0, 5].into()), port: Some(25) });
        assert_eq!(
            hop("Mail.Example.com").unwrap(),
            NextHop { host: Host::Name("mail.example.com".into()), port: None }
        );
        assert_eq!(hop("[mx.example.com]:2525").unwrap().port, Some(2525));
        assert_eq!(hop("[::1]:25").unwrap(), NextHop { host: Host::Ip("::1".parse().unwrap()), port: Some(25) });
        assert_eq!(hop("::1").unwrap().port, None);
        assert_eq!(hop("[::1]:25").unwrap().to_string(), "[::1]:25");
        for bad in ["", "host:", "host:0", "host:99999", "ba d:25", "[::1", "[::1]x", "-a.test"] {
            assert!(hop(bad).is_err(), "{bad}");
        }
    }
}
