//! The outbound SMTP client: one connection to one host, opened with EHLO (or HELO)
//! and STARTTLS as the route's TLS mode says, then carrying transactions until it is
//! closed or goes back to the pool.

mod capabilities;
mod connection;
mod credentials;
pub mod data;
mod error;
mod handshake;
mod probe;
pub mod tls;
mod transaction;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use capabilities::Capabilities;
pub use credentials::Credentials;
pub use error::{ClientError, Stage};
pub use tls::TlsConnectors;
pub use transaction::{Message, Needs, Unsuitable, Verdict};

use connection::Connection;

use crate::config::{Config, TlsMode};

/// RFC 5321 §4.5.3.2 timeouts, from `[delivery]`.
#[derive(Clone, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub greeting: Duration,
    pub command: Duration,
    pub data: Duration,
    pub data_block: Duration,
    pub data_done: Duration,
}

/// What every client shares.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub helo_name: String,
    pub timeouts: Timeouts,
    pub tls: TlsConnectors,
}

impl ClientSettings {
    pub fn new(config: &Config, tls: TlsConnectors) -> ClientSettings {
        let d = &config.delivery;
        ClientSettings {
            helo_name: d.helo_name.clone().unwrap_or_else(|| config.server.hostname.clone()),
            timeouts: Timeouts {
                connect: d.connect_timeout.get(),
                greeting: d.greeting_timeout.get(),
                command: d.command_timeout.get(),
                data: d.data_timeout.get(),
                data_block: d.data_block_timeout.get(),
                data_done: d.data_done_timeout.get(),
            },
            tls,
        }
    }
}

/// A host to connect to: its name (for TLS and reports) and one of its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
}

impl Target {
    /// `name[ip]:port`, as reports name a remote host.
    pub fn label(&self) -> String {
        if self.name == self.addr.ip().to_string() {
            self.addr.to_string()
        } else {
            format!("{}[{}]:{}", self.name, self.addr.ip(), self.addr.port())
        }
    }
}

pub struct SmtpClient {
    conn: Connection,
    pub caps: Capabilities,
    pub target: Target,
    /// The TLS mode this connection was opened under; pooled connections are only
    /// reused under the same mode.
    pub tls_mode: TlsMode,
    settings: Arc<ClientSettings>,
    /// Transactions carried so far.
    pub transactions: usize,
    /// A failed transaction left state behind: RSET before the next MAIL.
    needs_rset: bool,
    /// The server said 421 or the conversation went wrong: do not reuse.
    broken: bool,
    /// Reused for every command batch and block of content.
    out: Vec<u8>,
}

impl SmtpClient {
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// Can carry another transaction.
    pub fn is_reusable(&self) -> bool {
        !self.broken
    }

    /// Says goodbye (best effort) and closes.
    pub async fn quit(mut self) {
        if !self.broken && self.conn.write_all(b"QUIT\r\n", Stage::Quit, Duration::from_secs(5)).await.is_ok() {
            let _ = self.conn.read_reply(Stage::Quit, Duration::from_secs(5)).await;
        }
        self.conn.shutdown().await;
    }
}
