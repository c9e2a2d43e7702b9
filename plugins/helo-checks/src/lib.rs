//! HELO/EHLO checks: refuses a client whose greeting is not a FQDN or address literal,
//! claims to be us, is an address literal that is not the client's address, or
//! (optionally) whose address has no forward-confirmed reverse DNS name or whose HELO
//! name does not resolve. Clients in `allow_networks` (loopback by default) are not
//! checked.
//!
//! ```toml
//! [[plugin]]
//! name = "helo-checks"
//! path = "plugins/helo_checks.wasm"
//! grants = ["dns", "log", "config"]
//! [plugin.config]
//! local_names = ["mail.example.com"]
//! local_ips = ["192.0.2.25"]
//! fcrdns = true
//! ```

mod checks;
mod config;
mod decision;
mod form;

pub use checks::{Client, Finding, MAX_PTR_NAMES, evaluate, fcrdns};
pub use config::{Check, Config};
pub use decision::outcome;
pub use form::{HeloForm, classify};

use filter_util::net::parse_ip;
use sluice_plugin::dns::HostDns;
use sluice_plugin::log;
use sluice_plugin::prelude::*;

/// Read and checked once per instance; problems are logged then.
static CONFIG: PluginConfig<Config> = PluginConfig::new(Config::from_value);

pub struct HeloChecks;

impl Plugin for HeloChecks {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::Helo).reusable()
    }

    fn helo(session: &Session) -> Outcome {
        let config = CONFIG.get();
        let Some(helo) = session.helo.as_deref() else { return Outcome::proceed() };
        let Some(ip) = parse_ip(&session.client_ip) else {
            log::warn(&format!(
                "session {}: client address {:?} is not an IP address; not checked",
                session.id, session.client_ip
            ));
            return Outcome::proceed().annotate("helo.skipped", "unparsable client address");
        };
        if config.allow_networks.contains(ip) {
            return Outcome::proceed().annotate("helo.skipped", "allow-listed");
        }
        let client = Client { ip, helo, server_hostname: &session.server_hostname };
        let finding = evaluate(&client, config, &mut HostDns);
        match &finding {
            Finding::Fail { check, detail } => {
                log::info(&format!("session {}: client {ip} failed HELO check {}: {detail}", session.id, check.key()))
            }
            Finding::DnsError { check, detail } => log::warn(&format!(
                "session {}: HELO check {} for client {ip} could not finish ({detail}); {}",
                session.id,
                check.key(),
                config.on_dns_error.describe()
            )),
            Finding::Pass { .. } => {}
        }
        outcome(&finding, &client, config)
    }
}

sluice_plugin::export!(HeloChecks);
