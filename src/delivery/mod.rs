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

pub mod admin;
mod attempt;
pub mod client;
pub mod control;
pub mod dsn;
pub mod mx;
mod notices;
pub mod outcome;
mod pool;
mod retry;
pub mod routing;
mod scheduler;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::dns::SharedResolver;
use crate::queue::Queue;
use client::ClientSettings;
use pool::Pool;
use routing::Router;
use scheduler::{Event, Scheduler};

pub use retry::RetryPolicy;

/// What attempts share.
pub struct Engine {
    pub queue: Arc<Queue>,
    pub config: Arc<Config>,
    pub router: Router,
    pub resolver: SharedResolver,
    pool: Pool,
    pub settings: Arc<ClientSettings>,
    pub max_recipients_per_transaction: usize,
}

impl Engine {
    fn build(config: Arc<Config>, queue: Arc<Queue>, resolver: SharedResolver) -> anyhow::Result<Arc<Engine>> {
        let tls = client::tls::build(&config.delivery, &config.origin)?;
        Ok(Arc::new(Engine {
            settings: Arc::new(ClientSettings::new(&config, tls)),
            router: Router::new(Arc::clone(&config))?,
            pool: Pool::new(&config.delivery),
            max_recipients_per_transaction: config.delivery.max_recipients_per_transaction,
            resolver,
            queue,
            config,
        }))
    }
}

/// The running delivery engine.
pub struct Delivery {
    events: mpsc::UnboundedSender<Event>,
    queue: Arc<Queue>,
    scheduler: tokio::task::JoinHandle<()>,
    control: tokio::task::JoinHandle<()>,
}

impl Delivery {
    /// Starts delivering everything in the queue, and whatever is stored later.
    pub fn start(config: Arc<Config>, queue: Arc<Queue>, resolver: SharedResolver) -> anyhow::Result<Delivery> {
        let engine = Engine::build(Arc::clone(&config), Arc::clone(&queue), resolver)?;
        let (events, inbox) = mpsc::unbounded_channel();
        let scheduler = Scheduler::new(engine, events.clone(), inbox);
        let scheduler = tokio::spawn(scheduler.run());
        let control = tokio::spawn(control::serve(queue.dir().root().to_path_buf(), events.clone()));
        Ok(Delivery { events, scheduler, control, queue })
    }

    /// Switches to a reloaded configuration (routes, TLS, limits, DNS).
    pub fn reload(&self, config: Arc<Config>, resolver: SharedResolver) -> anyhow::Result<()> {
        let engine = Engine::build(config, Arc::clone(&self.queue), resolver)?;
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

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
