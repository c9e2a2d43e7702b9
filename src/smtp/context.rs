//! Everything a session needs that is shared by all sessions of one configuration.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::plugin::PluginHost;
use crate::queue::Queue;

pub struct SmtpContext {
    pub config: Arc<Config>,
    pub tls: Option<TlsAcceptor>,
    pub queue: Arc<Queue>,
    pub plugins: Arc<PluginHost>,
    greeting: Vec<u8>,
    /// EHLO replies, by (offer STARTTLS, offer AUTH).
    ehlo: [[Vec<u8>; 2]; 2],
}

impl SmtpContext {
    pub fn new(config: Arc<Config>, tls: Option<TlsAcceptor>, queue: Arc<Queue>, plugins: Arc<PluginHost>) -> Self {
        let hostname = &config.server.hostname;
        let greeting = format!("220 {hostname} ESMTP Sluice\r\n").into_bytes();
        let ehlo = |starttls: bool, auth: bool| {
            let mut lines = vec![
                hostname.clone(),
                "PIPELINING".to_string(),
                format!("SIZE {}", config.limits.max_message_size.bytes()),
                "8BITMIME".to_string(),
                "SMTPUTF8".to_string(),
                "ENHANCEDSTATUSCODES".to_string(),
                "CHUNKING".to_string(),
                "DSN".to_string(),
            ];
            if starttls {
                lines.push("STARTTLS".to_string());
            }
            if auth {
                lines.push("AUTH PLAIN LOGIN".to_string());
            }
            lines.push("HELP".to_string());
            let last = lines.len() - 1;
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                .collect::<String>()
                .into_bytes()
        };
        SmtpContext {
            greeting,
            ehlo: [[ehlo(false, false), ehlo(false, true)], [ehlo(true, false), ehlo(true, true)]],
            config,
            tls,
            queue,
            plugins,
        }
    }

    pub fn hostname(&self) -> &str {
        &self.config.server.hostname
    }

    pub fn greeting(&self) -> &[u8] {
        &self.greeting
    }

    pub fn ehlo_reply(&self, offer_starttls: bool, offer_auth: bool) -> &[u8] {
        &self.ehlo[usize::from(offer_starttls)][usize::from(offer_auth)]
    }
}
