//! `[delivery]`: the outbound SMTP client. Timeouts default to RFC 5321 §4.5.3.2.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::units::TimeSpan;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// The name we give in EHLO; `server.hostname` when unset.
    #[serde(deserialize_with = "optional_hostname")]
    pub helo_name: Option<String>,
    /// Outbound connections at once, all destinations together.
    #[serde(deserialize_with = "at_least_one")]
    pub max_connections: usize,
    /// Outbound connections at once to one destination (a route's next hops, or one
    /// domain's MX hosts).
    #[serde(deserialize_with = "at_least_one")]
    pub connections_per_destination: usize,
    /// Recipients per transaction; more go in further transactions.
    #[serde(deserialize_with = "at_least_one")]
    pub max_recipients_per_transaction: usize,
    /// Transactions on one connection before it is closed.
    #[serde(deserialize_with = "at_least_one")]
    pub max_messages_per_connection: usize,
    /// How long an idle connection is kept for reuse.
    pub idle_timeout: TimeSpan,
    pub connect_timeout: TimeSpan,
    /// Waiting for the 220 greeting.
    pub greeting_timeout: TimeSpan,
    /// EHLO, STARTTLS, MAIL, RCPT, RSET and QUIT.
    pub command_timeout: TimeSpan,
    /// Waiting for the 354 after DATA.
    pub data_timeout: TimeSpan,
    /// Sending each block of message content.
    pub data_block_timeout: TimeSpan,
    /// Waiting for the reply to the final `.`.
    pub data_done_timeout: TimeSpan,
    /// After every host of a destination failed to connect or to talk, other messages
    /// for it wait this long instead of trying again at once.
    pub unreachable_backoff: TimeSpan,
    /// PEM bundle of CAs trusted for `tls = "verify"`; Mozilla's roots when unset.
    pub tls_ca_file: Option<Spanned<PathBuf>>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            helo_name: None,
            max_connections: 1000,
            connections_per_destination: 20,
            max_recipients_per_transaction: 100,
            max_messages_per_connection: 1000,
            idle_timeout: TimeSpan::secs(5),
            connect_timeout: TimeSpan::secs(30),
            greeting_timeout: TimeSpan::secs(300),
            command_timeout: TimeSpan::secs(300),
            data_timeout: TimeSpan::secs(120),
            data_block_timeout: TimeSpan::secs(180),
            data_done_timeout: TimeSpan::secs(600),
            unreachable_backoff: TimeSpan::secs(60),
            tls_ca_file: None,
        }
    }
}

fn optional_hostname<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    super::server::hostname(deserializer).map(Some)
}

fn at_least_one<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(deserializer)?;
    if n == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(n)
}
