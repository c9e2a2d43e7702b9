//! Sluice: a programmable mail filter server.
//!
//! Mail flows one way through the modules: [`smtp`] receives it, the queue ([`queue`])
//! makes it durable, and [`delivery`] takes it from there. [`config`] describes all of it;
//! [`mail`] holds the vocabulary they share.

pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod control;
pub mod delivery;
pub mod dns;
pub mod fsync;
pub mod kv;
pub mod mail;
pub mod mail_auth;
pub mod plugin;
pub mod queue;
pub mod recipients;
pub mod smtp;
pub mod wire;
