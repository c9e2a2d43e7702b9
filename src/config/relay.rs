//! `[relay]`: who may relay where. The default relays only for loopback clients, so a
//! fresh install is never an open relay.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;

use super::matchers::{DomainList, Network, NetworkList};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Clients that may send to any domain.
    pub networks: NetworkList,
    /// Domains anyone may send to.
    pub domains: DomainList,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            networks: NetworkList(vec![
                Network(IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::LOCALHOST, 8))),
                Network(IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128))),
            ]),
            domains: DomainList::default(),
        }
    }
}
