//! Licensees' duties over months, with the clock in the test's hands: through the core's
//! registry on a real sled store, an invoice unpaid past the terms' grace period and a license
//! left unaccounted for longer than the terms allow each suspend the licensee; releases and
//! new licenses are refused while suspended; lifting needs the invoices paid and restarts
//! the reporting clock; a declaration of no use or a training-use report keeps it current.

use std::sync::{Arc, Mutex};

use datatrust_core::compensation::no_use_message;
use datatrust_core::governance::{
    RequestedTerms, TrainingReport, approval_message, ballot_message, countersign_message,
};
use datatrust_core::log_entry::LogEntry;
use datatrust_core::registry::{DomainError, Journal, JournalError, Registry};
use datatrust_core::store::TrustStore as _;
use datatrust_core::{DisplayName, NoteSigner, Origin, Principal, Role, UnixSeconds};
use datatrust_store::SledStore;

#[derive(Default)]
struct MemoryJournal(Mutex<Vec<Vec<u8>>>);

impl Journal for MemoryJournal {
    fn record(&self, entry: &LogEntry) -> Result<u64, JournalError> {
        let mut entries = self.0.lock().unwrap();
        entries.push(entry.encode());
        Ok(entries.len() as u64 - 1)
    }
}

const TERMS: &str = include_str!("../../../terms/example-agreement.toml");
const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn day(days: i64) -> UnixSeconds {
    UnixSeconds(T0 + days * DAY)
}

fn precondition<T: std::fmt::Debug>(result: Result<T, DomainError>) -> String {
    match result {
        Err(DomainError::FailedPrecondition(why)) => why,
        other => panic!("expected a failed precondition, got {other:?}"),
    }
}

#[test]
fn unpaid_invoices_and_unreported_licenses_suspend_until_put_right() {
    let origin = Origin::parse("trust.test").unwrap();
    let registry = Registry::new(
        Arc::new(SledStore::temporary().unwrap()),
        MemoryJournal::default(),
        origin.clone(),
    );
    let add = |key: &NoteSigner, role: Role| {
        let principal = Principal::new_active(
            key.public_key(),
            role,
            DisplayName::parse("p", "display_name").unwrap(),
            day(0),
            rand::random(),
        );
        registry.store().insert_principal(&principal).unwrap();
        principal
    };
    let trustee_key = NoteSigner::new("t", rand::random()).unwrap();
    let trustee = add(&trustee_key, Role::Trustee);
    let member_key = NoteSigner::new("m", rand::random()).unwrap();
    let member = add(&member_key, Role::Member);
    let licensee_key = NoteSigner::new("l", rand::random()).unwrap();
    let licensee = add(&licensee_key, Role::Licensee);

    // 30 days to pay, and a report or a declaration at least every 30 days.
    let terms = TERMS
        .replace("trustee_quorum = 2", "trustee_quorum = 1")
        .replace("member_quorum_percent = 20", "member_quorum_percent = 0")
        .replace("usage_report_days = 90", "usage_report_days = 30");
    let hash = registry
        .propose_terms(&trustee, &terms, day(0))
        .unwrap()
        .value
        .hash;
    let ballot = member_key.sign(&ballot_message(origin.as_str(), &hash, true));
    registry
        .cast_ballot(&member, &hash, true, &ballot, day(0))
        .unwrap();
    registry.close_vote(&trustee, &hash, day(0)).unwrap();
    let countersignature = trustee_key.sign(&countersign_message(origin.as_str(), &hash));
    registry
        .countersign_terms(&trustee, &hash, &countersignature, day(0))
        .unwrap();
    let license_signer = NoteSigner::new("trust.test/license", rand::random()).unwrap();
    let request_license = |now: UnixSeconds| {
        registry
            .request_license(
                &licensee,
                RequestedTerms {
                    purpose: "computer-use-agent-training".into(),
                    categories: vec!["pointer".into()],
                    data_from: day(-30),
                    data_to: day(0),
                    model_family: "acme".into(),
                    max_training_runs: 10,
                    duration_days: 365,
                },
                rand::random(),
                now,
            )
            .unwrap()
    };
    let approve = |request_id: &str, now: UnixSeconds| {
        let signature = trustee_key.sign(&approval_message(origin.as_str(), request_id, &hash));
        registry.approve_license_request(&trustee, request_id, &signature, &license_signer, now)
    };
    let request = request_license(day(0));
    let license = approve(&request.id, day(0)).unwrap().value.1.unwrap();
    let release = |now: UnixSeconds| {
        registry.create_release(&licensee, &license.id, &[7; 32], rand::random(), now)
    };

    // Day 29: nothing is late yet.
    assert!(registry.enforce_duties(day(29)).unwrap().is_empty());
    release(day(29)).unwrap();

    // Day 31: the license fee is overdue; the licensee is suspended, once.
    let made = registry.enforce_duties(day(31)).unwrap();
    assert_eq!(made.len(), 1);
    assert!(made[0].reason.starts_with("invoice "), "{}", made[0].reason);
    assert!(registry.enforce_duties(day(31)).unwrap().is_empty());
    assert!(precondition(release(day(31))).contains("suspended"));
    let second = request_license(day(31));
    assert!(precondition(approve(&second.id, day(31))).contains("suspended"));

    // Lifting is refused until the invoice is paid.
    assert!(
        precondition(registry.lift_suspension(&trustee, &licensee.public_key, "promised", day(31)))
            .contains("overdue")
    );
    let invoice = registry
        .invoices(&licensee, None, day(31))
        .unwrap()
        .remove(0);
    registry
        .record_payment(
            &trustee,
            "bank-1",
            &invoice.charge.id,
            "EUR",
            invoice.due,
            day(31),
        )
        .unwrap();
    registry
        .lift_suspension(&trustee, &licensee.public_key, "paid", day(31))
        .unwrap();
    // The reporting clock restarted at the lift: on day 31 the license was already 31 days
    // unaccounted, but the licensee is not suspended again at once.
    assert!(registry.enforce_duties(day(32)).unwrap().is_empty());
    release(day(32)).unwrap();

    // A declaration of no use on day 40 carries the license to day 70.
    let declare = |until: UnixSeconds, now: UnixSeconds| {
        let signature = licensee_key.sign(&no_use_message(origin.as_str(), &license.id, until));
        registry.declare_no_use(&licensee, &license.id, until, &signature, now)
    };
    declare(day(40), day(40)).unwrap();
    assert!(precondition(declare(day(39), day(40))).contains("already accounted"));
    assert!(matches!(
        declare(day(41), day(40)),
        Err(DomainError::Invalid(_))
    ));
    let forged = registry.declare_no_use(&licensee, &license.id, day(50), &[0; 64], day(50));
    assert!(matches!(forged, Err(DomainError::Invalid(_))), "{forged:?}");
    assert!(registry.enforce_duties(day(70)).unwrap().is_empty());

    // Day 71: 31 days without a report or declaration: suspended.
    let made = registry.enforce_duties(day(71)).unwrap();
    assert_eq!(made.len(), 1);
    assert!(
        made[0].reason.contains("no usage report"),
        "{}",
        made[0].reason
    );
    // Declaring is how a late licensee catches up, suspended or not; then trustees lift.
    declare(day(71), day(71)).unwrap();
    registry
        .lift_suspension(&trustee, &licensee.public_key, "reported", day(71))
        .unwrap();

    // A training-use report is itself what a late reporter owes: accepted, and it counts.
    let report = TrainingReport {
        trust: "trust.test".into(),
        license_id: license.id.clone(),
        run_id: "run-1".into(),
        model_id: "m".into(),
        model_version: "1".into(),
        model_family: "acme".into(),
        purpose: "computer-use-agent-training".into(),
        data: Vec::new(),
        started: day(110),
        ended: day(110),
        accelerator_seconds: 1,
    }
    .to_text();
    let signature = licensee_key.sign(report.as_bytes());
    registry
        .report_training_use(&licensee, &report, &signature, day(110))
        .unwrap();
    assert!(registry.enforce_duties(day(111)).unwrap().is_empty());
    // And its charge falls due 30 days later.
    let made = registry.enforce_duties(day(141)).unwrap();
    assert_eq!(made.len(), 1);
    assert!(made[0].reason.starts_with("invoice "), "{}", made[0].reason);
}
