//! The terms in force are read through a pointer written at ratification; a trust from
//! before the pointer gets it once, at start, and reads the same terms.

mod common;

use common::{Trust, day};
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
