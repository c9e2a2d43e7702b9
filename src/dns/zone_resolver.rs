//! A resolver answering from a records file ([`super::Zone`]) without any network.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use hickory_resolver::TokioResolver;

use super::hickory::HickoryResolver;
use super::resolver::{DnsError, Lookup, Record, RecordKind, Resolver};
use super::zone::{Zone, ZoneAnswer, normalize};
use super::zone_server::ZoneServer;
use crate::config::{DnsConfig, TimeSpan};

/// A resolver that answers from a zone without any network. A dropped name answers
/// `Timeout` at once: what a real lookup would end in, without the wait. Like the real
/// resolver, it answers `localhost` and the loopback addresses' reverse names itself
/// (RFC 6761 §6.3), whatever the zone says.
///
/// mail-auth asks hickory itself, so for it the zone is served on a loopback UDP port
/// (started on first use) with a hickory resolver pointed there: the checks then meet
/// real NXDOMAIN, NODATA, SERVFAIL and timeouts (a dropped name waits out the timeout)
/// exactly as against the suite's DNS server.
pub struct ZoneResolver {
    zone: Zone,
    served: OnceLock<Option<(ZoneServer, TokioResolver)>>,
}

/// How long the mail-authentication checks wait for a dropped name.
const SERVED_TIMEOUT: TimeSpan = TimeSpan::secs(1);

impl ZoneResolver {
    pub fn new(zone: Zone) -> ZoneResolver {
        ZoneResolver { zone, served: OnceLock::new() }
    }

    fn serve(&self) -> Option<(ZoneServer, TokioResolver)> {
        let server = ZoneServer::start(self.zone.clone())
            .map_err(|error| tracing::warn!(%error, "cannot serve the records file on loopback"))
            .ok()?;
        let config =
            DnsConfig { servers: vec![server.addr], timeout: SERVED_TIMEOUT, attempts: 1, ..DnsConfig::default() };
        let resolver = HickoryResolver::new(&config).ok()?.hickory()?;
        Some((server, resolver))
    }
}

/// RFC 6761 §6.3 names, answered without asking anyone.
fn special_use(name: &str, kind: RecordKind) -> Option<Vec<Record>> {
    const IPV6_LOOPBACK: &str = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa";
    let name = normalize(name);
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(match kind {
            RecordKind::A => vec![Record::A(Ipv4Addr::LOCALHOST)],
            RecordKind::Aaaa => vec![Record::Aaaa(Ipv6Addr::LOCALHOST)],
            _ => Vec::new(),
        });
    }
    if name == "1.0.0.127.in-addr.arpa" || name == IPV6_LOOPBACK {
        return Some(if kind == RecordKind::Ptr { vec![Record::Ptr("localhost".into())] } else { Vec::new() });
    }
    None
}

impl Resolver for ZoneResolver {
    fn hickory(&self) -> Option<TokioResolver> {
        self.served.get_or_init(|| self.serve()).as_ref().map(|(_, resolver)| resolver.clone())
    }

    fn lookup<'a>(&'a self, name: &'a str, kind: RecordKind) -> Lookup<'a> {
        let answer = special_use(name, kind).map_or_else(|| self.zone.answer(name, kind), ZoneAnswer::Records);
        let result = match answer {
            ZoneAnswer::Records(records) if records.is_empty() => Err(DnsError::NoRecords),
            ZoneAnswer::Records(records) => Ok(records),
            ZoneAnswer::NxDomain => Err(DnsError::NotFound),
            ZoneAnswer::ServFail => Err(DnsError::Failed("SERVFAIL".into())),
            ZoneAnswer::Drop => Err(DnsError::Timeout),
        };
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDS: &str = "
        example.org        MX        10 mail.example.org
        mail.example.org   AAAA      2001:db8::25
        slow.example.test  DROP
        broken.example.test SERVFAIL
    ";

    #[tokio::test]
    async fn the_zone_resolver_maps_answers_to_errors() {
        let resolver = ZoneResolver::new(Zone::parse(RECORDS).unwrap());
        assert_eq!(resolver.lookup("example.org", RecordKind::A).await, Err(DnsError::NoRecords));
        assert_eq!(resolver.lookup("nowhere.test", RecordKind::A).await, Err(DnsError::NotFound));
        assert_eq!(resolver.lookup("slow.example.test", RecordKind::A).await, Err(DnsError::Timeout));
        assert!(matches!(resolver.lookup("broken.example.test", RecordKind::A).await, Err(DnsError::Failed(_))));
        let ptr = super::super::resolver::reverse_name("127.0.0.1".parse().unwrap());
        assert_eq!(resolver.lookup(&ptr, RecordKind::Ptr).await, Ok(vec![Record::Ptr("localhost".into())]));
        let ips = super::super::resolver::lookup_ip(&resolver, "mail.example.org").await.unwrap();
        assert_eq!(ips, vec!["2001:db8::25".parse::<std::net::IpAddr>().unwrap()]);
    }
}
