//! The scheduler: one task that knows every queued message's place (waiting for its
//! time, in delivery, being notified about, being removed), starts attempts when they
//! are due, records their results in the queue, and applies admin requests. It is the
//! only writer of delivery state, so writes for one message never race. The time
//! comes from the engine's clock; what the time means, from [`super::lifecycle`].

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;

use super::admin::{Activity, AdminAction, AdminReply, AdminRequest, ItemResult, Step, Subject, decide};
use super::dsn::Action;
use super::engine::Engine;
use super::event::{Event, Events};
use super::lifecycle::{self, Lifecycle, Next};
use super::outcome::RcptOutcome;
use super::retry::RetryPolicy;
use super::{attempt, notices};
use crate::mail::QueueId;
use crate::queue::{Entry, Hold, RecipientStatus};

/// Attempts running at once; more due messages wait their turn.
const MAX_IN_FLIGHT: usize = 10_000;
/// After a failed queue write or notice, try again this much later.
const LOCAL_RETRY: Duration = Duration::from_secs(60);
/// How long shutdown waits for attempts under way to finish and be recorded.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Held,
    InFlight,
    Notifying,
    Removing,
}

impl Phase {
    fn activity(self) -> Activity {
        match self {
            Phase::Waiting => Activity::Waiting,
            Phase::Held => Activity::Held,
            Phase::InFlight | Phase::Notifying => Activity::Busy,
            Phase::Removing => Activity::Removing,
        }
    }
}

struct Tracked {
    /// The envelope, where the bytes are, and the current state (authoritative: the
    /// queue's copy is what we last wrote).
    entry: Entry,
    phase: Phase,
    /// The timer entry while waiting.
    due: Option<u64>,
    /// An admin asked for a bounce while the message was busy.
    bounce: bool,
}

pub struct Scheduler {
    engine: Arc<Engine>,
    tracked: HashMap<QueueId, Tracked>,
    timers: BTreeSet<(u64, QueueId)>,
    in_flight: usize,
    events: Events,
    inbox: UnboundedReceiver<Event>,
    stored: UnboundedReceiver<QueueId>,
    retry: RetryPolicy,
    /// Queue writes not yet confirmed.
    writes: Arc<AtomicUsize>,
    shutdown: Option<(tokio::time::Instant, oneshot::Sender<()>)>,
}

type Durable = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

impl Scheduler {
    /// Takes over every message in the queue: the queue is the only source of truth.
    pub fn new(engine: Arc<Engine>, events: Events, inbox: UnboundedReceiver<Event>) -> Scheduler {
        // Subscribe first: a message stored meanwhile shows up twice, never not at all.
        let stored = engine.queue.subscribe();
        let retry = RetryPolicy::new(&engine.config.queue);
        let mut scheduler = Scheduler {
            engine,
            tracked: HashMap::new(),
            timers: BTreeSet::new(),
            in_flight: 0,
            events,
            inbox,
            stored,
            retry,
            writes: Arc::new(AtomicUsize::new(0)),
            shutdown: None,
        };
        let entries = scheduler.engine.queue.entries();
        tracing::info!(messages = entries.len(), "delivery scheduler started");
        for entry in entries {
            scheduler.track(entry);
        }
        scheduler
    }

    pub async fn run(mut self) {
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        loop {
            self.dispatch_due();
            if let Some((deadline, _)) = &self.shutdown
                && ((self.in_flight == 0 && self.busy() == 0 && self.writes.load(Ordering::Acquire) == 0)
                    || tokio::time::Instant::now() >= *deadline)
            {
                break;
            }
            let wait = match self.timers.first() {
                Some(&(due, _)) if self.in_flight < MAX_IN_FLIGHT && self.shutdown.is_none() => {
                    Duration::from_millis(due.saturating_sub(self.now_ms()))
                }
                _ => Duration::from_secs(3600),
            };
            tokio::select! {
                Some(id) = self.stored.recv() => self.on_stored(id),
                Some(event) = self.inbox.recv() => self.on_event(event),
                () = tokio::time::sleep(wait) => {}
                _ = sweep.tick() => self.engine.pool.sweep(),
            }
        }
        self.engine.pool.close_all().await;
        if let Some((_, done)) = self.shutdown.take() {
            let _ = done.send(());
        }
    }

    fn now_ms(&self) -> u64 {
        self.engine.clock.now_ms()
    }

    fn busy(&self) -> usize {
        self.tracked.values().filter(|t| matches!(t.phase, Phase::Notifying | Phase::Removing)).count()
    }

    fn track(&mut self, entry: Entry) {
        let id = entry.envelope.id;
        let held = entry.state.hold.is_some();
        let due = entry.state.next_attempt_ms.unwrap_or(0);
        self.tracked.insert(id, Tracked { entry, phase: Phase::Held, due: None, bounce: false });
        if !held {
            self.wait(id, due);
        }
    }

    /// Puts a tracked message in the waiting line for `due`.
    fn wait(&mut self, id: QueueId, due: u64) {
        let Some(t) = self.tracked.get_mut(&id) else { return };
        if let Some(old) = t.due.take() {
            self.timers.remove(&(old, id));
        }
        t.phase = Phase::Waiting;
        t.due = Some(due);
        self.timers.insert((due, id));
    }

    /// Waits `LOCAL_RETRY` after a local failure.
    fn wait_local_retry(&mut self, id: QueueId) {
        let due = self.now_ms() + LOCAL_RETRY.as_millis() as u64;
        self.wait(id, due);
    }

    fn unwait(&mut self, id: QueueId) {
        if let Some(t) = self.tracked.get_mut(&id)
            && let Some(old) = t.due.take()
        {
            self.timers.remove(&(old, id));
        }
    }

    fn on_stored(&mut self, id: QueueId) {
        if self.tracked.contains_key(&id) {
            return;
        }
        if let Some(entry) = self.engine.queue.get(id) {
            self.track(entry);
        }
    }

    fn dispatch_due(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        let now = self.now_ms();
        while self.in_flight < MAX_IN_FLIGHT {
            let Some(entry) = self.next_due(now) else { break };
            tokio::spawn(attempt::run(Arc::clone(&self.engine), entry, self.events.clone()));
        }
    }

    /// Takes the next message due at `now` (Unix ms) out of the waiting line and
    /// marks it in flight; returns what its attempt needs.
    fn next_due(&mut self, now: u64) -> Option<Entry> {
        loop {
            let &(due, id) = self.timers.first()?;
            if due > now {
                return None;
            }
            self.timers.pop_first();
            let Some(t) = self.tracked.get_mut(&id) else { continue };
            t.due = None;
            if t.phase != Phase::Waiting {
                continue;
            }
            t.phase = Phase::InFlight;
            if t.entry.state.has_pending(t.entry.envelope.recipients.len()) {
                t.entry.state.attempts += 1;
            }
            self.in_flight += 1;
            return Some(t.entry.clone());
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Outcomes { id, results, last } => self.on_outcomes(id, results, last),
            Event::Noticed { id, lines, result } => self.on_noticed(id, &lines, result),
            Event::Removed { id, result } => self.on_removed(id, result),
            Event::Admin { request, reply } => self.on_admin(request, reply),
            Event::Reload { engine } => {
                let old = std::mem::replace(&mut self.engine, engine);
                // Pooled connections belong to the old settings (TLS, timeouts).
                tokio::spawn(async move { old.pool.close_all().await });
                tracing::info!("delivery settings reloaded");
            }
            Event::Shutdown { done } => {
                tracing::info!(in_flight = self.in_flight, "delivery stopping");
                self.shutdown = Some((tokio::time::Instant::now() + SHUTDOWN_GRACE, done));
            }
        }
    }

    fn on_noticed(&mut self, id: QueueId, lines: &[(usize, Action)], result: Result<(), String>) {
        let Some(t) = self.tracked.get_mut(&id) else { return };
        if t.phase != Phase::Notifying {
            return;
        }
        match result {
            Ok(()) => {
                notices::mark_sent(&mut t.entry.state, lines);
                self.settle(id);
            }
            Err(error) => {
                tracing::error!(%id, %error, "cannot queue a delivery status notice; will retry");
                self.wait_local_retry(id);
            }
        }
    }

    fn on_removed(&mut self, id: QueueId, result: io::Result<()>) {
        match result {
            Ok(()) => {
                self.tracked.remove(&id);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.tracked.remove(&id);
            }
            Err(error) => {
                tracing::error!(%id, %error, "cannot remove a finished message; will retry");
                if self.tracked.get(&id).is_some_and(|t| t.phase == Phase::Removing) {
                    self.wait_local_retry(id);
                }
            }
        }
    }

    fn on_outcomes(&mut self, id: QueueId, results: Vec<(usize, RcptOutcome)>, last: bool) {
        if last {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        let now = self.engine.clock.now_secs();
        let Some(t) = self.tracked.get_mut(&id) else { return };
        if t.phase != Phase::InFlight {
            // Deleted meanwhile: the removal is under way.
            return;
        }
        lifecycle::record(&mut t.entry.state, t.entry.envelope.recipients.len(), results, now);
        if last {
            self.settle(id);
        } else {
            // Part of the message went out: record it now, so a crash before the
            // other destinations finish does not send this part again.
            let state = t.entry.state.clone();
            self.persist(self.engine.queue.set_state(id, state));
        }
    }

    /// Decides what happens to a message after an attempt (or a notice, or an admin
    /// request): notify, remove, or wait for the next attempt.
    fn settle(&mut self, id: QueueId) {
        let now_ms = self.now_ms();
        let rules =
            Lifecycle { retry: &self.retry, delay_warning: self.engine.config.queue.delay_warning.map(|t| t.get()) };
        let Some(t) = self.tracked.get_mut(&id) else { return };
        if t.phase == Phase::Removing {
            return;
        }
        let bounce = std::mem::take(&mut t.bounce);
        match rules.settle(&t.entry.envelope, &mut t.entry.state, bounce, now_ms) {
            Next::Notify { lines, retry_until } => {
                t.phase = Phase::Notifying;
                let entry = t.entry.clone();
                self.notify(entry, lines, retry_until, now_ms / 1000);
            }
            Next::Remove => {
                t.phase = Phase::Removing;
                let recipients = &t.entry.state.recipients;
                let delivered = recipients.iter().filter(|r| r.status == RecipientStatus::Delivered).count();
                tracing::info!(%id, delivered, failed = recipients.len() - delivered, "message done");
                drop(self.remove(id));
            }
            Next::Retry { at_ms } => {
                let held = t.entry.state.hold.is_some();
                if held {
                    t.phase = Phase::Held;
                }
                let snapshot = t.entry.state.clone();
                self.persist(self.engine.queue.set_state(id, snapshot));
                if !held {
                    self.wait(id, at_ms);
                }
            }
        }
    }

    /// Queues the notices in the background; the result comes back as `Noticed`.
    fn notify(&self, entry: Entry, lines: Vec<(usize, Action)>, retry_until: u64, now: u64) {
        let (engine, events) = (Arc::clone(&self.engine), self.events.clone());
        tokio::spawn(async move {
            let id = entry.envelope.id;
            let hostname = &engine.config.server.hostname;
            let result = notices::send(&engine.queue, hostname, &entry, &lines, Some(retry_until), now).await;
            let _ = events.send(Event::Noticed { id, lines, result });
        });
    }

    /// Removes a message from the queue in the background; the result comes back as
    /// `Removed`, and to whoever awaits the returned future.
    fn remove(&self, id: QueueId) -> Durable {
        let removal = self.engine.queue.remove(id);
        let events = self.events.clone();
        let writes = Arc::clone(&self.writes);
        writes.fetch_add(1, Ordering::AcqRel);
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let result = removal.await;
            let copy = result.as_ref().map(|_| ()).map_err(|e| io::Error::new(e.kind(), e.to_string()));
            let _ = events.send(Event::Removed { id, result });
            let _ = tx.send(copy);
            writes.fetch_sub(1, Ordering::AcqRel);
        });
        Box::pin(async move { rx.await.unwrap_or_else(|_| Err(io::Error::other("lost"))) })
    }

    /// Watches a queue write; a failure is logged (the in-memory state stays right,
    /// and the next write carries it).
    fn persist(&self, write: impl Future<Output = io::Result<()>> + Send + 'static) {
        let writes = Arc::clone(&self.writes);
        writes.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            if let Err(error) = write.await
                && error.kind() != io::ErrorKind::NotFound
            {
                tracing::error!(%error, "cannot record delivery state");
            }
            writes.fetch_sub(1, Ordering::AcqRel);
        });
    }

    fn on_admin(&mut self, request: AdminRequest, reply: oneshot::Sender<AdminReply>) {
        let ids: Vec<QueueId> = if request.all {
            let mut ids: Vec<QueueId> = self.tracked.keys().copied().collect();
            ids.sort_unstable();
            ids
        } else {
            match request.parse_ids() {
                Ok(ids) => ids,
                Err(answer) => {
                    let _ = reply.send(answer);
                    return;
                }
            }
        };
        let mut results = Vec::new();
        let mut durable: Vec<Durable> = Vec::new();
        for id in ids {
            let (result, write) = self.admin_one(request.action, id, request.all);
            results.extend(result);
            durable.extend(write);
        }
        // Answer once the changes are on disk, so what the admin sees next is true.
        tokio::spawn(async move {
            for write in durable {
                if let Err(error) = write.await
                    && error.kind() != io::ErrorKind::NotFound
                {
                    tracing::error!(%error, "admin change not recorded");
                }
            }
            let _ = reply.send(AdminReply { results });
        });
    }

    /// Applies one admin action, by the rules of [`decide`]. With `all`, messages it
    /// does not apply to are skipped silently.
    fn admin_one(&mut self, action: AdminAction, id: QueueId, all: bool) -> (Option<ItemResult>, Option<Durable>) {
        let Some(t) = self.tracked.get_mut(&id) else { return (Some(ItemResult::not_found(id)), None) };
        let phase = t.phase;
        let subject = Subject {
            activity: phase.activity(),
            held: t.entry.state.hold.is_some(),
            pending: t.entry.state.has_pending(t.entry.envelope.recipients.len()),
        };
        let step = match decide(action, subject) {
            Ok(step) => step,
            Err(why) => return (ItemResult::skipped(id, why, all), None),
        };
        let ok = |note: &str| Some(ItemResult::ok(id, note));
        match step {
            Step::DeliverNow => {
                self.wait(id, 0);
                (ok("delivery attempt scheduled now"), None)
            }
            Step::Hold => {
                t.entry.state.hold = Some(Hold::Held);
                let write: Durable = Box::pin(self.engine.queue.set_state(id, t.entry.state.clone()));
                if phase == Phase::Waiting {
                    t.phase = Phase::Held;
                    self.unwait(id);
                }
                (ok("held"), Some(write))
            }
            Step::Release => {
                t.entry.state.hold = None;
                t.entry.state.next_attempt_ms = None;
                let write: Durable = Box::pin(self.engine.queue.set_state(id, t.entry.state.clone()));
                if phase == Phase::Held {
                    self.wait(id, 0);
                }
                (ok("released"), Some(write))
            }
            Step::Delete => {
                t.phase = Phase::Removing;
                self.unwait(id);
                let busy = subject.activity == Activity::Busy;
                let note = if busy { "deleted (an attempt under way may still deliver it)" } else { "deleted" };
                (ok(note), Some(self.remove(id)))
            }
            Step::BounceAfterAttempt => {
                t.bounce = true;
                (ok("will be returned to the sender after the current attempt"), None)
            }
            Step::Bounce => {
                t.bounce = true;
                self.unwait(id);
                self.settle(id);
                (ok("returned to the sender"), None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::delivery::outcome::local;
    use crate::delivery::test_support::{self, T0_MS, TestEngine};
    use crate::wire::Status;

    const MINUTE: u64 = 60_000;

    struct Harness {
        test: TestEngine,
        scheduler: Scheduler,
        id: QueueId,
    }

    /// A scheduler over a queue holding one message for two recipients, arrived at T0.
    async fn harness() -> Harness {
        let test = test_support::engine(test_support::nowhere(), "");
        let entry = test_support::store(&test, &["r0@a.test", "r1@a.test"]).await;
        let (events, inbox) = mpsc::unbounded_channel();
        let scheduler = Scheduler::new(Arc::clone(&test.engine), events, inbox);
        Harness { id: entry.envelope.id, test, scheduler }
    }

    impl Harness {
        fn advance_to(&self, ms: u64) {
            let now = self.test.engine.clock.now_ms();
            self.test.clock.advance(Duration::from_millis(ms - now));
        }

        /// Starts the attempt if it is due on the clock; returns its number.
        fn start(&mut self) -> Option<u32> {
            let now = self.test.engine.clock.now_ms();
            self.scheduler.next_due(now).map(|entry| entry.state.attempts)
        }

        /// Ends the attempt with one outcome for every recipient.
        fn end(&mut self, outcome: RcptOutcome) {
            let results = (0..2).map(|i| (i, outcome.clone())).collect();
            self.scheduler.on_event(Event::Outcomes { id: self.id, results, last: true });
        }

        fn deferred(&mut self) {
            self.end(RcptOutcome::Deferred(local(Status(4, 4, 1), "connection refused")));
        }

        /// At `ms` on the clock: the attempt due then, deferred; returns its number.
        fn deferred_at(&mut self, ms: u64) -> Option<u32> {
            self.advance_to(ms);
            let attempt = self.start();
            if attempt.is_some() {
                self.deferred();
            }
            attempt
        }

        /// Hands the scheduler what its background tasks report until it waits again
        /// (or lets the message go).
        async fn run_background(&mut self) {
            while self.tracked().is_some_and(|t| matches!(t.phase, Phase::Notifying | Phase::Removing)) {
                let event = self.scheduler.inbox.recv().await.unwrap();
                self.scheduler.on_event(event);
            }
        }

        fn tracked(&self) -> Option<&Tracked> {
            self.scheduler.tracked.get(&self.id)
        }

        fn state(&self) -> &crate::queue::MessageState {
            &self.tracked().unwrap().entry.state
        }

        async fn admin(&mut self, action: AdminAction) -> ItemResult {
            let (reply, answer) = oneshot::channel();
            let request = AdminRequest { action, ids: vec![self.id.to_string()], all: false };
            self.scheduler.on_event(Event::Admin { request, reply });
            answer.await.unwrap().results.remove(0)
        }
    }

    #[tokio::test]
    async fn deferred_messages_follow_the_retry_schedule_on_the_clock() {
        let mut h = harness().await;
        assert_eq!(h.start(), Some(1), "a new message is due at once");
        assert_eq!(h.start(), None, "and in flight only once");
        h.deferred();
        assert_eq!(h.state().next_attempt_ms, Some(T0_MS + MINUTE), "first step: 1m");
        assert_eq!(h.state().last_error.as_deref(), Some("connection refused"));
        assert_eq!(h.tracked().unwrap().phase, Phase::Waiting);
        assert_eq!(h.deferred_at(T0_MS + MINUTE - 1), None, "not due before its time");
        assert_eq!(h.deferred_at(T0_MS + MINUTE), Some(2));
        assert_eq!(h.state().next_attempt_ms, Some(T0_MS + 6 * MINUTE), "second step: 5m");
        assert_eq!(h.deferred_at(T0_MS + 6 * MINUTE), Some(3));
        assert_eq!(h.state().next_attempt_ms, Some(T0_MS + 11 * MINUTE), "the last step repeats");
        h.run_background().await;
        assert!(test_support::notices(&h.test.engine.queue, h.id).is_empty(), "no notice before delay_warning");
    }

    #[tokio::test]
    async fn an_expired_message_bounces_with_its_last_error_and_is_removed() {
        let mut h = harness().await;
        h.deferred_at(T0_MS);
        assert_eq!(h.deferred_at(T0_MS + 58 * MINUTE), Some(2));
        h.run_background().await; // the delay warning
        // The schedule never passes the expiry (max_age 1h): the last attempt is at it.
        assert_eq!(h.state().next_attempt_ms, Some(T0_MS + 60 * MINUTE));
        h.advance_to(T0_MS + 60 * MINUTE);
        assert_eq!(h.start(), Some(3));
        h.end(RcptOutcome::Deferred(local(Status(4, 4, 1), "still refused")));
        assert_eq!(h.tracked().unwrap().phase, Phase::Notifying);
        let r = &h.state().recipients[0];
        assert_eq!((r.status, r.final_at), (RecipientStatus::Failed, Some(T0_MS / 1000 + 3600)));
        let diagnostic = r.diagnostic.as_ref().unwrap();
        assert_eq!(diagnostic.status.to_string(), "4.4.7");
        assert_eq!(diagnostic.text, "delivery time expired after 1h; last error: still refused");
        h.run_background().await;
        assert!(h.tracked().is_none(), "removed once the bounce is queued");
        assert!(h.test.engine.queue.get(h.id).is_none());
        let notices = test_support::notices(&h.test.engine.queue, h.id);
        let bounces: Vec<_> = notices.iter().filter(|n| n.contains("Action: failed")).collect();
        assert_eq!((notices.len(), bounces.len()), (2, 1), "a delay warning, then one bounce for both");
        assert!(bounces[0].contains("Status: 4.4.7"), "{}", bounces[0]);
    }

    #[tokio::test]
    async fn a_delay_warning_goes_out_once_after_delay_warning() {
        let mut h = harness().await;
        h.deferred_at(T0_MS);
        assert_eq!(h.deferred_at(T0_MS + 29 * MINUTE), Some(2));
        assert_eq!(h.tracked().unwrap().phase, Phase::Waiting, "no warning before 30m");
        assert_eq!(h.deferred_at(T0_MS + 34 * MINUTE), Some(3));
        assert_eq!(h.tracked().unwrap().phase, Phase::Notifying);
        h.run_background().await;
        assert!(h.state().delay_warned);
        assert_eq!(h.state().next_attempt_ms, Some(T0_MS + 39 * MINUTE), "still retrying");
        let notices = test_support::notices(&h.test.engine.queue, h.id);
        assert_eq!(notices.len(), 1);
        assert!(notices[0].contains("Action: delayed"), "{}", notices[0]);
        assert!(notices[0].contains("Will-Retry-Until:"), "{}", notices[0]);
        assert_eq!(h.deferred_at(T0_MS + 39 * MINUTE), Some(4));
        assert_eq!(h.tracked().unwrap().phase, Phase::Waiting, "warned once only");
        assert_eq!(test_support::notices(&h.test.engine.queue, h.id).len(), 1);
    }

    #[tokio::test]
    async fn delivered_messages_are_removed_without_a_notice() {
        let mut h = harness().await;
        h.start();
        h.end(RcptOutcome::Delivered { diagnostic: local(Status(2, 0, 0), "ok"), relayed_dsn: false });
        assert_eq!(h.tracked().unwrap().phase, Phase::Removing);
        h.run_background().await;
        assert!(h.tracked().is_none());
        assert!(h.test.engine.queue.is_empty());
    }

    #[tokio::test]
    async fn admin_hold_release_retry_and_bounce_go_by_the_rules() {
        let mut h = harness().await;
        h.deferred_at(T0_MS);
        assert!(h.admin(AdminAction::Hold).await.ok);
        assert_eq!(h.tracked().unwrap().phase, Phase::Held);
        h.advance_to(T0_MS + 10 * MINUTE);
        assert_eq!(h.start(), None, "a held message is not attempted");
        let retry = h.admin(AdminAction::Retry).await;
        assert_eq!((retry.ok, retry.message.as_str()), (false, "the message is held; release it first"));
        assert_eq!(h.test.engine.queue.get(h.id).unwrap().state.hold, Some(Hold::Held), "recorded before the answer");
        assert!(h.admin(AdminAction::Release).await.ok);
        assert_eq!(h.start(), Some(2), "due at once after release");
        let bounce = h.admin(AdminAction::Bounce).await;
        assert_eq!(bounce.message, "will be returned to the sender after the current attempt");
        h.deferred();
        h.run_background().await;
        assert!(h.tracked().is_none(), "bounced and removed after the attempt");
        let notices = test_support::notices(&h.test.engine.queue, h.id);
        assert!(notices.len() == 1 && notices[0].contains("Status: 5.0.0"), "{notices:?}");
    }
}
