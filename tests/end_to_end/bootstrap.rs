//! Bootstrap and the principal flows a user walks through, surviving a restart.

use datatrust_core::Role;
use datatrust_core::auth::InvitationCode;
use datatrust_proto::{convert, v1};
use datatrust_tests::{TestTrust, new_signer};
use tonic::Code;

#[tokio::test]
async fn bootstrap_trustee_enrols_registers_and_everything_survives_restart() {
    let trust = TestTrust::start().await;
    let trustee = trust.trustee_session().await;
    assert_eq!(trustee.principal.role, i32::from(v1::Role::Trustee));
    assert_eq!(trustee.principal.display_name, "Initial trustee");

    let (member_key, member) = trust.new_principal(Role::Member, "Ada").await;
    let (licensee_key, licensee) = trust.new_principal(Role::Licensee, "Acme Robotics").await;
    let (collector_key, collector) = trust.new_principal(Role::Collector, "laptop-7").await;
    assert_eq!(member.principal.role, i32::from(v1::Role::Member));
    assert_eq!(licensee.principal.role, i32::from(v1::Role::Licensee));

    member
        .members()
        .authorize_collector(v1::AuthorizeCollectorRequest {
            collector_public_key: collector_key.public_key().as_bytes().to_vec(),
        })
        .await
        .unwrap();
    let members_of_collector = collector
        .collectors()
        .list_my_members(v1::ListMyMembersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .authorizations;
    assert_eq!(members_of_collector.len(), 1);
    assert_eq!(
        members_of_collector[0].member_public_key,
        member_key.public_key().as_bytes()
    );

    // Invitation: created by the trustee, redeemed once with the member's own key.
    let invitation = trustee
        .principals()
        .create_invitation(v1::CreateInvitationRequest {
            display_name: "Bea".into(),
            valid_for_seconds: 3600,
        })
        .await
        .unwrap()
        .into_inner();
    let code = InvitationCode::parse(&invitation.invitation_code).unwrap();
    let invited = new_signer();
    let redeemed = datatrust_cli::client::redeem_invitation(&trust.channel, &invited, &code)
        .await
        .unwrap();
    assert_eq!(redeemed.display_name, "Bea");
    assert_eq!(redeemed.role, i32::from(v1::Role::Member));
    let second =
        datatrust_cli::client::redeem_invitation(&trust.channel, &new_signer(), &code).await;
    assert_status(second, Code::NotFound);

    let vkeys_before = datatrust_cli::client::trust_info(&trust.channel)
        .await
        .unwrap();

    let trust = trust.restart().await;
    let vkeys_after = datatrust_cli::client::trust_info(&trust.channel)
        .await
        .unwrap();
    assert_eq!(
        (
            &vkeys_before.origin,
            &vkeys_before.log_vkey,
            &vkeys_before.license_vkey
        ),
        (
            &vkeys_after.origin,
            &vkeys_after.log_vkey,
            &vkeys_after.license_vkey
        ),
        "the trust's keys survive a restart (its HTTP port here is a new one)"
    );
    // Every principal can still sign in, with the same role; the authorisation is still there.
    for (signer, role) in [
        (&member_key, v1::Role::Member),
        (&licensee_key, v1::Role::Licensee),
        (&collector_key, v1::Role::Collector),
        (&invited, v1::Role::Member),
    ] {
        let session = trust.sign_in(signer).await.unwrap();
        assert_eq!(session.principal.role, i32::from(role));
    }
    let member = trust.sign_in(&member_key).await.unwrap();
    let collectors = member
        .members()
        .list_my_collectors(v1::ListMyCollectorsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .authorizations;
    assert_eq!(collectors.len(), 1);
    let listed = trust
        .trustee_session()
        .await
        .principals()
        .list_principals(v1::ListPrincipalsRequest {
            role: convert::role_to_wire(Role::Member).into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .principals;
    assert_eq!(listed.len(), 2);
}

#[tokio::test]
async fn listing_pages_through_every_principal() {
    let trust = TestTrust::start().await;
    let trustee = trust.trustee_session().await;
    trust.register_many(Role::Member, 7).await;
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = trustee
            .principals()
            .list_principals(v1::ListPrincipalsRequest {
                role: 0,
                page_size: 3,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.principals.len() <= 3);
        seen.extend(page.principals);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen.len(), 8, "seven members and the first trustee");
    let mut keys: Vec<_> = seen
        .iter()
        .map(|principal| principal.public_key.clone())
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), 8, "no principal listed twice");
}

#[tokio::test]
async fn deactivation_ends_sessions_and_sign_in() {
    let trust = TestTrust::start().await;
    let (collector_key, collector) = trust.new_principal(Role::Collector, "old laptop").await;
    trust
        .trustee_session()
        .await
        .principals()
        .deactivate_principal(v1::DeactivatePrincipalRequest {
            public_key: collector_key.public_key().as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let refused = collector
        .collectors()
        .list_my_members(v1::ListMyMembersRequest::default())
        .await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
    assert_status(trust.sign_in(&collector_key).await, Code::Unauthenticated);
}

/// Asserts a client result failed with `code`.
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, datatrust_cli::client::ClientError>,
    code: Code,
) {
    match result {
        Err(datatrust_cli::client::ClientError::Status(status)) => {
            assert_eq!(status.code(), code, "{status:?}")
        }
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

// Multi-threaded: the test waits for the CLI process while the in-process server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printed_token_lets_generic_grpc_tools_call_as_the_principal() {
    let trust = TestTrust::start().await;
    let output = trust.cli(&trust.trustee, &["login", "--print-token"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    let token = token.trim();
    assert!(
        token.starts_with("dt1_") && !token.contains(' '),
        "{token:?}"
    );
    // What grpcurl -H "authorization: Bearer $TOKEN" would send.
    let mut request = tonic::Request::new(datatrust_proto::v1::WhoAmIRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let me =
        datatrust_proto::v1::auth_service_client::AuthServiceClient::new(trust.channel.clone())
            .who_am_i(request)
            .await
            .unwrap()
            .into_inner();
    assert_eq!(
        me.principal.unwrap().public_key,
        trust.trustee.public_key().as_bytes().to_vec()
    );
}

// Multi-threaded: the test waits for the CLI process while the in-process server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustees_invite_members_in_bulk_from_a_csv_file_with_a_letter_each() {
    let trust = TestTrust::start().await;
    let work = tempfile::tempdir().unwrap();
    let csv = work.path().join("members.csv");
    std::fs::write(
        &csv,
        "name,email\nAda Lovelace,ada@example.org\n\"Hopper, Grace\",\nBea\n",
    )
    .unwrap();
    let letters = work.path().join("letters");
    let (csv, letters_arg) = (csv.display().to_string(), letters.display().to_string());
    let output = trust
        .cli(
            &trust.trustee,
            &[
                "trustee",
                "invite-members",
                "--csv",
                &csv,
                "--letters",
                &letters_arg,
            ],
        )
        .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(rows[1].contains("\"Hopper, Grace\""), "{stdout}");
    assert_eq!(std::fs::read_dir(&letters).unwrap().count(), 3);
    // A code from the list works, once, for the member it names.
    let code = rows[0].split(',').nth(3).unwrap();
    let code = InvitationCode::parse(code).unwrap();
    let member = new_signer();
    let redeemed = datatrust_cli::client::redeem_invitation(&trust.channel, &member, &code)
        .await
        .unwrap();
    assert_eq!(redeemed.display_name, "Ada Lovelace");
    let letter = std::fs::read_dir(&letters)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .find(|letter| letter.starts_with("Dear Ada Lovelace"))
        .unwrap();
    assert!(letter.contains(code.as_str()) && letter.contains("member redeem"));
}

// Multi-threaded: the test waits for the CLI process while the in-process server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_address_that_is_wrong_says_what_is_there() {
    let trust = TestTrust::start().await;
    let work = tempfile::tempdir().unwrap();
    let key_file = work.path().join("trustee.key");
    std::fs::write(&key_file, trust.trustee.to_private_text()).unwrap();
    let whoami = |server: String| {
        let key_file = key_file.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(datatrust_tests::datatrust_binary())
                    .args(["whoami", "--server", &server, "--key"])
                    .arg(&key_file)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let http_port = whoami(format!("http://{}", trust.http_addr)).await;
    assert!(!http_port.status.success());
    let stderr = String::from_utf8_lossy(&http_port.stderr);
    assert!(
        stderr.contains("it is the trust's HTTP listener") && stderr.contains("grpc listening on"),
        "{stderr}"
    );
    let tls_to_plaintext = whoami(trust.grpc_url.replace("http://", "https://")).await;
    assert!(!tls_to_plaintext.status.success());
    let stderr = String::from_utf8_lossy(&tls_to_plaintext.stderr);
    assert!(
        stderr.contains("does not speak TLS: use http://"),
        "{stderr}"
    );
}

/// A token issued before a restart still works after it (sessions are kept in the store),
/// while a principal deactivated meanwhile is refused at once, and an expired token is not
/// brought back.
#[tokio::test]
async fn sessions_survive_a_restart_without_outliving_a_deactivation() {
    let trust = TestTrust::start().await;
    let trustee = trust.trustee_session().await;
    let (member_key, member) = trust.new_principal(Role::Member, "Ada").await;
    let (_, other) = trust.new_principal(Role::Member, "Bea").await;
    let trust = trust.restart().await;
    let who_am_i = |channel: tonic::transport::Channel, token: String| async move {
        let mut request = tonic::Request::new(v1::WhoAmIRequest {});
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        v1::auth_service_client::AuthServiceClient::new(channel)
            .who_am_i(request)
            .await
    };
    let answer = who_am_i(trust.channel.clone(), member.token.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.principal.unwrap().public_key,
        member_key.public_key().as_bytes().to_vec()
    );
    who_am_i(trust.channel.clone(), trustee.token.clone())
        .await
        .unwrap();
    // Deactivated after the restart: the stored session does not let her in.
    let bea = other.principal.public_key.clone();
    trust
        .sign_in(&trust.trustee)
        .await
        .unwrap()
        .principals()
        .deactivate_principal(v1::DeactivatePrincipalRequest {
            public_key: bea,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        who_am_i(trust.channel.clone(), other.token.clone())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // Past the token's life (the trust's clock), it is gone, restart or not.
    trust.clock.advance(24 * 3600);
    let trust = trust.restart().await;
    trust.clock.advance(24 * 3600);
    assert_eq!(
        who_am_i(trust.channel.clone(), member.token.clone())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
}
