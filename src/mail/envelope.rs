//! The envelope of an accepted message: who sent it, to whom, and from where.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::address::Mailbox;
use super::params::{MailParams, RcptParams};
use crate::queue::QueueId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub address: Mailbox,
    #[serde(default, skip_serializing_if = "is_default")]
    pub params: RcptParams,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
