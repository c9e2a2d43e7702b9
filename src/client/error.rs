//! What can go wrong talking to a remote server, and how a DSN reports it.

use std::fmt;
use std::io;

use crate::wire::Reply;

/// Where in the conversation something happened, for messages such as "lost
/// connection while sending the message body".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Greeting,
    Ehlo,
    StartTls,
    TlsHandshake,
    Auth,
    Rset,
    Mail,
    Rcpt,
    Data,
    Body,
    DataDone,
    Quit,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connecting",
            Stage::Greeting => "waiting for the greeting",
            Stage::Ehlo => "after EHLO",
            Stage::StartTls => "after STARTTLS",
            Stage::TlsHandshake => "during the TLS handshake",
            Stage::Auth => "after AUTH",
            Stage::Rset => "after RSET",
            Stage::Mail => "after MAIL FROM",
            Stage::Rcpt => "after RCPT TO",
            Stage::Data => "after DATA",
            Stage::Body => "while sending the message body",
            Stage::DataDone => "after the end of data",
            Stage::Quit => "after QUIT",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("timed out {0}")]
    Timeout(Stage),
    #[error("{1} ({0})")]
    Io(Stage, io::Error),
    #[error("connection closed {0}")]
    Closed(Stage),
    #[error("protocol error {0}: {1}")]
    Protocol(Stage, String),
    /// A reply that ends the conversation with this host (greeting, EHLO, STARTTLS).
    #[error("{1} ({0})")]
    Rejected(Stage, Reply),
    #[error("TLS is required, but was not offered")]
    TlsUnavailable,
    #[error("TLS is required, but STARTTLS was refused: {0}")]
    StartTlsRefused(Reply),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// Our credentials were refused.
    #[error("authentication failed: {0}")]
    AuthFailed(Reply),
    /// The route requires AUTH, but the host (or the session without TLS) offers none we use.
    #[error("authentication is required, but not available")]
    AuthUnavailable,
}

impl ClientError {
    /// Where it happened.
    pub fn stage(&self) -> Stage {
        match self {
            ClientError::Timeout(s) | ClientError::Io(s, _) | ClientError::Closed(s) => *s,
            ClientError::Protocol(s, _) | ClientError::Rejected(s, _) => *s,
            ClientError::TlsUnavailable | ClientError::StartTlsRefused(_) => Stage::StartTls,
            ClientError::Tls(_) => Stage::TlsHandshake,
            ClientError::AuthFailed(_) | ClientError::AuthUnavailable => Stage::Auth,
        }
    }
}
