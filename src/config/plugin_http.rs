//! A `[[plugin]]` entry's `http` table: the origins a plugin granted `http` may send
//! requests to, how long each request may take, and how large a response may be.
//!
//! An origin is a scheme, a host and a port, written `http://127.0.0.1:11333` or
//! `https://policy.example.net` (port 443 implied). Nothing else: no wildcards (a
//! pattern would let a plugin reach what nobody listed) and no paths (the host cannot
//! hold a plugin to a path once it talks to the origin, so a path would only suggest a
//! restriction that does not exist; one is refused).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::ConfigError;
use super::load::ConfigOrigin;
use super::plugin::{Grant, PluginConfig};
use super::route::Host;
use super::units::{ByteSize, TimeSpan};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The origins it may send requests to; no other.
    pub allow: Vec<HttpOrigin>,
    /// Each request, from connecting to the last byte of the response (within the
    /// call's wall time, which bounds it too).
    #[serde(default = "default_timeout")]
    pub timeout: TimeSpan,
    /// Response bodies longer than this are cut off with an error.
    #[serde(default = "default_max_response")]
    pub max_response: ByteSize,
}

fn default_timeout() -> TimeSpan {
    TimeSpan::secs(5)
}
fn default_max_response() -> ByteSize {
    ByteSize(1_000_000)
}

impl HttpConfig {
    /// The settings of `sluice plugin test --http-allow`: the defaults, with `allow`.
    pub fn allowing(allow: Vec<HttpOrigin>) -> HttpConfig {
        HttpConfig { allow, timeout: default_timeout(), max_response: default_max_response() }
    }
}

impl fmt::Display for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allow: Vec<String> = self.allow.iter().map(ToString::to_string).collect();
        write!(f, "http {} (timeout {}, max_response {})", allow.join(", "), self.timeout, self.max_response)
    }
}

/// `http` goes with the `http` grant: a table without the grant, or the grant without
/// a table listing at least one origin, is a mistake (the plugin could never use one of
/// them), refused rather than warned about.
pub(super) fn validate(plugin: &PluginConfig, origin: &ConfigOrigin) -> Result<(), ConfigError> {
    let name = plugin.name.get_ref();
    let granted = plugin.granted().contains(&Grant::Http);
    match &plugin.http {
        Some(http) if !granted => {
            Err(origin.error_at(http, format!("plugin {name:?} has an http table but is not granted \"http\"")))
        }
        Some(http) if http.get_ref().allow.is_empty() => {
            Err(origin.error_at(http, format!("plugin {name:?}: http.allow lists no origin")))
        }
        None if granted => {
            let grant = plugin.grants.get_ref().iter().find(|g| g.get_ref() == Grant::Http.name());
            let at = grant.map_or(plugin.grants.span(), |g| g.span());
            let message = format!(
                "plugin {name:?} is granted \"http\" but has no http = {{ allow = [...] }} listing where it may connect"
            );
            Err(ConfigError::at(&origin.file, &origin.text, Some(at), message))
        }
        _ => Ok(()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpScheme {
    Http,
    Https,
}

impl HttpScheme {
    pub fn default_port(self) -> u16 {
        match self {
            HttpScheme::Http => 80,
            HttpScheme::Https => 443,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HttpScheme::Http => "http",
            HttpScheme::Https => "https",
        }
    }

    pub fn parse(name: &str) -> Option<HttpScheme> {
        match name.to_ascii_lowercase().as_str() {
            "http" => Some(HttpScheme::Http),
            "https" => Some(HttpScheme::Https),
            _ => None,
        }
    }
}

/// Scheme, host and port. Names are kept in lower case, without a final dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpOrigin {
    pub scheme: HttpScheme,
    pub host: Host,
    pub port: u16,
}

impl HttpOrigin {
    /// The origin of `scheme`, `host` (a name, an IPv4 address or a bracketed IPv6
    /// address) and `port` (the scheme's when `None`); `None` when the host is not one.
    pub fn new(scheme: HttpScheme, host: &str, port: Option<u16>) -> Option<HttpOrigin> {
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => Host::Ip(IpAddr::V6(v6.parse().ok()?)),
            None => match host.parse::<IpAddr>() {
                Ok(IpAddr::V4(v4)) => Host::Ip(IpAddr::V4(v4)),
                Ok(IpAddr::V6(_)) => return None,
                Err(_) => Host::Name(valid_name(host)?),
            },
        };
        Some(HttpOrigin { scheme, host, port: port.unwrap_or(scheme.default_port()) })
    }
}

fn valid_name(host: &str) -> Option<String> {
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
    };
    (name.len() <= 253 && name.split('.').all(label_ok)).then_some(name)
}

impl FromStr for HttpOrigin {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            format!(
                "invalid http origin {text:?}: {why} (expected e.g. \"https://host.example\" or \"http://127.0.0.1:8080\")"
            )
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = HttpScheme::parse(scheme).ok_or_else(|| bad("the scheme must be http or https"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(bad("an origin has no path, query or fragment"));
        }
        if authority.contains('@') {
            return Err(bad("an origin has no user name or password"));
        }
        if authority.contains('*') {
            return Err(bad("there are no wildcards"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| bad("invalid port"))?;
                (host, Some(port))
            }
            _ => (authority, None),
        };
        HttpOrigin::new(scheme, host, port).ok_or_else(|| bad("invalid host"))
    }
}

impl fmt::Display for HttpOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.name(), self.host, self.port)
    }
}

impl<'de> Deserialize<'de> for HttpOrigin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let origin = |s: &str| s.parse::<HttpOrigin>().map(|o| o.to_string());
        assert_eq!(origin("http://127.0.0.1:11333").unwrap(), "http://127.0.0.1:11333");
        assert_eq!(origin("https://Policy.Example.NET").unwrap(), "https://policy.example.net:443");
        assert_eq!(origin("http://policy.example.net./").unwrap(), "http://policy.example.net:80");
        assert_eq!(origin("HTTPS://[::1]:8443").unwrap(), "https://[::1]:8443");
        for bad in [
            "policy.example.net",
            "ftp://policy.example.net",
            "https://policy.example.net/checkv2",
            "https://policy.example.net?x=1",
            "https://*.example.net",
            "https://user@policy.example.net",
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://::1:80",
            "http://",
            "http://bad_name!",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }
}
