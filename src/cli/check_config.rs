//! `sluice check-config FILE`.

use std::path::Path;
use std::process::ExitCode;

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::kv::KvStore;
use crate::plugin::PluginHost;
use crate::smtp::tls::load_acceptor;

/// Everything `serve` would refuse to start with, short of binding sockets: the config
/// itself, the certificates, every plugin (compiled, imports checked against its grants,
/// and asked to describe itself) and the routes' credentials.
pub fn validate(path: &Path) -> Result<Config, ConfigError> {
    let config = Config::load(path)?;
    if let Some(tls) = &config.tls {
        load_acceptor(tls, &config.origin)?;
    }
    if !config.plugin.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ConfigError::without_position(path, format!("cannot start a runtime: {e}")))?;
        let resolver =
            crate::dns::shared_resolver(&config.dns).map_err(|e| ConfigError::without_position(path, e.to_string()))?;
        runtime.block_on(PluginHost::load(&config, Arc::new(KvStore::memory()), resolver))?;
    }
    crate::client::tls::build(&config.delivery, &config.origin)?;
    // Recipient lists, read as at start: a malformed line is FILE:LINE.
    for route in config.routes.iter().filter(|r| r.recipients.verify.get_ref().uses_list()) {
        if let Some(list) = &route.recipients.list {
            crate::recipients::RecipientList::load(list.get_ref())?;
        }
    }
    // Routes' credentials (password files are read here, as at start).
    crate::delivery::routing::Router::new(Arc::new(config.clone()))
        .map_err(|e| ConfigError::without_position(path, e.to_string()))?;
    Ok(config)
}

pub fn run(path: &Path) -> ExitCode {
    match validate(path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
