//! `sluice check-config FILE`.

use std::path::Path;
use std::process::ExitCode;

use std::sync::Arc;

use crate::config::{Config, ConfigError, PluginConfig, PluginsConfig};
use crate::kv::KvStore;
use crate::plugin::{LoadedPlugin, PluginHost};
use crate::smtp::tls::load_acceptor;

/// Everything `serve` would refuse to start with, short of binding sockets: the config
/// itself, the certificates, every plugin (compiled, imports checked against its grants,
/// and asked to describe itself) and the routes' credentials. Returns a line about each
/// plugin.
pub fn validate(path: &Path) -> Result<Vec<String>, ConfigError> {
    let config = Config::load(path)?;
    if let Some(tls) = &config.tls {
        load_acceptor(tls, &config.origin)?;
    }
    let mut plugins = Vec::new();
    if !config.plugin.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ConfigError::without_position(path, format!("cannot start a runtime: {e}")))?;
        let resolver =
            crate::dns::shared_resolver(&config.dns).map_err(|e| ConfigError::without_position(path, e.to_string()))?;
        let host = runtime.block_on(PluginHost::load(&config, Arc::new(KvStore::memory()), resolver))?;
        plugins = host.plugins().iter().zip(&config.plugin).map(|(p, c)| describe(p, c, &config.plugins)).collect();
    }
    crate::client::tls::build(&config.delivery, &config.origin)?;
    crate::mail_auth::sign::Signers::load(&config)?;
    // Recipient lists, read as at start: a malformed line is FILE:LINE.
    for route in config.routes.iter().filter(|r| r.recipients.verify.get_ref().uses_list()) {
        if let Some(list) = &route.recipients.list {
            crate::recipients::RecipientList::load(list.get_ref())?;
        }
    }
    // Routes' credentials (password files are read here, as at start).
    crate::delivery::routing::Router::new(Arc::new(config.clone()))
        .map_err(|e| ConfigError::without_position(path, e.to_string()))?;
    Ok(plugins)
}

/// Such as `plugin "spam": sluice:plugin@0.2.0, fresh per session (declared by the
/// plugin); grants log, config; quotas ...`, and a notice for a superseded interface
/// version.
fn describe(plugin: &LoadedPlugin, configured: &PluginConfig, defaults: &PluginsConfig) -> String {
    let mut line = format!(
        "plugin {:?}: {}, {}; {}",
        plugin.shared.name,
        plugin.interface,
        plugin.reuse.describe(),
        configured.permissions(defaults)
    );
    if let Some(notice) = plugin.interface.line.notice() {
        line.push_str(&format!("; warning: {notice}"));
    }
    line
}

pub fn run(path: &Path) -> ExitCode {
    match validate(path) {
        Ok(plugins) => {
            for plugin in plugins {
                println!("{plugin}");
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
