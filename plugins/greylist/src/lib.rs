//! Greylisting at RCPT TO: the first delivery attempt of an unknown triplet (client
//! network, sender, recipient) is deferred with 451 4.7.1; a retry after `delay` and
//! within `retry_window` passes, and the client network is then remembered
//! (auto-allow) for `pass_ttl`. Real MTAs retry; most spamware does not.
//!
//! ```toml
//! [[plugin]]
//! name = "greylist"
//! path = "plugins/greylist.wasm"
//! grants = ["kv", "clock", "log", "config"]
//! on_error = "continue"
//! [plugin.config]
//! delay = "5m"
//! retry_window = "4h"
//! pass_ttl = "35d"
//! allow_networks = ["127.0.0.0/8", "::1/128", "192.0.2.0/24"]
//! allow_domains = ["partner.example"]
//! ```
//!
//! Needs the `clock` grant: without it the clock reads the Unix epoch, and the plugin
//! logs that and lets everything through rather than defer everyone forever.

mod check;
mod config;
mod triplet;

use std::sync::atomic::{AtomicBool, Ordering};

pub use check::{Decision, REFRESH_SECS, Request, check, kv_failure, outcome};
pub use config::Config;
pub use triplet::{Record, network_key, normalize_recipient, normalize_sender, triplet_key};

use filter_util::clock::unix_now;
use filter_util::net::parse_ip;
use sluice_plugin::kv::HostKv;
use sluice_plugin::log;
use sluice_plugin::prelude::*;

/// Read and checked once per instance; problems are logged then.
static CONFIG: PluginConfig<Config> = PluginConfig::new(Config::from_value);

pub struct Greylist;

impl Plugin for Greylist {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::RcptTo).reusable()
    }

    fn rcpt_to(session: &Session, txn: &Transaction, rcpt: &Recipient) -> RcptToResult {
        let config = CONFIG.get();
        let Some(now) = unix_now() else {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                log::warn("the clock reads the Unix epoch (no \"clock\" grant?): greylisting is off");
            }
            return Outcome::proceed().annotate("greylist.skipped", "no clock").into();
        };
        let Some(ip) = parse_ip(&session.client_ip) else {
            log::warn(&format!(
                "session {}: client address {:?} is not an IP address; not greylisted",
                session.id, session.client_ip
            ));
            return Outcome::proceed().annotate("greylist.skipped", "unparsable client address").into();
        };
        let request = Request {
            ip,
            sender: txn.sender.as_deref().unwrap_or_default(),
            recipient: &rcpt.address,
            authenticated: session.auth_user.is_some(),
            now: now.as_secs(),
        };
        match check(&request, config, &mut HostKv) {
            Ok(decision) => {
                match &decision {
                    Decision::Greylisted { retry_in, first } => log::info(&format!(
                        "session {}: greylisted {ip} <{}> -> <{}> ({}, retry in {retry_in}s)",
                        session.id,
                        request.sender,
                        request.recipient,
                        if *first { "new" } else { "too early" }
                    )),
                    Decision::Passed { waited } => log::info(&format!(
                        "session {}: {ip} <{}> -> <{}> passed greylisting after {waited}s",
                        session.id, request.sender, request.recipient
                    )),
                    _ => {}
                }
                outcome(&decision, config).into()
            }
            Err(error) => {
                log::warn(&format!(
                    "session {}: kv store failed ({error}); {}",
                    session.id,
                    config.on_kv_error.describe()
                ));
                kv_failure(&error, config).into()
            }
        }
    }
}

sluice_plugin::export!(Greylist);
