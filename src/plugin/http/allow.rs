//! The two checks every request passes before a connection: its origin (scheme, host,
//! port) is listed, and each address its host resolves to is public or listed itself.

use std::net::IpAddr;

use http::Uri;

use crate::config::{Host, HttpOrigin, HttpScheme};
use crate::dns::is_public;

/// The origin a request URI names, as the allow-list spells origins.
pub fn origin_of(uri: &Uri) -> Option<HttpOrigin> {
    let scheme = HttpScheme::parse(uri.scheme_str()?)?;
    HttpOrigin::new(scheme, uri.host()?, uri.port_u16())
}

/// Why a request is refused before any connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// Not an http or https URI with a host.
    NoOrigin,
    /// The origin is not in the list.
    Unlisted(HttpOrigin),
    /// Every address the name resolved to is inside the network and not listed.
    Inside(HttpOrigin, Vec<IpAddr>),
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::NoOrigin => f.write_str("not an http(s) URI with a host"),
            Denied::Unlisted(origin) => write!(f, "{origin} is not in http.allow"),
            Denied::Inside(origin, ips) => {
                let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                write!(f, "{origin} resolves to {}, not public and not in http.allow", ips.join(", "))
            }
        }
    }
}

/// The listed origin a request URI names.
pub fn listed(allow: &[HttpOrigin], uri: &Uri) -> Result<HttpOrigin, Denied> {
    let origin = origin_of(uri).ok_or(Denied::NoOrigin)?;
    if allow.contains(&origin) { Ok(origin) } else { Err(Denied::Unlisted(origin)) }
}

/// The addresses of `origin` it may connect to: public ones, and those the list names
/// with the same scheme and port (`http://127.0.0.1:11333` lets a listed name that
/// resolves to 127.0.0.1 through, on port 11333 only). None is a refusal.
pub fn permitted(allow: &[HttpOrigin], origin: &HttpOrigin, ips: Vec<IpAddr>) -> Result<Vec<IpAddr>, Denied> {
    let listed = |ip: IpAddr| {
        let as_listed = HttpOrigin { scheme: origin.scheme, host: Host::Ip(ip), port: origin.port };
        allow.contains(&as_listed)
    };
    let (ok, refused): (Vec<IpAddr>, Vec<IpAddr>) = ips.into_iter().partition(|&ip| is_public(ip) || listed(ip));
    if ok.is_empty() { Err(Denied::Inside(origin.clone(), refused)) } else { Ok(ok) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(list: &[&str]) -> Vec<HttpOrigin> {
        list.iter().map(|o| o.parse().unwrap()).collect()
    }

    #[test]
    fn scheme_host_and_port_must_all_be_listed() {
        let allow = allow(&["http://127.0.0.1:11333", "https://policy.example.net"]);
        let check = |uri: &str| listed(&allow, &uri.parse().unwrap()).map(|o| o.to_string());
        assert_eq!(check("http://127.0.0.1:11333/checkv2").unwrap(), "http://127.0.0.1:11333");
        assert_eq!(check("https://POLICY.example.net/v1?x=1").unwrap(), "https://policy.example.net:443");
        assert_eq!(check("https://policy.example.net:443/").unwrap(), "https://policy.example.net:443");
        assert!(matches!(check("http://127.0.0.1:11334/"), Err(Denied::Unlisted(_))), "another port");
        assert!(matches!(check("https://127.0.0.1:11333/"), Err(Denied::Unlisted(_))), "another scheme");
        assert!(matches!(check("http://policy.example.net/"), Err(Denied::Unlisted(_))), "port 80");
        assert!(matches!(check("https://evil.example.net/"), Err(Denied::Unlisted(_))));
        assert!(matches!(check("https://policy.example.net.evil.test/"), Err(Denied::Unlisted(_))));
        assert!(matches!(check("ftp://policy.example.net/"), Err(Denied::NoOrigin)));
    }

    #[test]
    fn a_name_may_lead_inside_only_to_a_listed_address() {
        let allow = allow(&["http://svc.test:8080", "http://127.0.0.1:8080", "http://metadata.test"]);
        let origin = |s: &str| s.parse::<HttpOrigin>().unwrap();
        let ips = |list: &[&str]| list.iter().map(|ip| ip.parse().unwrap()).collect::<Vec<IpAddr>>();
        let svc = origin("http://svc.test:8080");
        assert_eq!(permitted(&allow, &svc, ips(&["127.0.0.1"])).unwrap(), ips(&["127.0.0.1"]));
        assert!(permitted(&allow, &svc, ips(&["127.0.0.2"])).is_err());
        assert_eq!(permitted(&allow, &svc, ips(&["10.0.0.1", "192.0.1.7"])).unwrap(), ips(&["192.0.1.7"]));
        let metadata = origin("http://metadata.test");
        for inside in ["169.254.169.254", "fd00:ec2::254", "127.0.0.1", "::1", "fe80::1", "10.1.1.1", "0.0.0.0"] {
            assert!(permitted(&allow, &metadata, ips(&[inside])).is_err(), "{inside}");
        }
        assert!(permitted(&allow, &metadata, ips(&["192.0.1.7"])).is_ok());
    }
}
