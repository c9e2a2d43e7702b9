//! One SMTP session: reads commands, keeps the state machine, runs the plugins at each
//! stage, receives message content and hands accepted messages to the queue.
//!
//! - `mod.rs`: the command loop, replies and error counting;
//! - `envelope.rs`: HELO/EHLO, MAIL, RCPT, RSET and STARTTLS;
//! - `auth.rs`: SMTP AUTH;
//! - `authenticate.rs`: mail authentication (SPF, DKIM, ARC, DMARC) and its header;
//! - `content.rs`: receiving DATA and BDAT content;
//! - `verify.rs`: recipient verification at RCPT;
//! - `accept.rs`: checking finished content, the DATA stage, and queueing;
//! - `sign.rs`: DKIM-signing what is queued.

mod accept;
mod auth;
mod authenticate;
mod content;
mod envelope;
mod sign;
#[cfg(test)]
mod tests;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::command::{Command, parse_command};
use super::connection::{Connection, Line, ReadError};
use super::context::SmtpContext;
use super::proxy;
use super::replies;
use super::socket::Socket;
use super::state::{Flow, SessionState};
use super::stream::Stream;
use crate::config::{ListenConfig, ListenTls};
use crate::mail::ClientInfo;
use crate::plugin::{Decision, PluginSession, Stage};
use crate::wire::{Reply, Status};

/// Counts a refused message (or connection) by stage: `rejected` for 5xx,
/// `tempfailed` for 4xx.
pub(super) fn count_refusal(stage: Stage, reply: &Reply) {
    let result = if reply.code >= 500 { "rejected" } else { "tempfailed" };
    metrics::counter!("sluice_messages_total", "stage" => stage.name(), "result" => result).increment(1);
}

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF.
const MAX_COMMAND_LINE: usize = 512;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

const NO_SERVICE: Reply = Reply::new(503, Status(5, 5, 1), "Error: no SMTP service here; send QUIT");
const SHUTTING_DOWN: Reply = Reply::new(421, Status(4, 3, 2), "Service shutting down, try again later");
/// A load balancer sends its PROXY header at once; waiting longer means it is not one.
const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Session<S> {
    ctx: Arc<SmtpContext>,
    conn: Connection<S>,
    client: ClientInfo,
    state: SessionState,
    plugins: PluginSession,
    listener: ListenConfig,
    listener_tls: ListenTls,
    /// Turns true when the server shuts down.
    shutdown: watch::Receiver<bool>,
    /// The client may relay to any domain.
    trusted: bool,
    /// A plugin refused the connection: only QUIT is served (RFC 5321 §3.1).
    refused: bool,
    errors: u32,
}

impl<S: Socket> Session<S> {
    pub fn new(
        ctx: Arc<SmtpContext>,
        socket: S,
        client: ClientInfo,
        listener: ListenConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let trusted = ctx.config.relay.networks.contains(client.ip);
        let plugins = PluginSession::new(Arc::clone(&ctx.plugins), ctx.hostname());
        Session {
            ctx,
            conn: Connection::new(Stream::Plain(socket)),
            client,
            state: SessionState::AwaitingHelo,
            plugins,
            listener_tls: listener.tls,
            listener,
            shutdown,
            trusted,
            refused: false,
            errors: 0,
        }
    }

    /// Runs the session to its end.
    pub async fn run(mut self) {
        if self.listener.proxy_protocol && !self.read_proxy_header().await {
            self.conn.shutdown().await;
            return;
        }
        if self.listener_tls == ListenTls::Implicit {
            let Some(acceptor) = self.ctx.tls.clone() else { return };
            if let Err(error) = self.conn.start_tls(&acceptor, Instant::now() + TLS_HANDSHAKE_TIMEOUT).await {
                tracing::info!(%error, "TLS handshake failed");
                metrics::counter!("sluice_tls_handshakes_total", "direction" => "inbound", "result" => "failed")
                    .increment(1);
                return;
            }
            metrics::counter!("sluice_tls_handshakes_total", "direction" => "inbound", "result" => "ok").increment(1);
            self.client.tls = self.conn.stream_ref().and_then(Stream::tls_info);
        } else if self.talks_before_greeting().await {
            tracing::info!("client talked before the greeting");
            self.conn.queue_reply(&replies::EARLY_TALKER);
            self.conn.shutdown().await;
            return;
        }
        if self.greet().await == Flow::Continue {
            self.serve_commands().await;
        }
        self.conn.shutdown().await;
    }

    /// Runs the connect stage and sends the greeting (or the plugin's refusal).
    async fn greet(&mut self) -> Flow {
        match self.plugins.connect(&self.client).await {
            Decision::Proceed => {
                self.conn.queue_raw(self.ctx.greeting());
                Flow::Continue
            }
            Decision::Refuse(reply) if reply.code >= 500 => {
                count_refusal(Stage::Connect, &reply);
                self.conn.queue_reply(&reply);
                self.refused = true;
                Flow::Continue
            }
            // A temporary refusal at connect is "service not available": 421 and close.
            Decision::Refuse(reply) | Decision::Disconnect(reply) => {
                count_refusal(Stage::Connect, &reply);
                self.conn.queue_reply(&reply);
                Flow::Close
            }
        }
    }

    async fn serve_commands(&mut self) {
        loop {
            if *self.shutdown.borrow() {
                self.conn.queue_reply(&SHUTTING_DOWN);
                return;
            }
            let deadline = Instant::now() + self.ctx.config.limits.command_timeout.get();
            // Reading a line is cancel-safe: bytes stay in the buffer.
            let read = tokio::select! {
                read = self.conn.read_line(MAX_COMMAND_LINE, deadline) => read,
                _ = self.shutdown.wait_for(|stopping| *stopping) => {
                    self.conn.queue_reply(&SHUTTING_DOWN);
                    return;
                }
            };
            let flow = match read {
                Ok(Line::Complete(line)) => self.handle_line(&line).await,
                Ok(Line::TooLong) => self.reply(replies::LINE_TOO_LONG),
                Err(error) => {
                    self.on_read_error(error);
                    Flow::Close
                }
            };
            if flow == Flow::Close {
                return;
            }
        }
    }

    /// Reads the PROXY protocol header on a listener that expects one. Only configured
    /// load balancers may send it; the address it gives replaces the peer's for relay
    /// control, plugins and logs. Returns false when the connection must be dropped.
    async fn read_proxy_header(&mut self) -> bool {
        if !self.ctx.config.server.proxy_networks.contains(self.client.ip) {
            tracing::warn!(peer = %self.client.ip, "PROXY listener: connection from an untrusted address refused");
            metrics::counter!("sluice_connections_rejected_total", "reason" => "proxy-untrusted").increment(1);
            return false;
        }
        let deadline = Instant::now() + PROXY_HEADER_TIMEOUT;
        loop {
            match proxy::parse(&self.conn.input) {
                Ok(Some((header, used))) => {
                    bytes::Buf::advance(&mut self.conn.input, used);
                    if let Some(source) = header.source {
                        tracing::debug!(proxy = %self.client.ip, client = %source, "PROXY header");
                        self.client.ip = source.ip();
                        self.client.port = source.port();
                        self.trusted = self.ctx.config.relay.networks.contains(source.ip());
                    }
                    return true;
                }
                Ok(None) => {
                    if self.conn.fill(deadline).await.is_err() {
                        return false;
                    }
                }
                Err(error) => {
                    tracing::warn!(peer = %self.client.ip, %error, "bad PROXY header");
                    return false;
                }
            }
        }
    }

    fn on_read_error(&mut self, error: ReadError) {
        match error {
            ReadError::Closed => tracing::debug!("client closed the connection"),
            ReadError::TimedOut => {
                tracing::info!("timeout");
                self.conn.queue_reply(&replies::TIMEOUT);
            }
            ReadError::Io(error) => tracing::debug!(%error, "read failed"),
        }
    }

    /// Early talkers are almost always spam bots that do not wait for the greeting.
    async fn talks_before_greeting(&mut self) -> bool {
        // Bytes that came with a PROXY header were sent before the greeting too.
        if !self.conn.input.is_empty() {
            return true;
        }
        let deadline = Instant::now() + self.ctx.config.server.greeting_delay.get();
        let Some(Stream::Plain(socket)) = self.conn.stream_mut() else { return false };
        let mut probe = [0u8; 1];
        loop {
            match socket.try_read(&mut probe) {
                Ok(n) => return n > 0,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
            // Readiness can be spurious; only data (or EOF) read above counts.
            if tokio::time::timeout_at(deadline, socket.readable()).await.is_err() {
                return false;
            }
        }
    }

    /// Queues a reply, counting errors; too many end the session.
    fn reply(&mut self, reply: Reply) -> Flow {
        self.conn.queue_reply(&reply);
        // A 452 for too many recipients is flow control (RFC 5321 §4.5.3.1.10), not misbehaviour.
        if reply.is_error() && reply.status != Some(Status(4, 5, 3)) {
            self.errors += 1;
            if self.errors >= self.ctx.config.limits.max_errors {
                tracing::info!(errors = self.errors, "too many errors");
                self.conn.queue_reply(&replies::TOO_MANY_ERRORS);
                return Flow::Close;
            }
        }
        if reply.code == 421 { Flow::Close } else { Flow::Continue }
    }

    /// Turns a plugin stage's decision into the reply to the command, if it refused.
    fn refusal(&mut self, stage: Stage, decision: Decision) -> Option<Flow> {
        match decision {
            Decision::Proceed => None,
            Decision::Refuse(reply) => {
                count_refusal(stage, &reply);
                Some(self.reply(reply))
            }
            Decision::Disconnect(reply) => {
                count_refusal(stage, &reply);
                self.conn.queue_reply(&reply);
                Some(Flow::Close)
            }
        }
    }

    async fn handle_line(&mut self, line: &[u8]) -> Flow {
        let command = match parse_command(line) {
            Ok(command) => command,
            Err(reply) => return self.reply(reply),
        };
        if self.refused && command != Command::Quit {
            return self.reply(NO_SERVICE);
        }
        match command {
            Command::Ehlo(name) => self.on_helo(name, true).await,
            Command::Helo(name) => self.on_helo(name, false).await,
            Command::Mail(arg) => self.on_mail(arg).await,
            Command::Rcpt(arg) => self.on_rcpt(arg).await,
            Command::Data => self.on_data().await,
            Command::Bdat { size, last } => self.on_bdat(size, last).await,
            Command::Rset => {
                self.state.take_transaction();
                self.reply(replies::RESET_OK)
            }
            Command::Noop => self.reply(replies::OK),
            Command::Help => {
                self.conn.queue_raw(self.ctx.help_reply());
                Flow::Continue
            }
            Command::Vrfy => self.reply(replies::VRFY),
            Command::Expn => self.reply(replies::NOT_IMPLEMENTED),
            Command::Quit => {
                self.conn.queue_reply(&replies::BYE);
                Flow::Close
            }
            Command::StartTls => self.on_starttls().await,
            Command::Auth { mechanism, initial } => self.on_auth(mechanism, initial).await,
        }
    }

    fn tls_active(&self) -> bool {
        self.client.tls.is_some()
    }
}
