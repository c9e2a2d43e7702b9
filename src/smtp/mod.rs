//! The inbound ESMTP server (RFC 5321 with PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
//! ENHANCEDSTATUSCODES, STARTTLS, CHUNKING and DSN).

pub mod command;
mod connection;
mod context;
pub mod data;
mod limiter;
pub mod params;
pub mod proxy;
pub mod received;
mod relay;
pub mod replies;
mod server;
mod session;
mod socket;
mod state;
mod stream;
pub mod tls;

pub use context::SmtpContext;
pub use limiter::ConnectionLimiter;
pub use server::{LiveContext, SmtpServer};
