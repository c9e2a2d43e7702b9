//! The plugin's `[plugin.config]`: the limits (named keys and/or a `[[limits]]` list),
//! the allow-list, and what to do when a limit is exceeded. A bad limit is left out
//! with a warning (logged once per instance); other bad values fall back to defaults.

use std::time::Duration;

use filter_util::config::{OnFailure, networks, on_failure, prefix_len};
use filter_util::duration::parse_duration;
use filter_util::net::{LOOPBACK, NetList};
use sluice_plugin::config::Value;

/// What a limit counts, and so at which stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// Connections per client address (or network), at connect.
    IpConnections,
    /// Messages (MAIL commands) per client address (or network).
    Ip,
    /// Messages per sender address; the null sender is not counted.
    Sender,
    /// Messages per sender domain; the null sender is not counted.
    SenderDomain,
}

impl Subject {
    pub fn parse(name: &str) -> Option<Subject> {
        Some(match name {
            "ip_connections" => Subject::IpConnections,
            "ip" => Subject::Ip,
            "sender" => Subject::Sender,
            "sender_domain" => Subject::SenderDomain,
            _ => return None,
        })
    }

    pub fn at_connect(self) -> bool {
        self == Subject::IpConnections
    }
}

/// The named keys: `per_ip = { count = 30, window = "1m" }` is the limit "per_ip" on
/// messages per client.
pub const NAMED: [(&str, Subject); 4] = [
    ("per_ip_connections", Subject::IpConnections),
    ("per_ip", Subject::Ip),
    ("per_sender", Subject::Sender),
    ("per_sender_domain", Subject::SenderDomain),
];

#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    /// In tags, logs and kv keys.
    pub name: String,
    pub subject: Subject,
    /// At most this many events per window.
    pub count: u64,
    pub window: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// 421 4.7.0 and disconnect at connect, 451 4.7.1 at MAIL.
    Tempfail,
    /// 554 5.7.1 at connect, 550 5.7.1 at MAIL.
    Reject,
    /// Only tag (`rate-limit:<name>`) and annotate: to watch before enforcing.
    Tag,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Tempfail => "tempfail",
            Action::Reject => "reject",
            Action::Tag => "tag",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub limits: Vec<Limit>,
    pub allow_networks: NetList,
    pub action: Action,
    /// Clients are counted per address (IPv4 /32) or network (IPv6 /64 by default: one
    /// host usually has a whole /64 to rotate through).
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub on_kv_error: OnFailure,
    /// `{seconds}`, `{limit}`, `{count}`, `{window}` are filled in.
    pub reply_text: String,
}

pub const DEFAULT_TEXT: &str = "Rate limit exceeded, retry after {seconds} seconds";

/// Windows shorter than a second make no sense with counters kept in a shared store.
const MIN_WINDOW: Duration = Duration::from_secs(1);

fn limit(name: &str, subject: Subject, table: &Value, warnings: &mut Vec<String>) -> Option<Limit> {
    let count = match table.i64("count") {
        Some(n) if n >= 1 => n as u64,
        _ => {
            warnings.push(format!("limit {name}: count must be a whole number of 1 or more; limit ignored"));
            return None;
        }
    };
    let window = match table.get("window") {
        Some(Value::Text(text)) => parse_duration(text).map_err(|e| format!("limit {name}: {e}; limit ignored")),
        Some(Value::Integer(secs)) if *secs > 0 => Ok(Duration::from_secs(*secs as u64)),
        _ => Err(format!("limit {name}: window must be a duration such as \"1m\"; limit ignored")),
    };
    match window {
        Ok(window) if window >= MIN_WINDOW => Some(Limit { name: name.to_string(), subject, count, window }),
        Ok(_) => {
            warnings.push(format!("limit {name}: window must be at least 1s; limit ignored"));
            None
        }
        Err(e) => {
            warnings.push(e);
            None
        }
    }
}

impl Config {
    pub fn from_value(config: &Value) -> (Config, Vec<String>) {
        let mut warnings = Vec::new();
        let mut limits: Vec<Limit> = Vec::new();
        for (key, subject) in NAMED {
            if let Some(table) = config.get(key) {
                limits.extend(limit(key, subject, table, &mut warnings));
            }
        }
        for (i, table) in config.get("limits").map(Value::as_array).unwrap_or_default().iter().enumerate() {
            let name = table.str("name").map(str::to_string).unwrap_or_else(|| format!("limits[{i}]"));
            let Some(subject) = table.str("key").and_then(Subject::parse) else {
                warnings.push(format!(
                    "limit {name}: key must be \"ip_connections\", \"ip\", \"sender\" or \"sender_domain\"; limit ignored"
                ));
                continue;
            };
            let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.[]".contains(c));
            if !valid_name {
                warnings.push(format!("limit {name:?}: names are letters, digits and _-.; limit ignored"));
                continue;
            }
            if limits.iter().any(|l| l.name == name) {
                warnings.push(format!("limit {name}: the name is used twice; the second is ignored"));
                continue;
            }
            limits.extend(limit(&name, subject, table, &mut warnings));
        }
        if limits.is_empty() {
            warnings.push("no limits configured: nothing is limited".into());
        }
        let allow_networks = networks(config, "allow_networks", LOOPBACK, &mut warnings);
        let action = match config.str("action") {
            None | Some("tempfail") => Action::Tempfail,
            Some("reject") => Action::Reject,
            Some("tag") => Action::Tag,
            Some(other) => {
                warnings.push(format!(
                    "action must be \"tempfail\", \"reject\" or \"tag\", not {other:?}; using \"tempfail\""
                ));
                Action::Tempfail
            }
        };
        let on_kv_error = on_failure(config, "kv_error", &mut warnings);
        let reply_text = match config.str("reply_text") {
            Some(text) if !text.trim().is_empty() => text.to_string(),
            Some(_) => {
                warnings.push("reply_text is empty; using the default".into());
                DEFAULT_TEXT.to_string()
            }
            None => DEFAULT_TEXT.to_string(),
        };
        let config = Config {
            limits,
            allow_networks,
            action,
            ipv4_prefix: prefix_len(config, "ipv4_prefix", 32, 32, &mut warnings),
            ipv6_prefix: prefix_len(config, "ipv6_prefix", 64, 128, &mut warnings),
            on_kv_error,
            reply_text,
        };
        (config, warnings)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use sluice_plugin::testing::{parse_clean, table, text};

    use super::*;

    pub fn rate(count: i64, window: &str) -> Value {
        table(&[("count", Value::Integer(count)), ("window", text(window))])
    }

    #[test]
    fn named_limits() {
        let config = parse_clean(
            Config::from_value,
            &table(&[
                ("per_ip", rate(30, "1m")),
                ("per_sender", rate(100, "1h")),
                ("per_sender_domain", table(&[("count", Value::Integer(500)), ("window", Value::Integer(3600))])),
                ("per_ip_connections", rate(20, "10s")),
            ]),
        );
        let names: Vec<&str> = config.limits.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["per_ip_connections", "per_ip", "per_sender", "per_sender_domain"]);
        assert_eq!(
            config.limits[1],
            Limit { name: "per_ip".into(), subject: Subject::Ip, count: 30, window: Duration::from_secs(60) }
        );
        assert_eq!(config.limits[3].window, Duration::from_secs(3600));
        assert_eq!(config.action, Action::Tempfail);
        assert_eq!((config.ipv4_prefix, config.ipv6_prefix), (32, 64));
        assert!(config.allow_networks.contains("::1".parse().unwrap()));
        assert_eq!(config.reply_text, DEFAULT_TEXT);
    }

    #[test]
    fn limit_lists() {
        let burst = table(&[
            ("name", text("ip-burst")),
            ("key", text("ip")),
            ("count", Value::Integer(10)),
            ("window", text("10s")),
        ]);
        let daily = table(&[("key", text("sender")), ("count", Value::Integer(1000)), ("window", text("1d"))]);
        let config = parse_clean(
            Config::from_value,
            &table(&[
                ("per_ip", rate(30, "1m")),
                ("limits", Value::Array(vec![burst, daily])),
                ("action", text("tag")),
            ]),
        );
        let names: Vec<&str> = config.limits.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["per_ip", "ip-burst", "limits[1]"]);
        assert_eq!(config.limits[2].subject, Subject::Sender);
        assert_eq!(config.action, Action::Tag);
    }

    #[test]
    fn bad_limits_are_left_out() {
        let (config, warnings) = Config::from_value(&table(&[
            ("per_ip", rate(0, "1m")),
            ("per_sender", rate(10, "soon")),
            ("per_sender_domain", rate(10, "500ms")),
            (
                "limits",
                Value::Array(vec![
                    table(&[("key", text("recipient")), ("count", Value::Integer(1)), ("window", text("1m"))]),
                    table(&[
                        ("name", text("per_ip")),
                        ("key", text("ip")),
                        ("count", Value::Integer(1)),
                        ("window", text("1m")),
                    ]),
                    table(&[
                        ("name", text("bad name!")),
                        ("key", text("ip")),
                        ("count", Value::Integer(1)),
                        ("window", text("1m")),
                    ]),
                ]),
            ),
            ("action", text("explode")),
            ("ipv6_prefix", Value::Integer(200)),
        ]));
        assert!(config.limits.len() == 1 && config.limits[0].name == "per_ip", "{:?}", config.limits);
        assert_eq!(config.action, Action::Tempfail);
        assert_eq!(config.ipv6_prefix, 64);
        assert_eq!(warnings.len(), 7, "{warnings:#?}");
    }
}
