//! `[[plugin]]` entries (the filter chain, in order) and `[plugins]` (host settings).

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::plugin_http::HttpConfig;
use super::plugin_limits::{AllowedHop, DEFAULT_DNS_LOOKUPS, DEFAULT_KV_BYTES, DEFAULT_KV_KEYS, Quotas};
use super::units::{ByteSize, TimeSpan};

/// One plugin in the chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Its name in logs, metrics and kv namespaces; unique in the chain.
    pub name: Spanned<String>,
    /// A WebAssembly component built for wasm32-wasip2.
    pub path: Spanned<PathBuf>,
    /// Everything it may do beyond its verdict, tags, score, annotations and header
    /// changes: host interfaces (`log`, `config`, `dns`, `kv`, `clock`) and effects
    /// (`recipients`, `route`, `body`).
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
    /// Next hops it may choose (with the `route` grant); no other.
    #[serde(default)]
    pub next_hops: Vec<AllowedHop>,
    /// Overrides `[plugins] kv_max_keys`.
    #[serde(default)]
    pub kv_max_keys: Option<u64>,
    /// Overrides `[plugins] kv_max_bytes`.
    #[serde(default)]
    pub kv_max_bytes: Option<ByteSize>,
    /// Overrides `[plugins] dns_lookups`.
    #[serde(default)]
    pub dns_lookups: Option<u32>,
    /// The origins it may send HTTP requests to (with the `http` grant), and limits.
    #[serde(default)]
    pub http: Option<Spanned<HttpConfig>>,
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

/// A capability a plugin can be granted: an imported interface, or an effect of its
/// output (without the grant, an output using it fails the call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grant {
    Log,
    Config,
    Dns,
    Kv,
    Clock,
    /// Read the server's SPF, DKIM, ARC, DMARC and iprev results.
    Auth,
    /// Outbound HTTP (`wasi:http/outgoing-handler`) to the plugin's `http.allow` list.
    Http,
    /// Add, drop and rewrite recipients; replace the sender.
    Recipients,
    /// Choose a named route, or a next hop listed in `next_hops`.
    Route,
    /// Replace the body.
    Body,
}

impl Grant {
    pub const ALL: [Grant; 10] = [
        Grant::Log,
        Grant::Config,
        Grant::Dns,
        Grant::Kv,
        Grant::Clock,
        Grant::Auth,
        Grant::Http,
        Grant::Recipients,
        Grant::Route,
        Grant::Body,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Grant::Log => "log",
            Grant::Config => "config",
            Grant::Dns => "dns",
            Grant::Kv => "kv",
            Grant::Clock => "clock",
            Grant::Auth => "auth",
            Grant::Http => "http",
            Grant::Recipients => "recipients",
            Grant::Route => "route",
            Grant::Body => "body",
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
    /// Keys each plugin may keep in its kv namespace.
    pub kv_max_keys: u64,
    /// Bytes (keys and values) each plugin may keep in its kv namespace.
    pub kv_max_bytes: ByteSize,
    /// DNS lookups each call may make; past it, lookups fail without a query.
    pub dns_lookups: u32,
}

impl PluginConfig {
    /// The grants as parsed values (unknown names were refused when loading).
    pub fn granted(&self) -> Vec<Grant> {
        self.grants.get_ref().iter().filter_map(|g| Grant::parse(g.get_ref())).collect()
    }

    /// What it may do, in one line (grants as written, next hops, quotas).
    pub fn permissions(&self, defaults: &PluginsConfig) -> String {
        let grants: Vec<&str> = self.grants.get_ref().iter().map(|g| g.get_ref().as_str()).collect();
        let permissions = super::plugin_limits::permissions(&grants, &self.next_hops, self.quotas(defaults));
        match &self.http {
            Some(http) => format!("{permissions}; {}", http.get_ref()),
            None => permissions,
        }
    }

    /// Its quotas: its own overrides, else the `[plugins]` defaults.
    pub fn quotas(&self, defaults: &PluginsConfig) -> Quotas {
        Quotas {
            kv_keys: self.kv_max_keys.unwrap_or(defaults.kv_max_keys),
            kv_bytes: self.kv_max_bytes.unwrap_or(defaults.kv_max_bytes).bytes(),
            dns_lookups: self.dns_lookups.unwrap_or(defaults.dns_lookups),
        }
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            cache_dir: None,
            max_instances: 1000,
            log_rate: 50,
            kv_max_keys: DEFAULT_KV_KEYS,
            kv_max_bytes: DEFAULT_KV_BYTES,
            dns_lookups: DEFAULT_DNS_LOOKUPS,
        }
    }
}
