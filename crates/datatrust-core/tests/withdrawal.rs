//! What withdrawing consent does to licenses already granted, as the license's own terms
//! say: `revoke-affected-licenses` revokes every active license for that purpose that
//! released the member's data (logged, without naming the member), and leaves others alone;
//! `exclude-from-future-releases` only keeps the member out of later releases.

mod common;

use common::{Trust, day, precondition};
use datatrust_core::events::{Event, EventBatch, EventKind};
use datatrust_core::governance::LicenseStatus;
use datatrust_core::store::TrustStore as _;
use datatrust_core::{DisplayName, NoteSigner, Principal, Role};

/// Ada (consenting, with pointer data) is in a release under the first license; a second
/// license for the same purpose has no release yet. Then Ada withdraws.
fn withdraw_under(rule: &str) -> (Trust, String, String) {
    let trust = Trust::ratified(2, |terms| {
        terms.replace(
            "on_consent_withdrawal = \"exclude-from-future-releases\"",
            &format!("on_consent_withdrawal = \"{rule}\""),
        )
    });
    let registry = &trust.registry;
    let collector_key = NoteSigner::new("c", rand::random()).unwrap();
    let collector = Principal::new_active(
        collector_key.public_key(),
        Role::Collector,
        DisplayName::parse("laptop", "display_name").unwrap(),
        day(-40),
        rand::random(),
    );
    registry.store().insert_principal(&collector).unwrap();
    let (_, ada) = &trust.members[0];
    registry
        .authorize_collector(ada, &collector.public_key, day(-1))
        .unwrap();
    registry
        .set_consent(ada, "computer-use-agent-training", true, day(-1))
        .unwrap();
    let events = (0..3)
        .map(|step| Event {
            time_ms: (day(-2).0 + step) * 1000,
            application: "editor".into(),
            kind: EventKind::Pointer { x: 1, y: 2 },
        })
        .collect();
    registry
        .ingest(
            &collector,
            &ada.public_key,
            EventBatch {
                device_id: "laptop".into(),
                sequence: 1,
                events,
            },
            day(0),
        )
        .unwrap();
    let released = trust
        .approve(
            &trust.request("computer-use-agent-training", day(0)),
            day(0),
        )
        .unwrap();
    // Within the same second the same request would yield the very same license: refused.
    let twin = trust.request("computer-use-agent-training", day(0));
    assert!(matches!(
        trust.approve(&twin, day(0)),
        Err(datatrust_core::registry::DomainError::Refused {
            kind: datatrust_core::registry::Refusal::AlreadyExists,
            ..
        })
    ));
    let a_second_later = datatrust_core::UnixSeconds(day(0).0 + 1);
    let unreleased = trust
        .approve(
            &trust.request("computer-use-agent-training", a_second_later),
            a_second_later,
        )
        .unwrap();
    assert_ne!(released.id, unreleased.id);
    let release = registry
        .create_release(
            &trust.licensee,
            &datatrust_core::LicenseId::parse(&released.id, "id").unwrap(),
            &[7; 32],
            rand::random(),
            day(0),
        )
        .unwrap()
        .value;
    assert_eq!(release.parts.len(), 1, "Ada's data is in the release");
    registry
        .set_consent(ada, "computer-use-agent-training", false, day(1))
        .unwrap();
    (trust, released.id, unreleased.id)
}

#[test]
fn withdrawal_revokes_the_licenses_that_released_the_members_data_when_the_terms_say_so() {
    let (trust, released, unreleased) = withdraw_under("revoke-affected-licenses");
    let registry = &trust.registry;
    let status = |id: &str| registry.license(&trust.trustee, id).unwrap().status;
    let LicenseStatus::Revoked {
        reason, log_index, ..
    } = status(&released)
    else {
        panic!("the license that released Ada's data must be revoked");
    };
    assert!(reason.contains("withdrew consent"), "{reason}");
    assert_eq!(status(&unreleased), LicenseStatus::Active);
    let entry = registry.journal().entries()[log_index as usize].clone();
    let text = String::from_utf8(entry).unwrap();
    assert!(text.starts_with("datatrust/v1 license-revoked\n"), "{text}");
    let ada_key = trust.members[0].1.public_key.to_base64();
    assert!(
        !text.contains(&ada_key),
        "the entry does not name the member"
    );
    // Nothing more is released or used under it.
    let refused = registry.create_release(
        &trust.licensee,
        &datatrust_core::LicenseId::parse(&released, "id").unwrap(),
        &[7; 32],
        rand::random(),
        day(2),
    );
    assert!(precondition(refused).contains("revoked"));
}

#[test]
fn under_the_default_rule_existing_licenses_stand() {
    let (trust, released, unreleased) = withdraw_under("exclude-from-future-releases");
    let registry = &trust.registry;
    for id in [&released, &unreleased] {
        assert_eq!(
            registry.license(&trust.trustee, id).unwrap().status,
            LicenseStatus::Active
        );
    }
    let later = registry
        .create_release(
            &trust.licensee,
            &datatrust_core::LicenseId::parse(&released, "id").unwrap(),
            &[7; 32],
            rand::random(),
            day(2),
        )
        .unwrap()
        .value;
    assert!(
        later.parts.is_empty(),
        "Ada is left out of every later release"
    );
}
