//! A template for new plugins (copy this directory, rename the package): refuses
//! recipients that are spam traps at RCPT TO, except for clients in `allow_networks`.
//!
//! ```toml
//! [[plugin]]
//! name = "template"
//! path = "plugins/template.wasm"
//! grants = ["config", "log"]
//! [plugin.config]
//! traps = ["trap@example.com", "honeypot@example.com"]
//! ```

use filter_util::config::networks;
use filter_util::net::{LOOPBACK, NetList, parse_ip};
use sluice_plugin::config::Value;
use sluice_plugin::prelude::*;

/// The settings, parsed from `[plugin.config]`.
pub struct Config {
    /// Lower-case addresses.
    pub traps: Vec<String>,
    pub allow_networks: NetList,
}

impl Config {
    /// Never fails: a bad entry is left out with a warning, which the SDK logs once.
    pub fn from_value(config: &Value) -> (Config, Vec<String>) {
        let mut warnings = Vec::new();
        let mut traps = Vec::new();
        for trap in config.strings("traps") {
            if trap.contains('@') {
                traps.push(trap.trim().to_ascii_lowercase());
            } else {
                warnings.push(format!("traps: {trap:?} is not an address; left out"));
            }
        }
        let allow_networks = networks(config, "allow_networks", LOOPBACK, &mut warnings);
        (Config { traps, allow_networks }, warnings)
    }
}

/// Read at the first call of an instance; the warnings are logged then.
static CONFIG: PluginConfig<Config> = PluginConfig::new(Config::from_value);

/// The decision, on plain data: it tests on the host with `cargo test`.
pub fn check(config: &Config, client_ip: &str, recipient: &str) -> Outcome {
    if parse_ip(client_ip).is_some_and(|ip| config.allow_networks.contains(ip)) {
        return Outcome::proceed();
    }
    if config.traps.iter().any(|trap| trap.eq_ignore_ascii_case(recipient)) {
        return Outcome::reject(550, "5.1.1", "No such user").tag("template:trap");
    }
    Outcome::proceed()
}

pub struct Template;

impl Plugin for Template {
    fn describe() -> PluginInfo {
        // Reusable: the only global is CONFIG, the parsed config. A plugin that keeps
        // anything about a session or a message in a global must not say so.
        sluice_plugin::plugin_info!(Stage::RcptTo).reusable()
    }

    fn rcpt_to(session: &Session, _transaction: &Transaction, recipient: &Recipient) -> RcptToResult {
        let outcome = check(CONFIG.get(), &session.client_ip, &recipient.address);
        if !outcome.is_proceed() {
            sluice_plugin::log::info(&format!("session {}: {} is a spam trap", session.id, recipient.address));
        }
        outcome.into()
    }
}

sluice_plugin::export!(Template);

#[cfg(test)]
mod tests {
    use sluice_plugin::testing::{from_toml, parse_clean, read_fixture};

    use super::*;

    #[test]
    fn traps_are_refused_unless_the_client_is_allowed() {
        let config = parse_clean(Config::from_value, &from_toml(r#"traps = ["Trap@example.com"]"#));
        assert!(check(&config, "192.0.2.1", "alice@example.com").is_proceed());
        let refused = check(&config, "192.0.2.1", "trap@EXAMPLE.com");
        assert!(matches!(refused.verdict, Verdict::Reject(ref reply) if reply.code == 550));
        assert_eq!(refused.tags, ["template:trap"]);
        assert!(check(&config, "127.0.0.1", "trap@example.com").is_proceed(), "loopback is allowed by default");
    }

    #[test]
    fn bad_entries_are_warnings() {
        let (config, warnings) = Config::from_value(&from_toml(r#"traps = ["trap", "t@example.com"]"#));
        assert_eq!(config.traps, ["t@example.com"]);
        assert_eq!(warnings, [r#"traps: "trap" is not an address; left out"#]);
    }

    #[test]
    fn named_after_the_package() {
        let info = Template::describe();
        assert_eq!((info.name.as_str(), info.stages.len()), ("template", 1));
    }

    #[test]
    fn the_readme_shows_this_code() {
        let readme = read_fixture(env!("CARGO_MANIFEST_DIR"), "../README.md");
        let this = read_fixture(env!("CARGO_MANIFEST_DIR"), "src/lib.rs");
        let code = this.split_once("\nuse ").map(|(_, rest)| rest).unwrap_or_default();
        let code = code.split_once("#[cfg(test)]").map(|(code, _)| code).unwrap_or_default().trim_end();
        assert!(!code.is_empty() && readme.contains(code), "plugins/README.md should show template/src/lib.rs");
    }
}
