//! Listening sockets and the accept loop: one task per connection.
//!
//! Each new connection takes the configuration current at that moment (a reload swaps
//! it; sessions in flight keep theirs). Shutdown stops the accept loops; sessions are
//! told through the same signal and wound down by the session itself.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::context::SmtpContext;
use super::limiter::ConnectionLimiter;
use super::replies;
use super::session::Session;
use crate::config::ListenConfig;
use crate::mail::ClientInfo;

/// The configuration new sessions start with; swapped by a reload.
pub type LiveContext = Arc<ArcSwap<SmtpContext>>;

pub struct SmtpServer {
    listeners: Vec<(TcpListener, ListenConfig)>,
    limiter: Arc<ConnectionLimiter>,
    next_session: Arc<AtomicU64>,
}

/// A listening socket. IPv6 sockets are IPv6-only, so `0.0.0.0:25` and `[::]:25` can
/// both be configured (Linux would otherwise give `[::]` the IPv4 traffic too, and
/// refuse the second bind); the backlog is large enough for connection bursts.
fn listen_on(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = if address.is_ipv6() { TcpSocket::new_v6()? } else { TcpSocket::new_v4()? };
    socket.set_reuseaddr(true)?;
    if address.is_ipv6() {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor, and a c_int option value of the right size.
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                std::ptr::from_ref(&on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    socket.bind(address)?;
    socket.listen(4096)
}

impl SmtpServer {
    /// Binds every configured listener; fails if any address is unavailable.
    pub async fn bind(listen: &[ListenConfig]) -> io::Result<SmtpServer> {
        let mut listeners = Vec::with_capacity(listen.len());
        for config in listen {
            let listener = listen_on(config.address)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.address)))?;
            listeners.push((listener, config.clone()));
        }
        Ok(SmtpServer { listeners, limiter: ConnectionLimiter::new(), next_session: Arc::new(AtomicU64::new(1)) })
    }

    /// The bound addresses (useful when the config asked for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|(l, _)| l.local_addr().ok()).collect()
    }

    /// Sessions alive right now.
    pub fn limiter(&self) -> Arc<ConnectionLimiter> {
        Arc::clone(&self.limiter)
    }

    /// Accepts connections until `shutdown` turns true.
    pub async fn run(self, ctx: LiveContext, shutdown: watch::Receiver<bool>) {
        let mut tasks = JoinSet::new();
        for (listener, config) in self.listeners {
            let accept = Acceptor {
                ctx: Arc::clone(&ctx),
                limiter: Arc::clone(&self.limiter),
                next_session: Arc::clone(&self.next_session),
                shutdown: shutdown.clone(),
            };
            tasks.spawn(accept.run(listener, config));
        }
        while tasks.join_next().await.is_some() {}
    }
}

struct Acceptor {
    ctx: LiveContext,
    limiter: Arc<ConnectionLimiter>,
    next_session: Arc<AtomicU64>,
    shutdown: watch::Receiver<bool>,
}

impl Acceptor {
    async fn run(mut self, listener: TcpListener, config: ListenConfig) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = self.shutdown.wait_for(|stopping| *stopping) => return,
            };
            match accepted {
                Ok((tcp, peer)) => self.start_session(tcp, peer, &config),
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning, and keep serving.
                    tracing::warn!(%error, listener = %config.address, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn start_session(&self, tcp: TcpStream, peer: SocketAddr, listen: &ListenConfig) {
        let _ = tcp.set_nodelay(true);
        let ctx = self.ctx.load_full();
        metrics::counter!("sluice_connections_total").increment(1);
        let limits = &ctx.config.limits;
        // Our own networks (the mail servers behind us sending out) are exempt from the
        // per-client limit, as Postfix exempts $mynetworks; the global limit still holds.
        let per_ip =
            if ctx.config.relay.networks.contains(peer.ip()) { usize::MAX } else { limits.max_connections_per_ip };
        let Some(permit) = self.limiter.try_acquire(peer.ip(), limits.max_connections, per_ip) else {
            tracing::info!(client = %peer, current = self.limiter.current(), "connection limit reached");
            metrics::counter!("sluice_connections_rejected_total", "reason" => "limit").increment(1);
            tokio::spawn(refuse(tcp));
            return;
        };
        let session_id = format!("{:x}", self.next_session.fetch_add(1, Ordering::Relaxed));
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
        let session = Session::new(ctx, tcp, client, listen.clone(), self.shutdown.clone());
        let limiter = Arc::clone(&self.limiter);
        tokio::spawn(
            async move {
                metrics::gauge!("sluice_connections_current").set(limiter.current() as f64);
                tracing::debug!("connected");
                session.run().await;
                tracing::debug!("disconnected");
                drop(permit);
                metrics::gauge!("sluice_connections_current").set(limiter.current() as f64);
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
