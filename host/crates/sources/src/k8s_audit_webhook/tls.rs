//! The webhook's TLS: rustls with the `ring` provider, certificate and key
//! from PEM files, HTTP/1.1 only (ALPN).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::WebhookError;

/// Builds the acceptor from the PEM files.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, WebhookError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| WebhookError::ReadTlsCert {
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(WebhookError::NoTlsCert {
            path: cert.to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| WebhookError::ReadTlsKey {
        path: key.to_owned(),
        source,
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|source| WebhookError::Tls { source })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
