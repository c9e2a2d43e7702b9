//! Listening sockets and the accept loop: one task per connection.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::context::SmtpContext;
use super::limiter::ConnectionLimiter;
use super::reply::replies;
use super::session::Session;
use crate::config::ListenConfig;
use crate::mail::ClientInfo;

pub struct SmtpServer {
    listeners: Vec<(TcpListener, ListenConfig)>,
    limiter: Arc<ConnectionLimiter>,
    next_session: Arc<AtomicU64>,
}

impl SmtpServer {
    /// Binds every configured listener; fails if any address is unavailable.
    pub async fn bind(listen: &[ListenConfig]) -> io::Result<SmtpServer> {
        let mut listeners = Vec::with_capacity(listen.len());
        for config in listen {
            let listener = TcpListener::bind(config.address)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.address)))?;
            listeners.push((listener, config.clone()));
        }
        Ok(SmtpServer { listeners, limiter: ConnectionLimiter::new(), next_session: Arc::new(AtomicU64::new(1)) })
    }

    /// The bound addresses (useful when the config asked for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|(l, _)| l.local_addr().ok()).collect()
    }

    /// Accepts connections until the task is dropped.
    pub async fn run(self, ctx: Arc<SmtpContext>) {
        let mut tasks = JoinSet::new();
        for (listener, config) in self.listeners {
            let ctx = Arc::clone(&ctx);
            let limiter = Arc::clone(&self.limiter);
            let next_session = Arc::clone(&self.next_session);
            tasks.spawn(accept_loop(listener, config, ctx, limiter, next_session));
        }
        while tasks.join_next().await.is_some() {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    config: ListenConfig,
    ctx: Arc<SmtpContext>,
    limiter: Arc<ConnectionLimiter>,
    next_session: Arc<AtomicU64>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Typically EMFILE: back off instead of spinning, and keep serving.
                tracing::warn!(%error, listener = %config.address, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let limits = &ctx.config.limits;
        let Some(permit) = limiter.try_acquire(peer.ip(), limits.max_connections, limits.max_connections_per_ip) else {
            tracing::info!(client = %peer, current = limiter.current(), "connection limit reached");
            tokio::spawn(refuse(tcp));
            continue;
        };
        let session_id = format!("{:x}", next_session.fetch_add(1, Ordering::Relaxed));
        let span = tracing::info_span!("session", id = %session_id, client = %peer);
        let client = ClientInfo {
            ip: peer.ip(),
            port: peer.port(),
            reverse_name: None,
            helo: None,
            tls: None,
            auth_user: None,
            session_id,
        };
        let session = Session::new(Arc::clone(&ctx), tcp, client, config.tls);
        tokio::spawn(
            async move {
                tracing::debug!("connected");
                session.run().await;
                tracing::debug!("disconnected");
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// Over the connection limit: 421 4.7.0 and close, without waiting on the client.
async fn refuse(mut tcp: TcpStream) {
    let mut reply = Vec::new();
    replies::TOO_MANY_CONNECTIONS.write_to(&mut reply);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = tcp.write_all(&reply).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}
