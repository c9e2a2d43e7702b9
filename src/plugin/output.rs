//! Checking what a plugin returns before anything of it is used. A plugin is untrusted:
//! it must not make the server send a 250 as a rejection, put a line break into a
//! reply, or hand back megabytes of headers. Anything invalid is a plugin failure.

use std::fmt;

use super::bindings::exports::sluice::plugin::hooks::{HeaderChange, RecipientAction};
use super::bindings::sluice::plugin::types::{self as wit, Outcome, Reply as WitReply, Verdict as WitVerdict};
use crate::mail::{Mailbox, RouteChoice};
use crate::wire::{Reply, Status};

const MAX_REPLY_TEXT: usize = 400;
const MAX_TAGS: usize = 32;
const MAX_TAG: usize = 64;
const MAX_ANNOTATIONS: usize = 32;
const MAX_ANNOTATION_KEY: usize = 64;
const MAX_ANNOTATION_VALUE: usize = 1024;
const MAX_QUARANTINE_REASON: usize = 256;
const MAX_HEADER_CHANGES: usize = 100;
const MAX_HEADER_NAME: usize = 76;
const MAX_HEADER_VALUE: usize = 8 * 1024;
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_HEADER_WORD: usize = 900;
const MAX_ADDED_RECIPIENTS: usize = 100;

/// Why a plugin's output was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid<T>(why: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(why.into()))
}

/// A checked verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Continue,
    Accept,
    Reject(Reply),
    Tempfail(Reply),
    Disconnect(Reply),
    Discard,
    Quarantine(String),
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Continue => "continue",
            Verdict::Accept => "accept",
            Verdict::Reject(_) => "reject",
            Verdict::Tempfail(_) => "tempfail",
            Verdict::Disconnect(_) => "disconnect",
            Verdict::Discard => "discard",
            Verdict::Quarantine(_) => "quarantine",
        }
    }
}

/// A checked outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub verdict: Verdict,
    pub tags: Vec<String>,
    pub score: f64,
    pub annotations: Vec<(String, String)>,
}

fn printable_line(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn check_reply(reply: WitReply, allowed: impl Fn(u16) -> bool, what: &str) -> Result<Reply, Invalid> {
    if !allowed(reply.code) {
        return invalid(format!("reply code {} is not allowed for {what}", reply.code));
    }
    let parts: Vec<&str> = reply.enhanced_code.split('.').collect();
    let numbers: Option<Vec<u16>> = parts.iter().map(|p| p.parse::<u16>().ok().filter(|_| p.len() <= 3)).collect();
    let status = match numbers.as_deref() {
        Some(&[class, subject, detail]) if class == reply.code / 100 && subject <= 999 && detail <= 999 => {
            Status(class as u8, subject, detail)
        }
        _ => return invalid(format!("enhanced code {:?} does not fit reply code {}", reply.enhanced_code, reply.code)),
    };
    if reply.text.is_empty() || reply.text.len() > MAX_REPLY_TEXT || !printable_line(&reply.text) {
        return invalid("reply text must be one printable line of 1 to 400 bytes");
    }
    Ok(Reply::owned(reply.code, status, reply.text))
}

fn check_verdict(verdict: WitVerdict) -> Result<Verdict, Invalid> {
    Ok(match verdict {
        WitVerdict::Continue => Verdict::Continue,
        WitVerdict::Accept => Verdict::Accept,
        WitVerdict::Reject(r) => Verdict::Reject(check_reply(r, |c| (500..600).contains(&c), "reject")?),
        WitVerdict::Tempfail(r) => Verdict::Tempfail(check_reply(r, |c| (400..500).contains(&c), "tempfail")?),
        WitVerdict::Disconnect(r) => {
            Verdict::Disconnect(check_reply(r, |c| c == 421 || (500..600).contains(&c), "disconnect")?)
        }
        WitVerdict::Discard => Verdict::Discard,
        WitVerdict::Quarantine(reason) => {
            if reason.len() > MAX_QUARANTINE_REASON || !printable_line(&reason) {
                return invalid("quarantine reason must be one printable line of at most 256 bytes");
            }
            Verdict::Quarantine(reason)
        }
    })
}

pub fn check_outcome(outcome: Outcome) -> Result<Checked, Invalid> {
    let verdict = check_verdict(outcome.verdict)?;
    if outcome.tags.len() > MAX_TAGS
        || outcome.tags.iter().any(|t| t.is_empty() || t.len() > MAX_TAG || !t.chars().all(|c| c.is_ascii_graphic()))
    {
        return invalid("tags must be at most 32, each 1 to 64 printable ASCII characters");
    }
    if !outcome.score.is_finite() || outcome.score.abs() > 1e6 {
        return invalid("score must be a finite number within ±1e6");
    }
    if outcome.annotations.len() > MAX_ANNOTATIONS
        || outcome.annotations.iter().any(|(k, v)| {
            k.is_empty()
                || k.len() > MAX_ANNOTATION_KEY
                || v.len() > MAX_ANNOTATION_VALUE
                || !printable_line(k)
                || !printable_line(v)
        })
    {
        return invalid("annotations must be at most 32 printable key/value pairs (keys ≤ 64, values ≤ 1024 bytes)");
    }
    Ok(Checked { verdict, tags: outcome.tags, score: outcome.score, annotations: outcome.annotations })
}

/// An address a plugin wants to use; the null sender is allowed where `null_ok`.
pub fn check_address(text: &str, null_ok: bool) -> Result<Option<Mailbox>, Invalid> {
    if text.is_empty() && null_ok {
        return Ok(None);
    }
    let mailbox = Mailbox::parse(text).map_err(|e| Invalid(format!("address {text:?}: {e}")))?;
    if mailbox.domain.is_empty() && !mailbox.is_postmaster() {
        return invalid(format!("address {text:?} has no domain"));
    }
    Ok(Some(mailbox))
}

pub fn check_recipients(list: &[String]) -> Result<Vec<Mailbox>, Invalid> {
    if list.len() > MAX_ADDED_RECIPIENTS {
        return invalid("at most 100 recipients may be added or removed at once");
    }
    list.iter().map(|a| check_address(a, false).map(|m| m.unwrap_or_else(|| Mailbox::new("postmaster", "")))).collect()
}

/// What happens to a recipient at RCPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientFate {
    Keep,
    Rewrite(Mailbox),
    Drop,
}

pub fn check_recipient_action(action: RecipientAction) -> Result<RecipientFate, Invalid> {
    Ok(match action {
        RecipientAction::Keep => RecipientFate::Keep,
        RecipientAction::Drop => RecipientFate::Drop,
        RecipientAction::Rewrite(address) => match check_address(&address, false)? {
            Some(mailbox) => RecipientFate::Rewrite(mailbox),
            None => return invalid("a recipient cannot be the null address"),
        },
    })
}

/// A checked header change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    Add(String, String),
    Set(String, String),
    Remove(String),
}

fn check_header_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > MAX_HEADER_NAME || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return invalid(format!("invalid header name {:?}", name.chars().take(40).collect::<String>()));
    }
    Ok(())
}

fn check_header_value(value: &str) -> Result<(), Invalid> {
    if value.len() > MAX_HEADER_VALUE || value.contains(['\r', '\n', '\0']) {
        return invalid("header values must be at most 8 KiB without CR, LF or NUL");
    }
    // Folding happens at spaces; a longer word could not fit a mail line.
    if value.split(' ').any(|word| word.len() > MAX_HEADER_WORD) {
        return invalid("header values must not have words over 900 bytes");
    }
    Ok(())
}

pub fn check_header_changes(changes: Vec<HeaderChange>) -> Result<Vec<HeaderEdit>, Invalid> {
    if changes.len() > MAX_HEADER_CHANGES {
        return invalid(format!("at most {MAX_HEADER_CHANGES} header changes"));
    }
    let mut total = 0usize;
    changes
        .into_iter()
        .map(|change| {
            let edit = match change {
                HeaderChange::Add((name, value)) => HeaderEdit::Add(name, value),
                HeaderChange::Set((name, value)) => HeaderEdit::Set(name, value),
                HeaderChange::Remove(name) => HeaderEdit::Remove(name),
            };
            match &edit {
                HeaderEdit::Add(name, value) | HeaderEdit::Set(name, value) => {
                    check_header_name(name)?;
                    check_header_value(value)?;
                    total += name.len() + value.len();
                }
                HeaderEdit::Remove(name) => check_header_name(name)?,
            }
            if total > MAX_HEADER_BYTES {
                return invalid("header changes add up to more than 64 KiB");
            }
            Ok(edit)
        })
        .collect()
}

pub fn check_route(route: wit::Route) -> Result<RouteChoice, Invalid> {
    match route {
        wit::Route::Named(name) => {
            if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return invalid("route names are 1 to 64 printable ASCII characters");
            }
            Ok(RouteChoice::Named(name))
        }
        wit::Route::NextHop(hop) => {
            let (host, port) = match hop.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.starts_with('[') => (h, Some(p)),
                _ => (hop.as_str(), None),
            };
            let host_ok = crate::mail::address::is_domain(host)
                || host.parse::<std::net::IpAddr>().is_ok()
                || host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .is_some_and(|h| h.parse::<std::net::IpAddr>().is_ok());
            let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
            if !host_ok || !port_ok {
                return invalid(format!("invalid next hop {hop:?}"));
            }
            Ok(RouteChoice::NextHop(hop))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(verdict: WitVerdict) -> Outcome {
        Outcome { verdict, tags: vec![], score: 0.0, annotations: vec![] }
    }

    fn reply(code: u16, enhanced: &str, text: &str) -> WitReply {
        WitReply { code, enhanced_code: enhanced.into(), text: text.into() }
    }

    #[test]
    fn replies_must_fit_their_verdict() {
        assert!(check_outcome(outcome(WitVerdict::Reject(reply(550, "5.7.1", "no")))).is_ok());
        assert!(check_outcome(outcome(WitVerdict::Reject(reply(250, "2.0.0", "ok")))).is_err(), "250 as a rejection");
        assert!(check_outcome(outcome(WitVerdict::Reject(reply(451, "4.7.1", "later")))).is_err());
        assert!(check_outcome(outcome(WitVerdict::Tempfail(reply(550, "5.7.1", "no")))).is_err());
        assert!(check_outcome(outcome(WitVerdict::Disconnect(reply(421, "4.7.0", "bye")))).is_ok());
        assert!(check_outcome(outcome(WitVerdict::Disconnect(reply(450, "4.7.0", "bye")))).is_err());
        assert!(check_outcome(outcome(WitVerdict::Reject(reply(550, "4.7.1", "class mismatch")))).is_err());
        assert!(check_outcome(outcome(WitVerdict::Reject(reply(550, "5.7", "short")))).is_err());
        assert!(check_outcome(outcome(WitVerdict::Reject(reply(550, "5.7.1", "line\r\n250 injected")))).is_err());
        assert!(check_outcome(outcome(WitVerdict::Reject(reply(550, "5.7.1", "")))).is_err());
        assert!(check_outcome(outcome(WitVerdict::Quarantine("a\nb".into()))).is_err());
    }

    #[test]
    fn sizes_are_bounded() {
        let mut o = outcome(WitVerdict::Continue);
        o.tags = (0..33).map(|i| format!("t{i}")).collect();
        assert!(check_outcome(o).is_err());
        let mut o = outcome(WitVerdict::Continue);
        o.score = f64::NAN;
        assert!(check_outcome(o).is_err());
        let big = vec![HeaderChange::Add(("X-Big".into(), "v".repeat(8000))); 9];
        assert!(check_header_changes(big).is_err(), "over 64 KiB in total");
        assert!(check_header_changes(vec![HeaderChange::Add(("Bad Name".into(), "v".into()))]).is_err());
        assert!(check_header_changes(vec![HeaderChange::Set(("X-A".into(), "v\r\nX-Injected: 1".into()))]).is_err());
        assert!(check_header_changes(vec![HeaderChange::Remove("Received".into())]).is_ok());
    }

    #[test]
    fn addresses_and_routes() {
        assert_eq!(check_address("", true), Ok(None));
        assert!(check_address("", false).is_err());
        assert!(check_address("user@example.com", false).unwrap().is_some());
        assert!(check_address("user", false).is_err());
        assert!(check_address("a@b.c>\r\nRCPT TO:<x@y.z", false).is_err());
        assert!(check_route(wit::Route::NextHop("mx.example.com:2525".into())).is_ok());
        assert!(check_route(wit::Route::NextHop("[2001:db8::1]:25".into())).is_ok());
        assert!(check_route(wit::Route::NextHop("bad host".into())).is_err());
        assert!(check_route(wit::Route::NextHop("h.example:99999".into())).is_err());
    }
}
