//! Outbound HTTP for plugins granted `http`: the standard `wasi:http/outgoing-handler`,
//! with every request held to the plugin's `http.allow` list before any connection,
//! bounded by `http.timeout` and the call's wall time, its response by
//! `http.max_response`, and counted in `sluice_plugin_http_requests_total`.
//!
//! A request waits the way a DNS lookup does: the host call is async, so the wait
//! costs the plugin wall time but no CPU ticks (epochs are counted only while wasm
//! runs), and the worker thread serves other sessions meanwhile.

mod allow;
mod body;
mod send;

pub use body::RESULTS;
pub use send::{Send, Sent};
