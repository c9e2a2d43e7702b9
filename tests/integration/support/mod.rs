//! Test harness: the real `sluice` binary on ephemeral loopback ports, and small
//! blocking SMTP clients to talk to it.

#![allow(dead_code)]

pub mod client;
pub mod dkimpy;
pub mod dns;
pub mod http_listener;
pub mod lazyfs;
pub mod plugins;
pub mod policy;
pub mod postfix;
pub mod rspamd;
pub mod server;
pub mod sink;
pub mod tls;

pub use client::Client;
pub use server::Sluice;
