//! `[[plugin]]` entries (the filter chain, in order) and `[plugins]` (host settings).

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::units::{ByteSize, TimeSpan};

/// One plugin in the chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Its name in logs, metrics and kv namespaces; unique in the chain.
    pub name: Spanned<String>,
    /// A WebAssembly component built for wasm32-wasip2.
    pub path: Spanned<PathBuf>,
    /// Host interfaces it may import: `log`, `config`, `dns`, `kv`, `clock`.
    #[serde(default = "no_grants")]
    pub grants: Spanned<Vec<Spanned<String>>>,
    /// What a failure of this plugin (trap, timeout, memory, invalid output) means.
    #[serde(default)]
    pub on_error: OnError,
    /// CPU time per call.
    #[serde(default = "default_cpu_time")]
    pub cpu_time: TimeSpan,
    /// Wall time per call, host calls such as DNS included.
    #[serde(default = "default_wall_time")]
    pub wall_time: TimeSpan,
    /// Linear memory the plugin may grow to.
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    /// The plugin's own settings, handed to it through the `config` interface.
    #[serde(default)]
    pub config: toml::Table,
    /// Let an instance serve later sessions (one at a time) instead of starting afresh
    /// for each: for plugins that keep nothing about a session in their globals, and
    /// whose set-up (parsing config, compiling rules) costs more than a call. Unset:
    /// what the plugin declares in `describe` (never, for sluice:plugin@0.1).
    #[serde(default)]
    pub reuse_instances: Option<bool>,
}

fn no_grants() -> Spanned<Vec<Spanned<String>>> {
    Spanned::new(0..0, Vec::new())
}

fn default_cpu_time() -> TimeSpan {
    TimeSpan::millis(50)
}
fn default_wall_time() -> TimeSpan {
    TimeSpan::secs(5)
}
fn default_memory() -> ByteSize {
    ByteSize(32 << 20)
}

/// The reply when a plugin fails instead of deciding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// 4xx: the client retries later. Nothing is lost or wrongly accepted.
    #[default]
    Tempfail,
    /// Carry on as if the plugin had said `continue`.
    Continue,
    /// 5xx: refuse.
    Reject,
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnError::Tempfail => "tempfail",
            OnError::Continue => "continue",
            OnError::Reject => "reject",
        })
    }
}

/// A capability a plugin can be granted; each is one imported interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grant {
    Log,
    Config,
    Dns,
    Kv,
    Clock,
}

impl Grant {
    pub const ALL: [Grant; 5] = [Grant::Log, Grant::Config, Grant::Dns, Grant::Kv, Grant::Clock];

    pub fn name(self) -> &'static str {
        match self {
            Grant::Log => "log",
            Grant::Config => "config",
            Grant::Dns => "dns",
            Grant::Kv => "kv",
            Grant::Clock => "clock",
        }
    }

    pub fn parse(name: &str) -> Option<Grant> {
        Grant::ALL.into_iter().find(|g| g.name() == name)
    }
}

/// `[plugins]`: settings of the plugin host itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Where compiled plugins are cached, keyed by content and engine version. Default:
    /// `plugin-cache/` inside the queue directory.
    pub cache_dir: Option<PathBuf>,
    /// Plugin instances alive at once (the size of the instance pool). Calls beyond it
    /// wait for a free slot, within their wall time.
    pub max_instances: u32,
    /// Log lines per second each plugin may write; more are dropped and counted.
    pub log_rate: u32,
}

impl PluginConfig {
    /// The grants as parsed values (unknown names were refused when loading).
    pub fn granted(&self) -> Vec<Grant> {
        self.grants.get_ref().iter().filter_map(|g| Grant::parse(g.get_ref())).collect()
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig { cache_dir: None, max_instances: 1000, log_rate: 50 }
    }
}
