//! The TOML configuration: one type per section, loaded and validated in one place so
//! that `sluice check-config` and `sluice serve` agree on what is valid.

mod auth;
mod delivery;
mod dns;
mod error;
mod kv;
mod limits;
mod load;
mod matchers;
mod metrics;
mod plugin;
mod plugin_http;
mod plugin_limits;
mod queue;
mod recipients;
mod relay;
mod route;
mod server;
mod tls;
mod units;

use serde::Deserialize;

pub use auth::{AuthConfig, AuthUser};
pub use delivery::DeliveryConfig;
pub use dns::DnsConfig;
pub use error::ConfigError;
pub use kv::{KvBackend, KvConfig};
pub use limits::{BareNewlines, LimitsConfig};
pub use load::ConfigOrigin;
pub use matchers::{DomainList, DomainPattern, Network, NetworkList};
pub use metrics::MetricsConfig;
pub use plugin::{Grant, OnError, PluginConfig, PluginsConfig};
pub use plugin_http::{HttpConfig, HttpOrigin, HttpScheme};
pub use plugin_limits::{AllowedHop, Quotas, allowed_hop};
pub use queue::QueueConfig;
pub use recipients::{OnUnavailable, RecipientsConfig, VerifyMode};
pub use relay::RelayConfig;
pub use route::{Host, NextHop, NextHops, RouteAuth, RouteConfig, TlsMode};
pub use server::{ListenConfig, ListenTls, ServerConfig};
pub use tls::TlsConfig;
pub use units::{ByteSize, TimeSpan};

/// The whole configuration file. Later sections (plugins, routes, delivery) slot in as
/// further optional fields.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub relay: RelayConfig,
    pub queue: QueueConfig,
    #[serde(default)]
    pub dns: DnsConfig,
    /// The plugin chain, in the order plugins run at each stage.
    #[serde(default)]
    pub plugin: Vec<PluginConfig>,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub kv: KvConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[[route]]` rules, in order.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(skip)]
    pub origin: ConfigOrigin,
}
