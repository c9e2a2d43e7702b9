//! Everything a session needs that is shared by all sessions of one configuration.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use super::replies;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::mail_auth::Checker;
use crate::mail_auth::sign::Signers;
use crate::plugin::PluginHost;
use crate::queue::Queue;
use crate::recipients::Verifier;
use crate::wire::{Extension, Reply};

pub struct SmtpContext {
    pub config: Arc<Config>,
    pub tls: Option<TlsAcceptor>,
    pub queue: Arc<Queue>,
    pub plugins: Arc<PluginHost>,
    /// Arrival times come from here.
    pub clock: SharedClock,
    /// Recipient verification at RCPT (`[route.recipients]`).
    pub recipients: Arc<Verifier>,
    /// DKIM keys for outgoing mail (`[[dkim_sign]]`).
    pub signers: Arc<Signers>,
    /// The mail-authentication checks (`[mail_auth]`).
    pub mail_auth: Arc<Checker>,
    greeting: Vec<u8>,
    /// EHLO replies, by (offer STARTTLS, offer AUTH).
    ehlo: [[Vec<u8>; 2]; 2],
    help: Vec<u8>,
}

/// The SASL mechanisms the server's AUTH takes (`session/auth.rs`).
pub const AUTH_MECHANISMS: [&str; 2] = ["PLAIN", "LOGIN"];

fn wire_bytes(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    out
}

impl SmtpContext {
    pub fn new(config: Arc<Config>, tls: Option<TlsAcceptor>, queue: Arc<Queue>, plugins: Arc<PluginHost>) -> Self {
        let hostname = &config.server.hostname;
        let greeting = format!("220 {hostname} ESMTP Sluice\r\n").into_bytes();
        let size = config.limits.max_message_size.bytes();
        let ehlo = |starttls: bool, auth: bool| {
            let offered = Extension::ALL.into_iter().filter_map(|extension| match extension {
                Extension::Size => Some(format!("SIZE {size}")),
                Extension::StartTls if !starttls => None,
                Extension::Auth if !auth => None,
                Extension::Auth => Some(format!("AUTH {}", AUTH_MECHANISMS.join(" "))),
                _ => Some(extension.keyword().to_string()),
            });
            let text = std::iter::once(hostname.clone()).chain(offered).collect::<Vec<_>>().join("\n");
            wire_bytes(&Reply { code: 250, status: None, text: text.into() })
        };
        SmtpContext {
            greeting,
            ehlo: [[ehlo(false, false), ehlo(false, true)], [ehlo(true, false), ehlo(true, true)]],
            help: wire_bytes(&replies::help()),
            config,
            tls,
            queue,
            plugins,
            clock: crate::clock::system(),
            recipients: Arc::new(Verifier::disabled()),
            signers: Arc::new(Signers::default()),
            mail_auth: Arc::new(Checker::disabled()),
        }
    }

    /// Verifies recipients with `verifier` (none are verified otherwise).
    pub fn with_recipients(mut self, verifier: Arc<Verifier>) -> Self {
        self.recipients = verifier;
        self
    }

    /// Signs outgoing mail with `signers` (none is signed otherwise).
    pub fn with_signers(mut self, signers: Arc<Signers>) -> Self {
        self.signers = signers;
        self
    }

    /// Checks incoming mail with `checker` (none is checked otherwise).
    pub fn with_mail_auth(mut self, checker: Checker) -> Self {
        self.mail_auth = Arc::new(checker);
        self
    }

    pub fn hostname(&self) -> &str {
        &self.config.server.hostname
    }

    pub fn greeting(&self) -> &[u8] {
        &self.greeting
    }

    pub fn help_reply(&self) -> &[u8] {
        &self.help
    }

    pub fn ehlo_reply(&self, offer_starttls: bool, offer_auth: bool) -> &[u8] {
        &self.ehlo[usize::from(offer_starttls)][usize::from(offer_auth)]
    }
}
