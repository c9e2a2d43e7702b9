//! The resolver interface: typed records and the errors a lookup can end in.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::Arc;

/// The record types the server asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    A,
    Aaaa,
    Mx,
    Txt,
    Ptr,
}

impl RecordKind {
    pub const fn name(self) -> &'static str {
        match self {
            RecordKind::A => "A",
            RecordKind::Aaaa => "AAAA",
            RecordKind::Mx => "MX",
            RecordKind::Txt => "TXT",
            RecordKind::Ptr => "PTR",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// Preference and exchange, without the final dot; `""` for a null MX (RFC 7505).
    Mx(u16, String),
    /// The character-strings of one TXT record, joined.
    Txt(String),
    /// The target name, without the final dot.
    Ptr(String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist.
    #[error("no such domain")]
    NotFound,
    /// The name exists, without records of the asked type.
    #[error("no records of that type")]
    NoRecords,
    #[error("DNS timeout")]
    Timeout,
    #[error("DNS failure: {0}")]
    Failed(String),
}

impl DnsError {
    /// NXDOMAIN or NODATA: an answer, not a failure to get one.
    pub fn is_absent(&self) -> bool {
        matches!(self, DnsError::NotFound | DnsError::NoRecords)
    }
}

pub type Lookup<'a> = Pin<Box<dyn Future<Output = Result<Vec<Record>, DnsError>> + Send + 'a>>;

/// Resolves names. Names are absolute, with or without the final dot. An empty answer
/// is `Err(NoRecords)`, never `Ok(vec![])`.
pub trait Resolver: Send + Sync {
    fn lookup<'a>(&'a self, name: &'a str, kind: RecordKind) -> Lookup<'a>;

    /// The hickory resolver answering as this one does, for the mail-authentication
    /// checks (mail-auth speaks hickory itself): the same servers, cache and timeouts.
    /// `None` when there is none to be had.
    fn hickory(&self) -> Option<hickory_resolver::TokioResolver>;
}

/// The resolver a configuration runs with, shared by every user.
pub type SharedResolver = Arc<dyn Resolver>;

/// The addresses of a host: its A records, or its AAAA records when it has no A.
pub async fn lookup_ip(resolver: &dyn Resolver, name: &str) -> Result<Vec<IpAddr>, DnsError> {
    let ips = |records: Vec<Record>| -> Vec<IpAddr> {
        records
            .into_iter()
            .filter_map(|r| match r {
                Record::A(ip) => Some(IpAddr::V4(ip)),
                Record::Aaaa(ip) => Some(IpAddr::V6(ip)),
                _ => None,
            })
            .collect()
    };
    match resolver.lookup(name, RecordKind::A).await {
        Ok(records) if !records.is_empty() => Ok(ips(records)),
        Ok(_) | Err(DnsError::NoRecords) => resolver.lookup(name, RecordKind::Aaaa).await.map(ips),
        Err(error) => Err(error),
    }
}

/// The name a PTR lookup for `ip` asks for (RFC 1035 §3.5, RFC 3596 §2.5).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(ip) => {
            let mut name = String::with_capacity(72);
            for byte in ip.octets().iter().rev() {
                name.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
                name.push('.');
                name.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
                name.push('.');
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("192.0.2.1".parse().unwrap()), "1.2.0.192.in-addr.arpa");
        assert_eq!(
            reverse_name("2001:db8::bad".parse().unwrap()),
            "d.a.b.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
