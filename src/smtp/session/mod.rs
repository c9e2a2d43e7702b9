//! One SMTP session: reads commands, keeps the state machine, runs the plugins at each
//! stage, receives message content and hands accepted messages to the queue.
//!
//! - `mod.rs`: the command loop, replies and error counting;
//! - `envelope.rs`: HELO/EHLO, MAIL, RCPT, RSET and STARTTLS;
//! - `content.rs`: receiving DATA and BDAT content;
//! - `accept.rs`: checking finished content, the DATA stage, and queueing.

mod accept;
mod content;
mod envelope;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::command::{Command, parse_command};
use super::connection::{Connection, Line, ReadError};
use super::context::SmtpContext;
use super::reply::{Reply, Status, replies};
use super::state::{Flow, SessionState};
use super::stream::Stream;
use crate::config::ListenTls;
use crate::mail::ClientInfo;
use crate::plugin::{Decision, PluginSession};

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF.
const MAX_COMMAND_LINE: usize = 512;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

const NO_SERVICE: Reply = Reply::new(503, Status(5, 5, 1), "Error: no SMTP service here; send QUIT");

pub struct Session {
    ctx: Arc<SmtpContext>,
    conn: Connection,
    client: ClientInfo,
    state: SessionState,
    plugins: PluginSession,
    listener_tls: ListenTls,
    /// The client may relay to any domain.
    trusted: bool,
    /// A plugin refused the connection: only QUIT is served (RFC 5321 §3.1).
    refused: bool,
    errors: u32,
}

impl Session {
    pub fn new(ctx: Arc<SmtpContext>, tcp: TcpStream, client: ClientInfo, listener_tls: ListenTls) -> Self {
        let trusted = ctx.config.relay.networks.contains(client.ip);
        let plugins = PluginSession::new(Arc::clone(&ctx.plugins), ctx.hostname());
        Session {
            ctx,
            conn: Connection::new(Stream::Plain(tcp)),
            client,
            state: SessionState::AwaitingHelo,
            plugins,
            listener_tls,
            trusted,
            refused: false,
            errors: 0,
        }
    }

    /// Runs the session to its end.
    pub async fn run(mut self) {
        if self.listener_tls == ListenTls::Implicit {
            let Some(acceptor) = self.ctx.tls.clone() else { return };
            if let Err(error) = self.conn.start_tls(&acceptor, Instant::now() + TLS_HANDSHAKE_TIMEOUT).await {
                tracing::info!(%error, "TLS handshake failed");
                return;
            }
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
                self.conn.queue_reply(&reply);
                self.refused = true;
                Flow::Continue
            }
            // A temporary refusal at connect is "service not available": 421 and close.
            Decision::Refuse(reply) | Decision::Disconnect(reply) => {
                self.conn.queue_reply(&reply);
                Flow::Close
            }
        }
    }

    async fn serve_commands(&mut self) {
        loop {
            let deadline = Instant::now() + self.ctx.config.limits.command_timeout.get();
            let flow = match self.conn.read_line(MAX_COMMAND_LINE, deadline).await {
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
        let Some(Stream::Plain(tcp)) = self.conn.stream_ref() else { return false };
        let deadline = Instant::now() + self.ctx.config.server.greeting_delay.get();
        let mut probe = [0u8; 1];
        loop {
            match tcp.try_read(&mut probe) {
                Ok(n) => return n > 0,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
            // Readiness can be spurious; only data (or EOF) read above counts.
            if tokio::time::timeout_at(deadline, tcp.readable()).await.is_err() {
                return false;
            }
        }
    }

    /// Queues a reply, counting errors; too many end the session.
    fn reply(&mut self, reply: Reply) -> Flow {
        self.conn.queue_reply(&reply);
        // A 452 for too many recipients is flow control (RFC 5321 §4.5.3.1.10), not misbehaviour.
        if reply.is_error() && reply.status != Status(4, 5, 3) {
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
    fn refusal(&mut self, decision: Decision) -> Option<Flow> {
        match decision {
            Decision::Proceed => None,
            Decision::Refuse(reply) => Some(self.reply(reply)),
            Decision::Disconnect(reply) => {
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
            Command::Help => self.reply(replies::HELP),
            Command::Vrfy => self.reply(replies::VRFY),
            Command::Expn => self.reply(replies::NOT_IMPLEMENTED),
            Command::Quit => {
                self.conn.queue_reply(&replies::BYE);
                Flow::Close
            }
            Command::StartTls => self.on_starttls().await,
        }
    }

    fn tls_active(&self) -> bool {
        self.client.tls.is_some()
    }
}
