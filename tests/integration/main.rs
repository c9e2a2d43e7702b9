//! Integration tests: the real `sluice` binary on ephemeral loopback ports, driven by
//! raw sockets, Python's smtplib and swaks.

mod support;

mod cli;
mod clients;
mod concurrency;
mod corpus;
mod crash;
mod delivery;
mod examples;
mod malformed;
mod operations;
mod plugin_fixtures;
mod plugins;
mod queue_admin;
mod session;
mod smarthost;
mod smuggling;
mod tls;
