//! TLS for outbound connections: one connector that checks certificates (for
//! `tls = "verify"`) and one that only encrypts (for "opportunistic" and "required",
//! like Postfix's "may" and "encrypt" levels: most MX certificates do not verify).

use std::sync::Arc;

use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{ConfigError, ConfigOrigin, DeliveryConfig};

#[derive(Clone)]
pub struct TlsConnectors {
    pub verifying: TlsConnector,
    pub encrypting: TlsConnector,
}

impl std::fmt::Debug for TlsConnectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnectors")
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds both connectors; the CA file (if any) is loaded here, so `check-config`
/// reports a bad one at its line.
pub fn build(config: &DeliveryConfig, origin: &ConfigOrigin) -> Result<TlsConnectors, ConfigError> {
    let mut roots = RootCertStore::empty();
    match &config.tls_ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path.get_ref())
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| origin.error_at(path, format!("cannot read CA file {}: {e}", path.get_ref().display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(origin.error_at(path, format!("no CA certificate in {}", path.get_ref().display())));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let setup_error = |e: rustls::Error| ConfigError::without_position(&origin.file, format!("TLS setup failed: {e}"));
    let verifying = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(setup_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let encrypting = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(setup_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
        .with_no_client_auth();
    Ok(TlsConnectors {
        verifying: TlsConnector::from(Arc::new(verifying)),
        encrypting: TlsConnector::from(Arc::new(encrypting)),
    })
}

/// The name a certificate is checked against (and sent as SNI): the MX or next-hop
/// host name, or its IP address.
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).ok()
}

/// Accepts any certificate, but still checks that the server holds its key (the
/// handshake signature), so the session is encrypted to whoever answered.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
