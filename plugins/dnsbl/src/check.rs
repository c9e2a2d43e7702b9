//! Looking a client up in the configured zones, with bounded effort: every lookup of one
//! call shares its wall time, so querying stops once the threshold is reached or after
//! `max_timeouts` timeouts, and TXT reasons are read only for a rejection.

use std::net::{IpAddr, Ipv4Addr};

use sluice_plugin::dns::{Dns, DnsError};

use crate::config::{Config, Zone};
use crate::query::{classify, query_name};

/// Weights are summed as floats: 0.7 + 0.2 + 0.1 must reach 1.0.
const EPSILON: f64 = 1e-9;

#[derive(Clone, Debug, PartialEq)]
pub enum ZoneState {
    Listed {
        codes: Vec<Ipv4Addr>,
        reason: Option<String>,
    },
    Clean,
    /// The resolver did not answer in time: treated as not listed.
    TimedOut,
    /// The lookup failed otherwise (SERVFAIL, refused, ...): treated as not listed.
    Failed(String),
    /// Not queried, and why.
    Skipped(&'static str),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ZoneResult<'a> {
    pub zone: &'a Zone,
    pub state: ZoneState,
    /// Answers that were not listing codes (see `query::Classified::ignored`).
    pub ignored: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report<'a> {
    pub ip: IpAddr,
    pub results: Vec<ZoneResult<'a>>,
    /// The summed weight of the zones that list the client.
    pub total: f64,
    /// Whether `total` reached the threshold.
    pub reached: bool,
}

impl Report<'_> {
    pub fn listed(&self) -> impl Iterator<Item = &ZoneResult<'_>> {
        self.results.iter().filter(|r| matches!(r.state, ZoneState::Listed { .. }))
    }

    pub fn failed(&self) -> impl Iterator<Item = (&ZoneResult<'_>, &str)> {
        self.results.iter().filter_map(|r| match &r.state {
            ZoneState::TimedOut => Some((r, "timeout")),
            ZoneState::Failed(why) => Some((r, why.as_str())),
            _ => None,
        })
    }
}

pub fn check<'a>(ip: IpAddr, config: &'a Config, dns: &mut impl Dns) -> Report<'a> {
    let mut results = Vec::with_capacity(config.zones.len());
    let mut total = 0.0;
    let mut timeouts = 0u32;
    for zone in &config.zones {
        let (state, ignored) = if total + EPSILON >= config.threshold {
            (ZoneState::Skipped("threshold already reached"), Vec::new())
        } else if config.max_timeouts > 0 && timeouts >= config.max_timeouts {
            (ZoneState::Skipped("earlier lookups timed out"), Vec::new())
        } else {
            lookup(ip, zone, dns)
        };
        match &state {
            ZoneState::Listed { .. } => total += zone.weight,
            ZoneState::TimedOut => timeouts += 1,
            _ => {}
        }
        results.push(ZoneResult { zone, state, ignored });
    }
    let reached = total > 0.0 && total + EPSILON >= config.threshold;
    if reached {
        read_reasons(ip, &mut results, dns);
    }
    Report { ip, results, total, reached }
}

/// One zone's A lookup: its state and the answers that did not count.
fn lookup(ip: IpAddr, zone: &Zone, dns: &mut impl Dns) -> (ZoneState, Vec<String>) {
    match dns.a(&query_name(ip, &zone.name)) {
        Ok(answers) => {
            let classified = classify(&answers, &zone.return_codes);
            let state = if classified.is_listed() {
                ZoneState::Listed { codes: classified.listed, reason: None }
            } else {
                ZoneState::Clean
            };
            (state, classified.ignored)
        }
        Err(DnsError::NotFound | DnsError::NoRecords) => (ZoneState::Clean, Vec::new()),
        Err(DnsError::Timeout) => (ZoneState::TimedOut, Vec::new()),
        Err(DnsError::Failed(why)) => (ZoneState::Failed(why), Vec::new()),
    }
}

/// Reads the TXT record of each listing zone that asks for it; a failure only means no
/// reason is shown.
fn read_reasons(ip: IpAddr, results: &mut [ZoneResult<'_>], dns: &mut impl Dns) {
    for result in results.iter_mut().filter(|r| r.zone.txt) {
        if let ZoneState::Listed { reason, .. } = &mut result.state {
            *reason = dns
                .txt(&query_name(ip, &result.zone.name))
                .ok()
                .and_then(|records| records.into_iter().map(|r| r.trim().to_string()).find(|r| !r.is_empty()));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use sluice_plugin::config::Value;
    use sluice_plugin::testing::{FakeDns, list, table, text};

    use super::*;

    pub fn zones_config(zones: &[Value], extra: &[(&str, Value)]) -> Config {
        let mut entries = vec![("zones", list(zones))];
        entries.extend(extra.iter().cloned());
        Config::from_value(&table(&entries)).0
    }

    fn weighted(zone: &str, weight: f64) -> Value {
        table(&[("zone", text(zone)), ("weight", Value::Float(weight))])
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_listing_zone_reaches_the_default_threshold() {
        let config = zones_config(&[text("zen.example.test"), text("other.example.test")], &[]);
        let mut dns = FakeDns::default().with("A", "1.2.0.192.zen.example.test", &["127.0.0.2"]);
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        assert!(report.reached);
        assert_eq!(report.total, 1.0);
        assert_eq!(report.listed().count(), 1);
        assert_eq!(report.results[1].state, ZoneState::Skipped("threshold already reached"));
        assert_eq!(dns.queries, ["A 1.2.0.192.zen.example.test"], "no more lookups once decided");
    }

    #[test]
    fn weights_add_up_to_the_threshold() {
        let config = zones_config(
            &[weighted("a.example.test", 0.7), weighted("b.example.test", 0.2), weighted("c.example.test", 0.1)],
            &[],
        );
        let mut dns = FakeDns::default().with("A", "1.2.0.192.a.example.test", &["127.0.0.2"]).with(
            "A",
            "1.2.0.192.b.example.test",
            &["127.0.0.3"],
        );
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        assert!(!report.reached, "0.9 is below 1.0");
        assert!((report.total - 0.9).abs() < 1e-9);
        assert_eq!(report.results[2].state, ZoneState::Clean);
        let mut dns = dns.with("A", "1.2.0.192.c.example.test", &["127.0.0.4"]);
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        assert!(report.reached, "0.7 + 0.2 + 0.1 reaches 1.0 despite float rounding");
    }

    #[test]
    fn zero_weight_only_tags() {
        let config = zones_config(&[weighted("info.example.test", 0.0)], &[]);
        let mut dns = FakeDns::default().with("A", "1.2.0.192.info.example.test", &["127.0.0.2"]);
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        assert!(!report.reached);
        assert_eq!(report.listed().count(), 1);
    }

    #[test]
    fn return_codes_filter_answers() {
        let zone = table(&[("zone", text("zen.example.test")), ("return_codes", list(&[text("127.0.0.4")]))]);
        let config = zones_config(&[zone], &[]);
        let mut dns = FakeDns::default().with("A", "1.2.0.192.zen.example.test", &["127.0.0.10"]);
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        assert!(!report.reached);
        assert_eq!(report.results[0].state, ZoneState::Clean);
        assert_eq!(report.results[0].ignored, ["127.0.0.10"]);
    }

    #[test]
    fn failures_are_not_listings_and_timeouts_stop_the_lookups() {
        let config = zones_config(&[text("a.example.test"), text("b.example.test"), text("c.example.test")], &[]);
        let mut dns = FakeDns::default()
            .failing("A", "1.2.0.192.a.example.test", DnsError::Failed("SERVFAIL".into()))
            .failing("A", "1.2.0.192.b.example.test", DnsError::Timeout)
            .with("A", "1.2.0.192.c.example.test", &["127.0.0.2"]);
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        assert!(!report.reached);
        assert_eq!(report.failed().count(), 2);
        assert_eq!(report.results[2].state, ZoneState::Skipped("earlier lookups timed out"));
        assert_eq!(dns.queries.len(), 2);

        // max_timeouts = 0: keep going.
        let config = zones_config(
            &[text("a.example.test"), text("b.example.test"), text("c.example.test")],
            &[("max_timeouts", Value::Integer(0))],
        );
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        assert!(report.reached);
    }

    #[test]
    fn reasons_come_from_txt_only_when_rejecting() {
        let zone = table(&[("zone", text("zen.example.test")), ("txt", Value::Boolean(true))]);
        let config = zones_config(&[zone], &[]);
        let mut dns = FakeDns::default().with("A", "1.2.0.192.zen.example.test", &["127.0.0.2"]).with(
            "TXT",
            "1.2.0.192.zen.example.test",
            &["  Listed for spam, see https://zen.example.test/q?192.0.2.1 "],
        );
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        assert_eq!(
            report.results[0].state,
            ZoneState::Listed {
                codes: vec![Ipv4Addr::new(127, 0, 0, 2)],
                reason: Some("Listed for spam, see https://zen.example.test/q?192.0.2.1".into())
            }
        );
        // Below the threshold: no TXT lookup.
        let zone =
            table(&[("zone", text("zen.example.test")), ("txt", Value::Boolean(true)), ("weight", Value::Float(0.5))]);
        let config = zones_config(&[zone], &[]);
        dns.queries.clear();
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        assert!(!report.reached);
        assert_eq!(dns.queries, ["A 1.2.0.192.zen.example.test"]);
    }

    #[test]
    fn ipv6_clients_use_nibbles() {
        let config = zones_config(&[text("zen.example.test")], &[]);
        let name = format!("{}.zen.example.test", crate::query::reverse_name(ip("2001:db8::25")));
        let mut dns = FakeDns::default().with("A", &name, &["127.0.0.3"]);
        assert!(check(ip("2001:db8::25"), &config, &mut dns).reached);
    }
}
