//! The envelope commands: HELO/EHLO, MAIL, RCPT, and STARTTLS.

use tokio::time::Instant;

use super::super::params::{parse_mail_params, parse_rcpt_params};
use super::super::relay::check_recipient;
use super::super::replies;
use super::super::socket::Socket;
use super::super::state::{Flow, Helo, SessionState, Transaction};
use super::super::stream::Stream;
use super::{Session, TLS_HANDSHAKE_TIMEOUT};
use crate::config::ListenTls;
use crate::mail::address::{AddressError, PathRole, parse_path};
use crate::mail::{Mailbox, Recipient};
use crate::plugin::apply::accept_recipients;
use crate::plugin::{Decision, Stage, TxnView};
use crate::wire::{Reply, Status};

impl<S: Socket> Session<S> {
    fn offers_starttls(&self) -> bool {
        self.ctx.tls.is_some() && self.listener_tls == ListenTls::Starttls && !self.tls_active()
    }

    pub(super) async fn on_helo(&mut self, name: &str, extended: bool) -> Flow {
        let previous = self.client.helo.replace(name.to_string());
        let decision = self.plugins.helo(&self.client).await;
        if let Some(flow) = self.refusal(Stage::Helo, decision) {
            self.client.helo = previous;
            return flow;
        }
        self.state = SessionState::Greeted { helo: Helo { name: name.to_string(), extended }, transaction: None };
        if extended {
            let (starttls, auth) = (self.offers_starttls(), self.offers_auth());
            self.conn.queue_raw(self.ctx.ehlo_reply(starttls, auth));
        } else {
            let reply = format!("250 {}\r\n", self.ctx.hostname());
            self.conn.queue_raw(reply.as_bytes());
        }
        Flow::Continue
    }

    pub(super) async fn on_mail(&mut self, arg: &str) -> Flow {
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
        let mut sender = path.mailbox;
        let spf = self.check_sender(sender.as_ref()).await;
        let mut notes = self.plugins.notes.clone();
        let decision = self.plugins.mail_from(&self.client, &mut sender, &params, &mut notes).await;
        if let Some(flow) = self.refusal(Stage::MailFrom, decision) {
            return flow;
        }
        tracing::debug!(sender = ?sender.as_ref().map(ToString::to_string), "MAIL");
        if let SessionState::Greeted { transaction, .. } = &mut self.state {
            let mut new = Transaction::new(sender, params);
            new.notes = notes;
            new.spf = spf;
            *transaction = Some(Box::new(new));
        }
        self.reply(replies::SENDER_OK)
    }

    pub(super) async fn on_rcpt(&mut self, arg: &str) -> Flow {
        let limits = &self.ctx.config.limits;
        let max_recipients = limits.max_recipients;
        let Some(transaction) = self.state.transaction_mut() else {
            let reply = if self.state.helo().is_none() { replies::NEED_HELO } else { replies::NEED_MAIL };
            return self.reply(reply);
        };
        if transaction.chunked.is_some() {
            return self.reply(replies::NEED_MAIL);
        }
        if transaction.recipients.len() >= max_recipients {
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
            super::count_refusal(Stage::RcptTo, &reply);
            return self.reply(reply);
        }
        if let Err(flow) = self.verify_recipient(&address).await {
            return flow;
        }
        let (decision, recipient, added) = self.rcpt_stage(Recipient { address, params, route: None }).await;
        if let Some(flow) = self.refusal(Stage::RcptTo, decision) {
            return flow;
        }
        if let Some(transaction) = self.state.transaction_mut() {
            accept_recipients(&mut transaction.recipients, recipient, added, max_recipients);
        }
        self.reply(replies::RECIPIENT_OK)
    }

    /// Runs the RCPT stage: the recipient may come back rewritten, or dropped (`None`),
    /// with others added.
    async fn rcpt_stage(&mut self, recipient: Recipient) -> (Decision, Option<Recipient>, Vec<Mailbox>) {
        let mut recipient = Some(recipient);
        let SessionState::Greeted { transaction: Some(transaction), .. } = &mut self.state else {
            return (Decision::Proceed, recipient, Vec::new());
        };
        let mut notes = std::mem::take(&mut transaction.notes);
        let view = TxnView {
            sender: Some(&transaction.sender),
            params: Some(&transaction.params),
            recipients: &transaction.recipients,
        };
        let (decision, added) = self.plugins.rcpt_to(&self.client, &view, &mut recipient, &mut notes).await;
        transaction.notes = notes;
        (decision, recipient, added)
    }

    pub(super) async fn on_starttls(&mut self) -> Flow {
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
            metrics::counter!("sluice_tls_handshakes_total", "direction" => "inbound", "result" => "failed")
                .increment(1);
            return Flow::Close;
        }
        metrics::counter!("sluice_tls_handshakes_total", "direction" => "inbound", "result" => "ok").increment(1);
        // RFC 3207 §4.2: forget everything learnt before TLS.
        self.state = SessionState::AwaitingHelo;
        self.client.helo = None;
        self.client.tls = self.conn.stream_ref().and_then(Stream::tls_info);
        tracing::debug!(tls = ?self.client.tls, "TLS established");
        Flow::Continue
    }
}

fn address_reply(error: AddressError, detail: u16, role: &str) -> Reply {
    match error {
        AddressError::TooLong => Reply::owned(501, Status(5, 1, detail), format!("Error: {role} address too long")),
        AddressError::Syntax | AddressError::NullNotAllowed => {
            Reply::owned(501, Status(5, 1, detail), format!("Error: bad {role} address syntax"))
        }
    }
}
