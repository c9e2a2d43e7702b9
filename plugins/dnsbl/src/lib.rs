//! DNSBL checks at connect: looks the client's address up in DNS blocklists (RFC 5782)
//! and refuses it when the listing zones' weights add up to the threshold; below it,
//! tags (`dnsbl:<zone>`) and adds the weights to the score for later plugins.
//!
//! ```toml
//! [[plugin]]
//! name = "dnsbl"
//! path = "plugins/dnsbl.wasm"
//! grants = ["dns", "log", "config"]
//! on_error = "continue"
//! [plugin.config]
//! zones = ["zen.example.test", { zone = "bl.example.net", weight = 0.5, return_codes = ["127.0.0.2"] }]
//! threshold = 1.0
//! allow = ["192.0.2.0/24", "2001:db8::/32"]
//! ```
//!
//! A DNS failure never refuses a client: the zone counts as not listing it, and the
//! failure is logged and annotated (`dnsbl.error`).

mod check;
mod config;
mod decision;
mod query;

pub use check::{Report, ZoneResult, ZoneState, check};
pub use config::{Config, Zone};
pub use decision::{outcome, reply_text, summary};
pub use query::{classify, query_name, reverse_name};

use filter_util::net::parse_ip;
use sluice_plugin::dns::HostDns;
use sluice_plugin::log;
use sluice_plugin::prelude::*;

/// Read and checked once per instance; problems are logged then.
static CONFIG: PluginConfig<Config> = PluginConfig::new(Config::from_value);

pub struct Dnsbl;

impl Plugin for Dnsbl {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::Connect).reusable()
    }

    fn connect(session: &Session) -> Outcome {
        let config = CONFIG.get();
        if config.zones.is_empty() {
            return Outcome::proceed();
        }
        let Some(ip) = parse_ip(&session.client_ip) else {
            log::warn(&format!(
                "session {}: client address {:?} is not an IP address; not checked",
                session.id, session.client_ip
            ));
            return Outcome::proceed().annotate("dnsbl.skipped", "unparsable client address");
        };
        if config.allow.contains(ip) {
            return Outcome::proceed().annotate("dnsbl.skipped", "allow-listed");
        }
        let report = check(ip, config, &mut HostDns);
        if let Some(line) = summary(&report, config) {
            let line = format!("session {}: {line}", session.id);
            // Listings are news; failures and odd answers need the admin's attention.
            let trouble = report.failed().next().is_some() || report.results.iter().any(|r| !r.ignored.is_empty());
            if trouble { log::warn(&line) } else { log::info(&line) }
        }
        outcome(&report, config)
    }
}

sluice_plugin::export!(Dnsbl);
