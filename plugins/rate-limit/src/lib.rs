//! Rate limits at connect and MAIL FROM: connections and messages per client address
//! (IPv6 per /64), messages per sender address and per sender domain, each over a
//! sliding window (see [`window`]). Over a limit, the client is told when to come back:
//! 421 4.7.0 and disconnected at connect, 451 4.7.1 at MAIL, "Rate limit exceeded,
//! retry after N seconds".
//!
//! ```toml
//! [[plugin]]
//! name = "rate-limit"
//! path = "plugins/rate_limit.wasm"
//! grants = ["kv", "clock", "log", "config"]
//! on_error = "continue"
//! [plugin.config]
//! per_ip_connections = { count = 60, window = "1m" }
//! per_ip = { count = 30, window = "1m" }
//! per_sender = { count = 100, window = "1h" }
//! per_sender_domain = { count = 1000, window = "1h" }
//! allow_networks = ["127.0.0.0/8", "::1/128"]
//! ```
//!
//! Needs `clock`: with the clock frozen at the epoch every event would land in one
//! bucket forever, so the plugin logs that and lets everything through.

mod config;
mod limiter;
pub mod window;

use std::sync::atomic::{AtomicBool, Ordering};

pub use config::{Action, Config, Limit, NAMED, Subject};
pub use limiter::{Stage as LimitStage, Usage, count, describe, kv_failure, outcome, worst};

use filter_util::clock::unix_now;
use filter_util::net::parse_ip;
use sluice_plugin::kv::HostKv;
use sluice_plugin::log;
use sluice_plugin::prelude::*;

/// Read and checked once per instance; problems are logged then.
static CONFIG: PluginConfig<Config> = PluginConfig::new(Config::from_value);

/// Counts the event and decides; shared by both hooks.
fn limit(stage: LimitStage, session: &Session, sender: Option<&str>) -> Outcome {
    let config = CONFIG.get();
    if config.limits.is_empty() {
        return Outcome::proceed();
    }
    let Some(now) = unix_now() else {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::warn("the clock reads the Unix epoch (no \"clock\" grant?): rate limits are off");
        }
        return Outcome::proceed().annotate("rate-limit.skipped", "no clock");
    };
    let Some(ip) = parse_ip(&session.client_ip) else {
        log::warn(&format!(
            "session {}: client address {:?} is not an IP address; not limited",
            session.id, session.client_ip
        ));
        return Outcome::proceed().annotate("rate-limit.skipped", "unparsable client address");
    };
    if config.allow_networks.contains(ip) {
        return Outcome::proceed().annotate("rate-limit.skipped", "allow-listed");
    }
    let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    match count(stage, ip, sender, config, now_ms, &mut HostKv) {
        Ok(usages) => {
            if let Some(worst) = worst(&usages) {
                log::info(&format!(
                    "session {}: over a limit ({}); action {}",
                    session.id,
                    describe(worst),
                    config.action.name()
                ));
            }
            outcome(stage, &usages, config)
        }
        Err(error) => {
            log::warn(&format!("session {}: kv store failed ({error}); {}", session.id, config.on_kv_error.describe()));
            kv_failure(stage, &error, config)
        }
    }
}

pub struct RateLimit;

impl Plugin for RateLimit {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::Connect, Stage::MailFrom).reusable()
    }

    fn connect(session: &Session) -> Outcome {
        limit(LimitStage::Connect, session, None)
    }

    fn mail_from(session: &Session, txn: &Transaction) -> MailFromResult {
        limit(LimitStage::MailFrom, session, Some(txn.sender.as_deref().unwrap_or_default())).into()
    }
}

sluice_plugin::export!(RateLimit);
