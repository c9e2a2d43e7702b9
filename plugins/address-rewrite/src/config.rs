//! The plugin's configuration, read from `[plugin.config]` into typed rules.
//!
//! Bad entries never fail the plugin: each is skipped with a warning (logged once per
//! instance), so a typo disables one rule rather than the mail flow.

use std::collections::{HashMap, HashSet};

use sluice_plugin::config::Value;

use crate::domain::{DomainMap, is_domain, normalize_domain, split_address};

/// Where mail for a recipient domain should go.
#[derive(Clone, Debug, PartialEq)]
pub enum RouteChoice {
    /// A `[[route]]` of the server's configuration, by name.
    Named(String),
    /// An explicit next hop, `host` or `host:port`.
    NextHop(String),
}

impl RouteChoice {
    pub fn describe(&self) -> String {
        match self {
            RouteChoice::Named(name) => format!("route {name}"),
            RouteChoice::NextHop(hop) => format!("next hop {hop}"),
        }
    }
}

#[derive(Debug, Default)]
pub struct Config {
    /// Sender domain pattern → the domain to show instead.
    pub masquerade: DomainMap<String>,
    /// Local parts (lower-case) never masqueraded, such as `root`.
    pub masquerade_exceptions: HashSet<String>,
    /// Also rewrite the addresses in the `From:` header at DATA.
    pub rewrite_from_header: bool,
    /// Lower-case address → its targets, in order.
    pub aliases: HashMap<String, Vec<String>>,
    /// Separator of address extensions (`alice+news@`): lookups also try the address
    /// without the extension.
    pub recipient_delimiter: Option<char>,
    /// Recipient domain pattern → the address that receives mail for unknown users.
    pub catch_all: DomainMap<String>,
    /// Lower-case full addresses that exist (never caught by a catch-all).
    pub known_users: HashSet<String>,
    /// Lower-case local parts that exist in every catch-all domain (`postmaster`).
    pub known_local_parts: HashSet<String>,
    /// Recipient domain pattern → route.
    pub routes: DomainMap<RouteChoice>,
    /// Answer 452 4.5.3 to a recipient whose route differs from the first one's, so the
    /// client sends it in a separate transaction.
    pub split_by_route: bool,
}

impl Config {
    pub fn is_empty(&self) -> bool {
        self.masquerade.is_empty() && self.aliases.is_empty() && self.catch_all.is_empty() && self.routes.is_empty()
    }
}

/// Reads the configuration; the second value lists what was skipped and why.
pub fn parse(root: &Value) -> (Config, Vec<String>) {
    let mut warnings = Vec::new();
    let mut config = Config {
        masquerade: parse_masquerade(root.get("masquerade"), &mut warnings),
        rewrite_from_header: flag(root, "rewrite_from_header", false, &mut warnings),
        split_by_route: flag(root, "split_by_route", false, &mut warnings),
        ..Config::default()
    };
    config.masquerade_exceptions =
        root.strings("masquerade_exceptions").iter().map(|s| s.trim().to_ascii_lowercase()).collect();
    config.recipient_delimiter = match root.get("recipient_delimiter") {
        None => None,
        Some(Value::Text(t)) if t.chars().count() == 1 => t.chars().next(),
        Some(other) => {
            warnings.push(format!("recipient_delimiter: expected one character, got {other:?}; ignored"));
            None
        }
    };
    config.aliases = parse_aliases(root.get("aliases"), &mut warnings);
    for (pattern, target) in string_table(root.get("catch_all"), "catch_all", &mut warnings) {
        if split_address(&target).is_none() {
            warnings.push(format!("catch_all.{pattern}: {target:?} is not an address; skipped"));
        } else if !config.catch_all.insert(&pattern, target.trim().to_string()) {
            warnings.push(format!("catch_all: {pattern:?} is not a domain pattern; skipped"));
        }
    }
    for user in root.strings("known_users") {
        let user = user.trim().to_ascii_lowercase();
        if user.contains('@') {
            config.known_users.insert(user);
        } else if !user.is_empty() {
            config.known_local_parts.insert(user);
        }
    }
    config.routes = parse_routes(root.get("routes"), &mut warnings);
    (config, warnings)
}

fn flag(root: &Value, key: &str, default: bool, warnings: &mut Vec<String>) -> bool {
    match root.get(key) {
        None => default,
        Some(Value::Boolean(b)) => *b,
        Some(other) => {
            warnings.push(format!("{key}: expected true or false, got {other:?}; using {default}"));
            default
        }
    }
}

/// The entries of a table of strings, warning about anything else.
fn string_table(value: Option<&Value>, key: &str, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    match value {
        None => Vec::new(),
        Some(Value::Table(entries)) => entries
            .iter()
            .filter_map(|(k, v)| match v {
                Value::Text(t) => Some((k.clone(), t.clone())),
                other => {
                    warnings.push(format!("{key}.{k}: expected a string, got {other:?}; skipped"));
                    None
                }
            })
            .collect(),
        Some(other) => {
            warnings.push(format!("{key}: expected a table, got {other:?}; ignored"));
            Vec::new()
        }
    }
}

/// `masquerade` is a table `{ pattern = "domain" }`, or an array of such tables or of
/// `{ from = "pattern", to = "domain" }` tables.
fn parse_masquerade(value: Option<&Value>, warnings: &mut Vec<String>) -> DomainMap<String> {
    let mut pairs = Vec::new();
    match value {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                match (item.str("from"), item.str("to")) {
                    (Some(from), Some(to)) => pairs.push((from.to_string(), to.to_string())),
                    _ => pairs.extend(string_table(Some(item), "masquerade[]", warnings)),
                }
            }
        }
        Some(table) => pairs = string_table(Some(table), "masquerade", warnings),
    }
    let mut map = DomainMap::default();
    for (pattern, target) in pairs {
        let target = normalize_domain(&target);
        if !is_domain(&target) {
            warnings.push(format!("masquerade.{pattern}: {target:?} is not a domain; skipped"));
        } else if !map.insert(&pattern, target) {
            warnings.push(format!("masquerade: {pattern:?} is not a domain pattern; skipped"));
        }
    }
    map
}

/// `aliases = { "sales@example.com" = ["alice@example.com", "bob@example.com"] }`; a
/// single string is a list of one.
fn parse_aliases(value: Option<&Value>, warnings: &mut Vec<String>) -> HashMap<String, Vec<String>> {
    let mut aliases = HashMap::new();
    let Some(value) = value else { return aliases };
    let Value::Table(entries) = value else {
        warnings.push(format!("aliases: expected a table, got {value:?}; ignored"));
        return aliases;
    };
    for (alias, targets) in entries {
        if split_address(alias).is_none() {
            warnings.push(format!("aliases: {alias:?} is not an address (write local@domain); skipped"));
            continue;
        }
        let mut list = Vec::new();
        let items: Vec<&Value> = match targets {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for item in items {
            match item.as_str().map(str::trim) {
                Some(t) if split_address(t).is_some() => list.push(t.to_string()),
                _ => warnings.push(format!("aliases.{alias}: {item:?} is not an address; skipped")),
            }
        }
        if list.is_empty() {
            warnings.push(format!("aliases.{alias}: no valid target; skipped"));
        } else {
            aliases.insert(alias.trim().to_ascii_lowercase(), list);
        }
    }
    aliases
}

/// `routes = { "partner.example" = "partner-relay" }` names a `[[route]]`;
/// `{ "x.example" = { next_hop = "mx.x.example:25" } }` gives a next hop.
fn parse_routes(value: Option<&Value>, warnings: &mut Vec<String>) -> DomainMap<RouteChoice> {
    let mut routes = DomainMap::default();
    let Some(value) = value else { return routes };
    let Value::Table(entries) = value else {
        warnings.push(format!("routes: expected a table, got {value:?}; ignored"));
        return routes;
    };
    for (pattern, choice) in entries {
        let choice = match (choice, choice.str("route"), choice.str("next_hop")) {
            (Value::Text(name), _, _) if !name.trim().is_empty() => RouteChoice::Named(name.trim().to_string()),
            (Value::Table(_), Some(name), None) => RouteChoice::Named(name.trim().to_string()),
            (Value::Table(_), None, Some(hop)) if !hop.trim().is_empty() => {
                RouteChoice::NextHop(hop.trim().to_string())
            }
            _ => {
                warnings.push(format!(
                    "routes.{pattern}: expected a route name or {{ route = \"name\" }} or {{ next_hop = \"host:port\" }}; skipped"
                ));
                continue;
            }
        };
        if !routes.insert(pattern, choice) {
            warnings.push(format!("routes: {pattern:?} is not a domain pattern; skipped"));
        }
    }
    routes
}

#[cfg(test)]
pub(crate) mod tests {
    use sluice_plugin::testing::{from_toml, parse_clean, read_fixture};

    use super::*;

    pub fn config(toml: &str) -> Config {
        parse_clean(parse, &from_toml(toml))
    }

    #[test]
    fn reads_every_key() {
        let c = config(
            r#"
            masquerade = { "host.internal.example" = "example.com", "*.corp.example" = "Example.COM" }
            masquerade_exceptions = ["root"]
            rewrite_from_header = true
            aliases = { "Sales@Example.com" = ["alice@example.com", "bob@example.com"], "info@example.com" = "carol@example.com" }
            recipient_delimiter = "+"
            catch_all = { "example.com" = "postmaster@example.com" }
            known_users = ["alice@example.com", "postmaster"]
            routes = { "partner.example" = "partner-relay", "*.lab.example" = { next_hop = "10.0.0.5:2525" } }
            split_by_route = true
            "#,
        );
        assert_eq!(c.masquerade.get("a.corp.example").map(String::as_str), Some("example.com"));
        assert!(c.masquerade_exceptions.contains("root"));
        assert!(c.rewrite_from_header && c.split_by_route);
        assert_eq!(c.aliases["sales@example.com"].len(), 2);
        assert_eq!(c.aliases["info@example.com"], vec!["carol@example.com".to_string()]);
        assert_eq!(c.recipient_delimiter, Some('+'));
        assert!(c.known_users.contains("alice@example.com") && c.known_local_parts.contains("postmaster"));
        assert_eq!(c.routes.get("partner.example"), Some(&RouteChoice::Named("partner-relay".into())));
        assert_eq!(c.routes.get("x.lab.example"), Some(&RouteChoice::NextHop("10.0.0.5:2525".into())));
        assert!(!c.is_empty());
    }

    #[test]
    fn masquerade_as_a_list_of_tables() {
        let c = config(
            r#"
            [[masquerade]]
            from = "*.corp.example"
            to = "example.com"
            [[masquerade]]
            "host.internal.example" = "example.net"
            "#,
        );
        assert_eq!(c.masquerade.get("x.corp.example").map(String::as_str), Some("example.com"));
        assert_eq!(c.masquerade.get("host.internal.example").map(String::as_str), Some("example.net"));
    }

    #[test]
    fn bad_entries_are_skipped_with_warnings() {
        let (c, warnings) = parse(&from_toml(
            r#"
            masquerade = { "host.internal.example" = "not a domain", "ok.example" = "example.com" }
            rewrite_from_header = "yes"
            aliases = { "sales" = ["alice@example.com"], "x@example.com" = [1, "nope"] }
            recipient_delimiter = "+-"
            catch_all = { "example.com" = "postmaster" }
            routes = { "partner.example" = 3 }
            "#,
        ));
        assert_eq!(warnings.len(), 9, "{warnings:#?}");
        assert_eq!(c.masquerade.len(), 1);
        assert!(!c.rewrite_from_header);
        assert!(c.aliases.is_empty() && c.catch_all.is_empty() && c.routes.is_empty());
        assert_eq!(c.recipient_delimiter, None);
    }

    #[test]
    fn empty_config_does_nothing() {
        let c = config("");
        assert!(c.is_empty());
    }

    #[test]
    fn fixture_configs_parse_cleanly() {
        for file in ["fixtures/config.toml", "fixtures/config-split.toml"] {
            config(&read_fixture(env!("CARGO_MANIFEST_DIR"), file));
        }
    }
}
