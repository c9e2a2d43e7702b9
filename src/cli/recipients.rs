//! `sluice recipients check ADDR --config FILE`: the check RCPT makes, from the
//! command line, saying where the answer came from and what the mail server said.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::kv::KvStore;
use crate::mail::Mailbox;
use crate::recipients::{Answer, Verifier};

/// Exits 0 for a valid (or unverified) recipient, 1 for an unknown one, 2 when the
/// mail server cannot be asked or on errors.
pub fn check(config_path: &Path, address: &str) -> ExitCode {
    match run(config_path, address) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(config_path: &Path, address: &str) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let recipient = Mailbox::parse(address.trim_start_matches('<').trim_end_matches('>'))
        .map_err(|e| anyhow::anyhow!("{address:?} is not an address: {e:?}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let kv = match KvStore::open(&config.kv) {
            Ok(kv) => kv,
            Err(error) => {
                // The embedded store is locked by a running server: ask without its cache.
                eprintln!("note: the answer cache cannot be read ({error}); asking without it");
                KvStore::memory()
            }
        };
        let resolver = crate::dns::shared_resolver(&config.dns)?;
        let verifier = Verifier::new(&config, Arc::new(kv), resolver)?;
        let check = verifier.check(&recipient).await;
        verifier.close().await;
        let Some(check) = check else {
            println!("{recipient}: not verified (no route verifies recipients at {})", recipient.domain);
            return Ok(ExitCode::SUCCESS);
        };
        println!("{recipient}: {} (route {}, from {})", check.answer.name(), check.route, check.source);
        let code = match &check.answer {
            Answer::Valid { said } => {
                if let Some(said) = said {
                    println!("mail server said: {said}");
                }
                ExitCode::SUCCESS
            }
            Answer::Unknown { said } => {
                println!("mail server said: {said}");
                ExitCode::from(1)
            }
            Answer::Unavailable { why } => {
                println!("unavailable: {why}");
                ExitCode::from(2)
            }
        };
        Ok(code)
    })
}
