//! From a finding to what the plugin returns.

use filter_util::config::OnFailure;
use filter_util::reply::{self, ReplySpec};
use sluice_plugin::Outcome;

use crate::checks::{Client, Finding};
use crate::config::Config;

fn refuse(spec: &ReplySpec, client: &Client<'_>) -> Outcome {
    let ip = client.ip.to_string();
    let text = reply::render(&spec.text, &[("helo", client.helo), ("ip", &ip)]);
    if spec.is_temporary() {
        Outcome::tempfail(spec.code, &spec.enhanced, text)
    } else {
        Outcome::reject(spec.code, &spec.enhanced, text)
    }
}

pub fn outcome(finding: &Finding, client: &Client<'_>, config: &Config) -> Outcome {
    match finding {
        Finding::Pass { verified_name: Some(name) } => Outcome::proceed().annotate("helo.fcrdns", name.clone()),
        Finding::Pass { verified_name: None } => Outcome::proceed(),
        Finding::Fail { check, detail } => refuse(config.reply(*check), client)
            .tag(format!("helo:{}", check.key()))
            .annotate("helo.failed", format!("{}: {detail}", check.key())),
        Finding::DnsError { check, detail } => {
            let note = format!("{}: {detail}", check.key());
            match config.on_dns_error {
                OnFailure::Tempfail => refuse(&config.dns_error_reply, client).annotate("helo.dns-error", note),
                OnFailure::Continue => Outcome::proceed().annotate("helo.dns-error", note),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_plugin::Verdict;
    use sluice_plugin::config::Value;
    use sluice_plugin::testing::table;

    use super::*;
    use crate::config::Check;

    fn client(helo: &str) -> Client<'_> {
        Client { ip: "192.0.2.1".parse().unwrap(), helo, server_hostname: "mx.example.com" }
    }

    fn reply_of(outcome: &Outcome) -> (String, u16, String, String) {
        match &outcome.verdict {
            Verdict::Reject(r) => ("reject".into(), r.code, r.enhanced_code.clone(), r.text.clone()),
            Verdict::Tempfail(r) => ("tempfail".into(), r.code, r.enhanced_code.clone(), r.text.clone()),
            other => (format!("{other:?}"), 0, String::new(), String::new()),
        }
    }

    #[test]
    fn failures_become_rejections_with_the_check_named() {
        let config = Config::from_value(&table(&[])).0;
        let finding = Finding::Fail { check: Check::Syntax, detail: "bare word".into() };
        let outcome = outcome(&finding, &client("localhost"), &config);
        assert_eq!(
            reply_of(&outcome),
            (
                "reject".into(),
                504,
                "5.5.2".into(),
                "<localhost>: Helo command rejected: need fully-qualified hostname or address literal".into()
            )
        );
        assert_eq!(outcome.tags, ["helo:syntax"]);
        assert_eq!(outcome.annotations[0].0, "helo.failed");

        let finding = Finding::Fail { check: Check::Literal, detail: String::new() };
        let (_, code, enhanced, text) = reply_of(&self::outcome(&finding, &client("[192.0.2.2]"), &config));
        assert_eq!((code, enhanced.as_str()), (550, "5.7.1"));
        assert_eq!(
            text,
            "<[192.0.2.2]>: Helo command rejected: address literal does not match your address [192.0.2.1]"
        );

        let finding = Finding::Fail { check: Check::Fcrdns, detail: String::new() };
        let (_, code, enhanced, _) = reply_of(&self::outcome(&finding, &client("a.example.org"), &config));
        assert_eq!((code, enhanced.as_str()), (550, "5.7.25"));
    }

    #[test]
    fn client_text_is_sanitized_in_replies() {
        let config = Config::from_value(&table(&[])).0;
        let finding = Finding::Fail { check: Check::Syntax, detail: String::new() };
        let (_, _, _, text) = reply_of(&outcome(&finding, &client("evil\r\n250 OK"), &config));
        assert!(text.starts_with("<evil??250 OK>"), "{text}");
    }

    #[test]
    fn dns_errors_follow_the_policy() {
        let finding = Finding::DnsError { check: Check::Fcrdns, detail: "timeout".into() };
        let lenient = Config::from_value(&table(&[])).0;
        let outcome_lenient = outcome(&finding, &client("a.example.org"), &lenient);
        assert!(outcome_lenient.is_proceed());
        assert_eq!(outcome_lenient.annotations, [("helo.dns-error".to_string(), "fcrdns: timeout".to_string())]);
        let strict = Config::from_value(&table(&[("dns_error", Value::Text("tempfail".into()))])).0;
        let (kind, code, enhanced, _) = reply_of(&outcome(&finding, &client("a.example.org"), &strict));
        assert_eq!((kind.as_str(), code, enhanced.as_str()), ("tempfail", 451, "4.4.3"));
    }

    #[test]
    fn a_4xx_reply_tempfails() {
        let replies = table(&[("syntax", table(&[("code", Value::Integer(450))]))]);
        let config = Config::from_value(&table(&[("replies", replies)])).0;
        let finding = Finding::Fail { check: Check::Syntax, detail: String::new() };
        let (kind, code, enhanced, _) = reply_of(&outcome(&finding, &client("localhost"), &config));
        assert_eq!((kind.as_str(), code, enhanced.as_str()), ("tempfail", 450, "4.5.2"));
    }

    #[test]
    fn confirmed_names_are_annotated() {
        let config = Config::from_value(&table(&[])).0;
        let finding = Finding::Pass { verified_name: Some("mail.example.org".into()) };
        let outcome = outcome(&finding, &client("mail.example.org"), &config);
        assert!(outcome.is_proceed());
        assert_eq!(outcome.annotations, [("helo.fcrdns".to_string(), "mail.example.org".to_string())]);
    }
}
