//! The plugin's `[plugin.config]`: which checks run, our own names and addresses, the
//! allow-list, and the replies. Bad values fall back to their defaults with a warning
//! (logged once per instance); a bad list entry is left out.

use std::net::IpAddr;

use filter_util::config::{OnFailure, networks, on_failure};
use filter_util::domain;
use filter_util::net::{LOOPBACK, NetList, parse_ip};
use filter_util::reply::ReplySpec;
use sluice_plugin::config::Value;

/// The checks, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Not a FQDN and not an address literal.
    Syntax,
    /// Our own host name or address.
    OwnName,
    /// An address literal that is not the client's address.
    Literal,
    /// The HELO name does not resolve (A or AAAA).
    HeloResolves,
    /// The client's address has no forward-confirmed reverse DNS name.
    Fcrdns,
}

impl Check {
    pub const ALL: [Check; 5] = [Check::Syntax, Check::OwnName, Check::Literal, Check::HeloResolves, Check::Fcrdns];

    /// The config key that switches it and names its reply, also used in tags.
    pub fn key(self) -> &'static str {
        match self {
            Check::Syntax => "syntax",
            Check::OwnName => "own_name",
            Check::Literal => "literal_match",
            Check::HeloResolves => "helo_resolves",
            Check::Fcrdns => "fcrdns",
        }
    }

    fn enabled_by_default(self) -> bool {
        matches!(self, Check::Syntax | Check::OwnName | Check::Literal)
    }

    fn default_reply(self) -> ReplySpec {
        match self {
            Check::Syntax => ReplySpec::new(
                504,
                "5.5.2",
                "<{helo}>: Helo command rejected: need fully-qualified hostname or address literal",
            ),
            Check::OwnName => {
                ReplySpec::new(550, "5.7.1", "<{helo}>: Helo command rejected: that is my own name, not yours")
            }
            Check::Literal => ReplySpec::new(
                550,
                "5.7.1",
                "<{helo}>: Helo command rejected: address literal does not match your address [{ip}]",
            ),
            Check::HeloResolves => ReplySpec::new(550, "5.7.1", "<{helo}>: Helo command rejected: host not found"),
            Check::Fcrdns => {
                ReplySpec::new(550, "5.7.25", "Client host rejected: reverse DNS of [{ip}] does not resolve back to it")
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    enabled: [bool; 5],
    replies: Vec<ReplySpec>,
    pub local_names: Vec<String>,
    pub local_ips: Vec<IpAddr>,
    pub allow_networks: NetList,
    pub on_dns_error: OnFailure,
    pub dns_error_reply: ReplySpec,
}

fn index(check: Check) -> usize {
    Check::ALL.iter().position(|c| *c == check).unwrap_or(0)
}

impl Config {
    pub fn enabled(&self, check: Check) -> bool {
        self.enabled[index(check)]
    }

    pub fn reply(&self, check: Check) -> &ReplySpec {
        &self.replies[index(check)]
    }

    /// Whether any enabled check needs DNS.
    pub fn uses_dns(&self) -> bool {
        self.enabled(Check::Fcrdns) || self.enabled(Check::HeloResolves)
    }

    pub fn from_value(config: &Value) -> (Config, Vec<String>) {
        let mut warnings = Vec::new();
        let mut enabled = [false; 5];
        let mut replies = Vec::with_capacity(5);
        let reply_tables = config.get("replies");
        for (i, check) in Check::ALL.into_iter().enumerate() {
            enabled[i] = match config.get(check.key()) {
                None => check.enabled_by_default(),
                Some(v) => v.as_bool().unwrap_or_else(|| {
                    warnings.push(format!(
                        "{} must be true or false; using {}",
                        check.key(),
                        check.enabled_by_default()
                    ));
                    check.enabled_by_default()
                }),
            };
            replies.push(reply(reply_tables, check.key(), check.default_reply(), &mut warnings));
        }

        let local_names = config
            .strings("local_names")
            .iter()
            .filter_map(|name| {
                let normalized = domain::normalize(name);
                if normalized.is_empty() {
                    warnings.push("local_names: an empty name is ignored".into());
                    None
                } else {
                    Some(normalized)
                }
            })
            .collect();
        let local_ips = config
            .strings("local_ips")
            .iter()
            .filter_map(|text| {
                let ip = parse_ip(text);
                if ip.is_none() {
                    warnings.push(format!("local_ips: {text:?} is not an IP address; ignored"));
                }
                ip
            })
            .collect();
        let allow_networks = networks(config, "allow_networks", LOOPBACK, &mut warnings);
        let on_dns_error = on_failure(config, "dns_error", &mut warnings);
        let default_dns_error =
            ReplySpec::new(451, "4.4.3", "Temporary DNS failure while checking [{ip}] / <{helo}>; try again later");
        let mut dns_error_reply = reply(reply_tables, "dns_error", default_dns_error.clone(), &mut warnings);
        if !dns_error_reply.is_temporary() {
            warnings.push("replies.dns_error must be a 4xx reply; using 451".into());
            dns_error_reply = default_dns_error;
        }
        let config = Config { enabled, replies, local_names, local_ips, allow_networks, on_dns_error, dns_error_reply };
        (config, warnings)
    }
}

/// `[replies.<key>]`: `code`, `enhanced_code`, `text` overriding the default.
fn reply(tables: Option<&Value>, key: &str, default: ReplySpec, warnings: &mut Vec<String>) -> ReplySpec {
    let Some(table) = tables.and_then(|t| t.get(key)) else { return default };
    let (spec, errors) =
        ReplySpec::configured(&default, table.i64("code"), table.str("enhanced_code"), table.str("text"));
    warnings.extend(errors.into_iter().map(|e| format!("replies.{key}: {e}")));
    spec
}

#[cfg(test)]
mod tests {
    use sluice_plugin::testing::{parse_clean, strings, table};

    use super::*;

    #[test]
    fn defaults() {
        let config = parse_clean(Config::from_value, &table(&[]));
        assert!(config.enabled(Check::Syntax) && config.enabled(Check::OwnName) && config.enabled(Check::Literal));
        assert!(!config.enabled(Check::Fcrdns) && !config.enabled(Check::HeloResolves));
        assert!(!config.uses_dns());
        assert_eq!((config.reply(Check::Syntax).code, config.reply(Check::Syntax).enhanced.as_str()), (504, "5.5.2"));
        assert_eq!(config.reply(Check::Fcrdns).enhanced, "5.7.25");
        assert!(config.allow_networks.contains("127.0.0.1".parse().unwrap()));
        assert!(config.allow_networks.contains("::1".parse().unwrap()));
        assert_eq!(config.on_dns_error, OnFailure::Continue);
    }

    #[test]
    fn switches_lists_and_replies() {
        let config = table(&[
            ("syntax", Value::Boolean(false)),
            ("fcrdns", Value::Boolean(true)),
            ("local_names", strings(&["MX.Example.com.", "mail.example.com"])),
            ("local_ips", strings(&["192.0.2.25", "2001:db8::25", "nope"])),
            ("allow_networks", strings(&["10.0.0.0/8"])),
            ("dns_error", Value::Text("tempfail".into())),
            (
                "replies",
                table(&[
                    ("own_name", table(&[("code", Value::Integer(554)), ("text", Value::Text("Go away".into()))])),
                    ("dns_error", table(&[("code", Value::Integer(550))])),
                ]),
            ),
        ]);
        let (config, warnings) = Config::from_value(&config);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(!config.enabled(Check::Syntax) && config.enabled(Check::Fcrdns) && config.uses_dns());
        assert_eq!(config.local_names, ["mx.example.com", "mail.example.com"]);
        assert_eq!(config.local_ips.len(), 2);
        assert!(!config.allow_networks.contains("127.0.0.1".parse().unwrap()));
        assert_eq!(config.on_dns_error, OnFailure::Tempfail);
        assert_eq!(config.reply(Check::OwnName), &ReplySpec::new(554, "5.7.1", "Go away"));
        assert_eq!(config.dns_error_reply.code, 451, "a 5xx dns_error reply is refused");
    }

    #[test]
    fn bad_values_fall_back() {
        let (config, warnings) = Config::from_value(&table(&[
            ("own_name", Value::Text("yes".into())),
            ("dns_error", Value::Text("panic".into())),
        ]));
        assert_eq!(warnings.len(), 2);
        assert!(config.enabled(Check::OwnName));
        assert_eq!(config.on_dns_error, OnFailure::Continue);
    }
}
