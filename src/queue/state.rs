//! The mutable part of a queued message, kept beside its immutable envelope and body:
//! whether it is held, and where delivery stands for each recipient. Every field has a
//! serde default, so records written by older versions still decode.

use serde::{Deserialize, Serialize};

use crate::wire::Status;

/// Why a message waits instead of being delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Hold {
    /// Put on hold by an administrator.
    Held,
    /// Held by a plugin's verdict, for an administrator to look at.
    Quarantined { reason: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    /// One entry per envelope recipient, in the same order; empty until the first
    /// delivery attempt, which means every recipient is still pending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RecipientState>,
    /// Delivery attempts made so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// When the next attempt is due, in Unix milliseconds; `None` means now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_ms: Option<u64>,
    /// The error of the last attempt that left recipients pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// A delay warning (RFC 3464 `Action: delayed`) went to the sender.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delay_warned: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl MessageState {
    /// The state of recipient `index`, pending if no attempt recorded one yet.
    pub fn recipient(&self, index: usize) -> RecipientState {
        self.recipients.get(index).cloned().unwrap_or_default()
    }

    /// The status of recipient `index`, without copying its state.
    pub fn status(&self, index: usize) -> RecipientStatus {
        self.recipients.get(index).map_or(RecipientStatus::Pending, |r| r.status)
    }

    /// Whether any of the envelope's `count` recipients is still pending.
    pub fn has_pending(&self, count: usize) -> bool {
        (0..count).any(|i| self.status(i) == RecipientStatus::Pending)
    }

    /// Makes `recipients` hold one entry per envelope recipient.
    pub fn ensure_recipients(&mut self, count: usize) -> &mut [RecipientState] {
        if self.recipients.len() < count {
            self.recipients.resize(count, RecipientState::default());
        }
        &mut self.recipients[..count]
    }
}

/// Where one recipient stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientStatus {
    /// Not delivered yet; the next attempt tries again.
    #[default]
    Pending,
    /// Accepted by the next hop (or by us, for `NOTIFY=NEVER` bounces); never sent again.
    Delivered,
    /// Permanently failed (or expired); never sent again.
    Failed,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientState {
    #[serde(default)]
    pub status: RecipientStatus,
    /// The last reply or error concerning this recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<Diagnostic>,
    /// Whatever notice the sender is owed about this recipient's final status (a bounce,
    /// a success DSN) has been queued, or none is owed. A message is removed only when
    /// every recipient is final and notified, so a crash never loses a bounce.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notified: bool,
    /// The next hop took RFC 3461 parameters for this recipient: notices are its job now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub relayed_dsn: bool,
    /// When the status became final, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_at: Option<u64>,
}

impl RecipientState {
    pub fn is_final(&self) -> bool {
        self.status != RecipientStatus::Pending
    }
}

/// A reply or error as a DSN reports it (RFC 3464 Status, Remote-MTA, Diagnostic-Code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// RFC 3463 enhanced status, e.g. `5.1.1`; stored as that text.
    pub status: Status,
    /// The remote server's reply (`550 5.1.1 no such user`) when `smtp` is set; our own
    /// explanation otherwise.
    pub text: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub smtp: bool,
    /// The host that answered, as named in DNS or the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_mta: Option<String>,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.remote_mta {
            Some(host) if self.smtp => write!(f, "{host} said: {}", self.text),
            Some(host) => write!(f, "{host}: {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_decode_and_defaults_stay_small() {
        let old: MessageState = serde_json::from_str(r#"{"hold":{"kind":"held"}}"#).unwrap();
        assert_eq!(old.hold, Some(Hold::Held));
        assert!(old.recipients.is_empty());
        assert_eq!(serde_json::to_string(&MessageState::default()).unwrap(), "{}");
        let mut state = MessageState::default();
        state.ensure_recipients(2)[1].status = RecipientStatus::Delivered;
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(text, r#"{"recipients":[{"status":"pending"},{"status":"delivered"}]}"#);
        assert_eq!(serde_json::from_str::<MessageState>(&text).unwrap(), state);
    }

    #[test]
    fn recipients_without_an_entry_are_pending() {
        let mut state = MessageState::default();
        assert!(state.has_pending(1));
        assert!(!state.has_pending(0));
        state.ensure_recipients(1)[0].status = RecipientStatus::Failed;
        assert!(!state.has_pending(1));
        assert!(state.has_pending(2), "the second has no entry yet");
        assert_eq!((state.status(0), state.status(1)), (RecipientStatus::Failed, RecipientStatus::Pending));
    }
}
