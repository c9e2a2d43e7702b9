//! Hooks every stage and lets everything through: the cost of a plugin call, measured.

use sluice_plugin::prelude::*;

pub struct Noop;

impl Plugin for Noop {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::Connect, Stage::Helo, Stage::MailFrom, Stage::RcptTo, Stage::Data).reusable()
    }
}

sluice_plugin::export!(Noop);
