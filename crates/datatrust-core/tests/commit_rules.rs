//! Rules that span many keys, kept on the one commit path without a lock: a ballot racing
//! the close of its vote is either counted or refused, never acknowledged and lost; an
//! erasure a crash interrupted after its entry is finished at the next start.

mod common;

use common::{Trust, day};
use datatrust_core::governance::ballot_message;
use datatrust_core::store::{RecordKind, RecordStore as _};
use datatrust_core::{TermsHash, UnixSeconds};

#[test]
fn every_acknowledged_ballot_is_in_the_tally_of_a_vote_closed_meanwhile() {
    for round in 0..5 {
        let trust = Trust::ratified(24, |terms| terms);
        let registry = &trust.registry;
        let terms = common::TERMS
            .replace("trustee_quorum = 2", "trustee_quorum = 1")
            .replace("member_quorum_percent = 20", "member_quorum_percent = 0")
            + &format!("\n# round {round}\n");
        let hash = registry
            .propose_terms(&trust.trustee, &terms, day(1))
            .unwrap()
            .value
            .hash;
        let terms_hash = TermsHash::parse(&hash, "terms").unwrap();
        let closes_at = registry
            .terms_history()
            .unwrap()
            .into_iter()
            .find(|record| record.hash == hash)
            .and_then(|record| record.voting_closes_at)
            .expect("a deadline");
        // Ballots are cast at day 1 (before the deadline) while the sweep closes the vote at
        // its deadline: only the closing mark decides which ballots count.
        let (acknowledged, closed) = std::thread::scope(|scope| {
            let voters: Vec<_> = trust
                .members
                .iter()
                .map(|(key, member)| {
                    let (origin, hash, terms_hash) = (&trust.origin, &hash, &terms_hash);
                    scope.spawn(move || {
                        let ballot = key.sign(&ballot_message(origin.as_str(), hash, true));
                        registry
                            .cast_ballot(member, terms_hash, true, &ballot, day(1))
                            .is_ok()
                    })
                })
                .collect();
            let closer = scope.spawn(|| registry.close_due_votes(closes_at).unwrap());
            let acknowledged = voters
                .into_iter()
                .map(|voter| voter.join().unwrap())
                .filter(|acknowledged| *acknowledged)
                .count() as u64;
            (acknowledged, closer.join().unwrap())
        });
        assert_eq!(closed.len(), 1);
        let tally = closed[0].tally.expect("a tally");
        assert_eq!(
            tally.yes, acknowledged,
            "round {round}: every acknowledged ballot is counted, and only those"
        );
    }
}

#[test]
fn an_erasure_interrupted_after_its_entry_is_finished_at_start() {
    let trust = Trust::ratified(2, |terms| terms);
    let registry = &trust.registry;
    let (_, ada) = &trust.members[0];
    registry
        .set_consent(ada, "computer-use-agent-training", true, day(1))
        .unwrap();
    // As a crash would leave it: the erasure's entry and its pending record committed,
    // nothing after.
    registry
        .store()
        .write_records(vec![(
            RecordKind::PendingErasure,
            ada.public_key.as_bytes().to_vec(),
            Some(br#"{"events":0,"log_index":42}"#.to_vec()),
        )])
        .unwrap();
    assert_eq!(registry.resume_erasures(day(2)).unwrap(), 1);
    let consents = registry.my_consents(ada).unwrap();
    assert!(consents.iter().all(|consent| !consent.granted));
    assert!(
        registry
            .store()
            .get_record(RecordKind::PendingErasure, ada.public_key.as_bytes())
            .unwrap()
            .is_none()
    );
    // Finished once: the next start has nothing to do.
    assert_eq!(registry.resume_erasures(UnixSeconds(day(3).0)).unwrap(), 0);
    // Asking again after an interrupted erasure finishes it without logging it twice.
    let (_, bea) = &trust.members[1];
    let first = registry.erase_my_data(bea, day(4)).unwrap();
    assert!(first.log_index.is_some());
}
