//! What a verification found, where the answer came from, and what the session
//! does with it.

use std::fmt;

use crate::config::OnUnavailable;
use crate::wire::{Reply, Status};

/// Whether the recipient exists, as far as the relay can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `said`: the next hop's reply, when it was asked.
    Valid {
        said: Option<String>,
    },
    Unknown {
        said: String,
    },
    /// The next hop could not be asked, or gave no clear answer.
    Unavailable {
        why: String,
    },
}

impl Answer {
    /// The value of the `recipient-verify:` tag and of the `result` metric label.
    pub fn name(&self) -> &'static str {
        match self {
            Answer::Valid { .. } => "valid",
            Answer::Unknown { .. } => "unknown",
            Answer::Unavailable { .. } => "unavailable",
        }
    }
}

/// The next hop's reply to `RCPT TO`, the way Postfix's verify(8) reads it: 250/251
/// (and 252, "cannot verify but will accept") is a yes; 550/551/553 a no;
/// anything else, a 4xx greylisting or a 552 "mailbox full" say nothing about the
/// address.
pub fn classify(reply: &Reply) -> Answer {
    let said = reply_text(reply);
    match reply.code {
        250..=252 => Answer::Valid { said: Some(said) },
        550 | 551 | 553 => Answer::Unknown { said },
        _ => Answer::Unavailable { why: said },
    }
}

/// `550 5.1.1 text`, on one line.
pub fn reply_text(reply: &Reply) -> String {
    let text = reply.lines().collect::<Vec<_>>().join(" ");
    match reply.status {
        Some(status) => format!("{} {status} {text}", reply.code),
        None => format!("{} {text}", reply.code),
    }
}

/// Where an answer came from, as `sluice recipients check` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    List,
    Cache,
    Callout,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::List => "list",
            Source::Cache => "cache",
            Source::Callout => "callout",
        })
    }
}

/// One recipient checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub route: String,
    pub answer: Answer,
    pub source: Source,
    pub on_unavailable: OnUnavailable,
}

/// What the session does with a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to the RCPT plugins, with this tag on the transaction.
    Accept {
        tag: &'static str,
    },
    Refuse(Reply),
}

/// Prefix of the tag plugins see at RCPT.
pub const TAG_PREFIX: &str = "recipient-verify:";
const TAG_VALID: &str = "recipient-verify:valid";
const TAG_UNKNOWN: &str = "recipient-verify:unknown";
const TAG_UNAVAILABLE: &str = "recipient-verify:unavailable";

/// The tag for an answer named `valid`, `unknown` or `unavailable`.
pub fn tag_for(name: &str) -> Option<&'static str> {
    [TAG_VALID, TAG_UNKNOWN, TAG_UNAVAILABLE].into_iter().find(|tag| tag.strip_prefix(TAG_PREFIX) == Some(name))
}

const UNAVAILABLE: Reply = Reply::new(451, Status(4, 4, 3), "Recipient verification is unavailable, try again later");

impl Check {
    pub fn verdict(&self) -> Verdict {
        match &self.answer {
            Answer::Valid { .. } => Verdict::Accept { tag: TAG_VALID },
            Answer::Unknown { said } => Verdict::Refuse(Reply::owned(550, Status(5, 1, 1), unknown_text(said))),
            Answer::Unavailable { .. } => match self.on_unavailable {
                OnUnavailable::Tempfail => Verdict::Refuse(UNAVAILABLE),
                OnUnavailable::Accept => Verdict::Accept { tag: TAG_UNAVAILABLE },
            },
        }
    }
}

/// The mail server's own words without its codes (we send ours), or ours.
fn unknown_text(said: &str) -> String {
    let mut words = said.splitn(3, ' ');
    let code = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    let text = match rest.as_slice() {
        [status, text] if status.split('.').count() == 3 && status.starts_with('5') => text.to_string(),
        _ if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) => rest.join(" "),
        _ => said.to_string(),
    };
    if text.trim().is_empty() { "Recipient address rejected: unknown user".to_string() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_reply;

    fn reply(wire: &str) -> Reply {
        parse_reply(wire.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn replies_are_classified_like_verify8() {
        assert_eq!(classify(&reply("250 2.1.5 Ok\r\n")).name(), "valid");
        assert_eq!(classify(&reply("251 2.1.5 will forward\r\n")).name(), "valid");
        for unknown in ["550 5.1.1 <x@example.com>: User unknown\r\n", "551 not here\r\n", "553 5.1.3 bad\r\n"] {
            assert_eq!(classify(&reply(unknown)).name(), "unknown", "{unknown}");
        }
        for unclear in ["450 4.2.0 greylisted\r\n", "452 4.5.3 too many\r\n", "552 5.2.2 full\r\n", "554 5.7.1 no\r\n"]
        {
            assert_eq!(classify(&reply(unclear)).name(), "unavailable", "{unclear}");
        }
    }

    #[test]
    fn unknown_recipients_get_5_1_1_with_the_servers_words() {
        let said = classify(&reply("550 5.1.1 <x@example.com>: Recipient address rejected: User unknown\r\n"));
        let check = Check {
            route: "mailstore".into(),
            answer: said,
            source: Source::Callout,
            on_unavailable: OnUnavailable::Tempfail,
        };
        let Verdict::Refuse(refusal) = check.verdict() else { panic!("accepted") };
        assert_eq!((refusal.code, refusal.status), (550, Some(Status(5, 1, 1))));
        assert_eq!(refusal.text, "<x@example.com>: Recipient address rejected: User unknown");
        let bare = Check { answer: classify(&reply("550 no such user\r\n")), ..check.clone() };
        let Verdict::Refuse(refusal) = bare.verdict() else { panic!("accepted") };
        assert_eq!(refusal.text, "no such user");
    }

    #[test]
    fn unavailable_follows_the_policy() {
        let mut check = Check {
            route: "r".into(),
            answer: Answer::Unavailable { why: "connection refused".into() },
            source: Source::Callout,
            on_unavailable: OnUnavailable::Tempfail,
        };
        let Verdict::Refuse(refusal) = check.verdict() else { panic!("accepted") };
        assert_eq!((refusal.code, refusal.status), (451, Some(Status(4, 4, 3))));
        check.on_unavailable = OnUnavailable::Accept;
        assert_eq!(check.verdict(), Verdict::Accept { tag: "recipient-verify:unavailable" });
        assert_eq!(tag_for("valid"), Some("recipient-verify:valid"));
        assert_eq!(tag_for("maybe"), None);
    }
}
