//! A next hop a plugin chose is held to the same rules at delivery as when the plugin
//! chose it: it must be listed in the `next_hops` of a plugin granted `route` (else no
//! lookup and no connection), it gets that entry's TLS policy, and a name may only
//! resolve to public addresses unless the address itself is listed.

use std::net::SocketAddr;

use super::outcome::Problem;
use crate::config::{AllowedHop, Config, Grant, Host, allowed_hop};
pub use crate::dns::is_public;
use crate::wire::Status;

/// The entry allowing `text`, in any plugin granted `route`.
pub fn entry_for<'a>(config: &'a Config, text: &str) -> Option<&'a AllowedHop> {
    config
        .plugin
        .iter()
        .filter(|plugin| plugin.granted().contains(&Grant::Route))
        .find_map(|plugin| allowed_hop(&plugin.next_hops, text))
}

/// Whether a plugin-chosen hop may connect to `addr`: a public address, or one some
/// plugin lists itself.
pub fn may_connect(config: &Config, addr: &SocketAddr) -> bool {
    is_public(addr.ip())
        || config
            .plugin
            .iter()
            .filter(|plugin| plugin.granted().contains(&Grant::Route))
            .flat_map(|plugin| &plugin.next_hops)
            .any(|entry| entry.hop.host == Host::Ip(addr.ip()))
}

/// The addresses of a plugin-chosen hop it may connect to; none is a failure that
/// says why, so the queue shows it.
pub fn public_or_listed(config: &Config, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Problem> {
    let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|addr| may_connect(config, addr)).collect();
    if allowed.is_empty() {
        return Err(Problem::permanent(
            Status(5, 4, 4),
            format!("next hop {host} chosen by a plugin has only private addresses that no next_hops lists"),
        ));
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(plugins: &str) -> Config {
        let text = format!(
            "[server]\nhostname = \"relay.test\"\nlisten = [\"127.0.0.1:25\"]\n[queue]\npath = \"q\"\n{plugins}"
        );
        Config::parse(std::path::Path::new("/x/s.toml"), &text).unwrap()
    }

    #[test]
    fn the_inside_of_the_network_is_not_public() {
        for ip in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.1.1", "100.64.0.1", "0.0.0.0", "::1"]
            .into_iter()
            .chain(["fd00::1", "fe80::1", "::ffff:127.0.0.1", "::"])
        {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.1.1", "8.8.8.8", "2a00:1450::1", "100.128.0.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_listed_hops_count() {
        let listed = "path = \"p.wasm\"\nnext_hops = [\"127.0.0.1:2525\", { host = \"mx.partner.example\", tls = \"required\" }]";
        let granted = config(&format!("[[plugin]]\nname = \"r\"\ngrants = [\"route\"]\n{listed}"));
        let ungranted = config("[[plugin]]\nname = \"r\"\npath = \"p.wasm\"\ngrants = [\"route\"]");
        assert!(entry_for(&granted, "127.0.0.1:2525").is_some());
        assert_eq!(entry_for(&granted, "mx.partner.example").map(|e| e.tls), Some(crate::config::TlsMode::Required));
        assert!(entry_for(&granted, "127.0.0.1:25").is_none());
        assert!(entry_for(&ungranted, "127.0.0.1:2525").is_none());
        assert!(may_connect(&granted, &"127.0.0.1:2525".parse().unwrap()));
        assert!(!may_connect(&granted, &"10.0.0.1:25".parse().unwrap()));
        assert!(!may_connect(&ungranted, &"127.0.0.1:2525".parse().unwrap()));
        assert!(may_connect(&ungranted, &"192.0.1.1:25".parse().unwrap()));
    }
}
