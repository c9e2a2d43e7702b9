//! Running the server as a whole: start-up in a safe order, live reload (SIGHUP or
//! `sluice reload`), graceful shutdown (SIGTERM), the control socket, and the
//! metrics and health endpoint.

mod http;
pub mod socket;
mod telemetry;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::delivery::Delivery;
use crate::dns::shared_resolver;
use crate::kv::KvStore;
use crate::mail_auth::Checker;
use crate::mail_auth::sign::Signers;
use crate::plugin::PluginHost;
use crate::queue::Queue;
use crate::recipients::Verifier;
use crate::smtp::tls::load_acceptor;
use crate::smtp::{ConnectionLimiter, LiveContext, SmtpContext, SmtpServer};

/// A reload asked for through the control socket, with where to send the outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// What stays for the whole run, whatever is reloaded.
struct Server {
    path: PathBuf,
    kv: Arc<KvStore>,
    queue: Arc<Queue>,
    live: LiveContext,
    delivery: Delivery,
}

/// Runs the server from `path` until SIGTERM or SIGINT.
pub async fn run(path: &Path, config: Config) -> anyhow::Result<()> {
    if config.metrics.listen.is_some() {
        telemetry::install()?;
    }
    let tls = match &config.tls {
        Some(tls) => Some(load_acceptor(tls, &config.origin)?),
        None => None,
    };
    let kv = Arc::new(KvStore::open(&config.kv).map_err(|e| anyhow::anyhow!("cannot open the kv store: {e}"))?);
    // Plugins before the queue and the listeners: one that does not load stops the
    // server before it accepts anything.
    let resolver = shared_resolver(&config.dns)?;
    let plugins = Arc::new(PluginHost::load(&config, Arc::clone(&kv), Arc::clone(&resolver)).await?);
    telemetry::register_series(&config, &plugins);
    let (queue, report) = Queue::open(&config.queue.path)
        .map_err(|e| anyhow::anyhow!("cannot open the queue at {}: {e}", config.queue.path.display()))?;
    tracing::info!(
        queue = %config.queue.path.display(),
        messages = report.messages,
        segments = report.segments,
        damaged_records = report.damage.len(),
        torn_tail_bytes = report.torn_tail,
        "queue ready"
    );
    let signers = Arc::new(Signers::load(&config)?);
    let listeners = SmtpServer::bind(config.server.listen.get_ref()).await?;
    for address in listeners.local_addrs() {
        tracing::info!(%address, "listening");
    }
    let config = Arc::new(config);
    let queue = Arc::new(queue);
    let recipients = Arc::new(Verifier::new(&config, Arc::clone(&kv), Arc::clone(&resolver))?);
    let mail_auth = Checker::new(&config.mail_auth, &config.server.hostname, &*resolver);
    let delivery = Delivery::start(Arc::clone(&config), Arc::clone(&queue), resolver)?;
    let live: LiveContext = Arc::new(ArcSwap::from_pointee(
        SmtpContext::new(Arc::clone(&config), tls, Arc::clone(&queue), plugins)
            .with_recipients(recipients)
            .with_signers(signers)
            .with_mail_auth(mail_auth),
    ));
    let limiter = listeners.limiter();
    let (stop, stopping) = watch::channel(false);
    let smtp = tokio::spawn(listeners.run(Arc::clone(&live), stopping.clone()));
    let (reloads, mut reload_requests) = mpsc::channel::<ReloadRequest>(4);
    let control = socket::serve(&queue.dir().root().join(socket::SOCKET_NAME), reloads)?;
    let metrics = match config.metrics.listen {
        Some(address) => Some(http::serve(address, Arc::clone(&queue), Arc::clone(&live), stopping.clone()).await?),
        None => None,
    };
    let server = Server { path: path.to_path_buf(), kv, queue, live, delivery };

    let mut hangups = signal(SignalKind::hangup())?;
    let mut terms = signal(SignalKind::terminate())?;
    let mut interrupts = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hangups.recv() => { let _ = server.reload().await; }
            Some(reply) = reload_requests.recv() => {
                let _ = reply.send(server.reload().await.map_err(|e| format!("{e:#}")));
            }
            _ = terms.recv() => break,
            _ = interrupts.recv() => break,
        }
    }

    let timeout = server.live.load().config.server.shutdown_timeout.get();
    tracing::info!(sessions = limiter.current(), timeout = ?timeout, "shutting down: no new connections");
    let _ = stop.send(true);
    let _ = smtp.await;
    drain(&limiter, timeout).await;
    control.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    server.delivery.shutdown().await;
    drop(server.live);
    drop(server.kv);
    tracing::info!(queued = server.queue.len(), "stopped");
    Ok(())
}

/// Waits for sessions to end, up to `timeout`; the rest are cut off (nothing they
/// sent was acknowledged, so nothing is lost).
async fn drain(limiter: &ConnectionLimiter, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while limiter.current() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if limiter.current() > 0 {
        tracing::warn!(sessions = limiter.current(), "shutdown timeout: closing the remaining sessions");
    }
}

impl Server {
    /// Re-reads the config, re-loads plugins and certificates, and switches new
    /// sessions and delivery to them. Anything that fails leaves the running set as
    /// it was.
    async fn reload(&self) -> anyhow::Result<()> {
        let result = self.try_reload().await;
        match &result {
            Ok(()) => {
                tracing::info!(config = %self.path.display(), "configuration reloaded");
                metrics::counter!("sluice_reloads_total", "result" => "ok").increment(1);
            }
            Err(error) => {
                tracing::error!(config = %self.path.display(), "reload failed, keeping the running configuration: {error:#}");
                metrics::counter!("sluice_reloads_total", "result" => "failed").increment(1);
            }
        }
        result
    }

    async fn try_reload(&self) -> anyhow::Result<()> {
        let config = Config::load(&self.path)?;
        let current = self.live.load();
        if config.server.listen.get_ref() != current.config.server.listen.get_ref() {
            tracing::warn!("listen addresses changed: they take effect at the next restart");
        }
        if config.queue.path != current.config.queue.path || config.kv.backend != current.config.kv.backend {
            tracing::warn!("the queue or kv location changed: it takes effect at the next restart");
        }
        let tls = match &config.tls {
            Some(tls) => Some(load_acceptor(tls, &config.origin)?),
            None => None,
        };
        let resolver = shared_resolver(&config.dns)?;
        let plugins = Arc::new(PluginHost::load(&config, Arc::clone(&self.kv), Arc::clone(&resolver)).await?);
        // Lists are re-read here; a malformed one keeps the running configuration.
        let recipients = Arc::new(Verifier::new(&config, Arc::clone(&self.kv), Arc::clone(&resolver))?);
        // Keys are re-read here; one that does not load keeps the running configuration.
        let signers = Arc::new(Signers::load(&config)?);
        telemetry::register_series(&config, &plugins);
        let mail_auth = Checker::new(&config.mail_auth, &config.server.hostname, &*resolver);
        let config = Arc::new(config);
        self.delivery.reload(Arc::clone(&config), resolver)?;
        self.live.store(Arc::new(
            SmtpContext::new(config, tls, Arc::clone(&self.queue), plugins)
                .with_recipients(recipients)
                .with_signers(signers)
                .with_mail_auth(mail_auth),
        ));
        Ok(())
    }
}

/// Queue gauges, computed when Prometheus scrapes.
fn telemetry_queue(queue: &Queue) {
    let now = crate::clock::now_secs();
    let (mut held, mut quarantined, mut waiting, mut oldest) = (0u64, 0u64, 0u64, now);
    for entry in queue.entries() {
        match entry.state.hold {
            Some(crate::queue::Hold::Held) => held += 1,
            Some(crate::queue::Hold::Quarantined { .. }) => quarantined += 1,
            None => waiting += 1,
        }
        oldest = oldest.min(entry.envelope.arrived);
    }
    metrics::gauge!("sluice_queue_messages", "state" => "waiting").set(waiting as f64);
    metrics::gauge!("sluice_queue_messages", "state" => "held").set(held as f64);
    metrics::gauge!("sluice_queue_messages", "state" => "quarantined").set(quarantined as f64);
    metrics::gauge!("sluice_queue_oldest_age_seconds").set(now.saturating_sub(oldest) as f64);
}
