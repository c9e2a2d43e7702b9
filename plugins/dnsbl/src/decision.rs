//! From a lookup report to what the plugin returns: the verdict, tags, score and
//! annotations, and a one-line summary for the log.

use filter_util::reply;
use sluice_plugin::Outcome;

use crate::check::{Report, ZoneState};
use crate::config::Config;

/// Listing zones, comma-separated, for replies and annotations.
fn zone_names(report: &Report<'_>) -> String {
    report.listed().map(|r| r.zone.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// The reply text: the template with `{ip}`, `{zones}` and `{reason}` (`"; "` and the
/// TXT reasons, or nothing) filled in.
pub fn reply_text(report: &Report<'_>, config: &Config) -> String {
    let reasons: Vec<&str> = report
        .listed()
        .filter_map(|r| match &r.state {
            ZoneState::Listed { reason: Some(reason), .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    let reason = if reasons.is_empty() { String::new() } else { format!("; {}", reasons.join("; ")) };
    let ip = report.ip.to_string();
    reply::render(&config.reply.text, &[("ip", &ip), ("zones", &zone_names(report)), ("reason", &reason)])
}

pub fn outcome(report: &Report<'_>, config: &Config) -> Outcome {
    let mut outcome = if report.reached {
        let text = reply_text(report, config);
        if config.reply.is_temporary() {
            Outcome::tempfail(config.reply.code, &config.reply.enhanced, text)
        } else {
            Outcome::reject(config.reply.code, &config.reply.enhanced, text)
        }
    } else {
        Outcome::proceed()
    };
    let mut listed = Vec::new();
    for result in report.listed() {
        outcome = outcome.tag(format!("dnsbl:{}", result.zone.name));
        if let ZoneState::Listed { codes, .. } = &result.state {
            let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
            listed.push(format!("{}={}", result.zone.name, codes.join("+")));
        }
    }
    if !listed.is_empty() {
        outcome = outcome.score(report.total).annotate("dnsbl.listed", listed.join(", "));
    }
    let failed: Vec<String> = report.failed().map(|(r, why)| format!("{}: {why}", r.zone.name)).collect();
    if !failed.is_empty() {
        outcome = outcome.annotate("dnsbl.error", failed.join("; "));
    }
    outcome
}

/// What to log about a report, if anything: listings and failures (a clean client is
/// not worth a line).
pub fn summary(report: &Report<'_>, config: &Config) -> Option<String> {
    let mut parts = Vec::new();
    if report.listed().next().is_some() {
        let fate = if report.reached { "refused" } else { "below threshold" };
        parts.push(format!(
            "client {} listed by {} (score {:.2} of {:.2}, {fate})",
            report.ip,
            zone_names(report),
            report.total,
            config.threshold
        ));
    }
    for (result, why) in report.failed() {
        parts.push(format!("lookup in {} failed ({why}); treated as not listed", result.zone.name));
    }
    for result in &report.results {
        if !result.ignored.is_empty() {
            parts.push(format!(
                "{} answered {} (not a listing code; ignored)",
                result.zone.name,
                result.ignored.join(", ")
            ));
        }
    }
    if parts.is_empty() { None } else { Some(parts.join("; ")) }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use sluice_plugin::Verdict;
    use sluice_plugin::config::Value;
    use sluice_plugin::dns::DnsError;
    use sluice_plugin::testing::{FakeDns, table, text};

    use super::*;
    use crate::check::check;
    use crate::check::tests::zones_config;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn rejects_naming_the_zone() {
        let config = zones_config(&[text("zen.example.test")], &[]);
        let mut dns = FakeDns::default().with("A", "1.2.0.192.zen.example.test", &["127.0.0.2"]);
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        let outcome = outcome(&report, &config);
        match &outcome.verdict {
            Verdict::Reject(r) => {
                assert_eq!((r.code, r.enhanced_code.as_str()), (554, "5.7.1"));
                assert_eq!(r.text, "Service unavailable; client [192.0.2.1] listed by zen.example.test");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert_eq!(outcome.tags, ["dnsbl:zen.example.test"]);
        assert_eq!(outcome.score, 1.0);
        assert_eq!(outcome.annotations, [("dnsbl.listed".to_string(), "zen.example.test=127.0.0.2".to_string())]);
        let line = summary(&report, &config).unwrap();
        assert!(line.contains("listed by zen.example.test") && line.contains("refused"), "{line}");
    }

    #[test]
    fn below_threshold_tags_and_scores() {
        let zones = [
            table(&[("zone", text("a.example.test")), ("weight", Value::Float(0.5))]),
            table(&[("zone", text("b.example.test")), ("weight", Value::Float(0.25))]),
        ];
        let config = zones_config(&zones, &[]);
        let mut dns = FakeDns::default().with("A", "1.2.0.192.a.example.test", &["127.0.0.2"]).with(
            "A",
            "1.2.0.192.b.example.test",
            &["127.0.0.11"],
        );
        let outcome = outcome(&check(ip("192.0.2.1"), &config, &mut dns), &config);
        assert!(outcome.is_proceed());
        assert_eq!(outcome.tags, ["dnsbl:a.example.test", "dnsbl:b.example.test"]);
        assert_eq!(outcome.score, 0.75);
    }

    #[test]
    fn several_zones_and_txt_reasons_in_the_reply() {
        let zones = [
            table(&[("zone", text("a.example.test")), ("weight", Value::Float(0.5)), ("txt", Value::Boolean(true))]),
            table(&[("zone", text("b.example.test")), ("weight", Value::Float(0.5))]),
        ];
        let config = zones_config(&zones, &[]);
        let mut dns = FakeDns::default()
            .with("A", "1.2.0.192.a.example.test", &["127.0.0.2"])
            .with("A", "1.2.0.192.b.example.test", &["127.0.0.2"])
            .with("TXT", "1.2.0.192.a.example.test", &["Dynamic IP\r\nspam"]);
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        assert_eq!(
            reply_text(&report, &config),
            "Service unavailable; client [192.0.2.1] listed by a.example.test, b.example.test; Dynamic IP??spam"
        );
    }

    #[test]
    fn a_4xx_reply_code_tempfails() {
        let config = zones_config(
            &[text("zen.example.test")],
            &[("reply_code", Value::Integer(451)), ("reply_text", text("Listed by {zones}, try later"))],
        );
        let mut dns = FakeDns::default().with("A", "1.2.0.192.zen.example.test", &["127.0.0.2"]);
        let outcome = outcome(&check(ip("192.0.2.1"), &config, &mut dns), &config);
        match outcome.verdict {
            Verdict::Tempfail(r) => {
                assert_eq!((r.code, r.enhanced_code.as_str()), (451, "4.7.1"));
                assert_eq!(r.text, "Listed by zen.example.test, try later");
            }
            other => panic!("expected a tempfail, got {other:?}"),
        }
    }

    #[test]
    fn failures_are_annotated_and_let_through() {
        let config = zones_config(&[text("zen.example.test")], &[]);
        let mut dns = FakeDns::default().failing("A", "1.2.0.192.zen.example.test", DnsError::Timeout);
        let report = check(ip("192.0.2.1"), &config, &mut dns);
        let outcome = outcome(&report, &config);
        assert!(outcome.is_proceed());
        assert!(outcome.tags.is_empty());
        assert_eq!(outcome.annotations, [("dnsbl.error".to_string(), "zen.example.test: timeout".to_string())]);
        assert!(summary(&report, &config).unwrap().contains("treated as not listed"));
    }

    #[test]
    fn clean_clients_pass_quietly() {
        let config = zones_config(&[text("zen.example.test")], &[]);
        let report = check(ip("192.0.2.1"), &config, &mut FakeDns::default());
        let outcome = outcome(&report, &config);
        assert!(outcome.is_proceed() && outcome.tags.is_empty() && outcome.annotations.is_empty());
        assert_eq!(summary(&report, &config), None);
    }
}
