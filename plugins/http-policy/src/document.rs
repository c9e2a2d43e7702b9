//! The JSON document posted at each stage (the schema is in `README.md`).

use serde::Serialize;
use sluice_plugin::{EsmtpParam, Header, Recipient, Session, Transaction};

#[derive(Serialize)]
pub struct Document<'a> {
    pub stage: &'static str,
    pub session: SessionDoc<'a>,
    /// From MAIL FROM on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionDoc<'a>>,
    /// At RCPT TO: the recipient being added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<RecipientDoc<'a>>,
    /// At DATA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageDoc<'a>>,
}

#[derive(Serialize)]
pub struct SessionDoc<'a> {
    pub id: &'a str,
    pub client_ip: &'a str,
    pub client_port: u16,
    pub reverse_name: Option<&'a str>,
    pub helo: Option<&'a str>,
    /// The TLS version, such as "TLSv1.3", once TLS is active.
    pub tls: Option<&'a str>,
    pub auth_user: Option<&'a str>,
    pub server_hostname: &'a str,
}

#[derive(Serialize)]
pub struct ParamDoc<'a> {
    pub keyword: &'a str,
    pub value: Option<&'a str>,
}

#[derive(Serialize)]
pub struct RecipientDoc<'a> {
    pub address: &'a str,
    pub params: Vec<ParamDoc<'a>>,
}

#[derive(Serialize)]
pub struct TransactionDoc<'a> {
    pub sender: Option<&'a str>,
    pub sender_params: Vec<ParamDoc<'a>>,
    pub recipients: Vec<RecipientDoc<'a>>,
    pub tags: &'a [String],
    pub score: f64,
}

#[derive(Serialize)]
pub struct HeaderDoc<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

#[derive(Serialize)]
pub struct MessageDoc<'a> {
    pub size: u64,
    pub headers: Vec<HeaderDoc<'a>>,
    pub body_size: u64,
    /// The first bytes of the body, as text (invalid UTF-8 replaced).
    pub body: String,
    pub body_truncated: bool,
}

fn params(params: &[EsmtpParam]) -> Vec<ParamDoc<'_>> {
    params.iter().map(|p| ParamDoc { keyword: &p.keyword, value: p.value.as_deref() }).collect()
}

pub fn recipient(r: &Recipient) -> RecipientDoc<'_> {
    RecipientDoc { address: &r.address, params: params(&r.params) }
}

pub fn session(s: &Session) -> SessionDoc<'_> {
    SessionDoc {
        id: &s.id,
        client_ip: &s.client_ip,
        client_port: s.client_port,
        reverse_name: s.reverse_name.as_deref(),
        helo: s.helo.as_deref(),
        tls: s.tls.as_ref().map(|t| t.version.as_str()),
        auth_user: s.auth_user.as_deref(),
        server_hostname: &s.server_hostname,
    }
}

pub fn transaction(t: &Transaction) -> TransactionDoc<'_> {
    TransactionDoc {
        sender: t.sender.as_deref(),
        sender_params: params(&t.sender_params),
        recipients: t.recipients.iter().map(recipient).collect(),
        tags: &t.tags,
        score: t.score,
    }
}

/// The message part: `body` is the prefix read, `body_size` the whole body's size.
pub fn message<'a>(size: u64, headers: &'a [Header], body_size: u64, body: &[u8]) -> MessageDoc<'a> {
    MessageDoc {
        size,
        headers: headers.iter().map(|h| HeaderDoc { name: &h.name, value: &h.value }).collect(),
        body_size,
        body: String::from_utf8_lossy(body).into_owned(),
        body_truncated: (body.len() as u64) < body_size,
    }
}

impl Document<'_> {
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
