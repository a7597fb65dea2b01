//! Keys that change: a member who lost her key is re-bound to a new one by a quorum of
//! trustees and keeps everything (statement, consents, audit, all verified under the new
//! key), her old key stopping at once and the recovery showing in her audit; every role
//! rotates its own key.

use datatrust_core::{NoteSigner, Role};
use datatrust_proto::v1;
use datatrust_tests::{
    RatifiedTrust, TestTrust, authorize, consent, new_signer, succeeded, upload_events,
};

fn events(now_ms: i64) -> Vec<v1::Event> {
    (0..3)
        .map(|index| v1::Event {
            time_ms: now_ms - 3_000 + index,
            application: "editor".into(),
            kind: Some(v1::event::Kind::Pointer(v1::PointerMove {
                x: index as i32,
                y: 1,
            })),
        })
        .collect()
}

/// What the member sees of herself, as JSON lines, without the key changes.
async fn member_view(trust: &TestTrust, member: &NoteSigner, vkey: &str) -> Vec<String> {
    let mut view = Vec::new();
    for arguments in [
        vec!["member", "statement", "--verify", "--vkey", vkey, "--json"],
        vec!["member", "audit", "--verify", "--vkey", vkey, "--json"],
        vec!["member", "consents", "--json"],
        vec!["member", "data", "--json"],
    ] {
        let printed = succeeded(&arguments.join(" "), &trust.cli(member, &arguments).await);
        view.extend(
            printed
                .lines()
                .filter(|line| !line.contains("\"key_change\""))
                .map(str::to_owned),
        );
    }
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_recovered_by_a_trustee_quorum_keeps_everything_and_her_old_key_stops() {
    let (ada, bea) = (new_signer(), new_signer());
    let ratified = RatifiedTrust::start(&[(ada.clone(), "Ada"), (bea.clone(), "Bea")]).await;
    let trust = &ratified.trust;
    let vkey = datatrust_cli::client::trust_info(&trust.channel)
        .await
        .unwrap()
        .log_vkey;
    let (laptop, collector) = trust.new_principal(Role::Collector, "Laptop").await;
    let (acme, company) = trust.new_principal(Role::Licensee, "Acme").await;
    let ada_session = trust.sign_in(&ada).await.unwrap();
    authorize(&ada_session, &laptop).await;
    consent(&ada_session, "computer-use-agent-training").await;
    upload_events(&collector, &ada, events(trust.clock.now().0 * 1000)).await;
    let license = ratified.license(&company, &["pointer"], 5).await;
    succeeded(
        "company release",
        &trust
            .cli(&acme, &["company", "release", "--license", &license])
            .await,
    );
    let before = member_view(trust, &ada, &vkey).await;
    assert!(
        before.iter().any(|line| line.contains("\"release\"")),
        "a release holds Ada's records: {before:?}"
    );

    // Ada lost her laptop: she makes a new key; the trustees check who she is.
    let new_key = new_signer();
    let approve = |trustee: NoteSigner| {
        let member = ada.public_key().to_base64();
        let new = new_key.public_key().to_base64();
        async move {
            trust
                .cli(
                    &trustee,
                    &[
                        "trustee",
                        "approve-recovery",
                        "--member",
                        &member,
                        "--new-public-key",
                        &new,
                        "--json",
                    ],
                )
                .await
        }
    };
    let first = approve(trust.trustee.clone()).await;
    assert!(succeeded("first approval", &first).contains("\"recovered\":false"));
    let waiting = succeeded(
        "trustee pending",
        &trust
            .cli(
                &ratified.second_trustee.0,
                &["trustee", "pending", "--json"],
            )
            .await,
    );
    assert!(
        waiting.contains("\"recover-member\"") && waiting.contains(&ada.public_key().to_base64()),
        "{waiting}"
    );
    // One trustee alone recovers nothing: the old key still works, the new one does not.
    assert!(trust.sign_in(&ada).await.is_ok());
    assert!(trust.sign_in(&new_key).await.is_err());
    let again = approve(trust.trustee.clone()).await;
    assert!(
        !again.status.success(),
        "the same trustee twice is one approval"
    );
    let second = approve(ratified.second_trustee.0.clone()).await;
    assert!(succeeded("second approval", &second).contains("\"recovered\":true"));

    // The old key stops at once, its sessions with it; the new one is Ada.
    assert!(trust.sign_in(&ada).await.is_err(), "the old key is refused");
    let refused = ada_session
        .auth()
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let recovered = trust.sign_in(&new_key).await.unwrap();
    assert_eq!(
        recovered.principal.public_key,
        ada.public_key().as_bytes().to_vec(),
        "the same membership"
    );
    assert_eq!(
        recovered.principal.signing_key,
        new_key.public_key().as_bytes().to_vec()
    );
    // Everything is hers still, verified under the new key.
    let after = member_view(trust, &new_key, &vkey).await;
    assert_eq!(before, after);
    // And her audit shows the recovery, verified against the log.
    let audit = succeeded(
        "member audit",
        &trust
            .cli(
                &new_key,
                &["member", "audit", "--verify", "--vkey", &vkey, "--json"],
            )
            .await,
    );
    let change = audit
        .lines()
        .find(|line| line.contains("\"key_change\""))
        .unwrap_or_else(|| panic!("the recovery is in her audit: {audit}"));
    assert!(
        change.contains("\"recovered\"") && change.contains("\"verified\":true"),
        "{change}"
    );
    // Her old key cannot be enrolled again as someone else, nor the new one.
    let enrol = trust
        .trustee_session()
        .await
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: new_key.public_key().as_bytes().to_vec(),
            role: v1::Role::Member.into(),
            display_name: "Impostor".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(enrol.code(), tonic::Code::AlreadyExists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_rotates_its_own_key() {
    let trust = TestTrust::start().await;
    let (member, _) = trust.new_principal(Role::Member, "Ada").await;
    let (licensee, _) = trust.new_principal(Role::Licensee, "Acme").await;
    let (collector, _) = trust.new_principal(Role::Collector, "Laptop").await;
    let directory = tempfile::tempdir().unwrap();
    let mut newest = Vec::new();
    for (old, role) in [
        (trust.trustee.clone(), "trustee"),
        (member, "member"),
        (licensee, "licensee"),
        (collector, "collector"),
    ] {
        let new = new_signer();
        let new_file = directory.path().join(format!("{role}-new.key"));
        std::fs::write(&new_file, new.to_private_text()).unwrap();
        succeeded(
            &format!("{role} key rotate"),
            &trust
                .cli(
                    &old,
                    &["key", "rotate", "--new-key", new_file.to_str().unwrap()],
                )
                .await,
        );
        assert!(
            trust.sign_in(&old).await.is_err(),
            "the {role}'s old key is refused"
        );
        let session = trust.sign_in(&new).await.unwrap();
        assert_eq!(
            session.principal.public_key,
            old.public_key().as_bytes().to_vec(),
            "the {role} is the same principal"
        );
        // Rotating again, from the new key, works as well.
        let newer = new_signer();
        let newer_file = directory.path().join(format!("{role}-newer.key"));
        std::fs::write(&newer_file, newer.to_private_text()).unwrap();
        succeeded(
            &format!("{role} second rotation"),
            &trust
                .cli(
                    &new,
                    &["key", "rotate", "--new-key", newer_file.to_str().unwrap()],
                )
                .await,
        );
        assert!(trust.sign_in(&new).await.is_err());
        assert!(trust.sign_in(&newer).await.is_ok());
        newest.push(newer);
    }
    // The rotated trustee still acts for the trust with its newest key: here, enrolling a
    // member.
    let trustee = trust.sign_in(&newest[0]).await.unwrap();
    trustee
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: new_signer().public_key().as_bytes().to_vec(),
            role: v1::Role::Member.into(),
            display_name: "Bea".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let entries = datatrust_tests::decoded_log_entries(&trust.channel).await;
    assert_eq!(
        entries
            .iter()
            .filter(|entry| entry.kind == "key-rotated")
            .count(),
        8
    );
}

/// Safety actions need the trustee quorum (2 under the example terms): one trustee alone
/// registers no trustee, deactivates none, denies no request; a revocation one trustee asks
/// for holds the license at once and lapses after 72 hours without the quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_trustee_takes_a_safety_action_alone() {
    use datatrust_core::safety::SafetyAction;
    use datatrust_tests::safety_signature;
    let ratified = RatifiedTrust::start(&[(new_signer(), "Ada")]).await;
    let trust = &ratified.trust;
    let first = trust.trustee_session().await;
    let (second_key, second) = (&ratified.second_trustee.0, &ratified.second_trustee.1);
    let trustees = [(&trust.trustee, &first), (second_key, second)];

    // A third trustee: pending after one approval (and cannot sign in), registered at two.
    let third = new_signer();
    let register = SafetyAction::RegisterTrustee {
        public_key: third.public_key(),
    };
    let mut pending = Vec::new();
    for (key, session) in trustees {
        let answer = session
            .principals()
            .register_principal(v1::RegisterPrincipalRequest {
                public_key: third.public_key().as_bytes().to_vec(),
                role: v1::Role::Trustee.into(),
                display_name: "Third trustee".into(),
                signature: safety_signature(key, &register),
            })
            .await
            .unwrap()
            .into_inner();
        pending.push(answer.pending);
        if answer.pending {
            assert!(trust.sign_in(&third).await.is_err(), "not a trustee yet");
            // The other trustee sees what waits for them.
            let waiting = second
                .principals()
                .list_pending_approvals(v1::ListPendingApprovalsRequest::default())
                .await
                .unwrap()
                .into_inner();
            assert_eq!(waiting.required, 2);
            assert!(
                waiting
                    .pending
                    .iter()
                    .any(|waiting| waiting.kind == "register-trustee"
                        && waiting.subject == third.public_key().to_base64()
                        && waiting.detail == "Third trustee"
                        && waiting.approved_by.len() == 1)
            );
        }
    }
    assert_eq!(pending, [true, false]);
    trust.sign_in(&third).await.unwrap();

    // Deactivating a trustee: the same.
    let deactivate = SafetyAction::DeactivateTrustee {
        public_key: third.public_key(),
    };
    let mut pending = Vec::new();
    for (key, session) in trustees {
        let answer = session
            .principals()
            .deactivate_principal(v1::DeactivatePrincipalRequest {
                public_key: third.public_key().as_bytes().to_vec(),
                signature: safety_signature(key, &deactivate),
            })
            .await
            .unwrap()
            .into_inner();
        pending.push(answer.pending);
        if answer.pending {
            trust.sign_in(&third).await.unwrap();
        }
    }
    assert_eq!(pending, [true, false]);
    assert!(
        trust.sign_in(&third).await.is_err(),
        "deactivated at the quorum"
    );

    // Denying a request: one trustee leaves it open.
    let (acme, company) = trust.new_principal(Role::Licensee, "Acme").await;
    let now = trust.clock.now().0;
    let request = company
        .licenses()
        .request_license(v1::RequestLicenseRequest {
            purpose: "computer-use-agent-training".into(),
            categories: vec!["pointer".into()],
            data_from: now - 86_400,
            data_to: now + 86_400,
            model_family: "acme-agent".into(),
            max_training_runs: 1,
            duration_days: 30,
        })
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    let deny = SafetyAction::DenyRequest {
        request_id: request.id.clone(),
    };
    let mut pending = Vec::new();
    for (key, session) in trustees {
        let answer = session
            .licenses()
            .deny_license_request(v1::DenyLicenseRequestRequest {
                request_id: request.id.clone(),
                reason: "not now".into(),
                signature: safety_signature(key, &deny),
            })
            .await
            .unwrap()
            .into_inner();
        pending.push(answer.pending);
        if !answer.pending {
            assert_eq!(answer.request.unwrap().status, "denied");
        }
    }
    assert_eq!(pending, [true, false]);

    // An urgent revocation: one trustee holds the license at once; without the quorum the
    // hold lapses after 72 hours.
    let license = ratified.license(&company, &["pointer"], 5).await;
    let revoke = SafetyAction::RevokeLicense {
        license_id: license.clone(),
    };
    let held = first
        .licenses()
        .revoke_license(v1::RevokeLicenseRequest {
            license_id: license.clone(),
            reason: "leaked data".into(),
            signature: safety_signature(&trust.trustee, &revoke),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(held.pending);
    let refused = company
        .releases()
        .create_release(v1::CreateReleaseRequest {
            license_id: license.clone(),
            in_background: false,
        })
        .await
        .unwrap_err();
    assert!(refused.message().contains("on hold"), "{refused:?}");
    trust.clock.advance(73 * 3_600);
    let company = trust.sign_in(&acme).await.unwrap();
    company
        .releases()
        .create_release(v1::CreateReleaseRequest {
            license_id: license.clone(),
            in_background: false,
        })
        .await
        .expect("the hold lapsed without the quorum");
}

/// `license verify FILE` with each key in `keys`, against the log or offline.
async fn verify_license(
    trust: &TestTrust,
    licensee: &NoteSigner,
    log_vkey: &str,
    file: &std::path::Path,
    keys: &[&str],
    against_log: bool,
) -> std::process::Output {
    let mut arguments = vec!["license", "verify", file.to_str().unwrap()];
    for key in keys {
        arguments.extend(["--license-vkey", key]);
    }
    if against_log {
        arguments.extend(["--log-vkey", log_vkey]);
    }
    trust.cli(licensee, &arguments).await
}

async fn fetch_license(
    trust: &TestTrust,
    licensee: &NoteSigner,
    license: &str,
    out: &std::path::Path,
) {
    succeeded(
        "company license",
        &trust
            .cli(
                licensee,
                &[
                    "company",
                    "license",
                    "--id",
                    license,
                    "--out",
                    out.to_str().unwrap(),
                ],
            )
            .await,
    );
}

/// The license key rotates: licenses signed before still verify, offline and against the
/// log, under the key valid at their issuance; later ones are signed by the new key, after a
/// restart too; `trust info` lists both with their periods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_license_signed_before_a_license_key_rotation_still_verifies() {
    let ratified = RatifiedTrust::start(&[(new_signer(), "Ada")]).await;
    let (acme, company) = ratified.trust.new_principal(Role::Licensee, "Acme").await;
    let directory = tempfile::tempdir().unwrap();
    let (before, after, restarted) = (
        directory.path().join("before.license"),
        directory.path().join("after.license"),
        directory.path().join("restarted.license"),
    );
    let license = ratified.license(&company, &["pointer"], 1).await;
    fetch_license(&ratified.trust, &acme, &license, &before).await;
    let info = datatrust_cli::client::trust_info(&ratified.trust.channel)
        .await
        .unwrap();
    let (old_vkey, log_vkey) = (info.license_vkey.clone(), info.log_vkey.clone());
    let rotated = succeeded(
        "trustee rotate-license-key",
        &ratified
            .trust
            .cli(
                &ratified.trust.trustee,
                &["trustee", "rotate-license-key", "--json"],
            )
            .await,
    );
    let rotated: serde_json::Value = serde_json::from_str(rotated.trim()).unwrap();
    let new_vkey = rotated["vkey"].as_str().unwrap().to_owned();
    assert_ne!(new_vkey, old_vkey);
    let info = datatrust_cli::client::trust_info(&ratified.trust.channel)
        .await
        .unwrap();
    assert_eq!(info.license_vkey, new_vkey, "the new key signs from now on");
    assert_eq!(info.license_keys.len(), 2);
    assert_eq!(info.license_keys[0].vkey, old_vkey);
    assert_eq!(
        info.license_keys[0].valid_until,
        info.license_keys[1].valid_from
    );
    let license = ratified.license(&company, &["focus"], 1).await;
    fetch_license(&ratified.trust, &acme, &license, &after).await;

    let trust = &ratified.trust;
    let both = [old_vkey.as_str(), new_vkey.as_str()];
    for file in [&before, &after] {
        succeeded(
            "license verify against the log",
            &verify_license(trust, &acme, &log_vkey, file, &both, true).await,
        );
    }
    assert!(
        !verify_license(trust, &acme, &log_vkey, &before, &[&new_vkey], false)
            .await
            .status
            .success(),
        "a license of the old key does not verify under the new one"
    );
    succeeded(
        "the old license under its own key, offline",
        &verify_license(trust, &acme, &log_vkey, &before, &[&old_vkey], false).await,
    );

    // After a restart the rotated key still signs.
    let RatifiedTrust {
        trust,
        second_trustee,
        terms_hash,
    } = ratified;
    let trust = trust.restart().await;
    let second_session = trust.sign_in(&second_trustee.0).await.unwrap();
    let ratified = RatifiedTrust {
        trust,
        second_trustee: (second_trustee.0, second_session),
        terms_hash,
    };
    let company = ratified.trust.sign_in(&acme).await.unwrap();
    let license = ratified.license(&company, &["clicks"], 1).await;
    fetch_license(&ratified.trust, &acme, &license, &restarted).await;
    succeeded(
        "a license after the restart, under the new key, against the log",
        &verify_license(
            &ratified.trust,
            &acme,
            &log_vkey,
            &restarted,
            &[&new_vkey],
            true,
        )
        .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_approvals_come_a_page_at_a_time() {
    use datatrust_core::safety::SafetyAction;
    use datatrust_tests::safety_signature;
    let ada = new_signer();
    let ratified = RatifiedTrust::start(&[(ada.clone(), "Ada")]).await;
    let trust = &ratified.trust;
    let first = trust.trustee_session().await;
    // Three trustees proposed and a recovery approved, each by one trustee of two.
    for index in 0..3 {
        let candidate = new_signer();
        let register = SafetyAction::RegisterTrustee {
            public_key: candidate.public_key(),
        };
        let answer = first
            .principals()
            .register_principal(v1::RegisterPrincipalRequest {
                public_key: candidate.public_key().as_bytes().to_vec(),
                role: v1::Role::Trustee.into(),
                display_name: format!("Candidate {index}"),
                signature: safety_signature(&trust.trustee, &register),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(answer.pending);
    }
    let recovery = trust
        .cli(
            &trust.trustee,
            &[
                "trustee",
                "approve-recovery",
                "--member",
                &ada.public_key().to_base64(),
                "--new-public-key",
                &new_signer().public_key().to_base64(),
            ],
        )
        .await;
    succeeded("approve-recovery", &recovery);

    let page = |size: u32, token: String| {
        let principals = first.principals();
        async move {
            principals
                .clone()
                .list_pending_approvals(v1::ListPendingApprovalsRequest {
                    page_size: size,
                    page_token: token,
                })
                .await
        }
    };
    for size in [1, 2, 3, 4, 100] {
        let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
        loop {
            let answer = page(size, token).await.unwrap().into_inner();
            assert!(answer.pending.len() <= size as usize);
            pages += 1;
            seen.extend(
                answer
                    .pending
                    .iter()
                    .map(|waiting| (waiting.kind.clone(), waiting.subject.clone())),
            );
            token = answer.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        let kinds: Vec<&str> = seen.iter().map(|(kind, _)| kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "register-trustee",
                "register-trustee",
                "register-trustee",
                "recover-member"
            ],
            "pages of {size}: each once, actions first"
        );
        let mut subjects: Vec<_> = seen.iter().map(|(_, subject)| subject).collect();
        subjects.dedup();
        assert_eq!(subjects.len(), 4);
        assert!(
            pages >= 4_usize.div_ceil(size as usize),
            "{pages} pages of {size}"
        );
    }
    for bad in ["zz", "02", "0200"] {
        let refused = page(2, bad.into()).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{bad}");
        assert!(refused.message().contains("page_token"), "{refused:?}");
    }
}
