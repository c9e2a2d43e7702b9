//! The checks themselves, on plain data and a [`Dns`] to ask: the first one that fails
//! decides.

use std::net::IpAddr;

use filter_util::domain;
use sluice_plugin::dns::Dns;

use crate::config::{Check, Config};
use crate::form::{HeloForm, classify};

/// PTR names tried for forward confirmation; a client with more is not worth more
/// lookups (they all share one call's wall time).
pub const MAX_PTR_NAMES: usize = 5;

/// What the checks need to know about the session.
#[derive(Clone, Copy, Debug)]
pub struct Client<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    pub server_hostname: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Every enabled check passed; with `fcrdns`, the name that was confirmed.
    Pass { verified_name: Option<String> },
    /// A check failed.
    Fail { check: Check, detail: String },
    /// A check could not be completed because DNS did not answer.
    DnsError { check: Check, detail: String },
}

pub fn evaluate(client: &Client<'_>, config: &Config, dns: &mut impl Dns) -> Finding {
    let form = classify(client.helo);
    let fail = |check: Check, detail: String| Finding::Fail { check, detail };

    if config.enabled(Check::Syntax) && form == HeloForm::Invalid {
        return fail(Check::Syntax, format!("{:?} is neither a FQDN nor an address literal", client.helo));
    }

    // Our own host may greet with our name: only others are refused for it.
    let client_is_us = config.local_ips.contains(&client.ip);
    if config.enabled(Check::OwnName) && !client_is_us {
        let ours = match &form {
            HeloForm::Literal(ip) => config.local_ips.contains(ip),
            HeloForm::Name(_) | HeloForm::Invalid => {
                let name = domain::normalize(client.helo);
                name == domain::normalize(client.server_hostname) || config.local_names.contains(&name)
            }
        };
        if ours {
            return fail(Check::OwnName, format!("{:?} is one of our own names or addresses", client.helo));
        }
    }

    if config.enabled(Check::Literal)
        && let HeloForm::Literal(ip) = form
        && ip != client.ip
    {
        return fail(Check::Literal, format!("literal [{ip}] is not the client address {}", client.ip));
    }

    if config.enabled(Check::HeloResolves)
        && let HeloForm::Name(name) = &form
        && let Some(finding) = helo_resolves(name, dns)
    {
        return finding;
    }

    let mut verified_name = None;
    if config.enabled(Check::Fcrdns) {
        match fcrdns(client.ip, dns) {
            Ok(name) => verified_name = Some(name),
            Err(finding) => return finding,
        }
    }
    Finding::Pass { verified_name }
}

/// `None` if the name has an A or AAAA record.
fn helo_resolves(name: &str, dns: &mut impl Dns) -> Option<Finding> {
    let a = dns.a(name);
    if a.as_ref().is_ok_and(|addrs| !addrs.is_empty()) {
        return None;
    }
    let aaaa = dns.aaaa(name);
    if aaaa.as_ref().is_ok_and(|addrs| !addrs.is_empty()) {
        return None;
    }
    // Neither has an address: a refusal only if both answers say so.
    for result in [&a, &aaaa] {
        if let Err(e) = result
            && !e.is_negative()
        {
            return Some(Finding::DnsError { check: Check::HeloResolves, detail: format!("looking up {name}: {e}") });
        }
    }
    Some(Finding::Fail { check: Check::HeloResolves, detail: format!("{name} has no A or AAAA record") })
}

/// Forward-confirmed reverse DNS: a PTR name of the client whose A (or AAAA) records
/// include the client's address. Returns that name.
pub fn fcrdns(ip: IpAddr, dns: &mut impl Dns) -> Result<String, Finding> {
    let dns_error = |detail: String| Finding::DnsError { check: Check::Fcrdns, detail };
    let fail = |detail: String| Finding::Fail { check: Check::Fcrdns, detail };
    let names = match dns.ptr(&ip.to_string()) {
        Ok(names) if !names.is_empty() => names,
        Ok(_) => return Err(fail(format!("{ip} has no PTR record"))),
        Err(e) if e.is_negative() => return Err(fail(format!("{ip} has no PTR record"))),
        Err(e) => return Err(dns_error(format!("PTR of {ip}: {e}"))),
    };
    let mut temporary = None;
    for name in names.iter().take(MAX_PTR_NAMES) {
        let name = domain::normalize(name);
        let forward = if ip.is_ipv4() { dns.a(&name) } else { dns.aaaa(&name) };
        match forward {
            Ok(addrs) => {
                if addrs.iter().filter_map(|a| a.parse::<IpAddr>().ok()).any(|a| a.to_canonical() == ip) {
                    return Ok(name);
                }
            }
            Err(e) if e.is_negative() => {}
            Err(e) => temporary = Some(format!("{name}: {e}")),
        }
    }
    match temporary {
        Some(detail) => Err(dns_error(detail)),
        None => Err(fail(format!("no PTR name of {ip} ({}) resolves back to it", names.join(", ")))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use sluice_plugin::config::Value;
    use sluice_plugin::dns::DnsError;
    use sluice_plugin::testing::{FakeDns, strings, table};

    use super::*;

    fn config(entries: &[(&str, Value)]) -> Config {
        Config::from_value(&table(entries)).0
    }

    fn run(helo: &str, ip: &str, config: &Config, dns: &mut FakeDns) -> Finding {
        let client = Client { ip: ip.parse().unwrap(), helo, server_hostname: "mx.example.com" };
        evaluate(&client, config, dns)
    }

    fn failed_check(finding: &Finding) -> Option<Check> {
        match finding {
            Finding::Fail { check, .. } => Some(*check),
            _ => None,
        }
    }

    fn pass() -> Finding {
        Finding::Pass { verified_name: None }
    }

    #[test]
    fn syntax() {
        let config = config(&[]);
        let mut dns = FakeDns::default();
        assert_eq!(run("mail.example.org", "192.0.2.1", &config, &mut dns), pass());
        assert_eq!(run("[192.0.2.1]", "192.0.2.1", &config, &mut dns), pass());
        assert_eq!(run("[IPv6:2001:db8::7]", "2001:db8::7", &config, &mut dns), pass());
        for bad in ["localhost", "WIN-PC", "192.0.2.1", "[192.0.2.999]", "[2001:db8::7]"] {
            assert_eq!(failed_check(&run(bad, "192.0.2.1", &config, &mut dns)), Some(Check::Syntax), "{bad}");
        }
        assert_eq!(dns.queries.len(), 0, "no DNS unless asked for");
    }

    #[test]
    fn own_names_and_addresses() {
        let config =
            config(&[("local_names", strings(&["mail.example.com"])), ("local_ips", strings(&["192.0.2.25"]))]);
        let mut dns = FakeDns::default();
        assert_eq!(failed_check(&run("MX.example.com", "198.51.100.1", &config, &mut dns)), Some(Check::OwnName));
        assert_eq!(failed_check(&run("mx.example.com.", "198.51.100.1", &config, &mut dns)), Some(Check::OwnName));
        assert_eq!(failed_check(&run("mail.example.com", "198.51.100.1", &config, &mut dns)), Some(Check::OwnName));
        assert_eq!(failed_check(&run("[192.0.2.25]", "198.51.100.1", &config, &mut dns)), Some(Check::OwnName));
        assert_eq!(run("mx.example.com", "192.0.2.25", &config, &mut dns), pass(), "our own address may");
        assert_eq!(run("other.example.com", "198.51.100.1", &config, &mut dns), pass());
    }

    #[test]
    fn literals_must_match_the_client() {
        let config = config(&[]);
        let mut dns = FakeDns::default();
        assert_eq!(failed_check(&run("[192.0.2.2]", "192.0.2.1", &config, &mut dns)), Some(Check::Literal));
        assert_eq!(failed_check(&run("[IPv6:2001:db8::8]", "2001:db8::7", &config, &mut dns)), Some(Check::Literal));
        assert_eq!(run("[IPv6:2001:DB8:0::7]", "2001:db8::7", &config, &mut dns), pass(), "compared as addresses");
    }

    #[test]
    fn checks_can_be_switched_off() {
        let config = config(&[
            ("syntax", Value::Boolean(false)),
            ("own_name", Value::Boolean(false)),
            ("literal_match", Value::Boolean(false)),
        ]);
        let mut dns = FakeDns::default();
        assert_eq!(run("localhost", "192.0.2.1", &config, &mut dns), pass());
        assert_eq!(run("mx.example.com", "192.0.2.1", &config, &mut dns), pass());
        assert_eq!(run("[192.0.2.2]", "192.0.2.1", &config, &mut dns), pass());
        // With syntax off, our name in a bare word is still caught by own_name.
        let config = self::config(&[("syntax", Value::Boolean(false)), ("local_names", strings(&["gateway"]))]);
        assert_eq!(failed_check(&run("GATEWAY", "192.0.2.1", &config, &mut dns)), Some(Check::OwnName));
    }

    #[test]
    fn helo_name_must_resolve_when_asked() {
        let config = config(&[("helo_resolves", Value::Boolean(true))]);
        let mut dns = FakeDns::default()
            .with("A", "mail.example.org", &["198.51.100.7"])
            .with("AAAA", "v6only.example.org", &["2001:db8::1"])
            .failing("A", "slow.example.org", DnsError::Timeout);
        assert_eq!(run("mail.example.org", "192.0.2.1", &config, &mut dns), pass());
        assert_eq!(run("v6only.example.org", "192.0.2.1", &config, &mut dns), pass());
        assert_eq!(failed_check(&run("ghost.example.org", "192.0.2.1", &config, &mut dns)), Some(Check::HeloResolves));
        assert!(matches!(
            run("slow.example.org", "192.0.2.1", &config, &mut dns),
            Finding::DnsError { check: Check::HeloResolves, .. }
        ));
        assert_eq!(run("[192.0.2.1]", "192.0.2.1", &config, &mut dns), pass(), "literals are not looked up");
    }

    #[test]
    fn forward_confirmed_reverse_dns() {
        let config = config(&[("fcrdns", Value::Boolean(true))]);
        let mut dns = FakeDns::default()
            .with("PTR", "192.0.2.1", &["stale.example.org.", "mail.example.org."])
            .with("A", "stale.example.org", &["198.51.100.99"])
            .with("A", "mail.example.org", &["198.51.100.3", "192.0.2.1"])
            .with("PTR", "192.0.2.2", &["liar.example.org."])
            .with("A", "liar.example.org", &["198.51.100.4"])
            .with("PTR", "2001:db8::25", &["mx6.example.org."])
            .with("AAAA", "mx6.example.org", &["2001:db8:0:0::25"])
            .failing("PTR", "192.0.2.3", DnsError::Timeout)
            .with("PTR", "192.0.2.4", &["flaky.example.org."])
            .failing("A", "flaky.example.org", DnsError::Failed("SERVFAIL".into()));
        assert_eq!(
            run("client.example.org", "192.0.2.1", &config, &mut dns),
            Finding::Pass { verified_name: Some("mail.example.org".into()) }
        );
        assert_eq!(failed_check(&run("client.example.org", "192.0.2.2", &config, &mut dns)), Some(Check::Fcrdns));
        assert_eq!(
            failed_check(&run("client.example.org", "192.0.2.9", &config, &mut dns)),
            Some(Check::Fcrdns),
            "no PTR"
        );
        assert_eq!(
            run("client.example.org", "2001:db8::25", &config, &mut dns),
            Finding::Pass { verified_name: Some("mx6.example.org".into()) }
        );
        assert!(matches!(
            run("client.example.org", "192.0.2.3", &config, &mut dns),
            Finding::DnsError { check: Check::Fcrdns, .. }
        ));
        assert!(matches!(
            run("client.example.org", "192.0.2.4", &config, &mut dns),
            Finding::DnsError { check: Check::Fcrdns, .. }
        ));
    }

    #[test]
    fn ptr_names_tried_are_bounded() {
        let names: Vec<String> = (0..20).map(|i| format!("h{i}.example.org.")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut dns = FakeDns::default().with("PTR", "192.0.2.1", &refs);
        assert!(fcrdns("192.0.2.1".parse().unwrap(), &mut dns).is_err());
        assert_eq!(dns.queries.len(), 1 + MAX_PTR_NAMES);
    }
}
