//! Loading the server certificate for STARTTLS and implicit TLS.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::config::{ConfigError, ConfigOrigin, TlsConfig};

/// Builds the acceptor, or an error pointing at the `cert`/`key` line of the config.
pub fn load_acceptor(tls: &TlsConfig, origin: &ConfigOrigin) -> Result<TlsAcceptor, ConfigError> {
    let cert_path = tls.cert.get_ref();
    let key_path = tls.key.get_ref();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| origin.error_at(&tls.cert, format!("cannot read certificate {}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(origin.error_at(&tls.cert, format!("no certificate found in {}", cert_path.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| origin.error_at(&tls.key, format!("cannot read private key {}: {e}", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| origin.error_at(&tls.cert, format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| origin.error_at(&tls.key, format!("certificate and key do not fit together: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
