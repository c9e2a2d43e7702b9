use sluice_plugin::auth::{AuthVerdict, DmarcDisposition};
use sluice_plugin::testing::{FakeAuth, from_toml, parse_clean};

use super::*;

const CONFIG: &str = r#"
allow_networks = ["192.0.2.0/24"]
allow_sender_domains = ["forwarder.example"]
allow_list_ids = [".lists.example.org"]
trusted_arc_sealers = ["arc.example.net"]
"#;

fn config() -> Config {
    parse_clean(Config::from_value, &from_toml(CONFIG))
}

fn facts<'a>(message_id: &'a str) -> Facts<'a> {
    Facts { client_ip: "198.51.100.9", sender: "ceo@example.com", list_id: None, message_id: Some(message_id) }
}

fn failing(policy: DmarcDisposition) -> FakeAuth {
    FakeAuth::default().with_dmarc(AuthVerdict::Fail, "example.com", policy)
}

fn is_reject(outcome: &Outcome) -> bool {
    matches!(&outcome.verdict, Verdict::Reject(reply) if reply.code == 550 && reply.enhanced_code == "5.7.1")
}

#[test]
fn reject_and_quarantine_policies_are_enforced_on_failure() {
    let config = config();
    let outcome = decide(&config, &facts("<a@x>"), &mut failing(DmarcDisposition::Reject));
    assert!(is_reject(&outcome), "{:?}", outcome.verdict);
    assert_eq!(outcome.tags, ["dmarc:reject"]);
    let outcome = decide(&config, &facts("<a@x>"), &mut failing(DmarcDisposition::Quarantine));
    assert!(matches!(outcome.verdict, Verdict::Quarantine(_)), "{:?}", outcome.verdict);
    let outcome = decide(&config, &facts("<a@x>"), &mut failing(DmarcDisposition::None));
    assert!(outcome.is_proceed());
    assert_eq!(outcome.tags, ["dmarc:fail"]);
}

#[test]
fn passing_missing_and_temporary_results_go_through() {
    let config = config();
    let mut pass = FakeAuth::default().with_dmarc(AuthVerdict::Pass, "example.com", DmarcDisposition::Reject);
    assert_eq!(decide(&config, &facts("<a@x>"), &mut pass).tags, ["dmarc:pass"]);
    assert!(decide(&config, &facts("<a@x>"), &mut FakeAuth::default()).is_proceed(), "no DMARC result");
    let mut temp = FakeAuth::default().with_dmarc(AuthVerdict::Temperror, "example.com", DmarcDisposition::Reject);
    let outcome = decide(&config, &facts("<a@x>"), &mut temp);
    assert!(outcome.is_proceed());
    assert_eq!(outcome.tags, ["dmarc:temperror"]);
    let mut none = FakeAuth::default().with_dmarc(AuthVerdict::None, "example.com", DmarcDisposition::Reject);
    assert!(decide(&config, &facts("<a@x>"), &mut none).is_proceed());
}

#[test]
fn pct_samples_by_message_id_and_steps_the_policy_down() {
    let config = config();
    // Find one id inside a 30% sample and one outside, by the documented hash.
    let ids: Vec<String> = (0..100).map(|n| format!("<{n}@example.com>")).collect();
    let inside = ids.iter().find(|id| bucket(id) < 30).unwrap();
    let outside = ids.iter().find(|id| bucket(id) >= 30).unwrap();
    let mut auth = failing(DmarcDisposition::Reject).with_pct(30);
    assert!(is_reject(&decide(&config, &facts(inside), &mut auth)));
    let stepped = decide(&config, &facts(outside), &mut auth);
    assert!(matches!(stepped.verdict, Verdict::Quarantine(_)), "reject outside the sample is quarantine");
    let mut auth = failing(DmarcDisposition::Quarantine).with_pct(30);
    let outcome = decide(&config, &facts(outside), &mut auth);
    assert!(outcome.is_proceed(), "quarantine outside the sample is none");
    assert_eq!(outcome.annotations[0].1, "example.com: outside the pct=30 sample");
    // The same message always lands in the same bucket; pct=0 samples nothing.
    assert_eq!(bucket(inside), bucket(&inside.clone()));
    let mut auth = failing(DmarcDisposition::Quarantine).with_pct(0);
    assert!(decide(&config, &facts(inside), &mut auth).is_proceed());
}

#[test]
fn forwarders_and_lists_are_let_through() {
    let config = config();
    let mut auth = failing(DmarcDisposition::Reject);
    let by_network = Facts { client_ip: "192.0.2.25", ..facts("<a@x>") };
    let outcome = decide(&config, &by_network, &mut auth);
    assert!(outcome.is_proceed());
    assert_eq!(outcome.annotations[0].1, "example.com: allow-listed network");
    let by_sender = Facts { sender: "srs0=abc@Forwarder.example", ..facts("<a@x>") };
    assert!(decide(&config, &by_sender, &mut auth).is_proceed());
    let by_list = Facts { list_id: Some("Developers <dev.lists.example.org>"), ..facts("<a@x>") };
    let outcome = decide(&config, &by_list, &mut auth);
    assert_eq!(outcome.annotations[0].1, "example.com: allow-listed list dev.lists.example.org");
    let other_list = Facts { list_id: Some("<dev.lists.example.net>"), ..facts("<a@x>") };
    assert!(is_reject(&decide(&config, &other_list, &mut auth)));
}

#[test]
fn a_passing_arc_chain_counts_only_when_its_latest_sealer_is_trusted() {
    let config = config();
    let mut trusted = failing(DmarcDisposition::Reject).with_arc(AuthVerdict::Pass, &["other.test", "arc.example.net"]);
    let outcome = decide(&config, &facts("<a@x>"), &mut trusted);
    assert!(outcome.is_proceed());
    assert_eq!(outcome.annotations[0].1, "example.com: ARC chain sealed by trusted arc.example.net");
    let mut earlier = failing(DmarcDisposition::Reject).with_arc(AuthVerdict::Pass, &["arc.example.net", "other.test"]);
    assert!(is_reject(&decide(&config, &facts("<a@x>"), &mut earlier)));
    let mut broken = failing(DmarcDisposition::Reject).with_arc(AuthVerdict::Fail, &["arc.example.net"]);
    assert!(is_reject(&decide(&config, &facts("<a@x>"), &mut broken)));
}

#[test]
fn bad_entries_are_warnings() {
    let (config, warnings) = Config::from_value(&from_toml(r#"allow_list_ids = ["not a domain", "lists.test"]"#));
    assert!(config.allow_list_ids.matches("lists.test"));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}
