//! Enforces the DMARC policy the From domain publishes (RFC 7489), read from the
//! server's checks through the `auth` interface, at DATA: `p=reject` gets
//! `550 5.7.1`, `p=quarantine` holds the message in the quarantine, `pct=` is honoured
//! (the sample is picked by a hash of the Message-ID, so a retry gets the same fate),
//! and `sp=` applies to subdomains as the host computes it.
//!
//! Forwarders and mailing lists break DMARC without meaning harm; let them through by
//! client network, envelope sender domain or `List-Id:`, or trust a passing ARC chain
//! whose latest seal is by a listed domain. Domain lists take `example.org` (exactly)
//! and `.example.org` (its subdomains).
//!
//! ```toml
//! [[plugin]]
//! name = "dmarc-policy"
//! path = "plugins/dmarc_policy.wasm"
//! grants = ["auth", "config", "log"]
//! [plugin.config]
//! allow_networks = ["192.0.2.0/24"]
//! allow_sender_domains = ["forwarder.example"]
//! allow_list_ids = [".lists.example.org"]
//! trusted_arc_sealers = ["google.com", "lists.example.org"]
//! ```

mod config;
mod policy;

pub use config::Config;
pub use policy::{Message as Facts, bucket, decide};

use sluice_plugin::auth::HostAuth;
use sluice_plugin::prelude::*;

static CONFIG: PluginConfig<Config> = PluginConfig::new(Config::from_value);

pub struct DmarcPolicy;

impl Plugin for DmarcPolicy {
    fn describe() -> PluginInfo {
        // Reusable: the only global is the parsed config.
        sluice_plugin::plugin_info!(Stage::Data).reusable()
    }

    fn data(session: &Session, transaction: &Transaction, message: &Message) -> DataResult {
        let list_id = message.first_header("List-Id");
        let message_id = message.first_header("Message-ID");
        let facts = Facts {
            client_ip: &session.client_ip,
            sender: transaction.sender.as_deref().unwrap_or_default(),
            list_id: list_id.as_deref(),
            message_id: message_id.as_deref(),
        };
        let outcome = decide(CONFIG.get(), &facts, &mut HostAuth);
        if !outcome.is_proceed() {
            sluice_plugin::log::info(&format!("session {}: {:?}", session.id, outcome.tags));
        }
        outcome.into()
    }
}

sluice_plugin::export!(DmarcPolicy);

#[cfg(test)]
mod tests;
