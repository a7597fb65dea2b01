//! The portal's HTTP side without a browser: the page and its scripts come from the trust
//! with a policy that allows nothing from elsewhere; the JSON transport answers like the
//! gRPC services, refuses bad bodies naming the reason, requires sign-in where gRPC does,
//! and offers only the methods members and the public need.

use datatrust_tests::{TestTrust, http_request};

async fn post(
    trust: &TestTrust,
    method: &str,
    body: &[u8],
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer.as_str()));
    }
    let (status, _, body) = http_request(
        trust.http_addr,
        "POST",
        &format!("/api/{method}"),
        &headers,
        body,
    )
    .await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn the_page_and_the_json_transport() {
    let trust = TestTrust::start().await;
    let (status, headers, body) = http_request(trust.http_addr, "GET", "/", &[], b"").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("Your data trust"));
    let policy = headers
        .iter()
        .find(|(name, _)| name == "content-security-policy")
        .map(|(_, value)| value.clone())
        .expect("a content security policy");
    assert!(
        policy.contains("default-src 'none'") && policy.contains("script-src 'self'"),
        "{policy}"
    );
    for asset in [
        "/portal/app.js",
        "/portal/verify.js",
        "/portal/style.css",
        "/transparency",
    ] {
        let (status, _, body) = http_request(trust.http_addr, "GET", asset, &[], b"").await;
        assert_eq!(status, 200, "{asset}");
        assert!(
            !String::from_utf8_lossy(&body).contains("https://"),
            "{asset} loads nothing from elsewhere"
        );
    }

    let (status, info) = post(&trust, "TrustService/GetTrustInfo", b"{}", None).await;
    assert_eq!(status, 200);
    assert!(
        info["log_vkey"]
            .as_str()
            .unwrap()
            .starts_with("trust.test+")
    );
    let (status, report) = post(&trust, "TrustService/GetTransparencyReport", b"", None).await;
    assert_eq!(status, 200);
    assert!(report["log_size"].as_u64().unwrap() >= 2);

    let (status, refused) = post(&trust, "MemberDataService/GetMyDataSummary", b"{}", None).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("Unauthenticated"))
    );
    let (status, refused) = post(
        &trust,
        "MemberDataService/GetMyDataSummary",
        b"{}",
        Some("not-a-token"),
    )
    .await;
    assert_eq!(status, 401, "{refused}");
    let (status, refused) = post(&trust, "PrincipalService/RegisterPrincipal", b"{}", None).await;
    assert_eq!(status, 404);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not offered over HTTP")
    );
    let (status, refused) = post(&trust, "AuthService/CreateChallenge", b"{not json", None).await;
    assert_eq!(status, 400);
    assert!(
        refused["message"].as_str().unwrap().starts_with("body:"),
        "{refused}"
    );
    let (status, refused) = post(
        &trust,
        "AuthService/CreateChallenge",
        br#"{"public_key": [1, 2, 3]}"#,
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .starts_with("public_key:"),
        "{refused}"
    );
    let (status, _) = post(
        &trust,
        "AuthService/CreateChallenge",
        &vec![b' '; 70 * 1024],
        None,
    )
    .await;
    assert_eq!(status, 413);

    // Signing in over JSON works like gRPC: challenge, signed login message, bearer token.
    let key = &trust.trustee;
    let public_key: Vec<u8> = key.public_key().as_bytes().to_vec();
    let (status, challenge) = post(
        &trust,
        "AuthService/CreateChallenge",
        serde_json::json!({ "public_key": public_key })
            .to_string()
            .as_bytes(),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let challenge: Vec<u8> = serde_json::from_value(challenge["challenge"].clone()).unwrap();
    let message = datatrust_core::auth::login_message(
        &datatrust_core::Origin::parse("trust.test").unwrap(),
        &key.public_key(),
        &challenge,
    );
    let (status, login) = post(
        &trust,
        "AuthService/Login",
        serde_json::json!({ "public_key": public_key, "challenge": challenge, "signature": key.sign(&message).to_vec() })
            .to_string()
            .as_bytes(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap();
    let (status, me) = post(&trust, "AuthService/WhoAmI", b"{}", Some(token)).await;
    assert_eq!(status, 200);
    assert_eq!(me["principal"]["role"], 1, "the trustee");
    // A trustee is no member: the core refuses as over gRPC.
    let (status, refused) = post(&trust, "LedgerService/GetMyStatement", b"{}", Some(token)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("PermissionDenied"))
    );
}
