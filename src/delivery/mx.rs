//! From a destination to the hosts to try, in order (RFC 5321 §5.1): MX records by
//! preference with equal preferences shuffled, the domain itself when it has no MX,
//! nothing at all for a null MX (RFC 7505). Addresses are looked up host by host, only
//! when a host's turn comes.

use std::net::{IpAddr, SocketAddr};

use rand::seq::SliceRandom;

use super::outcome::Problem;
use super::routing::{Destination, Hosts};
use crate::config::Host;
use crate::dns::{DnsError, Record, RecordKind, Resolver, lookup_ip};
use crate::wire::Status;

/// One host to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedHost {
    pub host: Host,
    pub port: u16,
    /// The domain's own address records stand in for a missing MX: finding none is a
    /// permanent failure, not a bad MX host among others.
    pub implicit_mx: bool,
}

impl PlannedHost {
    pub fn name(&self) -> String {
        match &self.host {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(name) => name.clone(),
        }
    }
}

/// The hosts of `destination`, in the order to try them.
pub async fn plan(resolver: &dyn Resolver, destination: &Destination) -> Result<Vec<PlannedHost>, Problem> {
    match &destination.hosts {
        Hosts::Fixed(hops) => Ok(hops
            .iter()
            .map(|hop| PlannedHost {
                host: hop.host.clone(),
                port: hop.port.unwrap_or(destination.port),
                implicit_mx: false,
            })
            .collect()),
        Hosts::Mx(domain) => mx_hosts(resolver, domain, destination.port).await,
    }
}

async fn mx_hosts(resolver: &dyn Resolver, domain: &str, port: u16) -> Result<Vec<PlannedHost>, Problem> {
    // A domain literal names the host directly (RFC 5321 §5.1).
    if let Some(ip) = crate::mail::address::parse_address_literal(domain) {
        return Ok(vec![PlannedHost { host: Host::Ip(ip), port, implicit_mx: false }]);
    }
    let mut records: Vec<(u16, String)> = match resolver.lookup(domain, RecordKind::Mx).await {
        Ok(records) => records
            .into_iter()
            .filter_map(|record| match record {
                Record::Mx(preference, exchange) => Some((preference, exchange)),
                _ => None,
            })
            .collect(),
        Err(DnsError::NotFound) => {
            return Err(Problem::permanent(Status(5, 1, 2), format!("domain {domain} does not exist")));
        }
        Err(DnsError::NoRecords) => Vec::new(),
        Err(e) => return Err(Problem::temporary(Status(4, 4, 3), format!("MX lookup for {domain} failed: {e}"))),
    };
    if records.is_empty() {
        return Ok(vec![PlannedHost { host: Host::Name(domain.to_string()), port, implicit_mx: true }]);
    }
    let is_null = |name: &str| name.is_empty() || name == ".";
    if records.iter().all(|(_, name)| is_null(name)) {
        return Err(Problem::permanent(Status(5, 1, 10), format!("{domain} does not accept mail (null MX, RFC 7505)")));
    }
    records.retain(|(_, name)| !is_null(name));
    Ok(order(records).into_iter().map(|name| PlannedHost { host: host_of(&name), port, implicit_mx: false }).collect())
}

/// Sorts by preference and shuffles each run of equal preference, so that load
/// spreads over equal hosts as their owner intended.
fn order(mut records: Vec<(u16, String)>) -> Vec<String> {
    records.sort_by_key(|(preference, _)| *preference);
    let mut rng = rand::rng();
    let mut start = 0;
    while start < records.len() {
        let preference = records[start].0;
        let end = records[start..].iter().position(|(p, _)| *p != preference).map_or(records.len(), |n| start + n);
        records[start..end].shuffle(&mut rng);
        start = end;
    }
    let mut names: Vec<String> = Vec::with_capacity(records.len());
    for (_, name) in records {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn host_of(name: &str) -> Host {
    let name = name.trim_end_matches('.');
    match name.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(name.to_ascii_lowercase()),
    }
}

/// The addresses of one planned host.
pub async fn addresses(resolver: &dyn Resolver, planned: &PlannedHost) -> Result<Vec<SocketAddr>, Problem> {
    let name = match &planned.host {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, planned.port)]),
        Host::Name(name) => name,
    };
    match lookup_ip(resolver, name).await {
        Ok(ips) => {
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, planned.port)).collect();
            if addrs.is_empty() {
                Err(Problem::temporary(Status(4, 4, 4), format!("no address for {name}")))
            } else {
                Ok(addrs)
            }
        }
        Err(e) if planned.implicit_mx && e.is_absent() => {
            Err(Problem::permanent(Status(5, 4, 4), format!("{name} has no MX and no address records")))
        }
        Err(e) if e.is_absent() => Err(Problem::temporary(Status(4, 4, 4), format!("no address for {name}"))),
        Err(e) => Err(Problem::temporary(Status(4, 4, 3), format!("address lookup for {name} failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_order_by_preference_with_equal_ones_shuffled() {
        let records =
            vec![(20, "c".to_string()), (10, "a".into()), (10, "b".into()), (30, "d".into()), (10, "a".into())];
        let mut seen_first = std::collections::HashSet::new();
        for _ in 0..200 {
            let names = order(records.clone());
            assert_eq!(names.len(), 4, "duplicates removed");
            assert_eq!(&names[2..], ["c", "d"]);
            assert!(names[..2].contains(&"a".to_string()) && names[..2].contains(&"b".to_string()));
            seen_first.insert(names[0].clone());
        }
        assert_eq!(seen_first.len(), 2, "equal preferences are shuffled");
    }
}
