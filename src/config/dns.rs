//! `[dns]`: the resolver used for MX lookups and by plugins granted `dns`.

use std::net::SocketAddr;

use serde::Deserialize;

use super::units::TimeSpan;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Name servers as `IP:PORT` (UDP, with TCP fallback). Empty means the system's
    /// resolver configuration (`/etc/resolv.conf`). Tests point this at a loopback server.
    pub servers: Vec<SocketAddr>,
    /// Per-query timeout.
    pub timeout: TimeSpan,
    /// Tries per query, per server.
    pub attempts: usize,
    /// Responses kept in the resolver's cache (it honours TTLs).
    pub cache_size: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig { servers: Vec::new(), timeout: TimeSpan::secs(5), attempts: 2, cache_size: 4096 }
    }
}
