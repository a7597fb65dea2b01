//! Licensees' duties over months, with the clock in the test's hands: through the core's
//! registry on a real sled store, an invoice unpaid past the terms' grace period and a license
//! left unaccounted for longer than the terms allow each suspend the licensee; releases and
//! new licenses are refused while suspended; lifting needs the invoices paid and restarts
//! the reporting clock; a declaration of no use or a training-use report keeps it current.

mod common;

use common::{Trust, day, precondition};
use datatrust_core::UnixSeconds;
use datatrust_core::compensation::no_use_message;
use datatrust_core::governance::TrainingReport;
use datatrust_core::registry::DomainError;

#[test]
fn unpaid_invoices_and_unreported_licenses_suspend_until_put_right() {
    // 30 days to pay, and a report or a declaration at least every 30 days.
    let trust = Trust::ratified(1, |terms| {
        terms.replace("usage_report_days = 90", "usage_report_days = 30")
    });
    let (registry, origin) = (&trust.registry, &trust.origin);
    let (trustee, licensee, licensee_key) = (
        trust.trustee.clone(),
        trust.licensee.clone(),
        &trust.licensee_key,
    );
    let request_license = |now: UnixSeconds| trust.request("computer-use-agent-training", now);
    let approve = |request_id: &str, now: UnixSeconds| trust.approve(request_id, now);
    let request = request_license(day(0));
    let license = approve(&request, day(0)).unwrap();
    let release = |now: UnixSeconds| {
        registry.create_release(
            &licensee,
            &datatrust_core::LicenseId::parse(&license.id, "id").unwrap(),
            &[7; 32],
            rand::random(),
            now,
        )
    };

    // Day 29: nothing is late yet.
    assert!(registry.enforce_duties(day(29)).unwrap().is_empty());
    let first_release = release(day(29)).unwrap().value.id;

    // Day 31: the license fee is overdue; the licensee is suspended, once.
    let made = registry.enforce_duties(day(31)).unwrap();
    assert_eq!(made.len(), 1);
    assert!(made[0].reason.starts_with("invoice "), "{}", made[0].reason);
    assert!(registry.enforce_duties(day(31)).unwrap().is_empty());
    assert!(precondition(release(day(31))).contains("suspended"));
    let second = request_license(day(31));
    assert!(precondition(approve(&second, day(31))).contains("suspended"));

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
            &datatrust_core::ChargeId::parse(&invoice.charge.id, "id").unwrap(),
            &datatrust_core::Currency::parse("EUR", "id").unwrap(),
            datatrust_core::Amount::parse(invoice.due, "amount").unwrap(),
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
        registry.declare_no_use(
            &licensee,
            &datatrust_core::LicenseId::parse(&license.id, "id").unwrap(),
            until,
            &signature,
            now,
        )
    };
    declare(day(40), day(40)).unwrap();
    assert!(precondition(declare(day(39), day(40))).contains("already accounted"));
    assert!(matches!(
        declare(day(41), day(40)),
        Err(DomainError::Invalid(_))
    ));
    let forged = registry.declare_no_use(
        &licensee,
        &datatrust_core::LicenseId::parse(&license.id, "id").unwrap(),
        day(50),
        &[0; 64],
        day(50),
    );
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
        data: vec![first_release.clone()],
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
