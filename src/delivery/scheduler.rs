//! The scheduler: one task that knows every queued message's place (waiting for its
//! time, in delivery, being notified about, being removed), starts attempts when they
//! are due, records their results in the queue, and applies admin requests. It is the
//! only writer of delivery state, so writes for one message never race.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

use super::admin::{AdminAction, AdminReply, AdminRequest, ItemResult};
use super::dsn::Action;
use super::outcome::RcptOutcome;
use super::retry::RetryPolicy;
use super::{Engine, attempt, notices, now_ms, now_secs};
use crate::mail::QueueId;
use crate::queue::{Diagnostic, Entry, Hold, RecipientStatus};
use crate::wire::Status;

/// Attempts running at once; more due messages wait their turn.
const MAX_IN_FLIGHT: usize = 10_000;
/// After a failed queue write or notice, try again this much later.
const LOCAL_RETRY: Duration = Duration::from_secs(60);
/// How long shutdown waits for attempts under way to finish and be recorded.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub enum Event {
    /// Results of one destination group; `last` ends the attempt.
    Outcomes {
        id: QueueId,
        results: Vec<(usize, RcptOutcome)>,
        last: bool,
    },
    /// The notices for these lines were queued (or not).
    Noticed {
        id: QueueId,
        lines: Vec<(usize, Action)>,
        result: Result<(), String>,
    },
    Removed {
        id: QueueId,
        result: io::Result<()>,
    },
    Admin {
        request: AdminRequest,
        reply: oneshot::Sender<AdminReply>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
    /// A reloaded configuration: attempts from now on use this engine; those under
    /// way finish with theirs.
    Reload {
        engine: Arc<Engine>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Held,
    InFlight,
    Notifying,
    Removing,
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
    events: UnboundedSender<Event>,
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
    pub fn new(engine: Arc<Engine>, events: UnboundedSender<Event>, inbox: UnboundedReceiver<Event>) -> Scheduler {
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
                    Duration::from_millis(due.saturating_sub(now_ms()))
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
        let now = now_ms();
        while self.in_flight < MAX_IN_FLIGHT {
            let Some(&(due, id)) = self.timers.first() else { break };
            if due > now {
                break;
            }
            self.timers.pop_first();
            let Some(t) = self.tracked.get_mut(&id) else { continue };
            t.due = None;
            if t.phase != Phase::Waiting {
                continue;
            }
            t.phase = Phase::InFlight;
            let count = t.entry.envelope.recipients.len();
            if (0..count).any(|i| !t.entry.state.recipient(i).is_final()) {
                t.entry.state.attempts += 1;
            }
            self.in_flight += 1;
            tokio::spawn(attempt::run(Arc::clone(&self.engine), t.entry.clone(), self.events.clone()));
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Outcomes { id, results, last } => self.on_outcomes(id, results, last),
            Event::Noticed { id, lines, result } => {
                let Some(t) = self.tracked.get_mut(&id) else { return };
                if t.phase != Phase::Notifying {
                    return;
                }
                match result {
                    Ok(()) => {
                        notices::mark_sent(&mut t.entry.state, &lines);
                        self.settle(id);
                    }
                    Err(error) => {
                        tracing::error!(%id, %error, "cannot queue a delivery status notice; will retry");
                        self.wait(id, now_ms() + LOCAL_RETRY.as_millis() as u64);
                    }
                }
            }
            Event::Removed { id, result } => match result {
                Ok(()) => {
                    self.tracked.remove(&id);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.tracked.remove(&id);
                }
                Err(error) => {
                    tracing::error!(%id, %error, "cannot remove a finished message; will retry");
                    if self.tracked.get(&id).is_some_and(|t| t.phase == Phase::Removing) {
                        self.wait(id, now_ms() + LOCAL_RETRY.as_millis() as u64);
                    }
                }
            },
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

    fn on_outcomes(&mut self, id: QueueId, results: Vec<(usize, RcptOutcome)>, last: bool) {
        if last {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        let Some(t) = self.tracked.get_mut(&id) else { return };
        if t.phase != Phase::InFlight {
            // Deleted meanwhile: the removal is under way.
            return;
        }
        let now = now_secs();
        let count = t.entry.envelope.recipients.len();
        let recipients = t.entry.state.ensure_recipients(count);
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
        let now = now_secs();
        let delay_warning = self.engine.config.queue.delay_warning.map(|t| t.get());
        let expires_ms = {
            let Some(t) = self.tracked.get(&id) else { return };
            self.retry.expires_ms(t.entry.envelope.arrived)
        };
        let Some(t) = self.tracked.get_mut(&id) else { return };
        if t.phase == Phase::Removing {
            return;
        }
        let envelope = Arc::clone(&t.entry.envelope);
        let state = &mut t.entry.state;
        state.ensure_recipients(envelope.recipients.len());
        if std::mem::take(&mut t.bounce) {
            notices::bounce_pending(&envelope, state, now);
        }
        let pending = state.recipients.iter().any(|r| !r.is_final());
        if pending && now_ms() >= expires_ms {
            let age = humanize(self.retry.max_age());
            for r in state.recipients.iter_mut().filter(|r| !r.is_final()) {
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
            tracing::info!(%id, "message expired");
        }
        let lines = notices::owed(&envelope, state, delay_warning, now);
        if !lines.is_empty() {
            t.phase = Phase::Notifying;
            let entry = t.entry.clone();
            let retry_until = Some(expires_ms / 1000);
            let (engine, events) = (Arc::clone(&self.engine), self.events.clone());
            tokio::spawn(async move {
                let hostname = engine.config.server.hostname.clone();
                let result = notices::send(&engine.queue, &hostname, &entry, &lines, retry_until).await;
                let _ = events.send(Event::Noticed { id, lines, result });
            });
            return;
        }
        if state.recipients.iter().all(|r| r.is_final() && r.notified) {
            t.phase = Phase::Removing;
            let delivered = state.recipients.iter().filter(|r| r.status == RecipientStatus::Delivered).count();
            tracing::info!(%id, delivered, failed = state.recipients.len() - delivered, "message done");
            let removal = self.engine.queue.remove(id);
            let events = self.events.clone();
            let writes = Arc::clone(&self.writes);
            writes.fetch_add(1, Ordering::AcqRel);
            tokio::spawn(async move {
                let result = removal.await;
                let _ = events.send(Event::Removed { id, result });
                writes.fetch_sub(1, Ordering::AcqRel);
            });
            return;
        }
        let next = self.retry.next_attempt_ms(state.attempts, now_ms(), envelope.arrived);
        state.next_attempt_ms = Some(next);
        state.last_error = state
            .recipients
            .iter()
            .filter(|r| !r.is_final())
            .find_map(|r| r.diagnostic.as_ref())
            .map(|d| d.to_string());
        let held = state.hold.is_some();
        if held {
            t.phase = Phase::Held;
        }
        let snapshot = state.clone();
        self.persist(self.engine.queue.set_state(id, snapshot));
        if !held {
            self.wait(id, next);
        }
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
            let mut ids = Vec::new();
            let mut results = Vec::new();
            for text in &request.ids {
                match text.parse::<QueueId>() {
                    Ok(id) => ids.push(id),
                    Err(e) => results.push(ItemResult::error(text, e)),
                }
            }
            if !results.is_empty() {
                let _ = reply.send(AdminReply { results });
                return;
            }
            ids
        };
        let mut results = Vec::new();
        let mut durable: Vec<Durable> = Vec::new();
        for id in ids {
            let (result, write) = self.admin_one(request.action, id, request.all);
            if let Some(result) = result {
                results.push(result);
            }
            if let Some(write) = write {
                durable.push(write);
            }
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

    /// Applies one admin action. With `all`, messages it does not apply to are
    /// skipped silently.
    fn admin_one(&mut self, action: AdminAction, id: QueueId, all: bool) -> (Option<ItemResult>, Option<Durable>) {
        let Some(t) = self.tracked.get_mut(&id) else {
            return (Some(ItemResult::error(&id.to_string(), "no such message in the queue")), None);
        };
        let phase = t.phase;
        let busy = matches!(phase, Phase::InFlight | Phase::Notifying);
        let skip = |why: &str| if all { (None, None) } else { (Some(ItemResult::error(&id.to_string(), why)), None) };
        if phase == Phase::Removing {
            return skip("the message is finished and being removed");
        }
        match action {
            AdminAction::Retry => match phase {
                Phase::Waiting => {
                    self.wait(id, 0);
                    (Some(ItemResult::ok(id, "delivery attempt scheduled now")), None)
                }
                Phase::Held => skip("the message is held; release it first"),
                _ => skip("the message is being delivered right now"),
            },
            AdminAction::Hold => {
                if t.entry.state.hold.is_some() {
                    return skip("the message is already held");
                }
                t.entry.state.hold = Some(Hold::Held);
                let write: Durable = Box::pin(self.engine.queue.set_state(id, t.entry.state.clone()));
                if phase == Phase::Waiting {
                    self.unwait(id);
                    if let Some(t) = self.tracked.get_mut(&id) {
                        t.phase = Phase::Held;
                    }
                }
                (Some(ItemResult::ok(id, "held")), Some(write))
            }
            AdminAction::Release => {
                if t.entry.state.hold.is_none() {
                    return skip("the message is not held");
                }
                t.entry.state.hold = None;
                t.entry.state.next_attempt_ms = None;
                let write: Durable = Box::pin(self.engine.queue.set_state(id, t.entry.state.clone()));
                if phase == Phase::Held {
                    self.wait(id, 0);
                }
                (Some(ItemResult::ok(id, "released")), Some(write))
            }
            AdminAction::Delete => {
                self.unwait(id);
                if let Some(t) = self.tracked.get_mut(&id) {
                    t.phase = Phase::Removing;
                }
                let removal = self.engine.queue.remove(id);
                let events = self.events.clone();
                let (tx, rx) = oneshot::channel();
                tokio::spawn(async move {
                    let result = removal.await;
                    let copy = match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                    };
                    let _ = events.send(Event::Removed { id, result });
                    let _ = tx.send(copy);
                });
                let write: Durable =
                    Box::pin(async move { rx.await.unwrap_or_else(|_| Err(io::Error::other("lost"))) });
                let note = if busy { "deleted (an attempt under way may still deliver it)" } else { "deleted" };
                (Some(ItemResult::ok(id, note)), Some(write))
            }
            AdminAction::Bounce => {
                let count = t.entry.envelope.recipients.len();
                if (0..count).all(|i| t.entry.state.recipient(i).is_final()) {
                    return skip("no recipient is pending");
                }
                t.bounce = true;
                if busy {
                    return (
                        Some(ItemResult::ok(id, "will be returned to the sender after the current attempt")),
                        None,
                    );
                }
                self.unwait(id);
                self.settle(id);
                (Some(ItemResult::ok(id, "returned to the sender")), None)
            }
        }
    }
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
