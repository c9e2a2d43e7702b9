//! Queue administration (`sluice queue retry|hold|release|delete|bounce`): the
//! requests and answers, and the one rule book saying what an action does to a
//! message in each state. With a server running, requests go to its scheduler through
//! [`super::control`]; with the queue lock free, [`super::offline`] applies them.

use serde::{Deserialize, Serialize};

use crate::mail::QueueId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminAction {
    /// Deliver now.
    Retry,
    Hold,
    Release,
    Delete,
    /// Return to the sender now, then remove.
    Bounce,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRequest {
    pub action: AdminAction,
    #[serde(default)]
    pub ids: Vec<String>,
    /// Every message (only `retry` offers this on the command line).
    #[serde(default)]
    pub all: bool,
}

impl AdminRequest {
    /// The ids the request names, or an answer listing those that are not ids.
    pub fn parse_ids(&self) -> Result<Vec<QueueId>, AdminReply> {
        let mut ids = Vec::with_capacity(self.ids.len());
        let mut results = Vec::new();
        for text in &self.ids {
            match text.parse::<QueueId>() {
                Ok(id) => ids.push(id),
                Err(e) => results.push(ItemResult::error(text, e)),
            }
        }
        if results.is_empty() { Ok(ids) } else { Err(AdminReply { results }) }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminReply {
    pub results: Vec<ItemResult>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResult {
    pub id: String,
    pub ok: bool,
    pub message: String,
}

impl ItemResult {
    pub fn ok(id: QueueId, message: impl Into<String>) -> ItemResult {
        ItemResult { id: id.to_string(), ok: true, message: message.into() }
    }
    pub fn error(id: &str, message: impl std::fmt::Display) -> ItemResult {
        ItemResult { id: id.to_string(), ok: false, message: message.to_string() }
    }
    pub fn not_found(id: QueueId) -> ItemResult {
        ItemResult::error(&id.to_string(), "no such message in the queue")
    }
    /// An action that does not apply: reported for a named message, silent when the
    /// request was for every message.
    pub fn skipped(id: QueueId, why: &str, all: bool) -> Option<ItemResult> {
        (!all).then(|| ItemResult::error(&id.to_string(), why))
    }
}

/// What a message is doing when an admin action reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Waiting for its next attempt (offline: for the server to start).
    Waiting,
    /// Held: no attempts until released.
    Held,
    /// An attempt or a notice is under way.
    Busy,
    /// Finished; its removal is under way.
    Removing,
}

/// The facts about a message that decide what an action does to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject {
    pub activity: Activity,
    /// Marked held in its state (a busy message may be).
    pub held: bool,
    /// Some recipient has no final status yet.
    pub pending: bool,
}

/// What to do to the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Attempt delivery now.
    DeliverNow,
    /// Mark it held; a waiting message stops waiting.
    Hold,
    /// Clear the hold and the time of the next attempt; a held message waits again.
    Release,
    Delete,
    /// Fail the pending recipients, notify the sender, remove.
    Bounce,
    /// The same, once the attempt under way has reported.
    BounceAfterAttempt,
}

/// The rule book, shared by the scheduler and the offline path: `Ok` says what to
/// do, `Err` why the action does not apply.
pub fn decide(action: AdminAction, subject: Subject) -> Result<Step, &'static str> {
    use Activity::{Busy, Held, Removing, Waiting};
    if subject.activity == Removing {
        return Err("the message is finished and being removed");
    }
    match action {
        AdminAction::Retry => match subject.activity {
            Waiting => Ok(Step::DeliverNow),
            Held => Err("the message is held; release it first"),
            Busy | Removing => Err("the message is being delivered right now"),
        },
        AdminAction::Hold if subject.held => Err("the message is already held"),
        AdminAction::Hold => Ok(Step::Hold),
        AdminAction::Release if !subject.held => Err("the message is not held"),
        AdminAction::Release => Ok(Step::Release),
        AdminAction::Delete => Ok(Step::Delete),
        AdminAction::Bounce if !subject.pending => Err("no recipient is pending"),
        AdminAction::Bounce if subject.activity == Busy => Ok(Step::BounceAfterAttempt),
        AdminAction::Bounce => Ok(Step::Bounce),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIONS: [AdminAction; 5] =
        [AdminAction::Retry, AdminAction::Hold, AdminAction::Release, AdminAction::Delete, AdminAction::Bounce];

    fn subject(activity: Activity, held: bool, pending: bool) -> Subject {
        Subject { activity, held, pending }
    }

    #[test]
    fn waiting_messages_take_every_action_but_release() {
        let waiting = subject(Activity::Waiting, false, true);
        let steps: Vec<_> = ACTIONS.iter().map(|&a| decide(a, waiting)).collect();
        assert_eq!(
            steps,
            [Ok(Step::DeliverNow), Ok(Step::Hold), Err("the message is not held"), Ok(Step::Delete), Ok(Step::Bounce)]
        );
    }

    #[test]
    fn held_messages_must_be_released_before_a_retry() {
        let held = subject(Activity::Held, true, true);
        assert_eq!(decide(AdminAction::Retry, held), Err("the message is held; release it first"));
        assert_eq!(decide(AdminAction::Hold, held), Err("the message is already held"));
        assert_eq!(decide(AdminAction::Release, held), Ok(Step::Release));
        assert_eq!(decide(AdminAction::Delete, held), Ok(Step::Delete));
        assert_eq!(decide(AdminAction::Bounce, held), Ok(Step::Bounce));
    }

    #[test]
    fn busy_messages_bounce_after_the_attempt_and_cannot_be_retried() {
        let busy = subject(Activity::Busy, false, true);
        assert_eq!(decide(AdminAction::Retry, busy), Err("the message is being delivered right now"));
        assert_eq!(decide(AdminAction::Bounce, busy), Ok(Step::BounceAfterAttempt));
        assert_eq!(decide(AdminAction::Hold, busy), Ok(Step::Hold));
        assert_eq!(decide(AdminAction::Delete, busy), Ok(Step::Delete));
        let held_in_flight = subject(Activity::Busy, true, true);
        assert_eq!(decide(AdminAction::Hold, held_in_flight), Err("the message is already held"));
        assert_eq!(decide(AdminAction::Release, held_in_flight), Ok(Step::Release));
    }

    #[test]
    fn nothing_applies_to_a_message_being_removed() {
        for held in [false, true] {
            let removing = subject(Activity::Removing, held, false);
            for action in ACTIONS {
                assert_eq!(decide(action, removing), Err("the message is finished and being removed"), "{action:?}");
            }
        }
    }

    #[test]
    fn only_pending_recipients_can_be_bounced() {
        for activity in [Activity::Waiting, Activity::Held, Activity::Busy] {
            let done = subject(activity, activity == Activity::Held, false);
            assert_eq!(decide(AdminAction::Bounce, done), Err("no recipient is pending"), "{activity:?}");
        }
    }

    #[test]
    fn skips_are_silent_for_all_and_bad_ids_are_all_reported() {
        let id = QueueId::from_micros(0x1234);
        assert_eq!(ItemResult::skipped(id, "why", true), None);
        assert_eq!(ItemResult::skipped(id, "why", false), Some(ItemResult::error("0000000001234", "why")));
        let request =
            AdminRequest { action: AdminAction::Hold, ids: vec!["1A".into(), "x".into(), "y".into()], all: false };
        let reply = request.parse_ids().unwrap_err();
        assert_eq!(reply.results.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["x", "y"]);
        let request = AdminRequest { ids: vec!["1A".into()], ..request };
        assert_eq!(request.parse_ids(), Ok(vec![QueueId::from_micros(0x1A)]));
    }
}
