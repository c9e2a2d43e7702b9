//! Reading common kinds of config values with warnings: a bad value falls back to its
//! default and the warning says so, a bad list entry is left out. The plugin logs the
//! warnings once (`sluice_plugin::PluginConfig`).

use std::time::Duration;

use sluice_plugin::config::Value;

use crate::duration::parse_duration;
use crate::net::NetList;
use crate::size::parse_size;

/// `key` as `true` or `false`.
pub fn flag(config: &Value, key: &str, default: bool, warnings: &mut Vec<String>) -> bool {
    match config.get(key) {
        None => default,
        Some(v) => v.as_bool().unwrap_or_else(|| {
            warnings.push(format!("{key} must be true or false; using {default}"));
            default
        }),
    }
}

/// `key` as a duration: a string such as `"5m"` or a whole number of seconds.
pub fn duration(config: &Value, key: &str, default: Duration, warnings: &mut Vec<String>) -> Duration {
    let parsed = match config.get(key) {
        None => return default,
        Some(Value::Text(text)) => parse_duration(text),
        Some(Value::Integer(secs)) => u64::try_from(*secs).map(Duration::from_secs).map_err(|_| "negative".into()),
        Some(_) => Err("not a duration".into()),
    };
    parsed.unwrap_or_else(|e| {
        warnings.push(format!("{key}: {e}; using {}s", default.as_secs()));
        default
    })
}

/// `key` as a prefix length from 0 to `max` (32 for IPv4, 128 for IPv6).
pub fn prefix_len(config: &Value, key: &str, default: u8, max: u8, warnings: &mut Vec<String>) -> u8 {
    match config.get(key) {
        None => default,
        Some(v) => match v.as_i64().and_then(|p| u8::try_from(p).ok()) {
            Some(p) if p <= max => p,
            _ => {
                warnings.push(format!("{key} must be 0 to {max}; using {default}"));
                default
            }
        },
    }
}

/// `key` as a list of networks (or one); entries that do not parse are left out. A
/// configured list replaces `default`, even when it is empty.
pub fn networks(config: &Value, key: &str, default: &[&str], warnings: &mut Vec<String>) -> NetList {
    if config.get(key).is_none() {
        return NetList::parse_all(default.iter().copied()).0;
    }
    let entries = config.strings(key);
    let (list, errors) = NetList::parse_all(entries.iter().map(String::as_str));
    warnings.extend(errors.into_iter().map(|e| format!("{key}: {e}")));
    list
}

/// What to do when a host service a check needs (DNS, the kv store) fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Let the client through, logged and annotated: an outage must not stop mail.
    Continue,
    /// Defer (4xx; the plugin chooses the reply): nothing passes unchecked.
    Tempfail,
}

impl OnFailure {
    /// What the log says is done about the failure.
    pub fn describe(self) -> &'static str {
        match self {
            OnFailure::Continue => "let through",
            OnFailure::Tempfail => "deferred",
        }
    }
}

/// `key` as `"continue"` (the default) or `"tempfail"`.
pub fn on_failure(config: &Value, key: &str, warnings: &mut Vec<String>) -> OnFailure {
    match config.str(key) {
        None | Some("continue") => OnFailure::Continue,
        Some("tempfail") => OnFailure::Tempfail,
        Some(other) => {
            warnings.push(format!("{key} must be \"continue\" or \"tempfail\", not {other:?}; using \"continue\""));
            OnFailure::Continue
        }
    }
}

/// A size: an integer (bytes) or a string such as `"256KiB"`, `"10 MB"`.
pub fn size_value(value: &Value) -> Option<u64> {
    match value {
        Value::Integer(i) => u64::try_from(*i).ok(),
        Value::Text(t) => parse_size(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use sluice_plugin::testing::{strings, table, text};

    use super::*;
    use crate::net::LOOPBACK;

    #[test]
    fn values_and_fallbacks() {
        let config = table(&[
            ("on", Value::Boolean(true)),
            ("yes", text("yes")),
            ("wait", text("90s")),
            ("secs", Value::Integer(7200)),
            ("never", Value::Integer(-1)),
            ("v4", Value::Integer(32)),
            ("v6", Value::Integer(129)),
        ]);
        let mut w = Vec::new();
        assert!(flag(&config, "on", false, &mut w) && flag(&config, "yes", true, &mut w));
        assert!(!flag(&config, "missing", false, &mut w));
        let five = Duration::from_secs(300);
        assert_eq!(duration(&config, "wait", five, &mut w), Duration::from_secs(90));
        assert_eq!(duration(&config, "secs", five, &mut w), Duration::from_secs(7200));
        assert_eq!(duration(&config, "never", five, &mut w), five);
        assert_eq!(prefix_len(&config, "v4", 24, 32, &mut w), 32);
        assert_eq!(prefix_len(&config, "v6", 64, 128, &mut w), 64);
        assert_eq!(
            w,
            ["yes must be true or false; using true", "never: negative; using 300s", "v6 must be 0 to 128; using 64"]
        );
    }

    #[test]
    fn network_lists_replace_the_default() {
        let mut w = Vec::new();
        let loopback = networks(&table(&[]), "allow", LOOPBACK, &mut w);
        assert!(loopback.contains("127.0.0.1".parse().unwrap()));
        let config = table(&[("allow", strings(&["10.0.0.0/8", "bogus"]))]);
        let list = networks(&config, "allow", LOOPBACK, &mut w);
        assert!(list.contains("10.1.2.3".parse().unwrap()) && !list.contains("127.0.0.1".parse().unwrap()));
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("allow: "), "{w:?}");
    }

    #[test]
    fn failure_policies() {
        let config = table(&[("kv_error", text("tempfail")), ("dns_error", text("explode"))]);
        let mut w = Vec::new();
        assert_eq!(on_failure(&config, "kv_error", &mut w), OnFailure::Tempfail);
        assert_eq!(on_failure(&config, "missing", &mut w), OnFailure::Continue);
        assert_eq!(on_failure(&config, "dns_error", &mut w), OnFailure::Continue);
        assert_eq!(w, ["dns_error must be \"continue\" or \"tempfail\", not \"explode\"; using \"continue\""]);
        assert_eq!((OnFailure::Continue.describe(), OnFailure::Tempfail.describe()), ("let through", "deferred"));
    }

    #[test]
    fn sizes() {
        assert_eq!(size_value(&Value::Integer(-5)), None);
        assert_eq!(size_value(&Value::Integer(4096)), Some(4096));
        assert_eq!(size_value(&text("64k")), Some(64 * 1024));
        assert_eq!(size_value(&Value::Boolean(true)), None);
    }
}
