//! HTTPS for the HTTP listener (the log's tiles, health, the member portal) with the same
//! certificate as gRPC: browsers give the portal WebCrypto only in a secure context, and
//! members' bearer tokens must not cross a network in the clear.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::TlsFiles;

pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&files.certificate)
            .and_then(|iter| iter.collect())
            .map_err(|error| format!("{}: {error}", files.certificate.display()))?;
    let private_key = PrivateKeyDer::from_pem_file(&files.private_key)
        .map_err(|error| format!("{}: {error}", files.private_key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| error.to_string())?
    .with_no_client_auth()
    .with_single_cert(certificates, private_key)
    .map_err(|error| error.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
