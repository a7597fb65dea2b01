//! Releases and member audits: exactly the consenting members' transformed records in scope,
//! pseudonyms unlinkable across licenses, a stream the licensee checks against the logged
//! root, resumable; each member's audit lists exactly the uses of their data, and every proof
//! verifies offline; an erased member is never released again.

use std::collections::BTreeSet;
use std::process::Command;

use datatrust_core::{NoteSigner, NoteVerifier, Role};
use datatrust_proto::v1;
use datatrust_tests::{RatifiedTrust, datatrust_binary, new_signer};
use tonic::Code;

fn events(now_ms: i64, application: &str) -> Vec<v1::Event> {
    vec![
        v1::Event {
            time_ms: now_ms - 3000,
            application: application.into(),
            kind: Some(v1::event::Kind::Key(v1::KeyEvent {
                key_class: v1::KeyClass::Letter.into(),
                hold_ms: 70,
                character: "z".into(),
                password_field: false,
            })),
        },
        v1::Event {
            time_ms: now_ms - 2000,
            application: application.into(),
            kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x: 5, y: 6 })),
        },
        v1::Event {
            time_ms: now_ms - 1000,
            application: application.into(),
            kind: Some(v1::event::Kind::Focus(v1::FocusChange {
                window_title: "Performance review".into(),
            })),
        },
    ]
}

async fn stream_all(
    session: &datatrust_cli::client::SignedIn,
    release: &str,
    from: u64,
) -> Vec<v1::ReleaseRecord> {
    let mut stream = session
        .releases()
        .stream_release(v1::StreamReleaseRequest {
            release_id: release.into(),
            from,
        })
        .await
        .unwrap()
        .into_inner();
    let mut records = Vec::new();
    while let Some(batch) = stream.message().await.unwrap() {
        records.extend(batch.records);
    }
    records
}

// Multi-threaded: the test runs `datatrust member audit --verify` against the in-process server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_hold_exactly_the_consenting_members_and_audits_verify() {
    let members: Vec<(NoteSigner, &str)> = vec![
        (new_signer(), "Ada Lovelace"),
        (new_signer(), "Bea Bianchi"),
        (new_signer(), "Cy Chen"),
    ];
    let ratified = RatifiedTrust::start(&members).await;
    let trust = &ratified.trust;
    let info = datatrust_cli::client::trust_info(&trust.channel)
        .await
        .unwrap();
    let log_vkey = NoteVerifier::parse(&info.log_vkey).unwrap();
    let (collector_key, collector) = trust.new_principal(Role::Collector, "shared laptop").await;
    let mut sessions = Vec::new();
    let now_ms = datatrust_server::now().0 * 1000;
    for (index, (key, _)) in members.iter().enumerate() {
        let session = trust.sign_in(key).await.unwrap();
        datatrust_tests::authorize(&session, &collector_key).await;
        // Ada and Bea consent; Cy does not.
        if index < 2 {
            datatrust_tests::consent(&session, "computer-use-agent-training").await;
        }
        let batch = v1::UploadRequest {
            member_public_key: key.public_key().as_bytes().to_vec(),
            device_id: "laptop".into(),
            sequence: 1,
            events: events(now_ms, &format!("app-of-{index}")),
        };
        let mut answers = collector
            .ingest()
            .upload(tokio_stream::iter(vec![batch]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answers.message().await.unwrap().unwrap().outcome, "stored");
        sessions.push(session);
    }

    let (acme_key, acme) = trust.new_principal(Role::Licensee, "Acme").await;
    let license = ratified.license(&acme, &["keystrokes", "pointer"], 5).await;
    let release = acme
        .releases()
        .create_release(v1::CreateReleaseRequest {
            license_id: license.clone(),
            in_background: false,
        })
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap();
    assert_eq!(release.parts.len(), 2, "Ada and Bea consented; Cy did not");
    assert_eq!(
        release.records, 4,
        "keystrokes and pointer only: focus is outside the license"
    );

    // The licensee checks the stream against the logged root, and can resume.
    let fetched = datatrust_cli::commands_for_tests::fetch_and_verify(&acme, &log_vkey, &release)
        .await
        .unwrap();
    assert!(fetched.erased_parts.is_empty());
    let records = fetched.records;
    assert_eq!(records.len(), 4);
    let texts: Vec<serde_json::Value> = records
        .iter()
        .map(|record| serde_json::from_slice(record).unwrap())
        .collect();
    for record in &texts {
        assert!(
            record["kind"]["key"].is_null() || record["kind"]["key"]["character"].is_null(),
            "typed characters never leave"
        );
        assert!(record.get("application").is_some());
    }
    assert!(
        !texts
            .iter()
            .any(|record| record["application"] == "app-of-2"),
        "Cy's records are not released"
    );
    let resumed = stream_all(&acme, &release.id, 2).await;
    assert_eq!(
        resumed
            .iter()
            .map(|record| record.position)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );

    // Pseudonyms: one per member per license, unrelated across licenses.
    let second_license = ratified.license(&acme, &["pointer"], 1).await;
    let second = acme
        .releases()
        .create_release(v1::CreateReleaseRequest {
            license_id: second_license,
            in_background: false,
        })
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap();
    let pseudonyms = |records: &[serde_json::Value]| -> BTreeSet<String> {
        records
            .iter()
            .map(|record| record["member"].as_str().unwrap().to_owned())
            .collect()
    };
    let first_names = pseudonyms(&texts);
    let second_records: Vec<serde_json::Value> = stream_all(&acme, &second.id, 0)
        .await
        .iter()
        .map(|record| serde_json::from_slice(&record.record).unwrap())
        .collect();
    let second_names = pseudonyms(&second_records);
    assert_eq!(first_names.len(), 2);
    assert_eq!(second_names.len(), 2);
    assert!(
        first_names.is_disjoint(&second_names),
        "the same member must not carry the same pseudonym under two licenses"
    );

    // A training use naming the first release; the audit lists it for Ada and Bea, not Cy.
    let now = datatrust_server::now().0;
    let report = datatrust_core::governance::TrainingReport {
        trust: "trust.test".into(),
        license_id: license.clone(),
        run_id: "run-1".into(),
        model_id: "acme-operator".into(),
        model_version: "1.0".into(),
        model_family: "acme-agent".into(),
        purpose: "computer-use-agent-training".into(),
        data: vec![release.id.clone()],
        started: datatrust_core::UnixSeconds(now),
        ended: datatrust_core::UnixSeconds(now),
        accelerator_seconds: 60,
    }
    .to_text();
    acme.training()
        .report_training_use(v1::ReportTrainingUseRequest {
            signature: acme_key.sign(report.as_bytes()).to_vec(),
            report,
        })
        .await
        .unwrap();
    let ada_audit = sessions[0]
        .member_data()
        .get_my_audit(v1::GetMyAuditRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ada_audit.entries.len(),
        2,
        "both releases hold Ada's pointer data"
    );
    // In pages of one: each release once, then the end.
    let first_page = sessions[0]
        .member_data()
        .get_my_audit(v1::GetMyAuditRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.entries.len(), 1);
    assert_eq!(first_page.commitment_salt, ada_audit.commitment_salt);
    let second_page = sessions[0]
        .member_data()
        .get_my_audit(v1::GetMyAuditRequest {
            page_size: 1,
            page_token: first_page.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.entries.len(), 1);
    assert_ne!(
        first_page.entries[0].release_id,
        second_page.entries[0].release_id
    );
    if !second_page.next_page_token.is_empty() {
        let third = sessions[0]
            .member_data()
            .get_my_audit(v1::GetMyAuditRequest {
                page_size: 1,
                page_token: second_page.next_page_token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(third.entries.is_empty() && third.next_page_token.is_empty());
    }
    let first_entry = ada_audit
        .entries
        .iter()
        .find(|entry| entry.release_id == release.id)
        .unwrap();
    assert_eq!(first_entry.uses.len(), 1);
    assert_eq!(first_entry.my_records, 2);
    let cy_audit = sessions[2]
        .member_data()
        .get_my_audit(v1::GetMyAuditRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        cy_audit.entries.is_empty(),
        "Cy never consented; nothing of Cy's went anywhere"
    );

    // Ada verifies every proof offline with the CLI and only the log's vkey.
    let work = tempfile::tempdir().unwrap();
    let ada_key_file = work.path().join("ada.key");
    std::fs::write(&ada_key_file, members[0].0.to_private_text()).unwrap();
    let audit = Command::new(datatrust_binary())
        .args([
            "member",
            "audit",
            "--verify",
            "--vkey",
            &info.log_vkey,
            "--server",
            &trust.grpc_url,
            "--key",
        ])
        .arg(&ada_key_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    assert_eq!(stdout.matches("[verified]").count(), 2, "{stdout}");
    assert_eq!(
        stdout.matches("of your records to Acme for").count(),
        2,
        "the licensee by name, not by key: {stdout}"
    );
    assert!(
        stdout.contains("used to train acme-operator 1.0"),
        "{stdout}"
    );
    // Bea's proofs do not verify as Ada's: the commitment is bound to the member's key.
    let bea_key_file = work.path().join("bea.key");
    std::fs::write(&bea_key_file, members[1].0.to_private_text()).unwrap();
    let wrong_key = Command::new(datatrust_binary())
        .args([
            "member",
            "audit",
            "--verify",
            "--vkey",
            &info.log_vkey,
            "--server",
            &trust.grpc_url,
            "--key",
        ])
        .arg(&bea_key_file)
        .output()
        .unwrap();
    assert!(wrong_key.status.success(), "Bea's own audit verifies too");

    // Erasure: Ada is gone from new releases and from streams of old ones; her consent is
    // withdrawn (and logged), and the answer says so.
    let erased = sessions[0]
        .member_data()
        .erase_my_data(v1::EraseMyDataRequest {
            confirm: "erase all my data".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        erased.consents_withdrawn,
        vec!["computer-use-agent-training".to_owned()]
    );
    let consents = sessions[0]
        .consents()
        .list_my_consents(v1::ListMyConsentsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        consents.consents.iter().all(|consent| !consent.granted),
        "{consents:?}"
    );
    let third = acme
        .releases()
        .create_release(v1::CreateReleaseRequest {
            license_id: license.clone(),
            in_background: false,
        })
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap();
    assert_eq!(third.parts.len(), 1, "only Bea remains");
    let after = stream_all(&acme, &release.id, 0).await;
    assert_eq!(
        after.len(),
        2,
        "the erased member's part is never streamed again"
    );
    // An earlier release that held Ada's records still downloads and verifies: her part is
    // reported as erased, the rest checks against the logged root.
    let fetched = datatrust_cli::commands_for_tests::fetch_and_verify(&acme, &log_vkey, &release)
        .await
        .unwrap();
    assert_eq!(fetched.erased_parts.len(), 1);
    assert_eq!(fetched.records.len(), 2);

    // No log entry holds a member's key, an event, or anything else personal.
    let mut log =
        datatrust_proto::v1::log_service_client::LogServiceClient::new(trust.channel.clone());
    let size = log
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .tree_size;
    let entries = log
        .get_entries(v1::GetEntriesRequest {
            start: 0,
            end: size,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let everything = String::from_utf8(entries.concat()).unwrap();
    for (key, name) in &members {
        assert!(
            !everything.contains(&key.public_key().to_base64()),
            "a member key is in the log"
        );
        // Names with a space: base64 and hex never contain one, so a hit is a real leak.
        assert!(!everything.contains(name), "a member name is in the log");
    }
    for personal in [
        "app-of-",
        "Performance review",
        "\"z\"",
        "pointer\":",
        "time_ms",
    ] {
        assert!(!everything.contains(personal), "{personal:?} is in the log");
    }
    assert!(
        !everything.contains(&first_names.iter().next().unwrap().to_string()),
        "a pseudonym is in the log"
    );

    // A revoked license yields no release and no stream.
    ratified.revoke(&license, "audit finding").await;
    let refused = acme
        .releases()
        .create_release(v1::CreateReleaseRequest {
            license_id: license,
            in_background: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let refused_stream = acme
        .releases()
        .stream_release(v1::StreamReleaseRequest {
            release_id: release.id.clone(),
            from: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(refused_stream.code(), Code::FailedPrecondition);
}

// Multi-threaded: the test runs `datatrust company release` against the in-process server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_built_in_the_background_is_polled_until_ready() {
    let members: Vec<(NoteSigner, &str)> = vec![(new_signer(), "Ada"), (new_signer(), "Bea")];
    let ratified = RatifiedTrust::start(&members).await;
    let trust = &ratified.trust;
    let (collector_key, collector) = trust.new_principal(Role::Collector, "laptop").await;
    let now_ms = datatrust_server::now().0 * 1000;
    for (index, (key, _)) in members.iter().enumerate() {
        let session = trust.sign_in(key).await.unwrap();
        datatrust_tests::authorize(&session, &collector_key).await;
        datatrust_tests::consent(&session, "computer-use-agent-training").await;
        datatrust_tests::upload_events(&collector, key, events(now_ms, &format!("app-{index}")))
            .await;
    }
    let (acme_key, acme) = trust.new_principal(Role::Licensee, "Acme").await;
    let (_, other) = trust.new_principal(Role::Licensee, "Other Corp").await;
    let license = ratified.license(&acme, &["keystrokes", "pointer"], 1).await;

    // The CLI builds in the background and waits until the release is ready.
    let work = tempfile::tempdir().unwrap();
    let key_file = work.path().join("acme.key");
    std::fs::write(&key_file, acme_key.to_private_text()).unwrap();
    let output = Command::new(datatrust_binary())
        .args(["company", "release", "--json", "--license", &license])
        .args(["--server", &trust.grpc_url, "--key"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (printed["records"].as_u64(), printed["parts"].as_u64()),
        (Some(4), Some(2))
    );

    let mut release = acme
        .releases()
        .create_release(v1::CreateReleaseRequest {
            license_id: license.clone(),
            in_background: true,
        })
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap();
    assert!(
        release.state == "building" || release.state == "ready",
        "{}",
        release.state
    );
    let id = release.id.clone();
    let hidden = other
        .releases()
        .get_release(v1::GetReleaseRequest {
            release_id: id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        hidden.code(),
        Code::NotFound,
        "another licensee learns nothing"
    );
    for _ in 0..200 {
        if release.state == "ready" {
            break;
        }
        // Sleep: polling a background build until it is ready, bounded.
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        release = acme
            .releases()
            .get_release(v1::GetReleaseRequest {
                release_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .release
            .unwrap();
    }
    assert_eq!(release.state, "ready");
    assert_eq!((release.parts.len(), release.records), (2, 4));
    assert_eq!((release.members_done, release.members_total), (2, 2));
    assert_eq!(stream_all(&acme, &id, 0).await.len(), 4);

    // A license that cannot be released under is refused at once, not after a build.
    ratified.revoke(&license, "breach").await;
    let refused = acme
        .releases()
        .create_release(v1::CreateReleaseRequest {
            license_id: license,
            in_background: true,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("revoked"),
        "{}",
        refused.message()
    );
}
