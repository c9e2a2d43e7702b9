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

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use config::{Action, Config, Limit, NAMED, OnKvError, Subject};
pub use limiter::{Stage as LimitStage, Usage, count, describe, kv_failure, outcome, worst};

use filter_util::clock::unix_now;
use filter_util::kv::{Kv, KvError, ttl_ms};
use filter_util::net::parse_ip;
use sluice_plugin::prelude::*;
use sluice_plugin::{config as host_config, kv, log};

/// The host's store (grant `kv`).
struct HostKv;

fn convert(error: kv::Error) -> KvError {
    match error {
        kv::Error::Unavailable(why) => KvError::Unavailable(why),
        kv::Error::Invalid(why) => KvError::Invalid(why),
    }
}

impl Kv for HostKv {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        kv::get(key).map_err(convert)
    }
    fn set(&mut self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), KvError> {
        kv::set(key, value, ttl.map(ttl_ms)).map_err(convert)
    }
    fn increment(&mut self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvError> {
        kv::increment(key, delta, ttl.map(ttl_ms)).map_err(convert)
    }
}

fn settings() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let (config, warnings) = Config::from_value(&host_config::load());
        for warning in warnings {
            log::warn(&format!("config: {warning}"));
        }
        config
    })
}

/// Counts the event and decides; shared by both hooks.
fn limit(stage: LimitStage, session: &Session, sender: Option<&str>) -> Outcome {
    let config = settings();
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
        PluginInfo::new("rate-limit", env!("CARGO_PKG_VERSION"), &[Stage::Connect, Stage::MailFrom])
    }

    fn connect(session: &Session) -> Outcome {
        limit(LimitStage::Connect, session, None)
    }

    fn mail_from(session: &Session, txn: &Transaction) -> MailFromResult {
        limit(LimitStage::MailFrom, session, Some(txn.sender.as_deref().unwrap_or_default())).into()
    }
}

sluice_plugin::export!(RateLimit);
