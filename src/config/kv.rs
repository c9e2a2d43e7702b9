//! `[kv]`: where the plugins' key/value data lives.

use std::path::PathBuf;

use serde::Deserialize;

use super::units::TimeSpan;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvBackend {
    /// An embedded database file on this node (redb).
    #[default]
    Embedded,
    /// A Redis server shared by several nodes.
    Redis,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvConfig {
    pub backend: KvBackend,
    /// Embedded: the database file. Default: `kv.redb` in the queue directory.
    pub path: Option<PathBuf>,
    /// Redis: the server, such as `redis://127.0.0.1:6379/0`.
    pub url: Option<String>,
    /// Redis: prepended to every key, so several deployments can share a server.
    pub key_prefix: String,
    /// Redis: connect and response timeout. A plugin call never waits longer than its
    /// own wall time either way.
    pub timeout: TimeSpan,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            backend: KvBackend::Embedded,
            path: None,
            url: None,
            key_prefix: "sluice:".to_string(),
            timeout: TimeSpan::millis(500),
        }
    }
}
