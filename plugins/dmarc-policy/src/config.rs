//! `[plugin.config]` of dmarc-policy.

use filter_util::config::networks;
use filter_util::domain::DomainList;
use filter_util::net::NetList;
use sluice_plugin::config::Value;

pub struct Config {
    /// Clients (forwarders, list servers) whose mail is never refused for DMARC.
    pub allow_networks: NetList,
    /// Envelope sender (MAIL FROM) domains of forwarders and lists.
    pub allow_sender_domains: DomainList,
    /// Mailing lists by the id in their `List-Id:` header (`<dev.lists.example.org>`).
    pub allow_list_ids: DomainList,
    /// A passing ARC chain whose latest seal is by one of these domains stands in for
    /// a DMARC pass (RFC 8617 §7.2): the sealer vouches for the authentication it saw.
    pub trusted_arc_sealers: DomainList,
}

fn domains(config: &Value, key: &str, warnings: &mut Vec<String>) -> DomainList {
    let entries = config.strings(key);
    let (list, errors) = DomainList::parse_all(entries.iter().map(String::as_str));
    warnings.extend(errors.into_iter().map(|e| format!("{key}: {e}; left out")));
    list
}

impl Config {
    /// Never fails: a bad entry is left out with a warning.
    pub fn from_value(config: &Value) -> (Config, Vec<String>) {
        let mut warnings = Vec::new();
        let config = Config {
            allow_networks: networks(config, "allow_networks", &[], &mut warnings),
            allow_sender_domains: domains(config, "allow_sender_domains", &mut warnings),
            allow_list_ids: domains(config, "allow_list_ids", &mut warnings),
            trusted_arc_sealers: domains(config, "trusted_arc_sealers", &mut warnings),
        };
        (config, warnings)
    }
}
