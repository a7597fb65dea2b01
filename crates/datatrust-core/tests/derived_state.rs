//! Derived state kept as changes commit, and built once for a trust from before it: the
//! pointer to the terms in force; what was paid towards each charge, the charges not yet
//! paid in full, and each licensee's licenses (the duty check reads those few keys).

mod common;

use common::{Trust, day};
use datatrust_core::store::RecordWrite;
use datatrust_core::store::{RecordKind, RecordStore as _};

#[test]
fn the_terms_in_force_are_found_with_and_without_the_pointer() {
    let trust = Trust::ratified(1, |terms| terms);
    let active = trust.registry.active_terms().unwrap().unwrap();
    assert_eq!(active.hash, trust.terms_hash);

    // A trust from before the pointer: the terms in force are still found (by reading the
    // history), and the start-up step writes the pointer once.
    trust
        .registry
        .store()
        .write_records(vec![(RecordKind::ActiveTerms, b"active".to_vec(), None)])
        .unwrap();
    assert_eq!(
        trust.registry.active_terms().unwrap().unwrap().hash,
        trust.terms_hash
    );
    trust.registry.ensure_active_terms_pointer().unwrap();
    let pointer = trust
        .registry
        .store()
        .get_record(RecordKind::ActiveTerms, b"active")
        .unwrap()
        .expect("the pointer is written");
    assert_eq!(
        serde_json::from_slice::<String>(&pointer).unwrap(),
        trust.terms_hash
    );
    // Consent reads the parsed terms through it.
    let (_, member) = &trust.members[0];
    let consent = trust
        .registry
        .set_consent(member, "computer-use-agent-training", true, day(1))
        .unwrap();
    assert!(consent.value.granted);
}

#[test]
fn a_trust_from_before_the_charge_indexes_gets_them_once_and_suspends_the_same() {
    let trust = Trust::ratified(1, |terms| terms);
    let request = trust.request("computer-use-agent-training", day(0));
    let license = trust.approve(&request, day(0)).unwrap();
    let registry = &trust.registry;
    let fee = registry
        .invoices(&trust.licensee, None, day(1))
        .unwrap()
        .remove(0);
    registry
        .record_payment(
            &trust.trustee,
            "bank-1",
            &datatrust_core::ChargeId::parse(&fee.charge.id, "id").unwrap(),
            &datatrust_core::Currency::parse("EUR", "id").unwrap(),
            datatrust_core::Amount::parse(1, "amount").unwrap(),
            day(1),
        )
        .unwrap();

    // Forget the derived records and their markers, as a trust from before them.
    let store = registry.store();
    let mut forget: Vec<RecordWrite> = Vec::new();
    for kind in [
        RecordKind::ChargePaid,
        RecordKind::OpenCharge,
        RecordKind::LicenseeLicense,
    ] {
        for (key, _) in store.scan_records(kind, b"").unwrap() {
            forget.push((kind, key, None));
        }
    }
    assert_eq!(forget.len(), 3, "the derived records exist: {forget:?}");
    store.write_records(forget).unwrap();
    registry.ensure_licensee_indexes().unwrap();

    // Paid towards the fee: 1; the rest is overdue after the grace, and suspends.
    let again = registry
        .invoices(&trust.licensee, None, day(1))
        .unwrap()
        .remove(0);
    assert_eq!((again.paid, again.due), (1, fee.charge.amount - 1));
    let made = registry.enforce_duties(day(31)).unwrap();
    assert_eq!(made.len(), 1, "the overdue fee suspends");
    assert!(
        made[0].reason.contains(&fee.charge.id),
        "{}",
        made[0].reason
    );
    // A second run of the migration reads nothing and changes nothing.
    registry.ensure_licensee_indexes().unwrap();
    let _ = license;
}
