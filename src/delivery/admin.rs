//! Queue administration (`sluice queue retry|hold|release|delete|bounce`). With a
//! server running, requests go to its scheduler through [`super::control`]; with the
//! queue lock free, they are applied here directly.

use serde::{Deserialize, Serialize};

use super::notices;
use crate::config::Config;
use crate::mail::QueueId;
use crate::queue::{Hold, Queue};

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
}

/// Applies a request to a queue no server holds.
pub async fn apply_offline(config: &Config, queue: &Queue, request: &AdminRequest) -> AdminReply {
    let ids: Vec<QueueId> = if request.all {
        queue.entries().iter().map(|e| e.envelope.id).collect()
    } else {
        let mut ids = Vec::new();
        for text in &request.ids {
            match text.parse::<QueueId>() {
                Ok(id) => ids.push(id),
                Err(e) => return AdminReply { results: vec![ItemResult::error(text, e)] },
            }
        }
        ids
    };
    let mut results = Vec::new();
    for id in ids {
        let result = apply_one(config, queue, request.action, id, request.all).await;
        if let Some(result) = result {
            results.push(result);
        }
    }
    AdminReply { results }
}

async fn apply_one(config: &Config, queue: &Queue, action: AdminAction, id: QueueId, all: bool) -> Option<ItemResult> {
    let Some(mut entry) = queue.get(id) else {
        return Some(ItemResult::error(&id.to_string(), "no such message in the queue"));
    };
    let skip = |why: &str| if all { None } else { Some(ItemResult::error(&id.to_string(), why)) };
    let written = |result: std::io::Result<()>, done: &str| match result {
        Ok(()) => Some(ItemResult::ok(id, done)),
        Err(e) => Some(ItemResult::error(&id.to_string(), format!("cannot update the queue: {e}"))),
    };
    let state = &mut entry.state;
    match action {
        AdminAction::Retry => {
            if state.hold.is_some() {
                return skip("the message is held; release it first");
            }
            state.next_attempt_ms = None;
            written(queue.set_state(id, state.clone()).await, "will be delivered as soon as the server starts")
        }
        AdminAction::Hold => {
            if state.hold.is_some() {
                return skip("the message is already held");
            }
            state.hold = Some(Hold::Held);
            written(queue.set_state(id, state.clone()).await, "held")
        }
        AdminAction::Release => {
            if state.hold.is_none() {
                return skip("the message is not held");
            }
            state.hold = None;
            state.next_attempt_ms = None;
            written(queue.set_state(id, state.clone()).await, "released")
        }
        AdminAction::Delete => written(queue.remove(id).await, "deleted"),
        AdminAction::Bounce => {
            let count = entry.envelope.recipients.len();
            if (0..count).all(|i| state.recipient(i).is_final()) {
                return skip("no recipient is pending");
            }
            let now = super::now_secs();
            notices::bounce_pending(&entry.envelope, state, now);
            let lines = notices::owed(&entry.envelope, state, None, now);
            if !lines.is_empty() {
                if let Err(e) = notices::send(queue, &config.server.hostname, &entry, &lines, None).await {
                    return Some(ItemResult::error(&id.to_string(), e));
                }
                notices::mark_sent(&mut entry.state, &lines);
            }
            written(queue.remove(id).await, "returned to the sender")
        }
    }
}
