//! `sluice check-config FILE`.

use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, ConfigError};
use crate::smtp::tls::load_acceptor;

/// Everything `serve` would refuse to start with, short of binding sockets.
pub fn validate(path: &Path) -> Result<Config, ConfigError> {
    let config = Config::load(path)?;
    if let Some(tls) = &config.tls {
        load_acceptor(tls, &config.origin)?;
    }
    crate::delivery::client::tls::build(&config.delivery, &config.origin)?;
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
