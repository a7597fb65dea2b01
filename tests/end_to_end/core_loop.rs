//! The core loop through the real server: terms proposed, voted, ratified; consent; license
//! requests (one refused naming the clause, one fitting) approved by a trustee quorum; the
//! license fetched and verified offline; training uses reported with receipts; revocation;
//! a use after revocation refused and logged.

use std::process::Command;

use datatrust_core::governance::{
    TrainingReport, approval_message, ballot_message, countersign_message,
};
use datatrust_core::license::License;
use datatrust_core::log_entry::DecodedEntry;
use datatrust_core::{NoteSigner, NoteVerifier, Role, UnixSeconds, note};
use datatrust_proto::v1;
use datatrust_proto::v1::log_service_client::LogServiceClient;
use datatrust_proto::v1::terms_service_client::TermsServiceClient;
use datatrust_tests::{TestTrust, datatrust_binary};
use datatrust_tlog::receipt::Receipt;
use tonic::Code;

const EXAMPLE_TERMS: &str = include_str!("../../terms/example-agreement.toml");
const ORIGIN: &str = "trust.test";

/// The release every report below names (reports must name the data they used).
static RELEASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn report(license_id: &str, run: &str, family: &str, now: i64) -> TrainingReport {
    TrainingReport {
        trust: ORIGIN.into(),
        license_id: license_id.into(),
        run_id: run.into(),
        model_id: "acme-operator".into(),
        model_version: "0.3.1".into(),
        model_family: family.into(),
        purpose: "computer-use-agent-training".into(),
        data: vec![RELEASE.get().cloned().unwrap_or_default()],
        // A run can only start once the license is valid: in this test, the same second.
        started: UnixSeconds(now),
        ended: UnixSeconds(now),
        accelerator_seconds: 7_200,
    }
}

async fn report_use(
    session: &datatrust_cli::client::SignedIn,
    signer: &NoteSigner,
    report: &TrainingReport,
) -> Result<v1::ReportTrainingUseResponse, tonic::Status> {
    let text = report.to_text();
    session
        .training()
        .report_training_use(v1::ReportTrainingUseRequest {
            report: text.clone(),
            signature: signer.sign(text.as_bytes()).to_vec(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn now() -> i64 {
    datatrust_server::now().0
}

// Multi-threaded: the test also runs the CLI as a process against the in-process server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_votes_licenses_and_training_uses_end_to_end() {
    let trust = TestTrust::start().await;
    let info = datatrust_cli::client::trust_info(&trust.channel)
        .await
        .unwrap();
    let license_vkey = NoteVerifier::parse(&info.license_vkey).unwrap();
    let log_vkey = NoteVerifier::parse(&info.log_vkey).unwrap();
    let first_trustee = trust.trustee_session().await;
    let (second_trustee_key, second_trustee) =
        trust.new_principal(Role::Trustee, "Second trustee").await;
    let mut members = Vec::new();
    for name in ["Ada", "Bea", "Cy"] {
        members.push(trust.new_principal(Role::Member, name).await);
    }
    let (acme_key, acme) = trust.new_principal(Role::Licensee, "Acme Robotics").await;
    let (other_company_key, other_company) =
        trust.new_principal(Role::Licensee, "Other Corp").await;

    // Terms: proposed, voted (one ballot changed, which counts once), closed, countersigned.
    let proposed = first_trustee
        .terms()
        .propose_terms(v1::ProposeTermsRequest {
            document: EXAMPLE_TERMS.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let hash = proposed.terms.unwrap().sha256;
    let vote = |member: usize, approve: bool| {
        let (key, session) = &members[member];
        let signature = key.sign(&ballot_message(ORIGIN, &hash, approve)).to_vec();
        let session = session.clone();
        let hash = hash.clone();
        async move {
            session
                .terms()
                .cast_ballot(v1::CastBallotRequest {
                    terms_sha256: hash,
                    approve,
                    signature,
                })
                .await
        }
    };
    vote(0, false).await.unwrap();
    vote(0, true).await.unwrap();
    vote(1, true).await.unwrap();
    vote(2, false).await.unwrap();
    let forged = members[1]
        .1
        .terms()
        .cast_ballot(v1::CastBallotRequest {
            terms_sha256: hash.clone(),
            approve: true,
            signature: members[0]
                .0
                .sign(&ballot_message(ORIGIN, &hash, true))
                .to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        forged.code(),
        Code::InvalidArgument,
        "a ballot signed by another key"
    );
    let not_a_member = acme
        .terms()
        .cast_ballot(v1::CastBallotRequest {
            terms_sha256: hash.clone(),
            approve: true,
            signature: acme_key.sign(&ballot_message(ORIGIN, &hash, true)).to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(not_a_member.code(), Code::PermissionDenied);
    let mine = members[0]
        .1
        .terms()
        .get_my_ballot(v1::GetMyBallotRequest {
            terms_sha256: hash.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        mine.approve,
        Some(true),
        "the changed ballot is the one that counts"
    );

    let closed = first_trustee
        .terms()
        .close_vote(v1::CloseVoteRequest {
            terms_sha256: hash.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .terms
        .unwrap();
    assert_eq!(
        (closed.votes_yes, closed.votes_no, closed.members_eligible),
        (Some(2), Some(1), Some(3))
    );
    assert_eq!(
        closed.status,
        i32::from(v1::TermsStatus::AwaitingCountersignatures)
    );
    let countersign = |key: &NoteSigner| v1::CountersignTermsRequest {
        terms_sha256: hash.clone(),
        signature: key.sign(&countersign_message(ORIGIN, &hash)).to_vec(),
    };
    let once = first_trustee
        .terms()
        .countersign_terms(countersign(&trust.trustee))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        once.terms.unwrap().status,
        i32::from(v1::TermsStatus::AwaitingCountersignatures)
    );
    let twice = first_trustee
        .terms()
        .countersign_terms(countersign(&trust.trustee))
        .await
        .unwrap_err();
    assert_eq!(
        twice.code(),
        Code::AlreadyExists,
        "one trustee counts once towards the quorum"
    );
    let ratified = second_trustee
        .terms()
        .countersign_terms(countersign(&second_trustee_key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ratified.terms.unwrap().status,
        i32::from(v1::TermsStatus::Ratified)
    );
    assert!(ratified.log_index.is_some());
    // Anyone may read the active terms, signed in or not.
    let active = TermsServiceClient::new(trust.channel.clone())
        .get_active_terms(v1::GetActiveTermsRequest {})
        .await
        .unwrap()
        .into_inner()
        .terms
        .unwrap();
    assert_eq!(active.sha256, hash);

    // Consent.
    let consent = members[0]
        .1
        .consents()
        .set_consent(v1::SetConsentRequest {
            purpose: "computer-use-agent-training".into(),
            granted: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(consent.log_index.is_some());
    let bad_purpose = members[0]
        .1
        .consents()
        .set_consent(v1::SetConsentRequest {
            purpose: "advertising".into(),
            granted: true,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_purpose.code(), Code::InvalidArgument);
    assert!(
        bad_purpose
            .message()
            .contains("they name: computer-use-agent-training"),
        "a typo lists the valid purposes: {}",
        bad_purpose.message()
    );

    // A request that does not fit is refused naming the clause and the field.
    let request = |purpose: &str| v1::RequestLicenseRequest {
        purpose: purpose.into(),
        categories: vec!["pointer".into(), "clicks".into()],
        data_from: now() - 30 * 86_400,
        data_to: now(),
        model_family: "acme-agent".into(),
        max_training_runs: 2,
        duration_days: 90,
    };
    let refused = acme
        .licenses()
        .request_license(request("advertising"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("policy.purposes") && refused.message().contains("purpose"),
        "{}",
        refused.message()
    );
    // A category named twice is refused, naming it and the clause it comes from.
    let twice = acme
        .licenses()
        .request_license(v1::RequestLicenseRequest {
            categories: vec!["pointer".into(), "clicks".into(), "pointer".into()],
            ..request("computer-use-agent-training")
        })
        .await
        .unwrap_err();
    assert!(
        twice.message().contains("categories[2]")
            && twice.message().contains("\"pointer\" is named twice"),
        "{}",
        twice.message()
    );
    let pending = acme
        .licenses()
        .request_license(request("computer-use-agent-training"))
        .await
        .unwrap()
        .into_inner()
        .request
        .unwrap();
    assert_eq!(pending.status, "pending");

    // Trustees see what they approve, in words: the company, the data window as dates,
    // the fees the terms would charge, and the approvals needed.
    let listed = trust.cli(&trust.trustee, &["trustee", "requests"]).await;
    let text = String::from_utf8_lossy(&listed.stdout);
    for expected in [
        "company:  Acme Robotics",
        "0 approval(s) of 2 needed",
        "EUR 50,000.00 for the license",
        "EUR 2,500.00 a run",
        "pointer EUR 0.01",
        "for:      90 days from approval",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let data_from = datatrust_core::UnixSeconds(pending.data_from).rfc3339();
    assert!(text.contains(&data_from[..10]), "{text}");

    // Approval by quorum: each trustee once, by their own signature.
    let approve = |key: &NoteSigner| v1::ApproveLicenseRequestRequest {
        request_id: pending.id.clone(),
        signature: key
            .sign(&approval_message(ORIGIN, &pending.id, &hash))
            .to_vec(),
    };
    let first = first_trustee
        .licenses()
        .approve_license_request(approve(&trust.trustee))
        .await
        .unwrap()
        .into_inner();
    assert!(first.license.is_none());
    let again = first_trustee
        .licenses()
        .approve_license_request(approve(&trust.trustee))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let by_member = members[0]
        .1
        .licenses()
        .approve_license_request(approve(&members[0].0))
        .await
        .unwrap_err();
    assert_eq!(by_member.code(), Code::PermissionDenied);
    let issued = second_trustee
        .licenses()
        .approve_license_request(approve(&second_trustee_key))
        .await
        .unwrap()
        .into_inner();
    let license = issued.license.unwrap();

    // The licensee fetches it and verifies it offline; another company cannot see it.
    let fetched = acme
        .licenses()
        .get_license(v1::GetLicenseRequest {
            license_id: license.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let note_text = fetched.license.unwrap().note;
    let opened = note::open(&note_text, &[&license_vkey]).unwrap();
    let parsed = License::parse(&opened.text).unwrap();
    assert_eq!(parsed.id, license.id);
    assert_eq!(parsed.licensee, acme_key.public_key());
    assert_eq!(hex_encode(&parsed.terms_sha256), hash);
    let hidden = other_company
        .licenses()
        .get_license(v1::GetLicenseRequest {
            license_id: license.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    let work = tempfile::tempdir().unwrap();
    let license_file = work.path().join("acme.license");
    std::fs::write(&license_file, &note_text).unwrap();
    // A damaged license says which damage, and what to do.
    let license_check = |file: &std::path::Path, vkey: &str| {
        let output = Command::new(datatrust_binary())
            .args(["license", "verify", "--license-vkey", vkey])
            .arg(file)
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let crlf = work.path().join("crlf.license");
    std::fs::write(&crlf, note_text.replace('\n', "\r\n")).unwrap();
    assert!(license_check(&crlf, &info.license_vkey).contains("CRLF"));
    let edited = work.path().join("edited.license");
    std::fs::write(&edited, note_text.replacen("runs: ", "runs: 9", 1)).unwrap();
    let message = license_check(&edited, &info.license_vkey);
    assert!(message.contains("changed after it was signed"), "{message}");
    let message = license_check(&license_file, &info.log_vkey);
    assert!(message.contains("not the log_vkey"), "{message}");
    let truncated = &info.license_vkey[..info.license_vkey.len() - 5];
    let message = license_check(&license_file, truncated);
    assert!(
        message.contains("copy the whole license_vkey line"),
        "{message}"
    );
    let verify = || {
        Command::new(datatrust_binary())
            .args([
                "license",
                "verify",
                "--license-vkey",
                &info.license_vkey,
                "--log-vkey",
                &info.log_vkey,
                "--server",
                &trust.grpc_url,
            ])
            .arg(&license_file)
            .output()
            .unwrap()
    };
    let verified = verify();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("issuance logged"),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );

    // Training uses: logged with a receipt; a repeat is idempotent; misuse refused and logged.
    // A report must name the releases it used.
    let release = acme
        .releases()
        .create_release(v1::CreateReleaseRequest {
            license_id: license.id.clone(),
            in_background: false,
        })
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap();
    let mut without_data = report(&license.id, "run-1", "acme-agent", now());
    without_data.data.clear();
    let refused = report_use(&acme, &acme_key, &without_data)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused
            .message()
            .starts_with("data: name the releases this run used"),
        "{}",
        refused.message()
    );
    RELEASE.set(release.id.clone()).unwrap();
    let run = report(&license.id, "run-1", "acme-agent", now());
    let accepted = report_use(&acme, &acme_key, &run).await.unwrap();
    let receipt = Receipt::parse(&accepted.receipt)
        .unwrap()
        .verify(&log_vkey, None)
        .unwrap();
    let entry = DecodedEntry::parse(&receipt.entry).unwrap();
    assert_eq!(entry.kind, "training-use");
    assert_eq!(entry.field("license"), Some(license.id.as_str()));
    let repeated = report_use(&acme, &acme_key, &run).await.unwrap();
    assert_eq!(
        repeated.r#use.unwrap().log_index,
        accepted.r#use.unwrap().log_index,
        "a repeat is idempotent"
    );
    let other_family_time = now();
    let other_family = report_use(
        &acme,
        &acme_key,
        &report(&license.id, "run-2", "other-family", other_family_time),
    )
    .await
    .unwrap_err();
    assert_eq!(other_family.code(), Code::FailedPrecondition);
    assert!(other_family.message().contains("model-family"));
    // The refusal did not use up run-2: the identical attempt gets its refusal again (not
    // logged twice), and the corrected report of the same run is accepted.
    let again = report_use(
        &acme,
        &acme_key,
        &report(&license.id, "run-2", "other-family", other_family_time),
    )
    .await
    .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(
        again.message().contains("refused before"),
        "{}",
        again.message()
    );
    let corrected = report_use(
        &acme,
        &acme_key,
        &report(&license.id, "run-2", "acme-agent", now()),
    )
    .await
    .unwrap();
    assert!(corrected.r#use.unwrap().accepted);
    let not_theirs = report_use(
        &other_company,
        &other_company_key,
        &report(&license.id, "run-3", "acme-agent", now()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        not_theirs.code(),
        Code::NotFound,
        "a use against someone else's license"
    );
    let forged = report_use(
        &acme,
        &other_company_key,
        &report(&license.id, "run-3", "acme-agent", now()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        forged.code(),
        Code::InvalidArgument,
        "a report not signed by the licensee's key"
    );

    // Revocation needs both trustees (a safety action). The first approval holds the license
    // at once: a use is refused meanwhile, naming the hold; the second revokes it.
    let revoke_action = datatrust_core::safety::SafetyAction::RevokeLicense {
        license_id: license.id.clone(),
    };
    let held = first_trustee
        .licenses()
        .revoke_license(v1::RevokeLicenseRequest {
            license_id: license.id.clone(),
            reason: "breach of clause 3".into(),
            signature: datatrust_tests::safety_signature(&trust.trustee, &revoke_action),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(held.pending && held.approvals == 1 && held.approvals_required == 2);
    let on_hold = report_use(
        &acme,
        &acme_key,
        &report(&license.id, "run-held", "acme-agent", now()),
    )
    .await
    .unwrap_err();
    assert!(on_hold.message().contains("on hold"), "{on_hold:?}");
    let again = first_trustee
        .licenses()
        .revoke_license(v1::RevokeLicenseRequest {
            license_id: license.id.clone(),
            reason: "breach of clause 3".into(),
            signature: datatrust_tests::safety_signature(&trust.trustee, &revoke_action),
        })
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        Code::AlreadyExists,
        "one trustee cannot revoke alone"
    );
    let revoked = second_trustee
        .licenses()
        .revoke_license(v1::RevokeLicenseRequest {
            license_id: license.id.clone(),
            reason: "agreed".into(),
            signature: datatrust_tests::safety_signature(&second_trustee_key, &revoke_action),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!revoked.pending);
    assert!(
        revoked
            .license
            .unwrap()
            .revocation_reason
            .contains("breach of clause 3"),
        "the first approver's reason is recorded"
    );
    let after = report_use(
        &acme,
        &acme_key,
        &report(&license.id, "run-4", "acme-agent", now()),
    )
    .await
    .unwrap_err();
    assert_eq!(after.code(), Code::FailedPrecondition);
    assert!(after.message().contains("revoked"), "{}", after.message());
    let revoked_verify = verify();
    assert!(
        !revoked_verify.status.success(),
        "a revoked license must not verify as good"
    );
    assert!(String::from_utf8_lossy(&revoked_verify.stderr).contains("revoked"));

    let mut log = LogServiceClient::new(trust.channel.clone());
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
    let kinds: Vec<String> = entries
        .iter()
        .map(|entry| DecodedEntry::parse(entry).unwrap().kind)
        .collect();
    for expected in [
        "terms-proposed",
        "vote-closed",
        "terms-ratified",
        "consent-changed",
        "license-issued",
        "training-use",
        "license-revoked",
        "safety-approval",
    ] {
        assert!(
            kinds.iter().any(|kind| kind == expected),
            "{expected} missing from {kinds:?}"
        );
    }
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| *kind == "training-use-refused")
            .count(),
        3,
        "every refused attempt is logged (on hold, revoked, and the other)"
    );
    let requested: Vec<DecodedEntry> = entries
        .iter()
        .map(|entry| DecodedEntry::parse(entry).unwrap())
        .filter(|entry| entry.kind == "license-requested")
        .collect();
    assert_eq!(
        requested.len(),
        1,
        "the accepted request is logged; the refused one changed nothing"
    );
    assert_eq!(requested[0].field("request"), Some(pending.id.as_str()));
    assert_eq!(
        requested[0].field("purpose"),
        Some("computer-use-agent-training")
    );

    // Each side's views.
    let member_view = members[2]
        .1
        .licenses()
        .list_licenses(v1::ListLicensesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(member_view.licenses.len(), 1);
    let uses = members[2]
        .1
        .training()
        .list_training_uses(v1::ListTrainingUsesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .uses;
    assert_eq!(
        uses.iter().filter(|record| record.accepted).count(),
        2,
        "run-1, and run-2 once corrected"
    );
    // A member reads who used the data by name, with dates.
    let uses_text = trust.cli(&members[2].0, &["member", "uses"]).await;
    let uses_text = String::from_utf8_lossy(&uses_text.stdout);
    assert!(
        uses_text.contains("licensee Acme Robotics") && uses_text.contains("by Acme Robotics"),
        "{uses_text}"
    );
    let other_view = other_company
        .licenses()
        .list_licenses(v1::ListLicensesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(other_view.licenses.is_empty());
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
