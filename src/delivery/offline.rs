//! Admin requests applied to a queue no server holds (the queue lock is free), by
//! the rules in [`super::admin`].

use super::admin::{Activity, AdminAction, AdminReply, AdminRequest, ItemResult, Step, Subject, decide};
use super::notices;
use crate::clock::Clock;
use crate::config::Config;
use crate::mail::QueueId;
use crate::queue::{Entry, Hold, Queue};

/// Applies a request to a queue no server holds.
pub async fn apply(config: &Config, queue: &Queue, clock: &dyn Clock, request: &AdminRequest) -> AdminReply {
    let ids: Vec<QueueId> = if request.all {
        queue.entries().iter().map(|e| e.envelope.id).collect()
    } else {
        match request.parse_ids() {
            Ok(ids) => ids,
            Err(reply) => return reply,
        }
    };
    let mut results = Vec::new();
    for id in ids {
        if let Some(result) = apply_one(config, queue, clock, request.action, id, request.all).await {
            results.push(result);
        }
    }
    AdminReply { results }
}

fn subject(entry: &Entry) -> Subject {
    let held = entry.state.hold.is_some();
    Subject {
        // Nothing is under way without a server.
        activity: if held { Activity::Held } else { Activity::Waiting },
        held,
        pending: (0..entry.envelope.recipients.len()).any(|i| !entry.state.recipient(i).is_final()),
    }
}

async fn apply_one(
    config: &Config,
    queue: &Queue,
    clock: &dyn Clock,
    action: AdminAction,
    id: QueueId,
    all: bool,
) -> Option<ItemResult> {
    let Some(mut entry) = queue.get(id) else { return Some(ItemResult::not_found(id)) };
    let step = match decide(action, subject(&entry)) {
        Ok(step) => step,
        Err(why) => return ItemResult::skipped(id, why, all),
    };
    let state = &mut entry.state;
    let (write, done) = match step {
        Step::DeliverNow => {
            state.next_attempt_ms = None;
            (queue.set_state(id, state.clone()).await, "will be delivered as soon as the server starts")
        }
        Step::Hold => {
            state.hold = Some(Hold::Held);
            (queue.set_state(id, state.clone()).await, "held")
        }
        Step::Release => {
            state.hold = None;
            state.next_attempt_ms = None;
            (queue.set_state(id, state.clone()).await, "released")
        }
        Step::Delete => (queue.remove(id).await, "deleted"),
        Step::Bounce | Step::BounceAfterAttempt => {
            let now = clock.now_secs();
            notices::bounce_pending(&entry.envelope, state, now);
            let lines = notices::owed(&entry.envelope, state, None, now);
            if !lines.is_empty() {
                if let Err(e) = notices::send(queue, &config.server.hostname, &entry, &lines, None, now).await {
                    return Some(ItemResult::error(&id.to_string(), e));
                }
                notices::mark_sent(&mut entry.state, &lines);
            }
            (queue.remove(id).await, "returned to the sender")
        }
    };
    Some(match write {
        Ok(()) => ItemResult::ok(id, done),
        Err(e) => ItemResult::error(&id.to_string(), format!("cannot update the queue: {e}")),
    })
}
