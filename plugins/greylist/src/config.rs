//! The plugin's `[plugin.config]`. Bad values fall back to their defaults with a warning
//! (logged once per instance); bad list entries are left out.

use std::time::Duration;

use filter_util::config::{OnFailure, duration, flag, networks, on_failure, prefix_len};
use filter_util::domain::DomainList;
use filter_util::net::{LOOPBACK, NetList};
use filter_util::reply::ReplySpec;
use sluice_plugin::config::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// How long a new triplet must wait before a retry passes.
    pub delay: Duration,
    /// How long after first sight a retry is still recognised (then it starts over).
    pub retry_window: Duration,
    /// How long a passed triplet and an auto-allowed client network are remembered.
    pub pass_ttl: Duration,
    /// Record client networks that passed, so they skip greylisting for `pass_ttl`.
    pub auto_allow: bool,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub allow_networks: NetList,
    /// Sender or recipient domains never greylisted.
    pub allow_domains: DomainList,
    /// Authenticated clients (submission) are never greylisted.
    pub skip_authenticated: bool,
    /// Strip BATV tags and VERP numbers from senders (see `triplet::normalize_sender`).
    pub normalize_sender: bool,
    pub on_kv_error: OnFailure,
    /// The greylisting reply; `{seconds}` is the time left.
    pub reply: ReplySpec,
}

pub const DEFAULT_TEXT: &str = "Greylisted, please try again in {seconds} seconds";

impl Config {
    pub fn from_value(config: &Value) -> (Config, Vec<String>) {
        let mut warnings = Vec::new();
        let mut delay = duration(config, "delay", Duration::from_secs(300), &mut warnings);
        let mut retry_window = duration(config, "retry_window", Duration::from_secs(4 * 3600), &mut warnings);
        if retry_window <= delay {
            warnings.push(format!(
                "retry_window ({}s) must be longer than delay ({}s); using 300s and 4h",
                retry_window.as_secs(),
                delay.as_secs()
            ));
            delay = Duration::from_secs(300);
            retry_window = Duration::from_secs(4 * 3600);
        }
        let pass_ttl = duration(config, "pass_ttl", Duration::from_secs(35 * 86400), &mut warnings);
        let allow_networks = networks(config, "allow_networks", LOOPBACK, &mut warnings);
        let domains = config.strings("allow_domains");
        let (allow_domains, errors) = DomainList::parse_all(domains.iter().map(String::as_str));
        warnings.extend(errors.into_iter().map(|e| format!("allow_domains: {e}")));
        let on_kv_error = on_failure(config, "kv_error", &mut warnings);
        let default_reply = ReplySpec::new(451, "4.7.1", DEFAULT_TEXT);
        let (mut reply, errors) = ReplySpec::configured(
            &default_reply,
            config.i64("reply_code"),
            config.str("reply_enhanced_code"),
            config.str("reply_text"),
        );
        warnings.extend(errors);
        if !reply.is_temporary() {
            warnings.push("reply_code must be 4xx: greylisting only ever defers; using 451".into());
            reply = ReplySpec { text: reply.text, ..default_reply };
        }
        let config = Config {
            delay,
            retry_window,
            pass_ttl,
            auto_allow: flag(config, "auto_allow", true, &mut warnings),
            ipv4_prefix: prefix_len(config, "ipv4_prefix", 24, 32, &mut warnings),
            ipv6_prefix: prefix_len(config, "ipv6_prefix", 64, 128, &mut warnings),
            allow_networks,
            allow_domains,
            skip_authenticated: flag(config, "skip_authenticated", true, &mut warnings),
            normalize_sender: flag(config, "normalize_sender", true, &mut warnings),
            on_kv_error,
            reply,
        };
        (config, warnings)
    }
}

#[cfg(test)]
mod tests {
    use sluice_plugin::testing::{parse_clean, strings, table, text};

    use super::*;

    #[test]
    fn defaults() {
        let config = parse_clean(Config::from_value, &table(&[]));
        assert_eq!(config.delay, Duration::from_secs(300));
        assert_eq!(config.retry_window, Duration::from_secs(14_400));
        assert_eq!(config.pass_ttl, Duration::from_secs(35 * 86_400));
        assert!(config.auto_allow && config.skip_authenticated && config.normalize_sender);
        assert_eq!((config.ipv4_prefix, config.ipv6_prefix), (24, 64));
        assert!(config.allow_networks.contains("127.0.0.1".parse().unwrap()));
        assert!(config.allow_domains.is_empty());
        assert_eq!(config.on_kv_error, OnFailure::Continue);
        assert_eq!((config.reply.code, config.reply.enhanced.as_str()), (451, "4.7.1"));
    }

    #[test]
    fn configured_values() {
        let config = table(&[
            ("delay", text("90s")),
            ("retry_window", Value::Integer(7200)),
            ("pass_ttl", text("7d")),
            ("auto_allow", Value::Boolean(false)),
            ("ipv4_prefix", Value::Integer(32)),
            ("allow_networks", strings(&["198.51.100.0/24"])),
            ("allow_domains", strings(&["partner.example", ".lists.example.org"])),
            ("kv_error", text("tempfail")),
            ("reply_text", text("Come back in {seconds}s")),
        ]);
        let config = parse_clean(Config::from_value, &config);
        assert_eq!(config.delay, Duration::from_secs(90));
        assert_eq!(config.retry_window, Duration::from_secs(7200));
        assert_eq!(config.pass_ttl, Duration::from_secs(7 * 86_400));
        assert!(!config.auto_allow);
        assert_eq!(config.ipv4_prefix, 32);
        assert!(!config.allow_networks.contains("127.0.0.1".parse().unwrap()));
        assert!(config.allow_domains.matches("news.lists.example.org"));
        assert_eq!(config.on_kv_error, OnFailure::Tempfail);
        assert_eq!(config.reply.text, "Come back in {seconds}s");
    }

    #[test]
    fn bad_values_fall_back() {
        let config = table(&[
            ("delay", text("5 parsecs")),
            ("pass_ttl", Value::Integer(-1)),
            ("ipv6_prefix", Value::Integer(129)),
            ("allow_domains", strings(&["not a domain"])),
            ("kv_error", text("explode")),
            ("reply_code", Value::Integer(550)),
            ("auto_allow", text("yes")),
        ]);
        let (config, warnings) = Config::from_value(&config);
        assert_eq!(warnings.len(), 7, "{warnings:#?}");
        assert_eq!(config.delay, Duration::from_secs(300));
        assert_eq!(config.pass_ttl, Duration::from_secs(35 * 86_400));
        assert_eq!(config.ipv6_prefix, 64);
        assert_eq!(config.reply.code, 451);
        assert!(config.auto_allow);
    }

    #[test]
    fn window_must_exceed_delay() {
        let (config, warnings) = Config::from_value(&table(&[("delay", text("2h")), ("retry_window", text("1h"))]));
        assert_eq!(warnings.len(), 1);
        assert_eq!((config.delay.as_secs(), config.retry_window.as_secs()), (300, 14_400));
    }
}
