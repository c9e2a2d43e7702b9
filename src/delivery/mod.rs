//! Delivery: from the queue to the next hop.
//!
//! ```text
//! queue ──ids──▶ scheduler ──due──▶ attempt ──group by destination──▶ pool ──▶ client ──▶ next hop
//!    ▲               │  ▲                                    (routing, MX)    (EHLO, STARTTLS,
//!    └──state,───────┘  └────────── per-recipient outcomes ◀──────────────     MAIL/RCPT/DATA)
//!       notices, removal
//! ```
//!
//! The scheduler is the only writer of delivery state; attempts report to it, and it
//! records each result in the queue before it counts. Notices (DSNs) are messages
//! like any other: queued, then delivered by the same engine.
//!
//! Attempts and the control socket reach the scheduler only through its inbox
//! ([`event`]); what they share is the [`engine::Engine`], clock included, so the time
//! rules ([`lifecycle`]: retries, expiry, delay warnings) and the admin rules
//! ([`admin::decide`], also used by [`offline`]) run the same under a test clock.

pub mod admin;
mod attempt;
mod connect;
pub mod control;
mod diagnose;
pub mod dsn;
mod engine;
mod event;
mod group;
mod lifecycle;
mod loaded;
pub mod mx;
mod notices;
pub mod offline;
pub mod outcome;
mod plugin_hop;
mod pool;
mod retry;
pub mod routing;
mod scheduler;
#[cfg(test)]
mod test_support;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::clock::{self, SharedClock};
use crate::config::Config;
use crate::dns::SharedResolver;
use crate::queue::Queue;
use engine::Engine;
use event::{Event, Events};
use scheduler::Scheduler;

pub use retry::RetryPolicy;

/// The running delivery engine.
pub struct Delivery {
    events: Events,
    queue: Arc<Queue>,
    clock: SharedClock,
    scheduler: tokio::task::JoinHandle<()>,
    control: tokio::task::JoinHandle<()>,
}

impl Delivery {
    /// Starts delivering everything in the queue, and whatever is stored later.
    pub fn start(config: Arc<Config>, queue: Arc<Queue>, resolver: SharedResolver) -> anyhow::Result<Delivery> {
        let clock = clock::system();
        let engine = Engine::build(Arc::clone(&config), Arc::clone(&queue), resolver, Arc::clone(&clock))?;
        let (events, inbox) = mpsc::unbounded_channel();
        let scheduler = Scheduler::new(engine, events.clone(), inbox);
        let scheduler = tokio::spawn(scheduler.run());
        let control = tokio::spawn(control::serve(queue.dir().root().to_path_buf(), events.clone()));
        Ok(Delivery { events, scheduler, control, queue, clock })
    }

    /// Switches to a reloaded configuration (routes, TLS, limits, DNS).
    pub fn reload(&self, config: Arc<Config>, resolver: SharedResolver) -> anyhow::Result<()> {
        let engine = Engine::build(config, Arc::clone(&self.queue), resolver, Arc::clone(&self.clock))?;
        self.events.send(Event::Reload { engine }).map_err(|_| anyhow::anyhow!("delivery has stopped"))
    }

    /// Stops starting attempts, lets those under way finish and be recorded (for a
    /// few seconds at most), and closes pooled connections.
    pub async fn shutdown(self) {
        self.control.abort();
        let (done, finished) = oneshot::channel();
        if self.events.send(Event::Shutdown { done }).is_ok() {
            let _ = finished.await;
        }
        let _ = self.scheduler.await;
    }
}
