//! gRPC over TLS (rustls): the server presents the configured certificate and a client that
//! pins the CA signs in over it. The HTTP listener (tiles, health, the member portal) speaks
//! HTTPS with the same certificate, and plain HTTP gets nothing.

use datatrust_server::{ServeOptions, TlsFiles};
use datatrust_tests::TestTrust;

#[tokio::test]
async fn a_client_signs_in_over_tls_and_plaintext_is_refused() {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let certificate = directory.path().join("cert.pem");
    let private_key = directory.path().join("key.pem");
    std::fs::write(&certificate, certified.cert.pem()).unwrap();
    std::fs::write(&private_key, certified.signing_key.serialize_pem()).unwrap();

    let trust = TestTrust::start_tls(ServeOptions {
        tls: Some(TlsFiles {
            certificate: certificate.clone(),
            private_key,
        }),
        ..ServeOptions::default()
    })
    .await;
    let https_url = trust.grpc_url.replace("http://", "https://");
    let channel = datatrust_cli::client::connect(&https_url, Some(&certificate))
        .await
        .unwrap();
    let session = datatrust_cli::client::sign_in(&channel, &trust.trustee)
        .await
        .unwrap();
    assert_eq!(session.principal.display_name, "Initial trustee");

    // Without the CA the certificate is not trusted; over plaintext the call fails.
    let untrusted = match datatrust_cli::client::connect(&https_url, None).await {
        Ok(channel) => datatrust_cli::client::trust_info(&channel).await.is_err(),
        Err(_) => true,
    };
    assert!(
        untrusted,
        "a self-signed certificate must not be trusted without --ca-cert"
    );
    let plaintext = match datatrust_cli::client::connect(&trust.grpc_url, None).await {
        Ok(channel) => datatrust_cli::client::trust_info(&channel).await.is_err(),
        Err(_) => true,
    };
    assert!(plaintext, "plaintext must not reach a TLS listener");
    // And the CLI says why: the server speaks TLS.
    let key_file = directory.path().join("trustee.key");
    std::fs::write(&key_file, trust.trustee.to_private_text()).unwrap();
    let plaintext_url = trust.grpc_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(datatrust_tests::datatrust_binary())
            .args(["whoami", "--server", &plaintext_url, "--key"])
            .arg(&key_file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("speaks TLS: use https://"), "{stderr}");

    // HTTPS on the HTTP listener, trusted through the same pinned certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            certified.cert.der().to_vec(),
        ))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(trust.http_addr)
        .await
        .unwrap();
    let server_name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(server_name, tcp).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    tls.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("Your data trust"),
        "the portal over HTTPS"
    );

    let mut plain = tokio::net::TcpStream::connect(trust.http_addr)
        .await
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("serving"),
        "plain HTTP gets nothing from an HTTPS listener"
    );
}
