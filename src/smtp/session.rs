//! One SMTP session: reads commands, keeps the state machine, receives message
//! content and hands accepted messages to the queue.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Buf;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::command::{Command, parse_command};
use super::connection::{Connection, Line, ReadError};
use super::context::SmtpContext;
use super::data::{DataDecoder, Framing, Progress};
use super::params::{parse_mail_params, parse_rcpt_params};
use super::received::{count_received, protocol, received_header};
use super::relay::check_recipient;
use super::reply::{Reply, Status, replies};
use super::state::{ChunkedBody, Flow, Helo, SessionState, Transaction};
use super::stream::Stream;
use crate::config::{BareNewlines, ListenTls};
use crate::mail::address::{AddressError, PathRole, parse_path};
use crate::mail::{ClientInfo, Envelope, Recipient};
use crate::queue::{BufferStatus, MessageBuffer, MessageState, QueueId, StoreError};

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF.
const MAX_COMMAND_LINE: usize = 512;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Session {
    ctx: Arc<SmtpContext>,
    conn: Connection,
    client: ClientInfo,
    state: SessionState,
    listener_tls: ListenTls,
    /// The client may relay to any domain.
    trusted: bool,
    errors: u32,
}

impl Session {
    pub fn new(ctx: Arc<SmtpContext>, tcp: TcpStream, client: ClientInfo, listener_tls: ListenTls) -> Self {
        let trusted = ctx.config.relay.networks.contains(client.ip);
        Session {
            ctx,
            conn: Connection::new(Stream::Plain(tcp)),
            client,
            state: SessionState::AwaitingHelo,
            listener_tls,
            trusted,
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
        self.conn.queue_raw(self.ctx.greeting());
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
                break;
            }
        }
        self.conn.shutdown().await;
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

    async fn handle_line(&mut self, line: &[u8]) -> Flow {
        let command = match parse_command(line) {
            Ok(command) => command,
            Err(reply) => return self.reply(reply),
        };
        match command {
            Command::Ehlo(name) => self.on_helo(name, true),
            Command::Helo(name) => self.on_helo(name, false),
            Command::Mail(arg) => self.on_mail(arg),
            Command::Rcpt(arg) => self.on_rcpt(arg),
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

    fn offers_starttls(&self) -> bool {
        self.ctx.tls.is_some() && self.listener_tls == ListenTls::Starttls && !self.tls_active()
    }

    fn on_helo(&mut self, name: &str, extended: bool) -> Flow {
        self.state = SessionState::Greeted { helo: Helo { name: name.to_string(), extended }, transaction: None };
        self.client.helo = Some(name.to_string());
        if extended {
            let offer = self.offers_starttls();
            self.conn.queue_raw(self.ctx.ehlo_reply(offer));
        } else {
            let reply = format!("250 {}\r\n", self.ctx.hostname());
            self.conn.queue_raw(reply.as_bytes());
        }
        Flow::Continue
    }

    fn on_mail(&mut self, arg: &str) -> Flow {
        let SessionState::Greeted { transaction, .. } = &self.state else {
            return self.reply(replies::NEED_HELO);
        };
        if transaction.is_some() {
            return self.reply(replies::NESTED_MAIL);
        }
        let path = match parse_path(arg, PathRole::Reverse) {
            Ok(path) => path,
            Err(error) => return self.reply(address_reply(error, 7, "sender")),
        };
        let max_size = self.ctx.config.limits.max_message_size.bytes();
        let params = match parse_mail_params(path.params, max_size) {
            Ok(params) => params,
            Err(reply) => return self.reply(reply),
        };
        if let Some(sender) = &path.mailbox
            && !sender.is_ascii()
            && !params.smtputf8
        {
            return self.reply(replies::NEEDS_SMTPUTF8);
        }
        let sender = path.mailbox;
        tracing::debug!(sender = ?sender.as_ref().map(ToString::to_string), "MAIL");
        if let SessionState::Greeted { transaction, .. } = &mut self.state {
            *transaction = Some(Transaction::new(sender, params));
        }
        self.reply(replies::SENDER_OK)
    }

    fn on_rcpt(&mut self, arg: &str) -> Flow {
        let limits = &self.ctx.config.limits;
        let Some(transaction) = self.state.transaction_mut() else {
            let reply = if self.state.helo().is_none() { replies::NEED_HELO } else { replies::NEED_MAIL };
            return self.reply(reply);
        };
        if transaction.chunked.is_some() {
            return self.reply(replies::NEED_MAIL);
        }
        if transaction.recipients.len() >= limits.max_recipients {
            return self.reply(replies::TOO_MANY_RECIPIENTS);
        }
        let smtputf8 = transaction.params.smtputf8;
        let path = match parse_path(arg, PathRole::Forward) {
            Ok(path) => path,
            Err(error) => return self.reply(address_reply(error, 3, "recipient")),
        };
        let Some(address) = path.mailbox else {
            return self.reply(address_reply(AddressError::Syntax, 3, "recipient"));
        };
        let params = match parse_rcpt_params(path.params, smtputf8) {
            Ok(params) => params,
            Err(reply) => return self.reply(reply),
        };
        if !address.is_ascii() && !smtputf8 {
            return self.reply(replies::NEEDS_SMTPUTF8);
        }
        if let Err(reply) =
            check_recipient(&self.ctx.config.relay, self.ctx.hostname(), self.trusted, &address, path.source_route)
        {
            tracing::info!(recipient = %address, client = %self.client.ip, "relay denied");
            return self.reply(reply);
        }
        tracing::debug!(recipient = %address, "RCPT");
        if let Some(transaction) = self.state.transaction_mut() {
            transaction.recipients.push(Recipient { address, params, route: None });
        }
        self.reply(replies::RECIPIENT_OK)
    }

    /// Checks that a transaction is ready for content; the reply says why not.
    fn content_allowed(&self) -> Result<(), Reply> {
        match &self.state {
            SessionState::AwaitingHelo => Err(replies::NEED_HELO),
            SessionState::Greeted { transaction: None, .. } => Err(replies::NEED_MAIL),
            SessionState::Greeted { transaction: Some(t), .. } if t.recipients.is_empty() => {
                Err(replies::NO_VALID_RECIPIENTS)
            }
            SessionState::Greeted { .. } => Ok(()),
        }
    }

    async fn on_data(&mut self) -> Flow {
        if let Err(reply) = self.content_allowed() {
            return self.reply(reply);
        }
        if self.state.transaction_mut().is_some_and(|t| t.chunked.is_some()) {
            return self.reply(replies::DATA_AFTER_BDAT);
        }
        // RFC 2920 §3.1: DATA ends a pipelined group. Content that arrived with it was
        // sent blind, before our 354: refuse rather than guess where it belongs.
        if !self.conn.input.is_empty() {
            tracing::info!("message content sent before the 354 reply");
            self.reply(replies::PIPELINING_VIOLATION);
            return Flow::Close;
        }
        self.conn.queue_reply(&replies::START_DATA);
        let limits = &self.ctx.config.limits;
        let id = self.ctx.queue.next_id();
        let mut buffer = self.ctx.queue.new_buffer(id, limits.max_message_size.bytes());
        let mut decoder = DataDecoder::new(Framing::DotTerminated, limits.max_line_length);
        let deadline = Instant::now() + limits.data_timeout.get();
        let give_up_after = abort_threshold(limits.max_message_size.bytes());
        loop {
            match decoder.feed(&self.conn.input, buffer.writer()) {
                Progress::Done { consumed } => {
                    self.conn.input.advance(consumed);
                    buffer.absorb().await;
                    break;
                }
                Progress::NeedMore => {
                    self.conn.input.clear();
                    buffer.absorb().await;
                }
            }
            if buffer.seen() > give_up_after {
                return self.abort_oversized();
            }
            if let Err(error) = self.conn.fill(deadline).await {
                self.on_read_error(error);
                return Flow::Close;
            }
        }
        self.finish_message(id, buffer, &decoder).await
    }

    async fn on_bdat(&mut self, size: u64, last: bool) -> Flow {
        let limits = &self.ctx.config.limits;
        let deadline = Instant::now() + limits.data_timeout.get();
        let give_up_after = abort_threshold(limits.max_message_size.bytes());
        let max_size = limits.max_message_size.bytes();
        let max_line = limits.max_line_length;
        if let Err(reply) = self.content_allowed() {
            // The chunk is consumed either way; otherwise its bytes would be read as commands.
            return match self.discard(size, deadline).await {
                Ok(()) => self.reply(reply),
                Err(error) => {
                    self.on_read_error(error);
                    Flow::Close
                }
            };
        }
        let queue = Arc::clone(&self.ctx.queue);
        let Some(transaction) = self.state.transaction_mut() else { return Flow::Close };
        let mut body = transaction.chunked.take().unwrap_or_else(|| {
            let id = queue.next_id();
            Box::new(ChunkedBody {
                id,
                buffer: queue.new_buffer(id, max_size),
                decoder: DataDecoder::new(Framing::Chunked, max_line),
            })
        });
        let mut remaining = size;
        while remaining > 0 {
            if self.conn.input.is_empty()
                && let Err(error) = self.conn.fill(deadline).await
            {
                self.on_read_error(error);
                return Flow::Close;
            }
            let take = remaining.min(self.conn.input.len() as u64) as usize;
            body.decoder.feed(&self.conn.input[..take], body.buffer.writer());
            self.conn.input.advance(take);
            body.buffer.absorb().await;
            remaining -= take as u64;
            if body.buffer.seen() > give_up_after {
                return self.abort_oversized();
            }
        }
        if body.buffer.status() == BufferStatus::TooBig {
            // RFC 3030: after an error reply the client sends no further chunks.
            self.state.take_transaction();
            return self.reply(replies::MESSAGE_TOO_BIG);
        }
        if last {
            let ChunkedBody { id, mut buffer, mut decoder } = *body;
            decoder.finish(buffer.writer());
            buffer.absorb().await;
            return self.finish_message(id, buffer, &decoder).await;
        }
        if let Some(transaction) = self.state.transaction_mut() {
            transaction.chunked = Some(body);
        }
        self.reply(Reply::owned(250, Status(2, 0, 0), format!("Ok: {size} octets received")))
    }

    async fn discard(&mut self, mut size: u64, deadline: Instant) -> Result<(), ReadError> {
        while size > 0 {
            if self.conn.input.is_empty() {
                self.conn.fill(deadline).await?;
            }
            let take = size.min(self.conn.input.len() as u64) as usize;
            self.conn.input.advance(take);
            size -= take as u64;
        }
        Ok(())
    }

    /// Far past the limit: answer now and hang up instead of reading on.
    fn abort_oversized(&mut self) -> Flow {
        tracing::info!("message far over the size limit; closing");
        self.state.take_transaction();
        self.conn.queue_reply(&replies::MESSAGE_TOO_BIG);
        Flow::Close
    }

    /// Content is complete: check it, and queue it.
    async fn finish_message(&mut self, id: QueueId, mut buffer: MessageBuffer, decoder: &DataDecoder) -> Flow {
        let Some(transaction) = self.state.take_transaction() else { return Flow::Close };
        let limits = &self.ctx.config.limits;
        let rejection = match buffer.finish().await {
            BufferStatus::TooBig => Some(replies::MESSAGE_TOO_BIG),
            BufferStatus::IoError => Some(replies::QUEUE_IO_ERROR),
            BufferStatus::Ok if decoder.saw_bare_newline && limits.bare_newlines == BareNewlines::Reject => {
                Some(replies::BARE_NEWLINE)
            }
            BufferStatus::Ok if decoder.saw_long_line => Some(replies::TEXT_LINE_TOO_LONG),
            BufferStatus::Ok if count_received(buffer.head()) > limits.max_received_headers => {
                Some(replies::LOOP_DETECTED)
            }
            BufferStatus::Ok => None,
        };
        if let Some(reply) = rejection {
            tracing::info!(%id, reply = %reply, "message refused");
            return self.reply(reply);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let envelope = Envelope {
            id,
            arrived: now,
            sender: transaction.sender,
            mail_params: transaction.params,
            recipients: transaction.recipients,
            client: self.client.clone(),
            route: None,
            tags: Vec::new(),
            score: 0.0,
        };
        let extended = self.state.helo().is_some_and(|h| h.extended);
        let proto =
            protocol(extended, self.tls_active(), self.client.auth_user.is_some(), envelope.mail_params.smtputf8);
        let single = match envelope.recipients.as_slice() {
            [only] => Some(&only.address),
            _ => None,
        };
        let received = received_header(self.ctx.hostname(), &self.client, &proto, id, single, now as i64);
        let size = buffer.len();
        let sender = envelope.sender_path();
        let recipients = envelope.recipients.len();
        match self.ctx.queue.store(envelope, MessageState::default(), received.into_bytes(), buffer).await {
            Ok(()) => {
                tracing::info!(%id, %sender, recipients, size, "message queued");
                self.reply(Reply::owned(250, Status(2, 0, 0), format!("Ok: queued as {id}")))
            }
            Err(error) => {
                tracing::error!(%id, %error, "cannot queue message");
                self.reply(match error {
                    StoreError::NoSpace(_) => replies::QUEUE_FULL,
                    StoreError::Io(_) => replies::QUEUE_IO_ERROR,
                })
            }
        }
    }

    async fn on_starttls(&mut self) -> Flow {
        if self.tls_active() {
            return self.reply(replies::TLS_ALREADY_ACTIVE);
        }
        let Some(acceptor) = self.ctx.tls.clone().filter(|_| self.listener_tls == ListenTls::Starttls) else {
            return self.reply(replies::TLS_UNAVAILABLE);
        };
        if self.state.helo().is_none() {
            return self.reply(replies::NEED_HELO);
        }
        self.conn.queue_reply(&replies::START_TLS);
        if let Err(error) = self.conn.start_tls(&acceptor, Instant::now() + TLS_HANDSHAKE_TIMEOUT).await {
            tracing::info!(%error, "STARTTLS handshake failed");
            return Flow::Close;
        }
        // RFC 3207 §4.2: forget everything learnt before TLS.
        self.state = SessionState::AwaitingHelo;
        self.client.helo = None;
        self.client.tls = self.conn.stream_ref().and_then(Stream::tls_info);
        tracing::debug!(tls = ?self.client.tls, "TLS established");
        Flow::Continue
    }
}

/// After this much content (twice the limit, at least 1 MB over it) an oversized
/// message is cut off instead of being read to its end.
fn abort_threshold(limit: u64) -> u64 {
    limit.saturating_add(limit.max(1 << 20))
}

fn address_reply(error: AddressError, detail: u16, role: &str) -> Reply {
    match error {
        AddressError::TooLong => Reply::owned(501, Status(5, 1, detail), format!("Error: {role} address too long")),
        AddressError::Syntax | AddressError::NullNotAllowed => {
            Reply::owned(501, Status(5, 1, detail), format!("Error: bad {role} address syntax"))
        }
    }
}
