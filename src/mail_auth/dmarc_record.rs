//! The DMARC record as published, read for what mail-auth 0.13 does not hand back:
//! where it was found, `pct=` and whether `sp=` was given. The lookups are the ones
//! mail-auth makes too, so they come from the resolver's cache.

use hickory_resolver::proto::rr::RData;
use mail_auth::MessageAuthenticator;

use super::results::{Alignment, Disposition};

/// Labels walked up from the From domain before giving up (the From domain and its
/// parents, as RFC 7489 §6.6.3 does for the organisational domain).
const MAX_WALK: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedRecord {
    /// The domain the record is published for (`_dmarc.` stripped).
    pub domain: String,
    pub p: Option<Disposition>,
    pub sp: Option<Disposition>,
    pub pct: u8,
    pub dkim_alignment: Alignment,
    pub spf_alignment: Alignment,
}

/// The record for `from_domain`, or for the nearest parent that publishes one.
pub async fn published_record(authenticator: &MessageAuthenticator, from_domain: &str) -> Option<PublishedRecord> {
    let mut domain = from_domain;
    for _ in 0..MAX_WALK {
        if let Some(text) = dmarc_text(authenticator, domain).await {
            return Some(parse(domain, &text));
        }
        match domain.split_once('.') {
            Some((_, parent)) if parent.contains('.') => domain = parent,
            _ => return None,
        }
    }
    None
}

async fn dmarc_text(authenticator: &MessageAuthenticator, domain: &str) -> Option<String> {
    let lookup = authenticator.0.txt_lookup(format!("_dmarc.{domain}.")).await.ok()?;
    lookup.answers().iter().find_map(|record| match &record.data {
        RData::TXT(txt) => {
            let text: String = txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect();
            text.trim_start().to_ascii_lowercase().starts_with("v=dmarc1").then_some(text)
        }
        _ => None,
    })
}

fn parse(domain: &str, text: &str) -> PublishedRecord {
    let mut record = PublishedRecord {
        domain: domain.to_ascii_lowercase(),
        p: None,
        sp: None,
        pct: 100,
        dkim_alignment: Alignment::Relaxed,
        spf_alignment: Alignment::Relaxed,
    };
    for tag in text.split(';') {
        let Some((name, value)) = tag.split_once('=') else { continue };
        let value = value.trim().to_ascii_lowercase();
        let alignment = || if value == "s" { Alignment::Strict } else { Alignment::Relaxed };
        match name.trim().to_ascii_lowercase().as_str() {
            "p" => record.p = disposition(&value),
            "sp" => record.sp = disposition(&value),
            "pct" => record.pct = value.parse::<u8>().map_or(100, |pct| pct.min(100)),
            "adkim" => record.dkim_alignment = alignment(),
            "aspf" => record.spf_alignment = alignment(),
            _ => {}
        }
    }
    record
}

fn disposition(value: &str) -> Option<Disposition> {
    match value {
        "none" => Some(Disposition::None),
        "quarantine" => Some(Disposition::Quarantine),
        "reject" => Some(Disposition::Reject),
        _ => None,
    }
}

/// Whether `domain` (a DKIM `d=` or the MAIL FROM domain) is aligned with the From
/// domain: the same name under strict alignment; under relaxed, also a name in the
/// same organisational domain, taken to be the record's domain.
pub fn aligned(domain: &str, from_domain: &str, strict: bool, record: Option<&PublishedRecord>) -> bool {
    let domain = domain.trim_end_matches('.');
    if domain.eq_ignore_ascii_case(from_domain) {
        return true;
    }
    if strict {
        return false;
    }
    let under = |name: &str, parent: &str| {
        name.eq_ignore_ascii_case(parent)
            || (name.len() > parent.len()
                && name.as_bytes()[name.len() - parent.len() - 1] == b'.'
                && name[name.len() - parent.len()..].eq_ignore_ascii_case(parent))
    };
    under(from_domain, domain)
        || under(domain, from_domain)
        || record.is_some_and(|r| r.domain.contains('.') && under(domain, &r.domain) && under(from_domain, &r.domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_with_their_defaults() {
        let record = parse("Example.ORG", "v=DMARC1; p=reject; sp=quarantine; pct=50; adkim=s");
        assert_eq!(record.domain, "example.org");
        assert_eq!((record.p, record.sp, record.pct), (Some(Disposition::Reject), Some(Disposition::Quarantine), 50));
        assert_eq!((record.dkim_alignment, record.spf_alignment), (Alignment::Strict, Alignment::Relaxed));
        let record = parse("example.org", "v=DMARC1; p=none");
        assert_eq!((record.sp, record.pct), (None, 100));
    }

    #[test]
    fn alignment_relaxed_and_strict() {
        let record = parse("example.org", "v=DMARC1; p=none");
        assert!(aligned("example.org", "example.org", true, Some(&record)));
        assert!(!aligned("mail.example.org", "example.org", true, Some(&record)));
        assert!(aligned("mail.example.org", "example.org", false, Some(&record)));
        assert!(aligned("a.example.org", "b.example.org", false, Some(&record)));
        assert!(!aligned("example.net", "example.org", false, Some(&record)));
        assert!(!aligned("badexample.org", "example.org", false, None));
    }
}
