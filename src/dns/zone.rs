//! Records files: DNS answers written down, one record a line. The offline plugin
//! runner answers from one in memory (`sluice plugin test --dns FILE`), and the test
//! suite's loopback DNS server serves the same files over UDP, so a fixture gets the
//! same answers either way.
//!
//! ```text
//! # NAME                       TYPE      VALUE
//! 1.2.0.192.zen.example.test   A         127.0.0.2
//! 1.2.0.192.zen.example.test   TXT       Listed for spam; see https://zen.example.test/
//! 1.2.0.192.in-addr.arpa       PTR       mail.example.org
//! mail.example.org             AAAA      2001:db8::25
//! example.org                  MX        10 mail.example.org
//! nomail.example.org           MX        0 .
//! slow.example.test            DROP      # never answered: the lookup times out
//! broken.example.test          SERVFAIL  # answered with SERVFAIL
//! ```
//!
//! Types: A, AAAA, TXT, PTR, MX (`PREFERENCE EXCHANGE`), and DROP and SERVFAIL, which
//! apply to the name and every name under it. A name with records, but none of the
//! asked type, has no records (NODATA); an unknown name does not exist (NXDOMAIN).
//! Names are case-insensitive; a final dot is optional. `#` starts a comment at the
//! start of a line or after white space.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::OnceLock;

use hickory_resolver::TokioResolver;

use super::hickory::HickoryResolver;
use super::resolver::{DnsError, Lookup, Record, RecordKind, Resolver};
use super::zone_server::ZoneServer;
use crate::config::{DnsConfig, TimeSpan};

#[derive(Clone, Debug, Default)]
pub struct Zone {
    records: HashMap<String, Vec<(RecordKind, Record)>>,
    /// Names (and everything under them) that are dropped or fail.
    faults: Vec<(String, Fault)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Drop,
    ServFail,
}

/// What the zone says to one question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoneAnswer {
    /// NOERROR; empty for NODATA.
    Records(Vec<Record>),
    NxDomain,
    ServFail,
    /// No answer at all.
    Drop,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct ZoneError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

impl Zone {
    pub fn load(path: &Path) -> Result<Zone, ZoneError> {
        let text = std::fs::read_to_string(path).map_err(|e| ZoneError {
            path: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        Zone::parse(&text).map_err(|(line, message)| ZoneError { path: path.display().to_string(), line, message })
    }

    /// Parses a records file; an error names the line (1-based) and what is wrong.
    pub fn parse(text: &str) -> Result<Zone, (usize, String)> {
        let mut zone = Zone::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            // A comment is a line, or the end of one, from a `#` after white space.
            let line = line.find(" #").or_else(|| line.find("\t#")).map_or(line, |at| &line[..at]).trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| (number + 1, format!("{what} in {line:?}"));
            let (name, rest) = line.split_once(char::is_whitespace).ok_or_else(|| bad("expected NAME TYPE VALUE"))?;
            let rest = rest.trim_start();
            let (kind, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let (name, kind, value) = (normalize(name), kind.to_ascii_uppercase(), value.trim());
            let record = match kind.as_str() {
                "DROP" | "SERVFAIL" => {
                    zone.faults.push((name, if kind == "DROP" { Fault::Drop } else { Fault::ServFail }));
                    continue;
                }
                "A" => Record::A(value.parse::<Ipv4Addr>().map_err(|_| bad("bad IPv4 address"))?),
                "AAAA" => Record::Aaaa(value.parse::<Ipv6Addr>().map_err(|_| bad("bad IPv6 address"))?),
                "TXT" => Record::Txt(value.to_string()),
                "PTR" => Record::Ptr(normalize(value)),
                "MX" => {
                    let (preference, exchange) =
                        value.split_once(char::is_whitespace).ok_or_else(|| bad("expected MX PREFERENCE EXCHANGE"))?;
                    let preference = preference.parse().map_err(|_| bad("bad MX preference"))?;
                    Record::Mx(preference, normalize(exchange.trim()))
                }
                _ => return Err(bad("unknown record type")),
            };
            zone.records.entry(name).or_default().push((kind_of(&record), record));
        }
        Ok(zone)
    }

    pub fn answer(&self, name: &str, kind: RecordKind) -> ZoneAnswer {
        let name = normalize(name);
        let covers = |zone_name: &str| {
            name == zone_name
                || (name.len() > zone_name.len()
                    && name.ends_with(zone_name)
                    && name.as_bytes()[name.len() - zone_name.len() - 1] == b'.')
        };
        if let Some((_, fault)) = self.faults.iter().find(|(n, _)| covers(n)) {
            return match fault {
                Fault::Drop => ZoneAnswer::Drop,
                Fault::ServFail => ZoneAnswer::ServFail,
            };
        }
        match self.records.get(&name) {
            None => ZoneAnswer::NxDomain,
            Some(records) => {
                ZoneAnswer::Records(records.iter().filter(|(k, _)| *k == kind).map(|(_, r)| r.clone()).collect())
            }
        }
    }
}

fn normalize(name: &str) -> String {
    let name = name.trim();
    // The root stays itself: a null MX's exchange is ".".
    if name == "." { String::new() } else { name.trim_end_matches('.').to_ascii_lowercase() }
}

fn kind_of(record: &Record) -> RecordKind {
    match record {
        Record::A(_) => RecordKind::A,
        Record::Aaaa(_) => RecordKind::Aaaa,
        Record::Mx(..) => RecordKind::Mx,
        Record::Txt(_) => RecordKind::Txt,
        Record::Ptr(_) => RecordKind::Ptr,
    }
}

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
        # comment
        1.2.0.192.zen.example.test   A     127.0.0.2
        1.2.0.192.zen.example.test   TXT   Listed for spam; see https://zen.example.test/
        Example.ORG.                 MX    10 Mail.Example.org.
        nomail.example.org           MX    0 .
        mail.example.org             AAAA  2001:db8::25   # trailing comment
        slow.example.test            DROP
        broken.example.test          SERVFAIL
    ";

    #[test]
    fn answers_like_the_loopback_server() {
        let zone = Zone::parse(RECORDS).unwrap();
        assert_eq!(
            zone.answer("1.2.0.192.zen.example.test.", RecordKind::A),
            ZoneAnswer::Records(vec![Record::A(Ipv4Addr::new(127, 0, 0, 2))])
        );
        assert_eq!(
            zone.answer("1.2.0.192.zen.example.test", RecordKind::Txt),
            ZoneAnswer::Records(vec![Record::Txt("Listed for spam; see https://zen.example.test/".into())])
        );
        assert_eq!(
            zone.answer("EXAMPLE.org", RecordKind::Mx),
            ZoneAnswer::Records(vec![Record::Mx(10, "mail.example.org".into())])
        );
        assert_eq!(
            zone.answer("nomail.example.org", RecordKind::Mx),
            ZoneAnswer::Records(vec![Record::Mx(0, "".into())])
        );
        assert_eq!(zone.answer("example.org", RecordKind::A), ZoneAnswer::Records(vec![]));
        assert_eq!(zone.answer("unknown.example.org", RecordKind::A), ZoneAnswer::NxDomain);
        assert_eq!(zone.answer("a.b.slow.example.test", RecordKind::A), ZoneAnswer::Drop);
        assert_eq!(zone.answer("broken.example.test", RecordKind::Mx), ZoneAnswer::ServFail);
        assert_eq!(zone.answer("notbroken.example.test", RecordKind::Mx), ZoneAnswer::NxDomain);
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(Zone::parse("\nx.test A 300.0.0.1\n").unwrap_err().0, 2);
        assert!(Zone::parse("x.test").is_err());
        assert!(Zone::parse("x.test SRV 1 2 3").is_err());
        assert!(Zone::parse("x.test MX mail").is_err());
    }

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
