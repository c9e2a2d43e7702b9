//! `sluice:plugin/log`: lines into the server's log, rate-limited per plugin.

use crate::plugin::bindings::sluice::plugin::log::{Host, Level};
use crate::plugin::state::PluginState;

/// Longer lines are cut.
const MAX_LINE: usize = 2000;

impl Host for PluginState {
    fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let plugin = &self.plugin;
        if !plugin.log_limiter.allow() {
            return Ok(());
        }
        let dropped = plugin.log_limiter.take_dropped();
        if dropped > 0 {
            tracing::warn!(plugin = %plugin.name, dropped, "plugin log lines dropped by the rate limit");
        }
        let mut text: String = message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        if text.len() > MAX_LINE {
            let cut = (0..=MAX_LINE).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text.truncate(cut);
        }
        match level {
            Level::Debug => tracing::debug!(plugin = %plugin.name, "{text}"),
            Level::Info => tracing::info!(plugin = %plugin.name, "{text}"),
            Level::Warn => tracing::warn!(plugin = %plugin.name, "{text}"),
            Level::Error => tracing::error!(plugin = %plugin.name, "{text}"),
        }
        Ok(())
    }
}
