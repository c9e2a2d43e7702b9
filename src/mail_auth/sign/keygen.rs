//! New DKIM keys for `sluice dkim keygen`: the PEM to keep and the TXT record to publish.

use ::mail_auth::dkim::generate::DkimKeyPair;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::DkimKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa { bits: usize },
    Ed25519,
}

/// A generated key: PEM text and the TXT record's value.
pub struct NewKey {
    pub pem: String,
    pub kind: &'static str,
    pub public_key: Vec<u8>,
}

impl NewKey {
    pub fn generate(algorithm: KeyAlgorithm) -> Result<NewKey, String> {
        let (label, der) = match algorithm {
            KeyAlgorithm::Rsa { bits } if !(2048..=4096).contains(&bits) => {
                return Err(format!("{bits} bits: RSA keys for DKIM are 2048 to 4096 bits here"));
            }
            // PKCS#1 DER from the `rsa` crate (ring cannot generate RSA keys).
            KeyAlgorithm::Rsa { bits } => ("RSA PRIVATE KEY", DkimKeyPair::generate_rsa(bits)),
            KeyAlgorithm::Ed25519 => ("PRIVATE KEY", DkimKeyPair::generate_ed25519()),
        };
        let der = der.map_err(|e| format!("cannot generate a key: {e}"))?.private_key().to_vec();
        let pem = pem(label, &der);
        // Loaded back as the server will load it: what is printed is what signs.
        let key = DkimKey::from_pem(pem.as_bytes())?;
        Ok(NewKey { kind: key.kind(), public_key: key.public_key(), pem })
    }

    /// `SELECTOR._domainkey.DOMAIN IN TXT "v=DKIM1; k=rsa; p=..."`, the value split into
    /// strings of at most 255 characters as a TXT record needs.
    pub fn dns_record(&self, domain: &str, selector: &str) -> String {
        let value = self.txt_value();
        let strings: Vec<String> =
            value.as_bytes().chunks(255).map(|c| format!("\"{}\"", String::from_utf8_lossy(c))).collect();
        format!("{selector}._domainkey.{domain} IN TXT {}", strings.join(" "))
    }

    pub fn txt_value(&self) -> String {
        format!("v=DKIM1; k={}; p={}", self.kind, STANDARD.encode(&self.public_key))
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_and_print_their_record() {
        let ed = NewKey::generate(KeyAlgorithm::Ed25519).unwrap();
        assert!(ed.pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{}", ed.pem);
        assert_eq!(ed.public_key.len(), 32);
        let record = ed.dns_record("example.com", "s1");
        assert!(record.starts_with("s1._domainkey.example.com IN TXT \"v=DKIM1; k=ed25519; p="), "{record}");
        let rsa = NewKey::generate(KeyAlgorithm::Rsa { bits: 2048 }).unwrap();
        assert!(rsa.pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        assert_eq!(rsa.kind, "rsa");
        assert!(NewKey::generate(KeyAlgorithm::Rsa { bits: 1024 }).is_err());
    }

    #[test]
    fn long_records_are_split_into_strings() {
        let key = NewKey { pem: String::new(), kind: "rsa", public_key: vec![7; 300] };
        let record = key.dns_record("d.test", "s");
        assert_eq!(record.matches('"').count(), 4, "{record}");
    }
}
