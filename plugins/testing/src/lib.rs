//! The test suite's plugin: its config says at which stage it acts and what it does,
//! from well-behaved verdicts and rewrites to hostile behaviour (loops, memory bombs,
//! traps, oversized or invalid output, slow host calls).
//!
//! ```toml
//! [plugin.config]
//! stage = "rcpt-to"       # connect | helo | mail-from | rcpt-to | data (default data)
//! action = "reject"       # see `Action`
//! code = 550
//! enhanced = "5.7.1"
//! text = "Rejected by the test plugin"
//! value = "..."           # the argument of actions that need one
//! reusable = true         # declare instances reusable in describe() (default false:
//!                         # `instance-calls` keeps a count in a global on purpose)
//! ```

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use sluice_plugin::config::{self, Value};
use sluice_plugin::prelude::*;
use sluice_plugin::{dns, kv, log};

/// What the plugin does at its stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Continue,
    Accept,
    Reject,
    Tempfail,
    Disconnect,
    Discard,
    Quarantine,
    /// Spin forever.
    Loop,
    /// Allocate without bound.
    MemoryBomb,
    /// Hit `unreachable`.
    Trap,
    /// Return 10 MB of headers.
    HugeHeaders,
    /// Reject with a 250 reply.
    BadReplyCode,
    /// Reject with CRLF in the text.
    CrlfText,
    /// Look up `value` in DNS (slow when the resolver does not answer).
    SlowDns,
    /// Sleep `value` seconds (a host wait that only the wall time bounds).
    Sleep,
    RewriteSender,
    RewriteRecipient,
    DropRecipient,
    AddRecipient,
    AddHeader,
    SetHeader,
    RemoveHeader,
    ReplaceBody,
    NextHop,
    /// Add headers describing the message as the host shows it.
    Inspect,
    /// Count calls in kv under `value` and add the count as a header.
    Count,
    /// Count calls in a global of this instance and add the count as a header: shows
    /// whether instances serve several sessions.
    InstanceCalls,
    /// Log `value` many lines.
    LogFlood,
    /// Write 64 KiB values under new keys (`value` many at most) until the store
    /// refuses; the header `X-Test-Kv` says how many were written and why it stopped.
    KvFlood,
    /// Look up `value` many distinct names; the header `X-Test-Dns` counts the lookups
    /// that failed and gives the last error.
    DnsFlood,
}

impl Action {
    pub fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "continue" => Action::Continue,
            "accept" => Action::Accept,
            "reject" => Action::Reject,
            "tempfail" => Action::Tempfail,
            "disconnect" => Action::Disconnect,
            "discard" => Action::Discard,
            "quarantine" => Action::Quarantine,
            "loop" => Action::Loop,
            "memory-bomb" => Action::MemoryBomb,
            "trap" => Action::Trap,
            "huge-headers" => Action::HugeHeaders,
            "bad-reply-code" => Action::BadReplyCode,
            "crlf-text" => Action::CrlfText,
            "slow-dns" => Action::SlowDns,
            "sleep" => Action::Sleep,
            "rewrite-sender" => Action::RewriteSender,
            "rewrite-recipient" => Action::RewriteRecipient,
            "drop-recipient" => Action::DropRecipient,
            "add-recipient" => Action::AddRecipient,
            "add-header" => Action::AddHeader,
            "set-header" => Action::SetHeader,
            "remove-header" => Action::RemoveHeader,
            "replace-body" => Action::ReplaceBody,
            "next-hop" => Action::NextHop,
            "inspect" => Action::Inspect,
            "count" => Action::Count,
            "instance-calls" => Action::InstanceCalls,
            "log-flood" => Action::LogFlood,
            "kv-flood" => Action::KvFlood,
            "dns-flood" => Action::DnsFlood,
            _ => return None,
        })
    }
}

/// The behaviour read from the config.
#[derive(Clone, Debug, PartialEq)]
pub struct Behaviour {
    pub stage: Stage,
    pub action: Action,
    pub code: u16,
    pub enhanced: String,
    pub text: String,
    pub value: String,
    /// Act only for recipients/senders containing this (empty: always).
    pub only_for: String,
    /// What `describe` declares about reusing instances.
    pub reusable: bool,
}

pub fn parse_stage(name: &str) -> Option<Stage> {
    Some(match name {
        "connect" => Stage::Connect,
        "helo" => Stage::Helo,
        "mail-from" => Stage::MailFrom,
        "rcpt-to" => Stage::RcptTo,
        "data" => Stage::Data,
        _ => return None,
    })
}

impl Behaviour {
    pub fn from_config(config: &Value) -> Behaviour {
        Behaviour {
            stage: config.str("stage").and_then(parse_stage).unwrap_or(Stage::Data),
            action: config.str("action").and_then(Action::parse).unwrap_or(Action::Continue),
            code: config.i64("code").and_then(|c| u16::try_from(c).ok()).unwrap_or(550),
            enhanced: config.str("enhanced").unwrap_or("5.7.1").to_string(),
            text: config.str("text").unwrap_or("Rejected by the test plugin").to_string(),
            value: config.str("value").unwrap_or_default().to_string(),
            only_for: config.str("only_for").unwrap_or_default().to_string(),
            reusable: config.bool("reusable").unwrap_or(false),
        }
    }

    /// The verdict part of the behaviour, for any stage.
    pub fn outcome(&self) -> Outcome {
        match self.action {
            Action::Accept => Outcome::accept(),
            Action::Reject => Outcome::reject(self.code, &self.enhanced, self.text.clone()),
            Action::Tempfail => Outcome::tempfail(self.code, &self.enhanced, self.text.clone()),
            Action::Disconnect => Outcome::disconnect(self.code, &self.enhanced, self.text.clone()),
            Action::Discard => Outcome::discard(),
            Action::Quarantine => Outcome::quarantine(self.value.clone()),
            Action::BadReplyCode => Outcome::reject(250, "2.0.0", "Ok"),
            Action::CrlfText => Outcome::reject(550, "5.7.1", "no\r\n250 2.0.0 smuggled"),
            _ => Outcome::proceed(),
        }
        .tag(format!("testing:{}", self.stage_name()))
        .score(1.0)
    }

    fn stage_name(&self) -> &'static str {
        match self.stage {
            Stage::Connect => "connect",
            Stage::Helo => "helo",
            Stage::MailFrom => "mail-from",
            Stage::RcptTo => "rcpt-to",
            Stage::Data => "data",
        }
    }
}

fn behaviour() -> &'static Behaviour {
    static BEHAVIOUR: OnceLock<Behaviour> = OnceLock::new();
    BEHAVIOUR.get_or_init(|| Behaviour::from_config(&config::load()))
}

/// Runs the side effects of hostile and host-calling actions.
fn act(b: &Behaviour) {
    match b.action {
        Action::Loop => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Action::MemoryBomb => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        Action::Trap => std::process::abort(),
        Action::SlowDns => {
            let _ = dns::lookup_a(&b.value);
        }
        Action::Sleep => std::thread::sleep(std::time::Duration::from_secs(b.value.parse().unwrap_or(60))),
        Action::LogFlood => {
            let lines: u32 = b.value.parse().unwrap_or(1000);
            for i in 0..lines {
                log::info(&format!("flood line {i}"));
            }
        }
        _ => {}
    }
}

fn applies(b: &Behaviour, stage: Stage, subject: &str) -> bool {
    b.stage == stage && (b.only_for.is_empty() || subject.contains(&b.only_for))
}

pub struct Testing;

impl Plugin for Testing {
    fn describe() -> PluginInfo {
        let info =
            sluice_plugin::plugin_info!(Stage::Connect, Stage::Helo, Stage::MailFrom, Stage::RcptTo, Stage::Data);
        if behaviour().reusable { info.reusable() } else { info }
    }

    fn connect(session: &Session) -> Outcome {
        let b = behaviour();
        if !applies(b, Stage::Connect, &session.client_ip) {
            return Outcome::proceed();
        }
        act(b);
        b.outcome()
    }

    fn helo(session: &Session) -> Outcome {
        let b = behaviour();
        if !applies(b, Stage::Helo, session.helo.as_deref().unwrap_or("")) {
            return Outcome::proceed();
        }
        act(b);
        b.outcome()
    }

    fn mail_from(_session: &Session, txn: &Transaction) -> MailFromResult {
        let b = behaviour();
        if !applies(b, Stage::MailFrom, txn.sender.as_deref().unwrap_or("")) {
            return Outcome::proceed().into();
        }
        act(b);
        let result: MailFromResult = b.outcome().into();
        match b.action {
            Action::RewriteSender => result.with_sender(b.value.clone()),
            _ => result,
        }
    }

    fn rcpt_to(_session: &Session, _txn: &Transaction, rcpt: &Recipient) -> RcptToResult {
        let b = behaviour();
        if !applies(b, Stage::RcptTo, &rcpt.address) {
            return Outcome::proceed().into();
        }
        act(b);
        let result: RcptToResult = b.outcome().into();
        match b.action {
            Action::RewriteRecipient => result.rewrite(b.value.clone()),
            Action::DropRecipient => result.drop_recipient(),
            Action::AddRecipient => result.add_recipient(b.value.clone()),
            _ => result,
        }
    }

    fn data(_session: &Session, txn: &Transaction, message: &Message) -> DataResult {
        let b = behaviour();
        if !applies(b, Stage::Data, txn.sender.as_deref().unwrap_or("")) {
            return Outcome::proceed().into();
        }
        act(b);
        let result: DataResult = b.outcome().into();
        let (name, value) =
            b.value.split_once(':').map(|(n, v)| (n.trim(), v.trim())).unwrap_or(("X-Test", b.value.as_str()));
        match b.action {
            Action::HugeHeaders => {
                let mut result = result;
                for i in 0..1000 {
                    result = result.add_header(format!("X-Huge-{i}"), "x".repeat(10_000));
                }
                result
            }
            Action::AddHeader => result.add_header(name, value),
            Action::SetHeader => result.set_header(name, value),
            Action::RemoveHeader => result.remove_header(b.value.clone()),
            Action::ReplaceBody => result.replace_body(format!("{}\r\n", b.value).into_bytes()),
            Action::AddRecipient => result.add_recipient(b.value.clone()),
            Action::NextHop => result.next_hop(b.value.clone()),
            Action::Inspect => inspect(result, txn, message),
            Action::Count => {
                let count = kv::increment(&b.value, 1, None).unwrap_or(-1);
                result.add_header("X-Test-Count", count.to_string())
            }
            Action::KvFlood => result.add_header("X-Test-Kv", kv_flood(b.value.parse().unwrap_or(1000))),
            Action::DnsFlood => result.add_header("X-Test-Dns", dns_flood(b.value.parse().unwrap_or(100))),
            Action::InstanceCalls => {
                static CALLS: AtomicU32 = AtomicU32::new(0);
                let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
                result.add_header("X-Instance-Calls", calls.to_string())
            }
            _ => result,
        }
    }
}

/// Fills the kv namespace: "WRITTEN KEY-PREFIX ERROR".
fn kv_flood(at_most: u32) -> String {
    // Keys new on every call, so a retry cannot overwrite the same ones.
    let prefix = kv::increment("flood-calls", 1, None).unwrap_or(0);
    let value = vec![0x5a_u8; 64 * 1024];
    for i in 0..at_most {
        if let Err(error) = kv::set(&format!("flood-{prefix}-{i}"), &value, None) {
            return format!("{i} {prefix} {error:?}");
        }
    }
    format!("{at_most} {prefix} none")
}

/// Looks up many names: "FAILED LAST-ERROR".
fn dns_flood(lookups: u32) -> String {
    let mut failed = 0;
    let mut last = String::from("none");
    for i in 0..lookups {
        if let Err(error) = dns::lookup_a(&format!("n{i}.flood.test")) {
            failed += 1;
            last = format!("{error:?}");
        }
    }
    format!("{failed} {last}")
}

/// Describes the message as the host presented it, in headers the tests read back.
fn inspect(result: DataResult, txn: &Transaction, message: &Message) -> DataResult {
    let parts = message.parts();
    let attachments: Vec<String> = parts.iter().filter_map(|p| p.filename.clone()).collect();
    let body = message.read_body_prefix(64);
    result
        .add_header("X-Test-Subject", message.first_header("subject").unwrap_or_default())
        .add_header("X-Test-Size", message.size().to_string())
        .add_header("X-Test-Parts", parts.len().to_string())
        .add_header("X-Test-Attachments", attachments.join(","))
        .add_header("X-Test-Body-Start", String::from_utf8_lossy(&body).replace(['\r', '\n'], " ").trim().to_string())
        .add_header("X-Test-Recipients", txn.recipients.len().to_string())
        .add_header("X-Test-Tags", txn.tags.join(","))
}

sluice_plugin::export!(Testing);

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, Value)]) -> Value {
        Value::Table(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    #[test]
    fn behaviour_from_config() {
        let b = Behaviour::from_config(&table(&[
            ("stage", Value::Text("rcpt-to".into())),
            ("action", Value::Text("tempfail".into())),
            ("code", Value::Integer(451)),
            ("enhanced", Value::Text("4.7.1".into())),
        ]));
        assert_eq!(b.stage, Stage::RcptTo);
        assert_eq!(b.action, Action::Tempfail);
        assert!(matches!(b.outcome().verdict, Verdict::Tempfail(ref r) if r.code == 451));
        let default = Behaviour::from_config(&table(&[]));
        assert_eq!((default.stage, &default.action), (Stage::Data, &Action::Continue));
        assert!(default.outcome().is_proceed());
    }

    #[test]
    fn only_for_narrows_the_action() {
        let b = Behaviour::from_config(&table(&[
            ("stage", Value::Text("rcpt-to".into())),
            ("only_for", Value::Text("spamtrap".into())),
        ]));
        assert!(applies(&b, Stage::RcptTo, "spamtrap@example.com"));
        assert!(!applies(&b, Stage::RcptTo, "user@example.com"));
        assert!(!applies(&b, Stage::Data, "spamtrap@example.com"));
    }
}
