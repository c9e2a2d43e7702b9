//! The plugin's `[plugin.config]`: zones with weights, the threshold, the allow-list and
//! the reply. A bad entry is left out with a warning (logged once per instance) and a
//! bad value falls back to its default, so a typo never turns into refusing all mail.

use std::net::Ipv4Addr;

use filter_util::config::{flag, networks};
use filter_util::domain;
use filter_util::net::NetList;
use filter_util::reply::ReplySpec;
use sluice_plugin::config::Value;

/// More zones than this are ignored: they all share one call's wall time.
pub const MAX_ZONES: usize = 16;

/// Networks never looked up by default: loopback, private and link-local ranges, which
/// no public DNSBL lists (and querying them leaks internal addresses).
pub const DEFAULT_ALLOW: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

pub const DEFAULT_TEXT: &str = "Service unavailable; client [{ip}] listed by {zones}{reason}";

#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    /// Lower-case, without a trailing dot.
    pub name: String,
    /// Added to the sum when the zone lists the client; 0 only tags.
    pub weight: f64,
    /// The answers that count as a listing; empty: any 127.0.0.x.
    pub return_codes: Vec<Ipv4Addr>,
    /// Whether to read the zone's TXT record for the reason, when rejecting.
    pub txt: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub zones: Vec<Zone>,
    /// Reject when the summed weight of listing zones reaches this.
    pub threshold: f64,
    pub allow: NetList,
    pub reply: ReplySpec,
    /// Stop querying after this many timeouts (the rest would only run out the call's
    /// wall time).
    pub max_timeouts: u32,
}

impl Config {
    /// Reads the config; the second value lists what was wrong with it.
    pub fn from_value(config: &Value) -> (Config, Vec<String>) {
        let mut warnings = Vec::new();
        let txt_default = flag(config, "txt", false, &mut warnings);
        let mut zones: Vec<Zone> = Vec::new();
        for (i, entry) in config.get("zones").map(Value::as_array).unwrap_or_default().iter().enumerate() {
            match zone(entry, txt_default, &mut warnings) {
                Some(z) if zones.iter().any(|known| known.name == z.name) => {
                    warnings.push(format!("zones[{i}]: {} is listed twice; the second entry is ignored", z.name))
                }
                Some(_) if zones.len() == MAX_ZONES => {
                    warnings.push(format!("zones[{i}]: more than {MAX_ZONES} zones; the rest are ignored"));
                    break;
                }
                Some(z) => zones.push(z),
                None => {}
            }
        }
        if config.get("zones").is_some_and(|z| !matches!(z, Value::Array(_))) {
            warnings.push("zones must be a list of zone names or tables".into());
        }
        if zones.is_empty() {
            warnings.push("no DNSBL zones configured: nothing is checked".into());
        }

        let threshold = match config.get("threshold") {
            None => 1.0,
            Some(v) => match v.as_f64() {
                Some(t) if t.is_finite() && t > 0.0 => t,
                _ => {
                    warnings.push("threshold must be a positive number; using 1.0".into());
                    1.0
                }
            },
        };

        let allow_key = if config.get("allow").is_some() { "allow" } else { "allow_networks" };
        let allow = networks(config, allow_key, DEFAULT_ALLOW, &mut warnings);

        let default_reply = ReplySpec::new(554, "5.7.1", DEFAULT_TEXT);
        let (reply, errors) = ReplySpec::configured(
            &default_reply,
            config.i64("reply_code"),
            config.str("reply_enhanced_code"),
            config.str("reply_text"),
        );
        warnings.extend(errors);

        let max_timeouts = match config.i64("max_timeouts") {
            None => 1,
            Some(n) => u32::try_from(n).unwrap_or_else(|_| {
                warnings.push("max_timeouts must be 0 or more; using 1".into());
                1
            }),
        };

        (Config { zones, threshold, allow, reply, max_timeouts }, warnings)
    }
}

/// One entry of `zones`: `"zen.example.test"` or `{ zone = "...", weight = 0.5,
/// return_codes = ["127.0.0.2"], txt = true }`.
fn zone(entry: &Value, txt_default: bool, warnings: &mut Vec<String>) -> Option<Zone> {
    let (name, table) = match entry {
        Value::Text(name) => (name.as_str(), None),
        Value::Table(_) => match entry.str("zone") {
            Some(name) => (name, Some(entry)),
            None => {
                warnings.push("a zones table has no zone = \"...\"; ignored".into());
                return None;
            }
        },
        _ => {
            warnings.push("zones entries must be strings or tables; one is ignored".into());
            return None;
        }
    };
    if !domain::is_fqdn(name) {
        warnings.push(format!("zone {name:?} is not a domain name; ignored"));
        return None;
    }
    let name = domain::normalize(name);
    let mut zone = Zone { name, weight: 1.0, return_codes: Vec::new(), txt: txt_default };
    let Some(table) = table else { return Some(zone) };
    if let Some(w) = table.get("weight") {
        match w.as_f64() {
            Some(w) if w.is_finite() && w >= 0.0 => zone.weight = w,
            _ => warnings.push(format!("zone {}: weight must be a number of 0 or more; using 1.0", zone.name)),
        }
    }
    for code in table.strings("return_codes") {
        match code.trim().parse::<Ipv4Addr>() {
            Ok(ip) if ip.octets()[0] == 127 => zone.return_codes.push(ip),
            _ => warnings.push(format!("zone {}: return code {code:?} is not a 127.x.x.x address; ignored", zone.name)),
        }
    }
    if table.get("return_codes").is_some() && zone.return_codes.is_empty() {
        // Listing nothing would silently disable the zone; better to say so and skip it.
        warnings.push(format!("zone {}: no usable return_codes; zone ignored", zone.name));
        return None;
    }
    zone.txt = flag(table, "txt", txt_default, warnings);
    Some(zone)
}

#[cfg(test)]
mod tests {
    use sluice_plugin::testing::{list, parse_clean, table, text};

    use super::*;

    #[test]
    fn defaults() {
        let config = parse_clean(Config::from_value, &table(&[("zones", list(&[text("zen.example.test")]))]));
        assert_eq!(config.zones.len(), 1);
        assert_eq!(
            config.zones[0],
            Zone { name: "zen.example.test".into(), weight: 1.0, return_codes: vec![], txt: false }
        );
        assert_eq!(config.threshold, 1.0);
        assert_eq!((config.reply.code, config.reply.enhanced.as_str()), (554, "5.7.1"));
        assert!(config.allow.contains("127.0.0.1".parse().unwrap()));
        assert!(config.allow.contains("10.1.2.3".parse().unwrap()));
        assert!(!config.allow.contains("192.0.2.1".parse().unwrap()));
        assert_eq!(config.max_timeouts, 1);
    }

    #[test]
    fn zone_tables() {
        let config = table(&[
            (
                "zones",
                list(&[
                    table(&[
                        ("zone", text("Strict.Example.Test.")),
                        ("weight", Value::Float(0.5)),
                        ("return_codes", list(&[text("127.0.0.2"), text("127.0.0.4")])),
                        ("txt", Value::Boolean(true)),
                    ]),
                    table(&[("zone", text("info.example.test")), ("weight", Value::Integer(0))]),
                ]),
            ),
            ("threshold", Value::Integer(2)),
            ("allow", list(&[text("203.0.113.0/24"), text("2001:db8::/32")])),
            ("reply_code", Value::Integer(550)),
            ("reply_text", text("Blocked: {zones}")),
        ]);
        let config = parse_clean(Config::from_value, &config);
        assert_eq!(config.zones[0].name, "strict.example.test");
        assert_eq!(config.zones[0].weight, 0.5);
        assert_eq!(config.zones[0].return_codes, vec![Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 4)]);
        assert!(config.zones[0].txt);
        assert_eq!(config.zones[1].weight, 0.0);
        assert!(!config.zones[1].txt);
        assert_eq!(config.threshold, 2.0);
        assert!(config.allow.contains("2001:db8::5".parse().unwrap()));
        assert!(!config.allow.contains("127.0.0.1".parse().unwrap()), "a configured allow replaces the default");
        assert_eq!(
            (config.reply.code, config.reply.enhanced.as_str(), config.reply.text.as_str()),
            (550, "5.7.1", "Blocked: {zones}")
        );
    }

    #[test]
    fn bad_entries_are_skipped_with_warnings() {
        let config = table(&[
            (
                "zones",
                list(&[
                    text("zen.example.test"),
                    text("zen.example.test"),
                    text("not a zone"),
                    Value::Integer(3),
                    table(&[("weight", Value::Float(1.0))]),
                    table(&[("zone", text("neg.example.test")), ("weight", Value::Float(-2.0))]),
                    table(&[("zone", text("codes.example.test")), ("return_codes", list(&[text("10.0.0.1")]))]),
                ]),
            ),
            ("threshold", Value::Float(-1.0)),
            ("allow", list(&[text("300.0.0.0/8"), text("198.51.100.0/24")])),
            ("reply_code", Value::Integer(250)),
            ("max_timeouts", Value::Integer(-3)),
        ]);
        let (config, warnings) = Config::from_value(&config);
        let names: Vec<&str> = config.zones.iter().map(|z| z.name.as_str()).collect();
        assert_eq!(names, ["zen.example.test", "neg.example.test"]);
        assert_eq!(config.zones[1].weight, 1.0, "a negative weight falls back to 1.0");
        assert_eq!(config.threshold, 1.0);
        assert_eq!(config.reply.code, 554);
        assert_eq!(config.max_timeouts, 1);
        assert!(config.allow.contains("198.51.100.7".parse().unwrap()));
        assert_eq!(warnings.len(), 11, "{warnings:#?}");
    }

    #[test]
    fn no_zones_is_a_warning_not_an_error() {
        let (config, warnings) = Config::from_value(&table(&[]));
        assert!(config.zones.is_empty());
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn zone_count_is_bounded() {
        let many: Vec<Value> = (0..20).map(|i| text(&format!("z{i}.example.test"))).collect();
        let (config, warnings) = Config::from_value(&table(&[("zones", list(&many))]));
        assert_eq!(config.zones.len(), MAX_ZONES);
        assert_eq!(warnings.len(), 1);
    }
}
