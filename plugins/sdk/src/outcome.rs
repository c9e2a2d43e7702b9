//! Constructors for what hooks return.

use crate::bindings::exports::sluice::plugin::hooks::{
    DataResult, HeaderChange, MailFromResult, RcptToResult, RecipientAction,
};
use crate::bindings::sluice::plugin::types::{Outcome, Reply, Route, Verdict};

fn reply(code: u16, enhanced_code: &str, text: impl Into<String>) -> Reply {
    Reply { code, enhanced_code: enhanced_code.to_string(), text: text.into() }
}

impl Outcome {
    fn with(verdict: Verdict) -> Outcome {
        Outcome { verdict, tags: Vec::new(), score: 0.0, annotations: Vec::new() }
    }

    /// No objection (WIT `continue`).
    pub fn proceed() -> Outcome {
        Outcome::with(Verdict::Continue)
    }

    /// Accept for this stage: later plugins are skipped.
    pub fn accept() -> Outcome {
        Outcome::with(Verdict::Accept)
    }

    /// Refuse permanently: `code` 5xx, `enhanced` like "5.7.1".
    pub fn reject(code: u16, enhanced: &str, text: impl Into<String>) -> Outcome {
        Outcome::with(Verdict::Reject(reply(code, enhanced, text)))
    }

    /// Refuse temporarily: `code` 4xx, `enhanced` like "4.7.1".
    pub fn tempfail(code: u16, enhanced: &str, text: impl Into<String>) -> Outcome {
        Outcome::with(Verdict::Tempfail(reply(code, enhanced, text)))
    }

    /// Reply (421 or 5xx) and close the connection.
    pub fn disconnect(code: u16, enhanced: &str, text: impl Into<String>) -> Outcome {
        Outcome::with(Verdict::Disconnect(reply(code, enhanced, text)))
    }

    /// Accept the message, then drop it.
    pub fn discard() -> Outcome {
        Outcome::with(Verdict::Discard)
    }

    /// Accept the message, then hold it in the queue.
    pub fn quarantine(reason: impl Into<String>) -> Outcome {
        Outcome::with(Verdict::Quarantine(reason.into()))
    }

    pub fn tag(mut self, tag: impl Into<String>) -> Outcome {
        self.tags.push(tag.into());
        self
    }

    /// Adds to the transaction's score.
    pub fn score(mut self, score: f64) -> Outcome {
        self.score += score;
        self
    }

    pub fn annotate(mut self, key: impl Into<String>, value: impl Into<String>) -> Outcome {
        self.annotations.push((key.into(), value.into()));
        self
    }

    pub fn is_proceed(&self) -> bool {
        matches!(self.verdict, Verdict::Continue)
    }
}

impl From<Outcome> for MailFromResult {
    fn from(outcome: Outcome) -> Self {
        MailFromResult { outcome, new_sender: None }
    }
}

impl MailFromResult {
    /// Replaces the sender (`""` for the null sender).
    pub fn with_sender(mut self, sender: impl Into<String>) -> Self {
        self.new_sender = Some(sender.into());
        self
    }
}

impl From<Outcome> for RcptToResult {
    fn from(outcome: Outcome) -> Self {
        RcptToResult { outcome, action: RecipientAction::Keep, add_recipients: Vec::new() }
    }
}

impl RcptToResult {
    pub fn rewrite(mut self, address: impl Into<String>) -> Self {
        self.action = RecipientAction::Rewrite(address.into());
        self
    }

    /// Drops the recipient silently (the client is told it was accepted).
    pub fn drop_recipient(mut self) -> Self {
        self.action = RecipientAction::Drop;
        self
    }

    pub fn add_recipient(mut self, address: impl Into<String>) -> Self {
        self.add_recipients.push(address.into());
        self
    }
}

impl From<Outcome> for DataResult {
    fn from(outcome: Outcome) -> Self {
        DataResult {
            outcome,
            header_changes: Vec::new(),
            new_body: None,
            add_recipients: Vec::new(),
            remove_recipients: Vec::new(),
            route: None,
        }
    }
}

impl DataResult {
    /// Adds a header field at the end of the header section.
    pub fn add_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.header_changes.push(HeaderChange::Add((name.into(), value.into())));
        self
    }

    /// Replaces every `name` field by one with `value`.
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.header_changes.push(HeaderChange::Set((name.into(), value.into())));
        self
    }

    pub fn remove_header(mut self, name: impl Into<String>) -> Self {
        self.header_changes.push(HeaderChange::Remove(name.into()));
        self
    }

    /// Replaces the body (everything after the header section).
    pub fn replace_body(mut self, body: Vec<u8>) -> Self {
        self.new_body = Some(body);
        self
    }

    pub fn add_recipient(mut self, address: impl Into<String>) -> Self {
        self.add_recipients.push(address.into());
        self
    }

    pub fn remove_recipient(mut self, address: impl Into<String>) -> Self {
        self.remove_recipients.push(address.into());
        self
    }

    /// Sends the message through a named `[[route]]`.
    pub fn route(mut self, name: impl Into<String>) -> Self {
        self.route = Some(Route::Named(name.into()));
        self
    }

    /// Sends the message to this next hop (`host` or `host:port`).
    pub fn next_hop(mut self, hop: impl Into<String>) -> Self {
        self.route = Some(Route::NextHop(hop.into()));
        self
    }
}
