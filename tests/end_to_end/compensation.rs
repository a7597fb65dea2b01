//! Compensation through the real server: a license and training runs produce charges split
//! between the union fund and the members whose records were used; statements match shares
//! computed by hand; each member verifies their share offline with the CLI; an overdue
//! invoice suspends the licensee and its uses are refused until the payment is recorded and
//! the suspension lifted. Bad ledger input is refused with the field and the reason.

use std::process::Command;

use datatrust_core::governance::TrainingReport;
use datatrust_core::log_entry::DecodedEntry;
use datatrust_core::{NoteSigner, Role, UnixSeconds};
use datatrust_proto::v1;
use datatrust_tests::{
    EXAMPLE_TERMS, RatifiedTrust, datatrust_binary, new_signer, upload_events as upload,
};
use tonic::Code;

fn key(at_ms: i64) -> v1::Event {
    v1::Event {
        time_ms: at_ms,
        application: "editor".into(),
        kind: Some(v1::event::Kind::Key(v1::KeyEvent {
            key_class: v1::KeyClass::Letter.into(),
            hold_ms: 80,
            character: String::new(),
            password_field: false,
        })),
    }
}

fn pointer(at_ms: i64) -> v1::Event {
    v1::Event {
        time_ms: at_ms,
        application: "editor".into(),
        kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x: 1, y: 2 })),
    }
}

async fn report(
    licensee: &datatrust_cli::client::SignedIn,
    key: &NoteSigner,
    license: &str,
    run: &str,
    releases: &[&str],
) -> Result<v1::ReportTrainingUseResponse, tonic::Status> {
    let now = datatrust_server::now().0;
    let text = TrainingReport {
        trust: "trust.test".into(),
        license_id: license.into(),
        run_id: run.into(),
        model_id: "acme-operator".into(),
        model_version: "1.0".into(),
        model_family: "acme-agent".into(),
        purpose: "computer-use-agent-training".into(),
        data: releases.iter().map(|id| (*id).to_owned()).collect(),
        started: UnixSeconds(now),
        ended: UnixSeconds(now),
        accelerator_seconds: 3600,
    }
    .to_text();
    licensee
        .training()
        .report_training_use(v1::ReportTrainingUseRequest {
            signature: key.sign(text.as_bytes()).to_vec(),
            report: text,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn invoices(session: &datatrust_cli::client::SignedIn) -> v1::ListInvoicesResponse {
    session
        .ledger()
        .list_invoices(v1::ListInvoicesRequest::default())
        .await
        .unwrap()
        .into_inner()
}

async fn pay(
    trustee: &datatrust_cli::client::SignedIn,
    charge: &str,
    amount: u64,
    reference: &str,
) -> Result<v1::RecordPaymentResponse, tonic::Status> {
    trustee
        .ledger()
        .record_payment(v1::RecordPaymentRequest {
            reference: reference.into(),
            charge_id: charge.into(),
            currency: "EUR".into(),
            amount,
        })
        .await
        .map(tonic::Response::into_inner)
}

// Multi-threaded: the test runs `datatrust member statement --verify` against this server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_are_shared_exactly_verified_offline_and_unpaid_invoices_suspend() {
    let members: Vec<(NoteSigner, &str)> = vec![
        (new_signer(), "Ada Lovelace"),
        (new_signer(), "Bea Bianchi"),
        (new_signer(), "Cy Chen"),
    ];
    // The example agreement, but invoices are due at once (no grace days).
    let terms = EXAMPLE_TERMS.replace("invoice_grace_days = 30", "invoice_grace_days = 0");
    let ratified = RatifiedTrust::start_with_terms(&members, &terms).await;
    let trust = &ratified.trust;
    let trustee = trust.trustee_session().await;
    let info = datatrust_cli::client::trust_info(&trust.channel)
        .await
        .unwrap();
    let (collector_key, collector) = trust.new_principal(Role::Collector, "laptop").await;
    let now_ms = datatrust_server::now().0 * 1000;
    // Ada: 2 keystrokes + 3 pointer moves; Bea: 1 + 1; Cy: 3 keystrokes, never consents.
    let uploads = [
        vec![
            key(now_ms - 9000),
            key(now_ms - 8000),
            pointer(now_ms - 7000),
            pointer(now_ms - 6000),
            pointer(now_ms - 5000),
        ],
        vec![key(now_ms - 4000), pointer(now_ms - 3000)],
        vec![key(now_ms - 2000), key(now_ms - 1500), key(now_ms - 1000)],
    ];
    let mut sessions = Vec::new();
    for (index, ((member, _), events)) in members.iter().zip(uploads).enumerate() {
        let session = trust.sign_in(member).await.unwrap();
        datatrust_tests::authorize(&session, &collector_key).await;
        if index < 2 {
            datatrust_tests::consent(&session, "computer-use-agent-training").await;
        }
        upload(&collector, member, events).await;
        sessions.push(session);
    }

    // Issuing the license charges its fee (50,000.00 EUR), shared 5 : 2 by Ada and Bea.
    let (acme_key, acme) = trust.new_principal(Role::Licensee, "Acme").await;
    let license = ratified.license(&acme, &["keystrokes", "pointer"], 5).await;
    let listed = invoices(&acme).await;
    assert_eq!(listed.invoices.len(), 1);
    let fee = listed.invoices[0].charge.clone().unwrap();
    assert_eq!(
        (fee.kind.as_str(), fee.amount, fee.fund, fee.members),
        ("license-fee", 5_000_000, 500_000, 2)
    );
    pay(&trustee, &fee.id, 5_000_000, "bank-0001")
        .await
        .unwrap();

    // Two runs on one release: 2,500.00 EUR each + 3 keystrokes × 2 + 4 pointer moves × 1.
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
    assert_eq!(release.records, 7);
    let not_this_license = report(&acme, &acme_key, &license, "run-0", &["0123456789abcdef"])
        .await
        .unwrap_err();
    assert_eq!(not_this_license.code(), Code::FailedPrecondition);
    assert!(
        not_this_license.message().contains("data:"),
        "{}",
        not_this_license.message()
    );
    // Invoices here are due at once: each run's is paid before the next use, which would
    // otherwise find it overdue (the suspension is tested below, on purpose).
    let pay_new_run_invoice = |reference: &'static str| {
        let (acme, trustee) = (acme.clone(), trustee.clone());
        async move {
            let unpaid = invoices(&acme)
                .await
                .invoices
                .into_iter()
                .find(|invoice| invoice.due > 0)
                .expect("the new run's invoice");
            pay(&trustee, &unpaid.charge.unwrap().id, unpaid.due, reference)
                .await
                .unwrap();
        }
    };
    for run in ["run-1", "run-2"] {
        report(&acme, &acme_key, &license, run, &[&release.id])
            .await
            .unwrap();
        pay_new_run_invoice(if run == "run-1" {
            "bank-run-1"
        } else {
            "bank-run-2"
        })
        .await;
    }
    let listed = invoices(&acme).await;
    let runs: Vec<v1::Charge> = listed
        .invoices
        .iter()
        .filter_map(|invoice| invoice.charge.clone())
        .filter(|charge| charge.kind == "training-run")
        .collect();
    assert_eq!(runs.len(), 2);
    for charge in &runs {
        assert_eq!((charge.amount, charge.fund), (250_010, 25_001));
    }

    // Statements, computed by hand with largest-remainder rounding:
    //   license fee: 4,500,000 × 5/7 = 3,214,285.71 → 3,214,286; × 2/7 = 1,285,714.29 → 1,285,714
    //   each run:      225,009 × 5/7 =   160,720.71 →   160,721; × 2/7 =    64,288.29 →    64,288
    let expected = [
        (3_214_286u64, 160_721u64, 3_535_728u64),
        (1_285_714, 64_288, 1_414_290),
    ];
    for (session, (fee_share, run_share, total)) in sessions.iter().zip(expected) {
        let statement = session
            .ledger()
            .get_my_statement(v1::GetMyStatementRequest::default())
            .await
            .unwrap()
            .into_inner();
        let mut amounts: Vec<(String, u64)> = statement
            .lines
            .iter()
            .map(|line| (line.charge.clone().unwrap().kind, line.my_amount))
            .collect();
        amounts.sort();
        assert_eq!(
            amounts,
            vec![
                ("license-fee".to_owned(), fee_share),
                ("training-run".to_owned(), run_share),
                ("training-run".to_owned(), run_share),
            ]
        );
        assert_eq!(statement.totals.len(), 1);
        assert_eq!(
            (statement.totals[0].earned, statement.totals[0].balance),
            (total, total)
        );
        // In pages of one line: each charge once, the same totals on every page.
        let mut paged_amounts = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = session
                .ledger()
                .get_my_statement(v1::GetMyStatementRequest {
                    page_size: 1,
                    page_token,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.lines.len() <= 1);
            assert_eq!(page.totals, statement.totals);
            paged_amounts.extend(
                page.lines
                    .iter()
                    .map(|line| (line.charge.clone().unwrap().kind, line.my_amount)),
            );
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        paged_amounts.sort();
        assert_eq!(paged_amounts, amounts);
    }
    let cy = sessions[2]
        .ledger()
        .get_my_statement(v1::GetMyStatementRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(cy.lines.is_empty(), "Cy's data was never used");

    // Each member checks their shares offline with only the log's verifier key.
    let work = tempfile::tempdir().unwrap();
    for (index, (member, _)) in members.iter().enumerate().take(2) {
        let key_file = work.path().join(format!("member-{index}.key"));
        std::fs::write(&key_file, member.to_private_text()).unwrap();
        let output = Command::new(datatrust_binary())
            .args([
                "member",
                "statement",
                "--verify",
                "--vkey",
                &info.log_vkey,
                "--server",
                &trust.grpc_url,
                "--key",
            ])
            .arg(&key_file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(stdout.matches("[verified]").count(), 3, "{stdout}");
        // In currency units, as people read money: 3,535,728 cents is EUR 35,357.28.
        let earned = ["EUR 35,357.28", "EUR 14,142.90"][index];
        assert_eq!(expected[index].2, [3_535_728, 1_414_290][index]);
        assert!(
            stdout.contains(&format!("EUR: earned {earned}, paid out EUR 0.00")),
            "{stdout}"
        );
    }

    // A third run's invoice, due at once, left unpaid: the next use suspends Acme.
    report(&acme, &acme_key, &license, "run-3", &[&release.id])
        .await
        .unwrap();
    // Time passes (the trust's clock, moved): the invoice, due at once, is now overdue.
    ratified.trust.clock.advance(2);
    let refused = report(&acme, &acme_key, &license, "run-4", &[&release.id])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("suspended"),
        "{}",
        refused.message()
    );
    let refused_release = acme
        .releases()
        .create_release(v1::CreateReleaseRequest {
            license_id: license.clone(),
            in_background: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused_release.code(), Code::FailedPrecondition);
    let suspension = invoices(&acme).await.suspension.expect("Acme is suspended");
    let entry = trust_entry(&trustee, suspension.log_index).await;
    assert_eq!(entry.kind, "licensee-suspended");
    assert!(entry.field("licenses").unwrap().contains(&license));

    // Lifting is refused while anything is overdue; pay, then lift, then uses work again.
    // Lifting is a safety action: both trustees approve, each signing.
    let lift = |reason: &'static str| {
        let sessions = [
            (trust.trustee.clone(), trustee.clone()),
            (
                ratified.second_trustee.0.clone(),
                ratified.second_trustee.1.clone(),
            ),
        ];
        let licensee = acme_key.public_key();
        async move {
            let action = datatrust_core::safety::SafetyAction::LiftSuspension { licensee };
            let mut last = None;
            for (approval, (key, session)) in sessions.into_iter().enumerate() {
                let answer = session
                    .ledger()
                    .lift_suspension(v1::LiftSuspensionRequest {
                        licensee_public_key: licensee.as_bytes().to_vec(),
                        reason: reason.into(),
                        signature: datatrust_tests::safety_signature(&key, &action),
                    })
                    .await;
                let failed = answer.is_err();
                if approval == 0
                    && let Ok(first) = &answer
                {
                    assert!(first.get_ref().pending, "one trustee alone lifts nothing");
                }
                last = Some(answer);
                if failed {
                    break;
                }
            }
            last.unwrap()
        }
    };
    assert_eq!(
        lift("negotiated").await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    pay_new_run_invoice("bank-run-3").await;
    assert!(!lift("paid in full").await.unwrap().into_inner().pending);
    report(&acme, &acme_key, &license, "run-5", &[&release.id])
        .await
        .unwrap();
    pay(&trustee, &fee.id, 1, "bank-late").await.unwrap_err();

    // The union's ledger adds up; payouts are recorded and bounded by the balance.
    let ada_key = members[0].0.public_key().as_bytes().to_vec();
    let payout = |amount: u64, currency: &'static str, reference: &'static str| {
        let trustee = trustee.clone();
        let member = ada_key.clone();
        async move {
            trustee
                .ledger()
                .record_payout(v1::RecordPayoutRequest {
                    reference: reference.into(),
                    member_public_key: member,
                    currency: currency.into(),
                    amount,
                })
                .await
        }
    };
    payout(1_000_000, "EUR", "payout-ada-1").await.unwrap();
    let too_much = payout(10_000_000, "EUR", "payout-ada-2").await.unwrap_err();
    assert_eq!(too_much.code(), Code::InvalidArgument);
    assert!(
        too_much.message().starts_with("amount:"),
        "{}",
        too_much.message()
    );
    let wrong_currency = payout(1, "USD", "payout-ada-3").await.unwrap_err();
    assert!(
        wrong_currency.message().starts_with("currency:"),
        "{}",
        wrong_currency.message()
    );
    let twice = payout(1, "EUR", "payout-ada-1").await.unwrap_err();
    assert_eq!(twice.code(), Code::AlreadyExists);
    let ledger = trustee
        .ledger()
        .get_ledger(v1::GetLedgerRequest {})
        .await
        .unwrap()
        .into_inner();
    let eur = &ledger.totals[0];
    let charged = 5_000_000 + 4 * 250_010;
    assert_eq!(eur.charged, charged);
    assert_eq!(eur.received, 5_000_000 + 3 * 250_010);
    assert_eq!(eur.outstanding, 250_010);
    assert_eq!(eur.fund + eur.members_earned, charged);
    assert_eq!(eur.paid_out, 1_000_000);
    assert!(ledger.suspensions.is_empty());
    // The same figures as CSV and JSON, from the command line.
    let cli = |key: &NoteSigner, arguments: &[&str]| {
        let key_file = work.path().join(format!("{}.key", rand::random::<u64>()));
        std::fs::write(&key_file, key.to_private_text()).unwrap();
        let output = Command::new(datatrust_binary())
            .args(arguments)
            .args(["--server", &trust.grpc_url, "--key"])
            .arg(&key_file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let ledger_csv = cli(&trust.trustee, &["trustee", "ledger", "--csv"]);
    assert_eq!(
        ledger_csv,
        format!(
            "currency,charged,received,outstanding,fund,members_earned,paid_out,owed_to_members\nEUR,{charged},{},{},{},{},1000000,{}\n",
            eur.received,
            eur.outstanding,
            eur.fund,
            eur.members_earned,
            eur.members_earned - 1_000_000
        )
    );
    let invoices_csv = cli(&acme_key, &["company", "invoices", "--csv"]);
    let rows: Vec<&str> = invoices_csv.lines().collect();
    assert_eq!(
        rows.len(),
        1 + 5,
        "a header and five invoices: {invoices_csv}"
    );
    assert_eq!(
        rows.iter()
            .filter(|row| row.contains(",250010,0,250010,"))
            .count(),
        1,
        "run-5's invoice is unpaid: {invoices_csv}"
    );
    let statement_json = cli(&members[1].0, &["member", "statement", "--json"]);
    let lines: Vec<serde_json::Value> = statement_json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let bea_earned = 1_414_290 + 2 * 64_288;
    assert!(
        lines
            .iter()
            .any(|line| line["currency"] == "EUR" && line["earned"] == bea_earned),
        "{statement_json}"
    );
    let ada = sessions[0]
        .ledger()
        .get_my_statement(v1::GetMyStatementRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ada.totals[0].paid_out, 1_000_000);
    assert_eq!(
        ada.totals[0].balance,
        ada.totals[0].earned - 1_000_000,
        "the balance is what was earned less what was paid out"
    );
}

async fn trust_entry(session: &datatrust_cli::client::SignedIn, index: u64) -> DecodedEntry {
    let entries =
        datatrust_proto::v1::log_service_client::LogServiceClient::new(session.channel().clone())
            .get_entries(v1::GetEntriesRequest {
                start: index,
                end: index + 1,
            })
            .await
            .unwrap()
            .into_inner();
    DecodedEntry::parse(&entries.entries[0]).unwrap()
}

#[tokio::test]
async fn bad_ledger_input_is_refused_with_the_field() {
    let ratified = RatifiedTrust::start(&[(new_signer(), "Ada")]).await;
    let trust = &ratified.trust;
    let trustee = trust.trustee_session().await;
    let (_, acme) = trust.new_principal(Role::Licensee, "Acme").await;
    ratified.license(&acme, &["pointer"], 1).await;
    let charge = invoices(&acme).await.invoices[0].charge.clone().unwrap();
    let cases: Vec<(v1::RecordPaymentRequest, Code, &str)> = vec![
        (
            v1::RecordPaymentRequest {
                reference: "r-1".into(),
                charge_id: charge.id.clone(),
                currency: "USD".into(),
                amount: 1,
            },
            Code::InvalidArgument,
            "currency:",
        ),
        (
            v1::RecordPaymentRequest {
                reference: "r-1".into(),
                charge_id: charge.id.clone(),
                currency: "eur".into(),
                amount: 1,
            },
            Code::InvalidArgument,
            "currency:",
        ),
        (
            v1::RecordPaymentRequest {
                reference: "r-1".into(),
                charge_id: charge.id.clone(),
                currency: "EUR".into(),
                amount: 0,
            },
            Code::InvalidArgument,
            "amount:",
        ),
        (
            v1::RecordPaymentRequest {
                reference: "r-1".into(),
                charge_id: charge.id.clone(),
                currency: "EUR".into(),
                amount: u64::MAX,
            },
            Code::InvalidArgument,
            "amount:",
        ),
        (
            v1::RecordPaymentRequest {
                reference: " ".into(),
                charge_id: charge.id.clone(),
                currency: "EUR".into(),
                amount: 1,
            },
            Code::InvalidArgument,
            "reference:",
        ),
        (
            v1::RecordPaymentRequest {
                reference: "r-1".into(),
                charge_id: "xyz".into(),
                currency: "EUR".into(),
                amount: 1,
            },
            Code::InvalidArgument,
            "charge_id:",
        ),
    ];
    for (request, code, field) in cases {
        let error = trustee.ledger().record_payment(request).await.unwrap_err();
        assert_eq!(error.code(), code, "{}", error.message());
        assert!(error.message().starts_with(field), "{}", error.message());
    }
    // A payment recorded twice is refused, and counted once.
    pay(&trustee, &charge.id, 100, "r-2").await.unwrap();
    let twice = pay(&trustee, &charge.id, 100, "r-2").await.unwrap_err();
    assert_eq!(twice.code(), Code::AlreadyExists);
    assert_eq!(invoices(&acme).await.invoices[0].paid, 100);
}
