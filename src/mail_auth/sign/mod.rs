//! DKIM signing of outgoing mail (RFC 6376, RFC 8463): one signer per `[[dkim_sign]]`
//! domain, chosen by the message's `From:` domain. Relaxed/relaxed canonicalization,
//! which survives the whitespace changes relays make.

mod key;
pub mod keygen;

use std::collections::HashMap;

use ::mail_auth::common::headers::HeaderWriter;
use ::mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use mail_parser::MessageParser;

pub use key::DkimKey;

use crate::config::{Config, ConfigError, DkimSignConfig};

/// The signers of one configuration, by lower-cased domain.
#[derive(Default)]
pub struct Signers {
    by_domain: HashMap<String, DkimSigner<DkimKey, Done>>,
}

/// Letters, digits, `-`, `_` and dots, as DNS labels for `_domainkey` take them.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn signer(config: &Config, entry: &DkimSignConfig) -> Result<DkimSigner<DkimKey, Done>, ConfigError> {
    let origin = &config.origin;
    let domain = entry.domain.get_ref();
    if !valid_name(domain) {
        return Err(origin.error_at(&entry.domain, format!("dkim_sign: {domain:?} is not a domain name")));
    }
    let selector = entry.selector.get_ref();
    if !valid_name(selector) {
        return Err(origin.error_at(&entry.selector, format!("dkim_sign: {selector:?} is not a selector")));
    }
    if !entry.headers.iter().any(|h| h.eq_ignore_ascii_case("from")) {
        return Err(origin.error_at(&entry.domain, "dkim_sign: headers must include From (RFC 6376 §5.4)"));
    }
    let path = entry.key.get_ref();
    let pem = std::fs::read(path)
        .map_err(|e| origin.error_at(&entry.key, format!("cannot read DKIM key {}: {e}", path.display())))?;
    let key = DkimKey::from_pem(&pem)
        .map_err(|e| origin.error_at(&entry.key, format!("DKIM key {}: {e}", path.display())))?;
    Ok(DkimSigner::from_key(key)
        .domain(domain.to_ascii_lowercase())
        .selector(selector.clone())
        .headers(entry.headers.iter().cloned())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed))
}

/// Why a message that should have been signed was not.
#[derive(Debug, thiserror::Error)]
#[error("DKIM signing failed: {0}")]
pub struct SignError(String);

impl Signers {
    /// Reads every `[[dkim_sign]]` key; an error points at the offending line.
    pub fn load(config: &Config) -> Result<Signers, ConfigError> {
        let mut by_domain = HashMap::new();
        for entry in &config.dkim_sign {
            let signer = signer(config, entry)?;
            let domain = entry.domain.get_ref().to_ascii_lowercase();
            if by_domain.insert(domain.clone(), signer).is_some() {
                return Err(config
                    .origin
                    .error_at(&entry.domain, format!("dkim_sign: domain {domain:?} has two tables; keep one")));
            }
        }
        Ok(Signers { by_domain })
    }

    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// The domain of the (first) `From:` address in `header`, when it has a key.
    pub fn domain_for(&self, header: &[u8]) -> Option<&str> {
        if self.is_empty() {
            return None;
        }
        let parsed = MessageParser::new().parse_headers(header)?;
        let address = parsed.from()?.first()?.address()?;
        let domain = address.rsplit_once('@')?.1.trim_end_matches('>').to_ascii_lowercase();
        self.by_domain.get_key_value(&domain).map(|(d, _)| d.as_str())
    }

    /// The `DKIM-Signature` field (with its CRLF) for the message in `parts`: every
    /// part but the last holds only complete header fields; the last holds the rest of
    /// the header section and the body.
    pub fn sign(&self, domain: &str, parts: &[&[u8]]) -> Result<String, SignError> {
        let signer = self.by_domain.get(domain).ok_or_else(|| SignError(format!("no key for {domain}")))?;
        let signature = signer.sign_chained(parts.iter().copied()).map_err(|e| SignError(e.to_string()))?;
        Ok(signature.to_header())
    }
}
