//! Property test over random members, consents, erasures, events and licenses, through the
//! core's registry on a real sled store: a release never contains a record of a member who
//! had not consented to the license's purpose, of an erased member, or outside the license's
//! categories and window.

use datatrust_core::commit::MemoryJournal;
use datatrust_core::events::{Event, EventBatch, EventKind, KeyClass};
use datatrust_core::governance::{
    RequestedTerms, approval_message, ballot_message, countersign_message,
};
use datatrust_core::memory_store::MemoryStore;
use datatrust_core::registry::Registry;
use datatrust_core::store::TrustStore as _;
use datatrust_core::{DisplayName, NoteSigner, Origin, Principal, Role, UnixSeconds};
use proptest::prelude::*;

const TERMS: &str = include_str!("../../../terms/example-agreement.toml");
const NOW: i64 = 1_800_000_000;
const CATEGORIES: [&str; 3] = ["keystrokes", "pointer", "screenshots"];

#[derive(Debug, Clone)]
struct MemberPlan {
    consents: bool,
    erased: bool,
    /// (category index, seconds before NOW)
    events: Vec<(usize, i64)>,
}

fn member_plan() -> impl Strategy<Value = MemberPlan> {
    (
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::collection::vec((0usize..3, 0i64..40 * 86_400), 1..12),
    )
        .prop_map(|(consents, erased, events)| MemberPlan {
            consents,
            erased,
            events,
        })
}

fn event(category: usize, seconds_ago: i64, marker: &str) -> Event {
    let kind = match category {
        0 => EventKind::Key {
            key_class: KeyClass::Letter,
            hold_ms: 50,
            character: None,
            password_field: false,
        },
        1 => EventKind::Pointer { x: 1, y: 2 },
        _ => EventKind::Screenshot {
            sha256: "ab".repeat(32),
            size_bytes: 1000,
        },
    };
    Event {
        time_ms: (NOW - seconds_ago) * 1000,
        application: marker.to_owned(),
        kind,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_release_holds_only_consenting_unerased_members_in_scope(
        plans in prop::collection::vec(member_plan(), 1..6),
        license_categories in prop::sample::subsequence(vec![0usize, 1, 2], 1..=3),
        window_from_days in 1i64..40,
        window_length_days in 1i64..40,
    ) {
        let origin = Origin::parse("trust.test").unwrap();
        let store = MemoryStore::in_memory();
        let registry = Registry::new(store.clone(), MemoryJournal::new(store), origin.clone());
        let now = UnixSeconds(NOW);
        let add = |key: &NoteSigner, role: Role| {
            let principal = Principal::new_active(key.public_key(), role, DisplayName::parse("p", "display_name").unwrap(), now, rand::random());
            registry.store().insert_principal(&principal).unwrap();
            principal
        };
        let trustee_key = NoteSigner::new("t", rand::random()).unwrap();
        let trustee = add(&trustee_key, Role::Trustee);
        let collector_key = NoteSigner::new("c", rand::random()).unwrap();
        let collector = add(&collector_key, Role::Collector);
        let licensee_key = NoteSigner::new("l", rand::random()).unwrap();
        let licensee = add(&licensee_key, Role::Licensee);
        let member_keys: Vec<NoteSigner> = plans.iter().map(|_| NoteSigner::new("m", rand::random()).unwrap()).collect();
        let members: Vec<Principal> = member_keys.iter().map(|key| add(key, Role::Member)).collect();

        // Terms one trustee can ratify, voted by the first member.
        let terms = TERMS.replace("trustee_quorum = 2", "trustee_quorum = 1").replace("member_quorum_percent = 20", "member_quorum_percent = 0");
        let hash = registry.propose_terms(&trustee, &terms, now).unwrap().value.hash;
        // The vote closes at its deadline (the test moves time there).
        registry.cast_ballot(&members[0], &datatrust_core::TermsHash::parse(&hash, "id").unwrap(), true, &member_keys[0].sign(&ballot_message(origin.as_str(), &hash, true)), now).unwrap();
        assert_eq!(registry.close_due_votes(now.plus_seconds(14 * 86_400)).unwrap().len(), 1);
        registry.countersign_terms(&trustee, &datatrust_core::TermsHash::parse(&hash, "id").unwrap(), &trustee_key.sign(&countersign_message(origin.as_str(), &hash)), now).unwrap();

        for (index, (plan, member)) in plans.iter().zip(&members).enumerate() {
            registry.authorize_collector(member, &collector.public_key, now).unwrap();
            if plan.consents {
                registry.set_consent(member, "computer-use-agent-training", true, now).unwrap();
            }
            let marker = format!("member-{index}");
            let events = plan.events.iter().map(|(category, ago)| event(*category, *ago, &marker)).collect();
            registry.ingest(&collector, &member.public_key, EventBatch { device_id: "d".into(), sequence: 1, events }, now).unwrap();
            if plan.erased {
                registry.erase_my_data(member, now).unwrap();
            }
        }

        let data_from = NOW - window_from_days * 86_400;
        let data_to = data_from + window_length_days * 86_400;
        let requested = RequestedTerms {
            purpose: "computer-use-agent-training".into(),
            categories: license_categories.iter().map(|index| CATEGORIES[*index].to_owned()).collect(),
            data_from: UnixSeconds(data_from),
            data_to: UnixSeconds(data_to),
            model_family: "acme".into(),
            max_training_runs: 1,
            duration_days: 10,
        };
        let request = registry.request_license(&licensee, requested, rand::random(), now).unwrap().value;
        let license_signer = NoteSigner::new("trust.test/license", rand::random()).unwrap();
        let approved = registry
            .approve_license_request(&trustee, &datatrust_core::RequestId::parse(&request.id, "id").unwrap(), &trustee_key.sign(&approval_message(origin.as_str(), &request.id, &hash)), &license_signer, now)
            .unwrap();
        let license = approved.value.1.unwrap();
        let release = registry.create_release(&licensee, &datatrust_core::LicenseId::parse(&license.id, "id").unwrap(), &[7; 32], rand::random(), now).unwrap().value;

        let mut released = 0u64;
        for (part_index, part) in release.parts.iter().enumerate() {
            let member_index = members.iter().position(|member| member.public_key == part.member).unwrap();
            let plan = &plans[member_index];
            prop_assert!(plan.consents, "member {member_index} did not consent");
            prop_assert!(!plan.erased, "member {member_index} was erased");
            let mut records = Vec::new();
            for chunk in 0.. {
                match registry.release_part_records(&licensee, &datatrust_core::ReleaseId::parse(&release.id, "id").unwrap(), part_index, chunk).unwrap() {
                    Some(part) => records.extend(part),
                    None => break,
                }
            }
            assert!(!records.is_empty());
            prop_assert_eq!(records.len() as u64, part.count);
            for record in &records {
                let record: serde_json::Value = serde_json::from_slice(record).unwrap();
                let marker = format!("member-{member_index}");
                prop_assert_eq!(record["application"].as_str(), Some(marker.as_str()));
                let seconds = record["time_ms"].as_i64().unwrap().div_euclid(1000);
                prop_assert!(seconds >= data_from && seconds < data_to, "outside the window");
                let category = record["kind"].as_object().unwrap().keys().next().unwrap().clone();
                let category = match category.as_str() { "key" => "keystrokes", "pointer" => "pointer", _ => "screenshots" };
                prop_assert!(license.license().categories.iter().any(|allowed| allowed == category), "outside the categories");
            }
            released += part.count;
        }
        // And nothing in scope was left out.
        let mut expected = 0u64;
        for plan in &plans {
            if plan.consents && !plan.erased {
                expected += plan.events.iter().filter(|(category, ago)| {
                    let seconds = NOW - ago;
                    license_categories.contains(category) && seconds >= data_from && seconds < data_to
                }).count() as u64;
            }
        }
        prop_assert_eq!(released, expected);
        // The license runs 10 days: past its expiry no release is built.
        let expired = registry.create_release(&licensee, &datatrust_core::LicenseId::parse(&license.id, "id").unwrap(), &[7; 32], rand::random(), UnixSeconds(NOW + 11 * 86_400));
        prop_assert!(matches!(expired, Err(datatrust_core::registry::DomainError::Refused { kind: datatrust_core::registry::Refusal::FailedPrecondition, .. })), "{expired:?}");
    }
}
