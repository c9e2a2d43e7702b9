//! Which notices a message owes its sender once recipients reach a final status (or
//! wait long enough for a delay warning), and sending them. Used by the scheduler and
//! by the offline `sluice queue bounce`.

use std::time::Duration;

use super::dsn::{self, Action, Line, Notice};
use super::outcome::local;
use crate::mail::Envelope;
use crate::queue::{Entry, MessageState, Queue, RecipientStatus};
use crate::wire::Status;

/// Notices owed now: final recipients not yet notified (those whose sender asked for
/// nothing, or whose sender is `<>`, are marked notified on the way), plus pending
/// ones for a delay warning once `delay_warning` has passed.
pub fn owed(
    envelope: &Envelope,
    state: &mut MessageState,
    delay_warning: Option<Duration>,
    now: u64,
) -> Vec<(usize, Action)> {
    let count = envelope.recipients.len();
    let null_sender = envelope.sender.is_none();
    let mut lines = Vec::new();
    for (i, r) in state.ensure_recipients(count).iter_mut().enumerate() {
        if !r.is_final() || r.notified {
            continue;
        }
        let action = match r.status {
            RecipientStatus::Delivered if r.relayed_dsn => {
                r.notified = true;
                continue;
            }
            RecipientStatus::Delivered => Action::Relayed,
            _ => Action::Failed,
        };
        if null_sender || !dsn::wanted(envelope.recipients[i].params.notify, action) {
            r.notified = true;
            continue;
        }
        lines.push((i, action));
    }
    let age = Duration::from_secs(now.saturating_sub(envelope.arrived));
    if let Some(warn_after) = delay_warning
        && !state.delay_warned
        && age >= warn_after
    {
        let delayed: Vec<usize> = (0..count)
            .filter(|&i| !state.recipient(i).is_final())
            .filter(|&i| dsn::wanted(envelope.recipients[i].params.notify, Action::Delayed))
            .collect();
        if null_sender || delayed.is_empty() {
            state.delay_warned = true;
        } else {
            lines.extend(delayed.into_iter().map(|i| (i, Action::Delayed)));
        }
    }
    lines
}

/// Records that the notices in `lines` went out.
pub fn mark_sent(state: &mut MessageState, lines: &[(usize, Action)]) {
    for &(i, action) in lines {
        if action == Action::Delayed {
            state.delay_warned = true;
        } else if let Some(r) = state.recipients.get_mut(i) {
            r.notified = true;
        }
    }
}

/// Marks every pending recipient failed, as `sluice queue bounce` asks.
pub fn bounce_pending(envelope: &Envelope, state: &mut MessageState, now: u64) {
    let count = envelope.recipients.len();
    for r in state.ensure_recipients(count).iter_mut().filter(|r| !r.is_final()) {
        r.status = RecipientStatus::Failed;
        r.diagnostic = Some(local(Status(5, 0, 0), "returned to the sender by the mail administrator"));
        r.final_at = Some(now);
    }
}

/// Builds the notice and queues it; `now` (Unix seconds) is the last attempt and
/// the notice's arrival.
pub async fn send(
    queue: &Queue,
    reporting_mta: &str,
    entry: &Entry,
    lines: &[(usize, Action)],
    retry_until: Option<u64>,
    now: u64,
) -> Result<(), String> {
    let id = entry.envelope.id;
    let original = queue.read_message(id).map_err(|e| format!("cannot read message {id}: {e}"))?;
    let defaults = entry.state.clone();
    let notice_lines = lines
        .iter()
        .filter_map(|&(i, action)| {
            let recipient = entry.envelope.recipients.get(i)?;
            let state = defaults.recipients.get(i)?;
            Some(Line { recipient, state, action })
        })
        .collect();
    let notice = Notice {
        reporting_mta,
        envelope: &entry.envelope,
        lines: notice_lines,
        original: &original,
        retry_until,
        last_attempt: now,
    };
    match notice.queue(queue, now).await {
        Ok(Some(notice_id)) => {
            tracing::info!(%id, notice = %notice_id, recipients = lines.len(), "delivery status notice queued");
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(format!("cannot queue a notice for {id}: {e}")),
    }
}
