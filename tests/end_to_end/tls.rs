//! gRPC over TLS (rustls): the server presents the configured certificate and a client that
//! pins the CA signs in over it.

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
}
