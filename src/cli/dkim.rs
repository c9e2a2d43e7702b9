//! `sluice dkim keygen`: a new signing key and the DNS record that publishes it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;

use crate::mail_auth::sign::keygen::{KeyAlgorithm, NewKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Algorithm {
    Rsa,
    Ed25519,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// The signing domain (`d=`).
    #[arg(long)]
    pub domain: String,
    /// The selector (`s=`): the record goes at SELECTOR._domainkey.DOMAIN.
    #[arg(long)]
    pub selector: String,
    #[arg(long, value_enum, default_value_t = Algorithm::Rsa)]
    pub algorithm: Algorithm,
    /// RSA key size.
    #[arg(long, default_value_t = 2048)]
    pub bits: usize,
    /// Where the PEM private key goes (mode 0600; an existing file is not overwritten).
    #[arg(long, value_name = "FILE")]
    pub out: std::path::PathBuf,
}

/// Creates `path` with mode 0600, refusing one that exists.
fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

pub fn keygen(args: &KeygenArgs) -> ExitCode {
    let algorithm = match args.algorithm {
        Algorithm::Rsa => KeyAlgorithm::Rsa { bits: args.bits },
        Algorithm::Ed25519 => KeyAlgorithm::Ed25519,
    };
    let key = match NewKey::generate(algorithm) {
        Ok(key) => key,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = write_new(&args.out, key.pem.as_bytes()) {
        eprintln!("cannot write {}: {error}", args.out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {}; publish this record:", args.out.display());
    println!("{}", key.dns_record(&args.domain, &args.selector));
    ExitCode::SUCCESS
}
