//! HTTPS for the HTTP listener (the log's tiles, health, the member portal) with the same
//! certificate as gRPC: browsers give the portal WebCrypto only in a secure context, and
//! members' bearer tokens must not cross a network in the clear.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::TlsFiles;

pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let certificates = certificates(files)?;
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

/// The certificate chain in `files`, refused when its first (the server's own) certificate is
/// a CA's: clients (rustls, browsers) refuse a CA certificate as a server's own
/// (`CaUsedAsEndEntity`), so the trust would start and nobody could connect.
pub fn certificates(files: &TlsFiles) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&files.certificate)
            .and_then(|iter| iter.collect())
            .map_err(|error| format!("{}: {error}", files.certificate.display()))?;
    let Some(leaf) = certificates.first() else {
        return Err(format!(
            "{}: no certificate in the file (expected PEM `-----BEGIN CERTIFICATE-----`)",
            files.certificate.display()
        ));
    };
    if is_ca_certificate(leaf) {
        return Err(format!(
            "{}: this is a CA certificate (basicConstraints CA:TRUE), and clients refuse a CA \
             certificate as a server's own. Issue a server certificate from this CA (CA:FALSE, \
             the server's name in subjectAltName), give that to --tls-cert with its key, and \
             give the CA's certificate to clients (--ca-cert)",
            files.certificate.display()
        ));
    }
    Ok(certificates)
}

/// Whether a DER certificate's basicConstraints extension says `cA: TRUE` (RFC 5280
/// 4.2.1.9). Reads only the TLVs on the way: Certificate, TBSCertificate, its `[3]`
/// extensions, each Extension's OID and its OCTET STRING value.
fn is_ca_certificate(der: &[u8]) -> bool {
    const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13]; // 2.5.29.19
    let inside = |bytes: &[u8], tag: u8| -> Option<Vec<u8>> {
        let (found, contents, _) = der_element(bytes)?;
        (found == tag).then(|| contents.to_vec())
    };
    let Some(certificate) = inside(der, 0x30) else {
        return false;
    };
    let Some(tbs) = inside(&certificate, 0x30) else {
        return false;
    };
    let mut rest: &[u8] = &tbs;
    while let Some((tag, contents, after)) = der_element(rest) {
        if tag == 0xa3 {
            let Some(extensions) = inside(contents, 0x30) else {
                return false;
            };
            let mut list: &[u8] = &extensions;
            while let Some((_, extension, next)) = der_element(list) {
                list = next;
                let Some((0x06, oid, mut fields)) = der_element(extension) else {
                    continue;
                };
                if oid != BASIC_CONSTRAINTS {
                    continue;
                }
                if let Some((0x01, _, after_critical)) = der_element(fields) {
                    fields = after_critical;
                }
                let Some((0x04, value, _)) = der_element(fields) else {
                    return false;
                };
                let Some(constraints) = inside(value, 0x30) else {
                    return false;
                };
                return matches!(der_element(&constraints), Some((0x01, [0xff], _)));
            }
            return false;
        }
        rest = after;
    }
    false
}

/// One DER element at the start of `bytes`: its tag, its contents, and what follows it.
fn der_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}
