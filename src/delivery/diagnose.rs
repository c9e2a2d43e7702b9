//! How a DSN reports what went wrong talking to a next hop: the client's errors
//! turned into the queue's `Diagnostic`s (the client itself knows nothing of DSNs).

use crate::client::{ClientError, Stage, Unsuitable};
use crate::queue::Diagnostic;
use crate::wire::{Reply, Status};

pub trait Diagnose {
    /// The failure as a DSN reports it for `host` (named as `name[ip]`).
    fn diagnostic(&self, host: &str) -> Diagnostic;
}

/// All of these are temporary: the message waits for the next attempt.
impl Diagnose for ClientError {
    fn diagnostic(&self, host: &str) -> Diagnostic {
        let local =
            |status: Status, text: String| Diagnostic { status, text, smtp: false, remote_mta: Some(host.to_string()) };
        match self {
            ClientError::Rejected(_, reply) | ClientError::StartTlsRefused(reply) => Diagnostic {
                status: transient_status(reply),
                text: reply.to_string(),
                smtp: true,
                remote_mta: Some(host.to_string()),
            },
            ClientError::Timeout(Stage::Connect) => local(Status(4, 4, 1), "connection timed out".into()),
            ClientError::Io(Stage::Connect, e) => local(Status(4, 4, 1), format!("cannot connect: {e}")),
            ClientError::Timeout(stage) => local(Status(4, 4, 2), format!("timed out {stage}")),
            ClientError::Io(stage, e) => local(Status(4, 4, 2), format!("lost connection {stage}: {e}")),
            ClientError::Closed(stage) => local(Status(4, 4, 2), format!("lost connection {stage}")),
            ClientError::Protocol(stage, what) => local(Status(4, 5, 0), format!("protocol error {stage}: {what}")),
            ClientError::TlsUnavailable => {
                local(Status(4, 7, 4), "TLS is required, but was not offered by the host".into())
            }
            ClientError::Tls(what) => local(Status(4, 7, 5), format!("TLS handshake failed: {what}")),
            // A refused password is a configuration problem here, not the message's:
            // defer, as Postfix does, until someone fixes it.
            ClientError::AuthFailed(reply) => local(
                Status(4, 7, 8),
                format!("authentication to the next hop failed: {}", reply.to_string().replace('\n', " ")),
            ),
            ClientError::AuthUnavailable => {
                local(Status(4, 7, 0), "the next hop offers no AUTH we can use over TLS".into())
            }
        }
    }
}

/// A rejection at connection level only defers: even a 5xx greeting may come from
/// one bad host of several.
fn transient_status(reply: &Reply) -> Status {
    let Status(_, subject, detail) = reply.effective_status();
    Status(4, subject, detail)
}

impl Diagnose for Unsuitable {
    /// A permanent failure, used when no host of the destination can take the message.
    fn diagnostic(&self, host: &str) -> Diagnostic {
        let (status, text) = match self {
            Unsuitable::TooBig { limit } => {
                (Status(5, 3, 4), format!("message too big for the next hop (limit {limit} bytes)"))
            }
            // RFC 6152 §3: without 8BITMIME the content would have to be converted; we
            // do not convert, so the message cannot be delivered.
            Unsuitable::No8BitMime => {
                (Status(5, 6, 3), "8-bit content, but the next hop does not offer 8BITMIME".into())
            }
            Unsuitable::NoSmtpUtf8 => {
                (Status(5, 6, 7), "the message needs SMTPUTF8, but the next hop does not offer it".into())
            }
        };
        Diagnostic { status, text, smtp: false, remote_mta: Some(host.to_string()) }
    }
}
