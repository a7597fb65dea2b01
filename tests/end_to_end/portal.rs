//! The member portal in a real browser: seeds a trust (members, consent, telemetry, a license,
//! a release, training runs and their charges, a new agreement open for a vote), then runs
//! `tests/browser/portal.test.mjs` in Debian's headless Chromium through playwright-core
//! against the trust's own HTTP listener. The page must sign in with the member's key file,
//! show the data chart, switch a consent (checked here over gRPC afterwards), show the
//! timeline and earnings with marks it verified itself, and show tampered proofs as failed.
//! Screenshots of each page are kept in `target/portal-screenshots/`.
//!
//! Needs `chromium` and `tests/browser/node_modules` (`.ci/run` installs both). Without them
//! the test says so and passes, unless `DATATRUST_REQUIRE_BROWSER=1` (set by `.ci/run`).

use std::path::PathBuf;

use datatrust_core::governance::TrainingReport;
use datatrust_core::{NoteSigner, Role, UnixSeconds};
use datatrust_proto::v1;
use datatrust_tests::{EXAMPLE_TERMS, RatifiedTrust, new_signer, upload_events};

fn browser_prerequisites() -> Option<(PathBuf, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var_os("DATATRUST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let script_dir = root.join("browser");
    let ready = chromium.exists() && script_dir.join("node_modules/playwright-core").exists();
    let required = std::env::var("DATATRUST_REQUIRE_BROWSER").is_ok_and(|value| value == "1");
    match (ready, required) {
        (true, _) => Some((chromium, script_dir)),
        (false, true) => panic!(
            "the portal's browser test needs {} and {}/node_modules: apt-get install chromium; npm ci --prefix tests/browser",
            chromium.display(),
            script_dir.display()
        ),
        (false, false) => {
            eprintln!(
                "SKIPPED: the portal's browser test needs chromium and tests/browser/node_modules \
                 (apt-get install chromium; npm ci --prefix tests/browser); .ci/run installs them"
            );
            None
        }
    }
}

fn event(at_ms: i64, pointer: bool) -> v1::Event {
    v1::Event {
        time_ms: at_ms,
        application: "spreadsheet".into(),
        kind: Some(if pointer {
            v1::event::Kind::Pointer(v1::PointerMove { x: 3, y: 4 })
        } else {
            v1::event::Kind::Key(v1::KeyEvent {
                key_class: v1::KeyClass::Digit.into(),
                hold_ms: 60,
                character: String::new(),
                password_field: false,
            })
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_signs_in_shows_verifies_and_catches_tampering_in_chromium() {
    let Some((chromium, script_dir)) = browser_prerequisites() else {
        return;
    };
    let members: Vec<(NoteSigner, &str)> = vec![
        (new_signer(), "Ada Lovelace"),
        (new_signer(), "Bea Bianchi"),
    ];
    let ratified = RatifiedTrust::start(&members).await;
    let trust = &ratified.trust;
    let trustee = trust.trustee_session().await;
    let (collector_key, collector) = trust.new_principal(Role::Collector, "laptop").await;
    let now_ms = datatrust_server::now().0 * 1000;
    let mut sessions = Vec::new();
    for (index, (member, _)) in members.iter().enumerate() {
        let session = trust.sign_in(member).await.unwrap();
        datatrust_tests::authorize(&session, &collector_key).await;
        datatrust_tests::consent(&session, "computer-use-agent-training").await;
        // Two days of data, so the chart has two bars.
        let events: Vec<v1::Event> = (0..(3 + index as i64))
            .map(|step| event(now_ms - 86_400_000 - step * 1000, step % 2 == 0))
            .chain((0..4).map(|step| event(now_ms - 60_000 - step * 1000, step % 2 == 1)))
            .collect();
        upload_events(&collector, member, events).await;
        sessions.push(session);
    }
    let (acme_key, acme) = trust.new_principal(Role::Licensee, "Acme Automation").await;
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
    for run in ["run-1", "run-2"] {
        let now = datatrust_server::now().0;
        let text = TrainingReport {
            trust: "trust.test".into(),
            license_id: license.clone(),
            run_id: run.into(),
            model_id: "acme-operator".into(),
            model_version: "2.1".into(),
            model_family: "acme-agent".into(),
            purpose: "computer-use-agent-training".into(),
            data: vec![release.id.clone()],
            started: UnixSeconds(now),
            ended: UnixSeconds(now),
            accelerator_seconds: 7200,
        }
        .to_text();
        acme.training()
            .report_training_use(v1::ReportTrainingUseRequest {
                signature: acme_key.sign(text.as_bytes()).to_vec(),
                report: text,
            })
            .await
            .unwrap();
    }
    // A new version of the agreement, open for the members' vote.
    trustee
        .terms()
        .propose_terms(v1::ProposeTermsRequest {
            document: EXAMPLE_TERMS.replace("retention_days = 730", "retention_days = 365"),
        })
        .await
        .unwrap();

    let statement = sessions[0]
        .ledger()
        .get_my_statement(v1::GetMyStatementRequest::default())
        .await
        .unwrap()
        .into_inner();
    let shares: Vec<u64> = statement.lines.iter().map(|line| line.my_amount).collect();
    assert_eq!(shares.len(), 3, "the license fee and two runs");
    // An invitation for a new member, who will make their key in the browser.
    let invitation = trustee
        .principals()
        .create_invitation(v1::CreateInvitationRequest {
            display_name: "Cy Chen".into(),
            valid_for_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .invitation_code;
    let expected = serde_json::json!({
        "invitation_code": invitation.to_lowercase(),
        "records": 7,
        "releases": 1,
        "uses": 2,
        "shares": shares,
        "earned": statement.totals[0].earned,
        "purpose_to_switch": "accessibility-research",
    });

    let work = tempfile::tempdir().unwrap();
    let key_file = work.path().join("ada.key");
    std::fs::write(&key_file, format!("{}\n", members[0].0.to_private_text())).unwrap();
    let screenshots =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/portal-screenshots");
    let url = format!("http://{}", trust.http_addr);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script_dir.join("portal.test.mjs"))
            .current_dir(&script_dir)
            .env("PORTAL_URL", url)
            .env("KEY_FILE", &key_file)
            .env("EXPECTED", expected.to_string())
            .env("SCREENSHOTS", &screenshots)
            .env("CHROMIUM", chromium)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser walk-through failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // What the page did took effect in the trust.
    let consents = sessions[0]
        .consents()
        .list_my_consents(v1::ListMyConsentsRequest {})
        .await
        .unwrap()
        .into_inner()
        .consents;
    assert!(
        consents
            .iter()
            .any(|consent| consent.purpose == "accessibility-research" && consent.granted),
        "the switch in the page changed the consent: {consents:?}"
    );
    let voting = trustee
        .terms()
        .list_terms(v1::ListTermsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .terms
        .into_iter()
        .find(|terms| terms.status == v1::TermsStatus::Voting as i32)
        .unwrap();
    let ballot = sessions[0]
        .terms()
        .get_my_ballot(v1::GetMyBallotRequest {
            terms_sha256: voting.sha256,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ballot.approve,
        Some(true),
        "the ballot cast in the page counts"
    );
    // The member who joined from the browser is enrolled (and erased what they had).
    let members = trustee
        .principals()
        .list_principals(v1::ListPrincipalsRequest {
            role: v1::Role::Member.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .principals;
    assert!(
        members
            .iter()
            .any(|member| member.display_name == "Cy Chen"),
        "the invitation was redeemed with a key made in the browser"
    );
}
