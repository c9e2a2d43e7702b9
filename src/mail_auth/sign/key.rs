//! DKIM private keys, signing with `ring`: constant-time RSA (the pure-Rust `rsa`
//! crate's private-key operation is not, RUSTSEC-2023-0071) and several times faster,
//! which matters at one signature per message.

use ::mail_auth::common::crypto::{Algorithm, Sha256, SigningKey};
use ::mail_auth::common::headers::Writable;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// A loaded signing key.
pub enum DkimKey {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// RSA keys below this many bits are refused: ring signs with 2048 bits and more (RFC
/// 8301 §3.2 allows 1024, but recommends 2048).
const MIN_RSA_BITS: usize = 2048;

impl DkimKey {
    /// Reads a PEM file: RSA as PKCS#1 or PKCS#8, Ed25519 as PKCS#8.
    pub fn from_pem(pem: &[u8]) -> Result<DkimKey, String> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no PEM private key ({e})"))?;
        let key = match &der {
            PrivateKeyDer::Pkcs1(der) => {
                RsaKeyPair::from_der(der.secret_pkcs1_der()).map(DkimKey::Rsa).map_err(rsa_error)?
            }
            PrivateKeyDer::Pkcs8(der) => {
                let bytes = der.secret_pkcs8_der();
                match RsaKeyPair::from_pkcs8(bytes) {
                    Ok(rsa) => DkimKey::Rsa(rsa),
                    Err(error) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes)
                        .map(DkimKey::Ed25519)
                        .map_err(|_| format!("neither an Ed25519 key nor {}", rsa_error(error)))?,
                }
            }
            _ => return Err("only RSA and Ed25519 keys sign DKIM (this is an EC key)".into()),
        };
        if let DkimKey::Rsa(rsa) = &key
            && rsa.public().modulus_len() * 8 < MIN_RSA_BITS
        {
            return Err(format!("an RSA key of {} bits is too weak for DKIM", rsa.public().modulus_len() * 8));
        }
        Ok(key)
    }

    /// The `k=` tag of the DNS record.
    pub fn kind(&self) -> &'static str {
        match self {
            DkimKey::Rsa(_) => "rsa",
            DkimKey::Ed25519(_) => "ed25519",
        }
    }

    /// The `p=` tag's bytes: an RSA SubjectPublicKeyInfo, or the raw Ed25519 key (RFC 8463).
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            DkimKey::Rsa(rsa) => rsa_spki(rsa.public().as_ref()),
            DkimKey::Ed25519(ed) => ed.public_key().as_ref().to_vec(),
        }
    }
}

impl SigningKey for DkimKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> ::mail_auth::Result<Vec<u8>> {
        let failed =
            |what: &str| ::mail_auth::Error::Crypto(::mail_auth::common::crypto::CryptoError::Library(what.into()));
        match self {
            DkimKey::Rsa(rsa) => {
                // The header canonical form is small (a few hundred bytes): ring hashes it.
                let mut data = Vec::with_capacity(1024);
                input.write(&mut data);
                let mut signature = vec![0; rsa.public().modulus_len()];
                rsa.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &data, &mut signature)
                    .map_err(|_| failed("RSA signing failed"))?;
                Ok(signature)
            }
            // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the data.
            DkimKey::Ed25519(ed) => Ok(ed.sign(self.hash(input).as_ref()).as_ref().to_vec()),
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            DkimKey::Rsa(_) => Algorithm::RsaSha256,
            DkimKey::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }
}

fn rsa_error(error: ring::error::KeyRejected) -> String {
    match error.to_string().as_str() {
        "TooSmall" => format!("an RSA key needs at least {MIN_RSA_BITS} bits"),
        why => format!("a usable RSA key ({why})"),
    }
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo, the form verifiers expect in `p=`.
fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    const ALGORITHM: [u8; 15] =
        [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    let mut bit_string = vec![0x00];
    bit_string.extend_from_slice(rsa_public_key);
    let mut inner = ALGORITHM.to_vec();
    der_push(&mut inner, 0x03, &bit_string);
    let mut spki = Vec::with_capacity(inner.len() + 4);
    der_push(&mut spki, 0x30, &inner);
    spki
}

fn der_push(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
}
