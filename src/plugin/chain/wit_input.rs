//! What plugins are called with: the session and the transaction in WIT types.

use super::notes::Notes;
use crate::mail::params::{Body, MailParams, RcptParams, Ret};
use crate::mail::{ClientInfo, Mailbox, Recipient};
use crate::plugin::bindings::sluice::plugin::types as wit;

/// The transaction as plugins see it (with the notes passed beside it).
#[derive(Clone, Copy)]
pub struct TxnView<'a> {
    /// `None` before MAIL; `Some(None)` for the null sender.
    pub sender: Option<&'a Option<Mailbox>>,
    pub params: Option<&'a MailParams>,
    pub recipients: &'a [Recipient],
}

pub(super) fn wit_session(client: &ClientInfo, hostname: &str) -> wit::Session {
    wit::Session {
        id: client.session_id.clone(),
        client_ip: client.ip.to_string(),
        client_port: client.port,
        reverse_name: client.reverse_name.clone(),
        helo: client.helo.clone(),
        tls: client.tls.as_ref().map(|t| wit::TlsInfo { version: t.version.clone(), cipher: t.cipher.clone() }),
        auth_user: client.auth_user.clone(),
        server_hostname: hostname.to_string(),
    }
}

pub(super) fn wit_transaction(view: &TxnView<'_>, notes: &Notes) -> wit::Transaction {
    wit::Transaction {
        sender: view.sender.map(|s| s.as_ref().map_or_else(String::new, ToString::to_string)),
        sender_params: view.params.map(mail_params).unwrap_or_default(),
        recipients: view.recipients.iter().map(wit_recipient).collect(),
        tags: notes.tags.clone(),
        score: notes.score,
        annotations: notes
            .annotations
            .iter()
            .map(|a| wit::Annotation { plugin: a.plugin.clone(), key: a.key.clone(), value: a.value.clone() })
            .collect(),
    }
}

pub(super) fn wit_recipient(recipient: &Recipient) -> wit::Recipient {
    wit::Recipient { address: recipient.address.to_string(), params: rcpt_params(&recipient.params) }
}

fn param(keyword: &str, value: Option<String>) -> wit::EsmtpParam {
    wit::EsmtpParam { keyword: keyword.to_string(), value }
}

fn mail_params(params: &MailParams) -> Vec<wit::EsmtpParam> {
    let mut list = Vec::new();
    if let Some(size) = params.size {
        list.push(param("SIZE", Some(size.to_string())));
    }
    if let Some(body) = params.body {
        let body = match body {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
        };
        list.push(param("BODY", Some(body.into())));
    }
    if params.smtputf8 {
        list.push(param("SMTPUTF8", None));
    }
    if let Some(ret) = params.ret {
        let ret = match ret {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        };
        list.push(param("RET", Some(ret.into())));
    }
    if let Some(envid) = &params.envid {
        list.push(param("ENVID", Some(envid.clone())));
    }
    list
}

fn rcpt_params(params: &RcptParams) -> Vec<wit::EsmtpParam> {
    let mut list = Vec::new();
    if let Some(n) = params.notify {
        let mut items = Vec::new();
        for (on, name) in [(n.never, "NEVER"), (n.success, "SUCCESS"), (n.failure, "FAILURE"), (n.delay, "DELAY")] {
            if on {
                items.push(name);
            }
        }
        list.push(param("NOTIFY", Some(items.join(","))));
    }
    if let Some(orcpt) = &params.orcpt {
        list.push(param("ORCPT", Some(orcpt.clone())));
    }
    list
}
