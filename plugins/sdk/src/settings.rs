//! The plugin's settings, parsed from its config once per instance.

use std::sync::OnceLock;

use crate::config::{self, Value};
use crate::log;

/// Turns the config table into settings, listing what was wrong with it. It must not
/// fail: a bad value falls back to its default and becomes a warning.
pub type Parse<T> = fn(&Value) -> (T, Vec<String>);

/// Settings read and checked at the first call of an instance, each warning logged
/// once (`config: <warning>`). Keep it in a `static` and call [`PluginConfig::get`] in
/// the hooks:
///
/// ```
/// # use sluice_plugin::{PluginConfig, config::Value};
/// # struct Config;
/// # impl Config {
/// #     fn from_value(_: &Value) -> (Config, Vec<String>) { (Config, Vec::new()) }
/// # }
/// static CONFIG: PluginConfig<Config> = PluginConfig::new(Config::from_value);
/// ```
pub struct PluginConfig<T> {
    parsed: OnceLock<T>,
    parse: Parse<T>,
}

impl<T> PluginConfig<T> {
    pub const fn new(parse: Parse<T>) -> PluginConfig<T> {
        PluginConfig { parsed: OnceLock::new(), parse }
    }

    /// The settings; reads the config (grant: `config`) and logs (grant: `log`) at the
    /// first call.
    pub fn get(&self) -> &T {
        self.parsed.get_or_init(|| {
            let (settings, warnings) = (self.parse)(&config::load());
            for warning in &warnings {
                log::warn(&format!("config: {warning}"));
            }
            settings
        })
    }
}
