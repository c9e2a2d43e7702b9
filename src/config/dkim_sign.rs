//! `[[dkim_sign]]`: one table per domain whose outgoing mail Sluice signs with DKIM.
//! The key file is read (and checked) by `mail_auth::sign`, at start, reload and
//! `check-config`, so an error points at the `key` line.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimSignConfig {
    /// The `d=` domain; mail whose `From:` is in it (exactly) is signed.
    pub domain: Spanned<String>,
    /// The `s=` selector: the key is published at `SELECTOR._domainkey.DOMAIN`.
    pub selector: Spanned<String>,
    /// PEM private key, RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8); relative to the
    /// config file.
    pub key: Spanned<PathBuf>,
    /// The header fields signed (`h=`), each as often as it occurs.
    #[serde(default = "default_headers")]
    pub headers: Vec<String>,
}

/// The fields a recipient's DMARC and display depend on.
pub const DEFAULT_SIGNED_HEADERS: [&str; 7] =
    ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"];

fn default_headers() -> Vec<String> {
    DEFAULT_SIGNED_HEADERS.iter().map(|h| h.to_string()).collect()
}
