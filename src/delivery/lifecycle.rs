//! Where a message goes after an attempt, a notice or an admin bounce: first the
//! notices it owes, then removal once every recipient is final and told, else its
//! next attempt; expiry (`max_age`) and the delay warning are applied on the way.
//! No I/O and no clock of its own: the caller passes the time.

use std::time::Duration;

use super::dsn::Action;
use super::notices;
use super::outcome::RcptOutcome;
use super::retry::RetryPolicy;
use crate::mail::Envelope;
use crate::queue::{Diagnostic, MessageState, RecipientStatus};
use crate::wire::Status;

/// The time rules of `[queue]`.
pub struct Lifecycle<'a> {
    pub retry: &'a RetryPolicy,
    pub delay_warning: Option<Duration>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Queue these notices, then settle again. `retry_until`: when the message
    /// expires (Unix seconds), for delay notices.
    Notify { lines: Vec<(usize, Action)>, retry_until: u64 },
    /// Every recipient is final and its sender told: remove the message.
    Remove,
    /// Attempt again at this time (Unix ms), unless held; recorded in the state.
    Retry { at_ms: u64 },
}

impl Lifecycle<'_> {
    /// Updates `state` for `now_ms` (bouncing what is pending when an admin asked, or
    /// once the message has expired) and says what comes next.
    pub fn settle(&self, envelope: &Envelope, state: &mut MessageState, bounce: bool, now_ms: u64) -> Next {
        let now = now_ms / 1000;
        state.ensure_recipients(envelope.recipients.len());
        if bounce {
            notices::bounce_pending(envelope, state, now);
        }
        let expires_ms = self.retry.expires_ms(envelope.arrived);
        if now_ms >= expires_ms && expire(state, self.retry.max_age(), now) {
            tracing::info!(id = %envelope.id, "message expired");
        }
        let lines = notices::owed(envelope, state, self.delay_warning, now);
        if !lines.is_empty() {
            return Next::Notify { lines, retry_until: expires_ms / 1000 };
        }
        if state.recipients.iter().all(|r| r.is_final() && r.notified) {
            return Next::Remove;
        }
        let at_ms = self.retry.next_attempt_ms(state.attempts, now_ms, envelope.arrived);
        state.next_attempt_ms = Some(at_ms);
        state.last_error = state
            .recipients
            .iter()
            .filter(|r| !r.is_final())
            .find_map(|r| r.diagnostic.as_ref())
            .map(|d| d.to_string());
        Next::Retry { at_ms }
    }
}

/// Records an attempt's results for the envelope's `count` recipients at `now` (Unix
/// seconds). A recipient already final stays as it is.
pub fn record(state: &mut MessageState, count: usize, results: Vec<(usize, RcptOutcome)>, now: u64) {
    let recipients = state.ensure_recipients(count);
    for (index, outcome) in results {
        let Some(r) = recipients.get_mut(index) else { continue };
        if r.is_final() {
            continue;
        }
        match outcome {
            RcptOutcome::Delivered { diagnostic, relayed_dsn } => {
                r.status = RecipientStatus::Delivered;
                r.diagnostic = Some(diagnostic);
                r.relayed_dsn = relayed_dsn;
                r.final_at = Some(now);
            }
            RcptOutcome::Deferred(diagnostic) => r.diagnostic = Some(diagnostic),
            RcptOutcome::Failed(diagnostic) => {
                r.status = RecipientStatus::Failed;
                r.diagnostic = Some(diagnostic);
                r.final_at = Some(now);
            }
        }
    }
}

/// Fails every pending recipient with "delivery time expired", keeping the last
/// error; says whether there was any.
fn expire(state: &mut MessageState, max_age: Duration, now: u64) -> bool {
    let age = humanize(max_age);
    let mut any = false;
    for r in state.recipients.iter_mut().filter(|r| !r.is_final()) {
        any = true;
        let last = r.diagnostic.take();
        r.status = RecipientStatus::Failed;
        r.final_at = Some(now);
        r.diagnostic = Some(Diagnostic {
            status: Status(4, 4, 7),
            text: match &last {
                Some(last) => format!("delivery time expired after {age}; last error: {last}"),
                None => format!("delivery time expired after {age}"),
            },
            smtp: false,
            remote_mta: last.and_then(|d| d.remote_mta),
        });
    }
    any
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 && s > 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{QueueConfig, TimeSpan};
    use crate::delivery::outcome::local;
    use crate::mail::QueueId;
    use crate::mail::envelope::test_envelope;

    const ARRIVED: u64 = 1_700_000_000;
    const AT_ARRIVAL: u64 = ARRIVED * 1000;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(&QueueConfig {
            path: "q".into(),
            retry: vec![TimeSpan::secs(60)],
            max_age: TimeSpan::secs(2 * 86_400),
            delay_warning: None,
        })
    }

    fn deferred(state: &mut MessageState, text: &str, now_ms: u64) {
        record(state, 1, vec![(0, RcptOutcome::Deferred(local(Status(4, 4, 1), text)))], now_ms / 1000);
    }

    #[test]
    fn a_deferred_recipient_waits_and_keeps_its_error() {
        let (retry, envelope) = (policy(), test_envelope(QueueId::from_micros(1)));
        let rules = Lifecycle { retry: &retry, delay_warning: None };
        let mut state = MessageState { attempts: 1, ..MessageState::default() };
        deferred(&mut state, "refused", AT_ARRIVAL);
        assert_eq!(rules.settle(&envelope, &mut state, false, AT_ARRIVAL), Next::Retry { at_ms: AT_ARRIVAL + 60_000 });
        assert_eq!((state.next_attempt_ms, state.last_error.as_deref()), (Some(AT_ARRIVAL + 60_000), Some("refused")));
    }

    #[test]
    fn expiry_fails_what_is_pending_and_owes_a_bounce() {
        let (retry, envelope) = (policy(), test_envelope(QueueId::from_micros(1)));
        let rules = Lifecycle { retry: &retry, delay_warning: None };
        let mut state = MessageState::default();
        let expiry = AT_ARRIVAL + 2 * 86_400_000;
        deferred(&mut state, "refused", expiry - 1);
        assert!(
            matches!(rules.settle(&envelope, &mut state, false, expiry - 1), Next::Retry { at_ms } if at_ms == expiry)
        );
        assert_eq!(
            rules.settle(&envelope, &mut state, false, expiry),
            Next::Notify { lines: vec![(0, Action::Failed)], retry_until: expiry / 1000 }
        );
        let diagnostic = state.recipients[0].diagnostic.as_ref().unwrap();
        assert_eq!(diagnostic.text, "delivery time expired after 2d; last error: refused");
        notices::mark_sent(&mut state, &[(0, Action::Failed)]);
        assert_eq!(rules.settle(&envelope, &mut state, false, expiry), Next::Remove);
    }

    #[test]
    fn an_admin_bounce_fails_pending_recipients_now_and_final_ones_stay() {
        let (retry, mut envelope) = (policy(), test_envelope(QueueId::from_micros(1)));
        envelope.recipients.push(envelope.recipients[0].clone());
        let rules = Lifecycle { retry: &retry, delay_warning: Some(Duration::from_secs(60)) };
        let mut state = MessageState::default();
        let ok = RcptOutcome::Delivered { diagnostic: local(Status(2, 0, 0), "ok"), relayed_dsn: true };
        record(&mut state, 2, vec![(0, ok.clone())], ARRIVED);
        record(&mut state, 2, vec![(0, RcptOutcome::Failed(local(Status(5, 1, 1), "late")))], ARRIVED);
        assert_eq!(state.recipients[0].status, RecipientStatus::Delivered, "a final status never changes");
        let next = rules.settle(&envelope, &mut state, true, AT_ARRIVAL + 1000);
        assert_eq!(next, Next::Notify { lines: vec![(1, Action::Failed)], retry_until: ARRIVED + 2 * 86_400 });
        assert_eq!(state.recipients[1].diagnostic.as_ref().unwrap().status.to_string(), "5.0.0");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let text: Vec<String> = [90, 120, 7200, 86_400 * 5, 0].map(|s| humanize(Duration::from_secs(s))).into();
        assert_eq!(text, ["90s", "2m", "2h", "5d", "0s"]);
    }
}
