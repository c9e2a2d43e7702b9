//! The one DNS resolver of the process (hickory), built from `[dns]`. Delivery uses it
//! for MX and address lookups, the plugin host for the `dns` capability.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use crate::config::DnsConfig;

pub use hickory_resolver::TokioResolver as Resolver;

/// Builds the resolver. With no servers configured, the system configuration is used.
pub fn build_resolver(config: &DnsConfig) -> anyhow::Result<TokioResolver> {
    let mut builder = if config.servers.is_empty() {
        TokioResolver::builder_tokio()
            .map_err(|e| anyhow::anyhow!("cannot read the system resolver configuration: {e}"))?
    } else {
        let servers = config
            .servers
            .iter()
            .map(|server| {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                NameServerConfig::new(server.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), TokioRuntimeProvider::default())
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = config.timeout.get();
    options.attempts = config.attempts;
    options.cache_size = config.cache_size;
    // Mail routing needs what DNS says, not what a local hosts file says.
    options.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    builder.build().map_err(|e| anyhow::anyhow!("cannot build the DNS resolver: {e}"))
}
