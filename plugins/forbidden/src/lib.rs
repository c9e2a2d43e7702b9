//! Reads a host file at connect, so it imports wasi:filesystem, which Sluice never
//! provides: the server must refuse to load it.

use sluice_plugin::prelude::*;

pub struct Forbidden;

impl Plugin for Forbidden {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::Connect).reusable()
    }

    fn connect(_session: &Session) -> Outcome {
        match std::fs::read_to_string("/etc/passwd") {
            Ok(_) => Outcome::proceed().tag("read-a-file"),
            Err(_) => Outcome::proceed(),
        }
    }
}

sluice_plugin::export!(Forbidden);
