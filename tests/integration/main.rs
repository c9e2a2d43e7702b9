//! Integration tests: the real `sluice` binary on ephemeral loopback ports, driven by
//! raw sockets, Python's smtplib and swaks.

mod support;

mod abuse;
mod architecture;
mod cli;
mod clients;
mod concurrency;
mod containment;
mod corpus;
mod crash;
mod crash_loop;
mod delivery;
mod disk_faults;
mod dkim_sign;
mod examples;
mod http_grant;
mod http_policy;
mod lazyfs;
mod limits;
mod mail_auth;
mod malformed;
mod operations;
mod plugin_fixtures;
mod plugins;
mod power_loss;
mod queue_admin;
mod recipients;
mod rspamd;
mod sandbox_effects;
mod session;
mod smarthost;
mod smuggling;
mod tls;
mod wit_versions;
