//! The envelope of an accepted message: who sent it, to whom, and from where.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::address::Mailbox;
use super::params::{MailParams, RcptParams};
use crate::mail::QueueId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub address: Mailbox,
    #[serde(default, skip_serializing_if = "is_default")]
    pub params: RcptParams,
    /// A route chosen for this recipient by a plugin; overrides the message's route
    /// and the `[[route]]` rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteChoice>,
}

/// Where a plugin asked a message (or a recipient) to go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteChoice {
    /// A `[[route]]` by name.
    Named(String),
    /// An explicit next hop, `host` or `host:port`.
    NextHop(String),
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The negotiated TLS parameters of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

/// What we know about the SMTP client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_user: Option<String>,
    pub session_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: QueueId,
    /// Arrival time, seconds since the Unix epoch.
    pub arrived: u64,
    /// `None` is the null reverse path `<>` (bounces).
    pub sender: Option<Mailbox>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub mail_params: MailParams,
    pub recipients: Vec<Recipient>,
    pub client: ClientInfo,
    /// A route chosen for the whole message by a plugin; overrides the `[[route]]` rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteChoice>,
    /// Tags attached by plugins, for logs and later plugins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The sum of the scores plugins attached (a spam score, typically).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub score: f64,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

impl Envelope {
    /// The sender as written in SMTP: `<>` or `<local@domain>`.
    pub fn sender_path(&self) -> String {
        match &self.sender {
            Some(m) => format!("<{m}>"),
            None => "<>".to_string(),
        }
    }
}

/// An envelope for tests: one sender, one recipient, a loopback client.
#[cfg(test)]
pub fn test_envelope(id: QueueId) -> Envelope {
    Envelope {
        id,
        arrived: 1_700_000_000,
        sender: Some(Mailbox::new("a", "example.org")),
        mail_params: MailParams::default(),
        recipients: vec![Recipient {
            address: Mailbox::new("b", "example.com"),
            params: RcptParams::default(),
            route: None,
        }],
        client: ClientInfo {
            ip: IpAddr::from([192, 0, 2, 1]),
            port: 1234,
            reverse_name: None,
            helo: Some("client.test".into()),
            tls: None,
            auth_user: None,
            session_id: "1".into(),
        },
        route: None,
        tags: Vec::new(),
        score: 0.0,
    }
}
