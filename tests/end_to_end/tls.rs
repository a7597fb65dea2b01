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

/// A CA's own certificate (what `openssl req -x509` makes by default) given as the server's:
/// the trust refuses to start and says what to do instead; and a client that meets such a
/// server elsewhere (say, behind a proxy) is told the same.
#[tokio::test]
async fn a_ca_certificate_used_as_the_servers_own_is_named() {
    let mut parameters = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    parameters.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let ca = parameters.self_signed(&key_pair).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let certificate = directory.path().join("ca.pem");
    let private_key = directory.path().join("ca-key.pem");
    std::fs::write(&certificate, ca.pem()).unwrap();
    std::fs::write(&private_key, key_pair.serialize_pem()).unwrap();

    let refused = std::process::Command::new(datatrust_tests::datatrust_binary())
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(directory.path().join("data"))
        .arg("--tls-cert")
        .arg(&certificate)
        .arg("--tls-key")
        .arg(&private_key)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("this is a CA certificate (basicConstraints CA:TRUE)")
            && stderr.contains("Issue a server certificate from this CA"),
        "{stderr}"
    );

    // A server elsewhere that presents it anyway.
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![ca.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key_pair.serialize_der()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = acceptor.accept(tcp).await;
        }
    });
    let key_file = directory.path().join("member.key");
    std::fs::write(&key_file, datatrust_tests::new_signer().to_private_text()).unwrap();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(datatrust_tests::datatrust_binary())
            .args(["whoami", "--server", &format!("https://{address}")])
            .arg("--ca-cert")
            .arg(&certificate)
            .arg("--key")
            .arg(&key_file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("presents a CA certificate as its own"),
        "{stderr}"
    );
}
