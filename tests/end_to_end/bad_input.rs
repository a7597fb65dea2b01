//! Bad input gets a clear error naming the field; replays and forgeries are refused.

use datatrust_core::auth::{InvitationCode, login_message, redeem_message};
use datatrust_core::{Origin, Role};
use datatrust_proto::v1;
use datatrust_proto::v1::auth_service_client::AuthServiceClient;
use datatrust_server::ServeOptions;
use datatrust_tests::{TestTrust, new_signer};
use tonic::{Code, Status};

fn assert_invalid(result: Result<impl std::fmt::Debug, Status>, field: &str) {
    let status = result.expect_err("expected INVALID_ARGUMENT");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with(&format!("{field}:")),
        "message should name {field}: {:?}",
        status.message()
    );
}

#[tokio::test]
async fn malformed_fields_are_refused_naming_the_field() {
    let trust = TestTrust::start().await;
    let trustee = trust.trustee_session().await;
    let mut principals = trustee.principals();
    let good_key = new_signer().public_key().as_bytes().to_vec();
    let register =
        |public_key: Vec<u8>, role: v1::Role, display_name: &str| v1::RegisterPrincipalRequest {
            public_key,
            role: role.into(),
            display_name: display_name.into(),
            ..Default::default()
        };
    assert_invalid(
        principals
            .register_principal(register(vec![1, 2, 3], v1::Role::Member, "A"))
            .await,
        "public_key",
    );
    assert_invalid(
        principals
            .register_principal(register(vec![], v1::Role::Member, "A"))
            .await,
        "public_key",
    );
    assert_invalid(
        principals
            .register_principal(register(good_key.clone(), v1::Role::Unspecified, "A"))
            .await,
        "role",
    );
    let mut unknown_role = register(good_key.clone(), v1::Role::Member, "A");
    unknown_role.role = 99;
    assert_invalid(principals.register_principal(unknown_role).await, "role");
    assert_invalid(
        principals
            .register_principal(register(good_key.clone(), v1::Role::Member, ""))
            .await,
        "display_name",
    );
    assert_invalid(
        principals
            .register_principal(register(good_key.clone(), v1::Role::Member, "tab\there"))
            .await,
        "display_name",
    );
    assert_invalid(
        principals
            .create_invitation(v1::CreateInvitationRequest {
                display_name: "Bo".into(),
                valid_for_seconds: -5,
            })
            .await,
        "valid_for_seconds",
    );
    assert_invalid(
        principals
            .list_principals(v1::ListPrincipalsRequest {
                role: 0,
                page_size: 5000,
                page_token: String::new(),
            })
            .await,
        "page_size",
    );
    assert_invalid(
        principals
            .list_principals(v1::ListPrincipalsRequest {
                role: 0,
                page_size: 10,
                page_token: "not a token".into(),
            })
            .await,
        "page_token",
    );

    principals
        .register_principal(register(good_key.clone(), v1::Role::Member, "A"))
        .await
        .unwrap();
    let again = principals
        .register_principal(register(good_key, v1::Role::Licensee, "B"))
        .await;
    assert_eq!(again.unwrap_err().code(), Code::AlreadyExists);

    let self_deactivation = principals
        .deactivate_principal(v1::DeactivatePrincipalRequest {
            public_key: trust.trustee.public_key().as_bytes().to_vec(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        self_deactivation.unwrap_err().code(),
        Code::FailedPrecondition
    );

    let (_, member) = trust.new_principal(Role::Member, "Ada").await;
    let (licensee_key, _) = trust.new_principal(Role::Licensee, "Acme").await;
    let not_a_collector = member
        .members()
        .authorize_collector(v1::AuthorizeCollectorRequest {
            collector_public_key: licensee_key.public_key().as_bytes().to_vec(),
        })
        .await;
    let status = not_a_collector.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().starts_with("collector_public_key:"));
}

#[tokio::test]
async fn logins_cannot_be_replayed_forged_or_moved_between_trusts() {
    let trust = TestTrust::start().await;
    let mut auth = AuthServiceClient::new(trust.channel.clone());
    let origin = Origin::parse("trust.test").unwrap();
    let signer = &trust.trustee;
    let public_key = signer.public_key();
    let challenge = |auth: &mut AuthServiceClient<_>| {
        let mut auth = auth.clone();
        async move {
            auth.create_challenge(v1::CreateChallengeRequest {
                public_key: public_key.as_bytes().to_vec(),
            })
            .await
            .unwrap()
            .into_inner()
            .challenge
        }
    };
    let login = |challenge: Vec<u8>, signature: Vec<u8>| v1::LoginRequest {
        public_key: public_key.as_bytes().to_vec(),
        challenge,
        signature,
    };

    let first = challenge(&mut auth).await;
    let signature = signer
        .sign(&login_message(&origin, &public_key, &first))
        .to_vec();
    auth.login(login(first.clone(), signature.clone()))
        .await
        .unwrap();
    let replay = auth.login(login(first, signature)).await.unwrap_err();
    assert_eq!(replay.code(), Code::Unauthenticated);

    let second = challenge(&mut auth).await;
    let other_trust = Origin::parse("other.test").unwrap();
    let wrong_origin = signer
        .sign(&login_message(&other_trust, &public_key, &second))
        .to_vec();
    assert_eq!(
        auth.login(login(second, wrong_origin))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    let third = challenge(&mut auth).await;
    let forged = new_signer()
        .sign(&login_message(&origin, &public_key, &third))
        .to_vec();
    assert_eq!(
        auth.login(login(third, forged)).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // A key nobody enrolled can prove itself and is still refused.
    let stranger = new_signer();
    let stranger_challenge = auth
        .create_challenge(v1::CreateChallengeRequest {
            public_key: stranger.public_key().as_bytes().to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .challenge;
    let refused = auth
        .login(v1::LoginRequest {
            public_key: stranger.public_key().as_bytes().to_vec(),
            signature: stranger
                .sign(&login_message(
                    &origin,
                    &stranger.public_key(),
                    &stranger_challenge,
                ))
                .to_vec(),
            challenge: stranger_challenge,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // Garbage tokens.
    for header in ["Bearer dt1_nope", "Basic abc", "Bearer "] {
        let mut request = tonic::Request::new(v1::WhoAmIRequest {});
        request
            .metadata_mut()
            .insert("authorization", header.parse().unwrap());
        assert_eq!(
            auth.who_am_i(request).await.unwrap_err().code(),
            Code::Unauthenticated,
            "{header}"
        );
    }
}

#[tokio::test]
async fn invitations_need_the_redeemers_own_signature_and_a_valid_code() {
    let trust = TestTrust::start().await;
    let invitation = trust
        .trustee_session()
        .await
        .principals()
        .create_invitation(v1::CreateInvitationRequest {
            display_name: "Bea".into(),
            valid_for_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let code = InvitationCode::parse(&invitation.invitation_code).unwrap();
    let origin = Origin::parse("trust.test").unwrap();
    let member = new_signer();
    let someone_else = new_signer();
    let mut auth = AuthServiceClient::new(trust.channel.clone());
    let not_their_signature = auth
        .redeem_invitation(v1::RedeemInvitationRequest {
            invitation_code: code.as_str().into(),
            public_key: member.public_key().as_bytes().to_vec(),
            signature: someone_else
                .sign(&redeem_message(&origin, &member.public_key(), &code))
                .to_vec(),
        })
        .await;
    assert_invalid(not_their_signature, "signature");
    assert_invalid(
        auth.redeem_invitation(v1::RedeemInvitationRequest {
            invitation_code: "123".into(),
            public_key: member.public_key().as_bytes().to_vec(),
            signature: vec![0; 64],
        })
        .await,
        "invitation_code",
    );
    // The refused attempts did not use the invitation up.
    datatrust_cli::client::redeem_invitation(&trust.channel, &member, &code)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused() {
    let trust = TestTrust::start_with(ServeOptions {
        max_message_bytes: 64 * 1024,
        ..ServeOptions::default()
    })
    .await;
    let trustee = trust.trustee_session().await;
    let oversized = trustee
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: new_signer().public_key().as_bytes().to_vec(),
            role: v1::Role::Member.into(),
            display_name: "x".repeat(1024 * 1024),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(oversized.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{oversized:?}"
    );
    // The connection and the server are fine afterwards.
    trustee.auth().who_am_i(v1::WhoAmIRequest {}).await.unwrap();
}

#[tokio::test]
async fn a_clients_deadline_is_honoured_by_the_server() {
    let trust = TestTrust::start().await;
    let trustee = trust.trustee_session().await;
    // A registration waits for a durable log append (milliseconds): far past a 1 µs deadline.
    let mut request = tonic::Request::new(v1::RegisterPrincipalRequest {
        public_key: new_signer().public_key().as_bytes().to_vec(),
        role: v1::Role::Member.into(),
        display_name: "late".into(),
        ..Default::default()
    });
    request.set_timeout(std::time::Duration::from_micros(1));
    let expired = trustee
        .principals()
        .register_principal(request)
        .await
        .unwrap_err();
    assert!(
        matches!(expired.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{expired:?}"
    );
    // Without a deadline the same kind of call succeeds.
    trustee.auth().who_am_i(v1::WhoAmIRequest {}).await.unwrap();
}

/// Sends raw bytes as the request message of `path`: what a broken or hostile client sends.
async fn raw_call(channel: tonic::transport::Channel, path: &'static str, body: Vec<u8>) -> Status {
    #[derive(Debug, Clone, Default)]
    struct RawCodec;
    #[derive(Debug)]
    struct RawEncoder;
    #[derive(Debug)]
    struct RawDecoder;
    impl tonic::codec::Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = RawEncoder;
        type Decoder = RawDecoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> RawDecoder {
            RawDecoder
        }
    }
    impl tonic::codec::Encoder for RawEncoder {
        type Item = Vec<u8>;
        type Error = Status;
        fn encode(
            &mut self,
            item: Vec<u8>,
            buffer: &mut tonic::codec::EncodeBuf<'_>,
        ) -> Result<(), Status> {
            bytes::BufMut::put_slice(buffer, &item);
            Ok(())
        }
    }
    impl tonic::codec::Decoder for RawDecoder {
        type Item = Vec<u8>;
        type Error = Status;
        fn decode(
            &mut self,
            buffer: &mut tonic::codec::DecodeBuf<'_>,
        ) -> Result<Option<Vec<u8>>, Status> {
            let mut bytes = vec![0; bytes::Buf::remaining(buffer)];
            bytes::Buf::copy_to_slice(buffer, &mut bytes);
            Ok(Some(bytes))
        }
    }
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(body),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn undecodable_protobuf_is_the_callers_error_not_the_trusts() {
    let trust = TestTrust::start().await;
    // A field tag with wire type 7, which protobuf does not have; then a truncated length.
    for body in [vec![0x0f, 0x01], vec![0x0a, 0xff, 0x01]] {
        let status = raw_call(
            trust.channel.clone(),
            "/datatrust.v1.AuthService/CreateChallenge",
            body,
        )
        .await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("not valid protobuf"),
            "{status:?}"
        );
    }
}

#[tokio::test]
async fn names_that_hide_or_reverse_text_and_small_order_keys_are_refused() {
    let trust = TestTrust::start().await;
    let trustee = trust.trustee_session().await;
    let mut principals = trustee.principals();
    for name in [
        "Ada\u{202E}ecalevoL",
        "Ada \u{2067}x\u{2069}",
        "\u{FEFF}",
        "\u{200B}\u{200B}",
        "\u{200D}",
    ] {
        assert_invalid(
            principals
                .register_principal(v1::RegisterPrincipalRequest {
                    public_key: new_signer().public_key().as_bytes().to_vec(),
                    role: v1::Role::Member.into(),
                    display_name: name.into(),
                    ..Default::default()
                })
                .await,
            "display_name",
        );
    }
    // The all-zero encoding, the identity point, and another point of small order.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut order_two = [0u8; 32];
    order_two[0] = 0xec;
    order_two[1..31].fill(0xff);
    order_two[31] = 0x7f;
    for key in [[0u8; 32], identity, order_two] {
        assert_invalid(
            principals
                .register_principal(v1::RegisterPrincipalRequest {
                    public_key: key.to_vec(),
                    role: v1::Role::Member.into(),
                    display_name: "Small".into(),
                    ..Default::default()
                })
                .await,
            "public_key",
        );
    }
    // Terms that reverse what members read are refused before anyone votes on them.
    let tricked = datatrust_tests::EXAMPLE_TERMS.replacen("title = \"", "title = \"\u{202E}", 1);
    assert_invalid(
        trustee
            .terms()
            .propose_terms(v1::ProposeTermsRequest { document: tricked })
            .await,
        "terms",
    );
}

#[tokio::test]
async fn numbers_that_wrap_and_windows_without_end_are_refused() {
    let trust = TestTrust::start().await;
    let (member_key, member) = trust.new_principal(Role::Member, "Ada").await;
    let (collector_key, collector) = trust.new_principal(Role::Collector, "laptop").await;
    datatrust_tests::authorize(&member, &collector_key).await;
    for (x, y) in [(i32::MIN, 0), (0, i32::MIN), (i32::MAX, 0)] {
        let mut answers = collector
            .ingest()
            .upload(tokio_stream::iter(vec![v1::UploadRequest {
                member_public_key: member_key.public_key().as_bytes().to_vec(),
                device_id: "laptop".into(),
                sequence: 1,
                events: vec![v1::Event {
                    time_ms: datatrust_server::now().0 * 1000,
                    application: "editor".into(),
                    kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x, y })),
                }],
            }]))
            .await
            .unwrap()
            .into_inner();
        assert_invalid(answers.message().await, "events[0].coordinates");
    }
}

#[tokio::test]
async fn license_requests_with_repeats_endless_windows_or_huge_values_are_refused_briefly() {
    let ratified = datatrust_tests::RatifiedTrust::start(&[(new_signer(), "Ada")]).await;
    let (_, acme) = ratified.trust.new_principal(Role::Licensee, "Acme").await;
    let now = datatrust_server::now().0;
    let request = || v1::RequestLicenseRequest {
        purpose: "computer-use-agent-training".into(),
        categories: vec!["pointer".into()],
        data_from: now - 30 * 86_400,
        data_to: now,
        model_family: "acme-agent".into(),
        max_training_runs: 2,
        duration_days: 90,
    };
    let refusal = |result: Result<tonic::Response<v1::LicenseRequestResponse>, Status>| {
        let status = result.expect_err("refused");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        status.message().to_owned()
    };
    let mut twice = request();
    twice.categories = vec!["pointer".into(), "pointer".into()];
    let message = refusal(acme.licenses().request_license(twice).await);
    assert!(
        message.contains("categories[1]") && message.contains("twice"),
        "{message}"
    );
    let mut endless = request();
    endless.data_to = i64::MAX;
    let message = refusal(acme.licenses().request_license(endless).await);
    assert!(message.contains("data_to"), "{message}");
    // A bad run count or model family is the request's own fault, named by its field, not
    // passed off as a clause of the terms.
    let mut no_runs = request();
    no_runs.max_training_runs = 0;
    assert_invalid(
        acme.licenses().request_license(no_runs).await,
        "max_training_runs",
    );
    let mut bad_family = request();
    bad_family.model_family = "Acme Agent!".into();
    assert_invalid(
        acme.licenses().request_license(bad_family).await,
        "model_family",
    );
    // A megabyte of purpose: the refusal quotes a short prefix, not the value.
    let mut huge = request();
    huge.purpose = "x".repeat(1 << 20);
    let message = refusal(acme.licenses().request_license(huge).await);
    assert!(
        message.contains("purpose") && message.len() < 1024,
        "{} bytes",
        message.len()
    );
    assert!(message.contains("(1048576 bytes)"), "{message}");
}
