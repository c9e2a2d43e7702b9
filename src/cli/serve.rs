//! `sluice serve --config FILE`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::delivery::Delivery;
use crate::kv::KvStore;
use crate::plugin::PluginHost;
use crate::queue::Queue;
use crate::smtp::tls::load_acceptor;
use crate::smtp::{SmtpContext, SmtpServer};

pub fn run(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let tls = match &config.tls {
        Some(tls) => Some(load_acceptor(tls, &config.origin)?),
        None => None,
    };
    // Plugins first: a plugin that does not load stops the server before it listens.
    let kv = KvStore::open(&config.kv).map_err(|e| anyhow::anyhow!("cannot open the kv store: {e}"))?;
    let plugins = PluginHost::load(&config, Arc::new(kv)).await?;
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
    let server = SmtpServer::bind(config.server.listen.get_ref()).await?;
    for address in server.local_addrs() {
        tracing::info!(%address, "listening");
    }
    let config = Arc::new(config);
    let queue = Arc::new(queue);
    let delivery = Delivery::start(Arc::clone(&config), Arc::clone(&queue))?;
    let ctx = Arc::new(SmtpContext::new(config, tls, queue, Arc::new(plugins)));
    tokio::select! {
        () = server.run(ctx) => {}
        () = shutdown_signal() => tracing::info!("shutting down"),
    }
    delivery.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Each connection is a file descriptor; the usual soft limit of 1024 would cap
/// `max_connections` long before the configured value.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::warn!("cannot raise the open file limit");
            }
        }
    }
}
