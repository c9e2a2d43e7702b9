//! The decision, on plain data and an `impl Auth`, so it tests on the host.

use filter_util::domain::domain_of;
use filter_util::net::parse_ip;
use sluice_plugin::auth::{Auth, AuthVerdict, DmarcDisposition};
use sluice_plugin::prelude::*;

use crate::config::Config;

/// What the decision looks at besides the authentication results.
pub struct Message<'a> {
    pub client_ip: &'a str,
    /// MAIL FROM, empty for `<>`.
    pub sender: &'a str,
    /// The `List-Id:` value, if any.
    pub list_id: Option<&'a str>,
    /// The `Message-ID:` value: picks the `pct` sample.
    pub message_id: Option<&'a str>,
}

/// Which part in a hundred `key` falls in: the same message always gets the same one,
/// so a retry is treated as the first attempt was.
pub fn bucket(key: &str) -> u8 {
    // FNV-1a, 32 bits: stable across builds and platforms.
    let hash = key.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    (hash % 100) as u8
}

/// The id between the angle brackets of a `List-Id:` value (RFC 2919).
fn list_id(value: &str) -> Option<&str> {
    let start = value.rfind('<')? + 1;
    let end = start + value[start..].find('>')?;
    Some(value[start..end].trim())
}

/// Why a failing message is let through anyway, if it is.
fn exemption(config: &Config, message: &Message, auth: &mut impl Auth) -> Option<String> {
    if parse_ip(message.client_ip).is_some_and(|ip| config.allow_networks.contains(ip)) {
        return Some("allow-listed network".into());
    }
    if let Some(domain) = domain_of(message.sender).filter(|d| config.allow_sender_domains.matches(d)) {
        return Some(format!("allow-listed sender domain {domain}"));
    }
    if let Some(id) = message.list_id.and_then(list_id).filter(|id| config.allow_list_ids.matches(id)) {
        return Some(format!("allow-listed list {id}"));
    }
    if !config.trusted_arc_sealers.is_empty()
        && let Some(arc) = auth.arc()
        && arc.verdict == AuthVerdict::Pass
        && let Some(sealer) = arc.sealers.last().filter(|s| config.trusted_arc_sealers.matches(s))
    {
        return Some(format!("ARC chain sealed by trusted {sealer}"));
    }
    None
}

/// RFC 7489 §6.6.4: mail outside the `pct` sample gets the next policy down.
fn sampled(policy: DmarcDisposition, pct: u8, message: &Message, from_domain: &str) -> DmarcDisposition {
    if pct >= 100 || bucket(message.message_id.unwrap_or(from_domain)) < pct {
        return policy;
    }
    match policy {
        DmarcDisposition::Reject => DmarcDisposition::Quarantine,
        _ => DmarcDisposition::None,
    }
}

pub fn decide(config: &Config, message: &Message, auth: &mut impl Auth) -> Outcome {
    let Some(dmarc) = auth.dmarc() else { return Outcome::proceed() };
    let domain = dmarc.from_domain.clone();
    match dmarc.verdict {
        AuthVerdict::Fail => {}
        AuthVerdict::Temperror => return Outcome::proceed().tag("dmarc:temperror"),
        AuthVerdict::Pass => return Outcome::proceed().tag("dmarc:pass"),
        // No record, or one that does not parse (RFC 7489 §6.6.3): no policy to apply.
        _ => return Outcome::proceed(),
    }
    let published = dmarc.applied_policy.unwrap_or(DmarcDisposition::None);
    if published == DmarcDisposition::None {
        return Outcome::proceed().tag("dmarc:fail");
    }
    if let Some(why) = exemption(config, message, auth) {
        return Outcome::proceed().tag("dmarc:fail").annotate("dmarc-policy", format!("{domain}: {why}"));
    }
    match sampled(published, dmarc.pct, message, &domain) {
        DmarcDisposition::Reject => {
            Outcome::reject(550, "5.7.1", format!("Message rejected: it fails the DMARC policy of {domain}"))
                .tag("dmarc:reject")
        }
        DmarcDisposition::Quarantine => {
            Outcome::quarantine(format!("fails the DMARC policy of {domain}")).tag("dmarc:quarantine")
        }
        DmarcDisposition::None => Outcome::proceed()
            .tag("dmarc:fail")
            .annotate("dmarc-policy", format!("{domain}: outside the pct={} sample", dmarc.pct)),
    }
}
