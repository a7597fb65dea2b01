//! The contract every `TrustStore` must keep, as one test suite each implementation runs
//! against itself (quickwit's habit: one metastore suite, every backend).
//!
//! Usage from an implementation's tests: `datatrust_core::store_contract::run_all(|| open())`,
//! where each call of the closure returns a fresh, empty store.

use crate::commit::{Write, version_of};
use crate::store::{Invitation, PrincipalInsert, TrustStore};
use crate::{
    CollectorAuthorization, DisplayName, NoteSigner, Principal, PrincipalStatus, PublicKey, Role,
    UnixSeconds,
};

/// Runs every contract check, each against a fresh store.
pub fn run_all<S: TrustStore + Clone>(mut fresh: impl FnMut() -> S) {
    principals_insert_once_and_read_back(&fresh());
    listing_pages_in_key_order_and_filters_by_role(&fresh());
    status_changes_are_kept(&fresh());
    versions_are_the_stored_bytes_hash(&fresh());
    invitations_redeemed_are_kept(&fresh());
    collector_authorizations_are_kept_per_pair(&fresh());
    concurrent_redemptions_have_one_winner(&fresh());
}

/// A deterministic test key.
pub fn test_key(seed: u8) -> PublicKey {
    NoteSigner::new("test", [seed; 32]).unwrap().public_key()
}

fn principal(seed: u8, role: Role) -> Principal {
    Principal::new_active(
        test_key(seed),
        role,
        DisplayName::parse(&format!("principal {seed}"), "display_name").unwrap(),
        UnixSeconds(1_700_000_000 + i64::from(seed)),
        [seed; 32],
    )
}

fn invitation(code_hash: [u8; 32], expires_at: i64) -> Invitation {
    Invitation {
        code_hash,
        role: Role::Member,
        display_name: DisplayName::parse("invited", "display_name").unwrap(),
        created_by: test_key(200),
        created_at: UnixSeconds(1_000),
        expires_at: UnixSeconds(expires_at),
        redeemed_by: None,
    }
}

pub fn principals_insert_once_and_read_back<S: TrustStore>(store: &S) {
    let member = principal(1, Role::Member);
    assert_eq!(
        store.insert_principal(&member).unwrap(),
        PrincipalInsert::Inserted
    );
    assert_eq!(
        store.principal(&member.public_key).unwrap(),
        Some(member.clone())
    );
    let same_key_other_role = Principal {
        role: Role::Trustee,
        ..member.clone()
    };
    assert_eq!(
        store.insert_principal(&same_key_other_role).unwrap(),
        PrincipalInsert::KeyTaken(member.clone())
    );
    assert_eq!(store.principal(&member.public_key).unwrap(), Some(member));
    assert_eq!(store.principal(&test_key(2)).unwrap(), None);
}

pub fn listing_pages_in_key_order_and_filters_by_role<S: TrustStore>(store: &S) {
    let mut all = Vec::new();
    for seed in 1..=9 {
        let role = if seed % 3 == 0 {
            Role::Licensee
        } else {
            Role::Member
        };
        let principal = principal(seed, role);
        store.insert_principal(&principal).unwrap();
        all.push(principal);
    }
    all.sort_by_key(|principal| principal.public_key);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_principals(None, after.as_ref(), 4).unwrap();
        assert!(page.len() <= 4);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|principal| principal.public_key);
        seen.extend(page);
    }
    assert_eq!(seen, all);
    let licensees = store
        .list_principals(Some(Role::Licensee), None, 100)
        .unwrap();
    assert_eq!(licensees.len(), 3);
    assert!(
        licensees
            .iter()
            .all(|principal| principal.role == Role::Licensee)
    );
}

/// Applies `writes` as the commit path would, given the first entry's index.
fn apply<S: TrustStore>(store: &S, writes: &[Write]) {
    let mut encoded = Vec::new();
    for write in writes {
        encoded.extend(store.encode(write, 7).unwrap());
    }
    store.apply(&encoded).unwrap();
}

pub fn status_changes_are_kept<S: TrustStore>(store: &S) {
    let collector = principal(3, Role::Collector);
    store.insert_principal(&collector).unwrap();
    let (read_back, before) = store.read_principal(&collector.public_key).unwrap();
    assert_eq!(read_back.as_ref(), Some(&collector));
    let changed = Principal {
        status: PrincipalStatus::Deactivated,
        ..collector.clone()
    };
    apply(store, &[Write::Principal(changed.clone())]);
    let (read_back, after) = store.read_principal(&collector.public_key).unwrap();
    assert_eq!(read_back, Some(changed.clone()));
    assert_ne!(
        before.version, after.version,
        "a change changes the version"
    );
    assert_eq!(
        store.principal(&collector.public_key).unwrap(),
        Some(changed)
    );
    // Listing by role still finds it, once.
    let collectors = store
        .list_principals(Some(Role::Collector), None, 10)
        .unwrap();
    assert_eq!(collectors.len(), 1);
    let (absent, read) = store.read_principal(&test_key(99)).unwrap();
    assert_eq!((absent, read.version), (None, None));
}

/// Every versioned read's version is the SHA-256 of the bytes `table_get` returns.
pub fn versions_are_the_stored_bytes_hash<S: TrustStore>(store: &S) {
    store
        .insert_invitation(&invitation([9; 32], 5_000))
        .unwrap();
    let (_, read) = store.read_invitation(&[9; 32]).unwrap();
    let stored = store.table_get(read.table, &read.key).unwrap();
    assert_eq!(read.version, version_of(stored.as_deref()));
    assert!(read.version.is_some());
    let (absent, read) = store
        .read_record(crate::store::RecordKind::Guard, b"nothing")
        .unwrap();
    assert_eq!((absent, read.version), (None, None));
}

pub fn invitations_redeemed_are_kept<S: TrustStore>(store: &S) {
    store
        .insert_invitation(&invitation([1; 32], 5_000))
        .unwrap();
    let redeemed = Invitation {
        redeemed_by: Some(test_key(10)),
        ..invitation([1; 32], 5_000)
    };
    apply(
        store,
        &[
            Write::Invitation(redeemed.clone()),
            Write::Principal(principal(10, Role::Member)),
        ],
    );
    assert_eq!(store.invitation(&[1; 32]).unwrap(), Some(redeemed.clone()));
    assert_eq!(store.read_invitation(&[1; 32]).unwrap().0, Some(redeemed));
    assert_eq!(
        store.principal(&test_key(10)).unwrap(),
        Some(principal(10, Role::Member))
    );
}

pub fn collector_authorizations_are_kept_per_pair<S: TrustStore>(store: &S) {
    let member = test_key(20);
    let collector = test_key(21);
    let other_collector = test_key(22);
    let first = CollectorAuthorization {
        member,
        collector,
        authorized_at: UnixSeconds(100),
    };
    let second = CollectorAuthorization {
        member,
        collector: other_collector,
        authorized_at: UnixSeconds(300),
    };
    apply(
        store,
        &[
            Write::CollectorAuthorized(first.clone()),
            Write::CollectorAuthorized(second.clone()),
        ],
    );
    assert_eq!(
        store
            .read_collector_authorization(&member, &collector)
            .unwrap()
            .0,
        Some(first.clone())
    );
    let mut of_member = store.collectors_of_member(&member).unwrap();
    of_member.sort_by_key(|authorization| authorization.collector);
    let mut expected = vec![first.clone(), second];
    expected.sort_by_key(|authorization| authorization.collector);
    assert_eq!(of_member, expected);
    assert_eq!(store.members_of_collector(&collector).unwrap(), vec![first]);
    apply(store, &[Write::CollectorRevoked { member, collector }]);
    assert!(store.members_of_collector(&collector).unwrap().is_empty());
    assert_eq!(store.collectors_of_member(&member).unwrap().len(), 1);
    assert_eq!(
        store
            .read_collector_authorization(&member, &collector)
            .unwrap()
            .0,
        None
    );
}

/// Eight keys redeem one invitation at once through the registry on this store: exactly one
/// is enrolled; the others are decided again on the redeemed invitation and refused.
pub fn concurrent_redemptions_have_one_winner<S: TrustStore + Clone>(store: &S) {
    let origin = crate::Origin::parse("trust.test").unwrap();
    let code = crate::auth::InvitationCode::from_random([4; 13]);
    store
        .insert_invitation(&invitation(code.hash(), 5_000))
        .unwrap();
    let registry = crate::registry::Registry::new(
        store.clone(),
        crate::commit::MemoryJournal::new(store.clone()),
        origin.clone(),
    );
    let winners = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u8)
            .map(|index| {
                let (registry, origin, code) = (&registry, &origin, &code);
                scope.spawn(move || {
                    let key = NoteSigner::new("test", [100 + index; 32]).unwrap();
                    let signature = key.sign(&crate::auth::redeem_message(
                        origin,
                        &key.public_key(),
                        code,
                    ));
                    registry.redeem_invitation(
                        code,
                        key.public_key(),
                        &signature,
                        [7; 32],
                        UnixSeconds(2_000),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .filter(Result::is_ok)
            .count()
    });
    assert_eq!(winners, 1);
    let members = store
        .list_principals(Some(Role::Member), None, 100)
        .unwrap();
    assert_eq!(members.len(), 1);
}

/// The contract of a `RecordStore`.
pub fn records_contract<S: crate::store::RecordStore>(store: &S) {
    use crate::store::RecordKind;
    assert_eq!(store.get_record(RecordKind::Terms, b"a").unwrap(), None);
    store
        .write_records(vec![
            (RecordKind::Terms, b"a1".to_vec(), Some(b"one".to_vec())),
            (RecordKind::Terms, b"a2".to_vec(), Some(b"two".to_vec())),
            (RecordKind::Terms, b"b1".to_vec(), Some(b"three".to_vec())),
            (
                RecordKind::License,
                b"a1".to_vec(),
                Some(b"other kind".to_vec()),
            ),
        ])
        .unwrap();
    assert_eq!(
        store.get_record(RecordKind::Terms, b"a1").unwrap(),
        Some(b"one".to_vec())
    );
    assert_eq!(
        store.get_record(RecordKind::License, b"a1").unwrap(),
        Some(b"other kind".to_vec())
    );
    let scanned = store.scan_records(RecordKind::Terms, b"a").unwrap();
    assert_eq!(
        scanned,
        vec![
            (b"a1".to_vec(), b"one".to_vec()),
            (b"a2".to_vec(), b"two".to_vec())
        ]
    );
    assert_eq!(store.scan_records(RecordKind::Terms, b"").unwrap().len(), 3);
    // Pages: bounded, strictly after the position, within the prefix.
    assert_eq!(
        store
            .scan_records_page(RecordKind::Terms, b"", None, 2)
            .unwrap(),
        vec![
            (b"a1".to_vec(), b"one".to_vec()),
            (b"a2".to_vec(), b"two".to_vec())
        ]
    );
    assert_eq!(
        store
            .scan_records_page(RecordKind::Terms, b"", Some(b"a2"), 2)
            .unwrap(),
        vec![(b"b1".to_vec(), b"three".to_vec())]
    );
    assert_eq!(
        store
            .scan_records_page(RecordKind::Terms, b"a", Some(b"a1"), 10)
            .unwrap(),
        vec![(b"a2".to_vec(), b"two".to_vec())]
    );
    assert!(
        store
            .scan_records_page(RecordKind::Terms, b"a", Some(b"a2"), 10)
            .unwrap()
            .is_empty()
    );
    store
        .write_records(vec![
            (RecordKind::Terms, b"a1".to_vec(), None),
            (RecordKind::Terms, b"a2".to_vec(), Some(b"changed".to_vec())),
        ])
        .unwrap();
    assert_eq!(store.get_record(RecordKind::Terms, b"a1").unwrap(), None);
    assert_eq!(
        store.get_record(RecordKind::Terms, b"a2").unwrap(),
        Some(b"changed".to_vec())
    );
}

/// The contract of an `EventStore`.
pub fn events_contract<S: crate::store::EventStore>(store: &S) {
    use crate::events::{Event, EventKind};
    use crate::store::ChunkInsert;
    let member = test_key(30);
    let other = test_key(31);
    let event = |time_ms: i64, x: i32| Event {
        time_ms,
        application: "editor".into(),
        kind: EventKind::Pointer { x, y: 1 },
    };
    let batch = vec![
        event(86_400_000, 1),
        event(86_400_001, 2),
        event(2 * 86_400_000, 3),
    ];
    assert_eq!(
        store.put_chunk(&member, "laptop", 1, &batch).unwrap(),
        ChunkInsert::Stored
    );
    assert_eq!(
        store.put_chunk(&member, "laptop", 1, &batch).unwrap(),
        ChunkInsert::Duplicate
    );
    assert_eq!(
        store.put_chunk(&member, "laptop", 2, &batch[..1]).unwrap(),
        ChunkInsert::Stored
    );
    assert_eq!(
        store.put_chunk(&other, "laptop", 1, &batch[..1]).unwrap(),
        ChunkInsert::Stored
    );
    assert_eq!(
        store.member_events(&member).unwrap().len(),
        4,
        "the duplicate was not stored twice"
    );
    let counts = store.member_counts(&member).unwrap();
    let total: u64 = counts.iter().map(|count| count.count).sum();
    assert_eq!(total, 4);
    assert!(
        counts
            .iter()
            .any(|count| count.day == 1 && count.category == "pointer" && count.count == 3)
    );
    // A batch taken back (its authorisation ended while it was stored): the chunk and its
    // counts go together, once; an image the same.
    store.put_chunk(&member, "phone", 9, &batch).unwrap();
    assert!(store.remove_chunk(&member, "phone", 9, &batch).unwrap());
    assert!(!store.remove_chunk(&member, "phone", 9, &batch).unwrap());
    assert_eq!(store.member_events(&member).unwrap().len(), 4);
    assert_eq!(store.member_counts(&member).unwrap(), counts);
    store
        .put_screenshot(&member, &[77; 32], b"taken back", crate::UnixSeconds(0))
        .unwrap();
    assert!(store.remove_screenshot(&member, &[77; 32]).unwrap());
    assert!(!store.remove_screenshot(&member, &[77; 32]).unwrap());
    assert_eq!(store.screenshot(&member, &[77; 32]).unwrap(), None);
    assert!(
        store
            .put_release_part(&member, "r1", 0, &[b"one".to_vec(), b"two".to_vec()])
            .unwrap()
    );
    let stranger = crate::NoteSigner::new("stranger", [77; 32])
        .unwrap()
        .public_key();
    assert!(
        !store
            .put_release_part(&stranger, "r1", 0, &[b"x".to_vec()])
            .unwrap(),
        "no part for a member without a key (never had data, or erased)"
    );
    assert_eq!(
        store.release_part(&member, "r1").unwrap(),
        Some(vec![b"one".to_vec(), b"two".to_vec()])
    );
    assert_eq!(store.release_part(&member, "r2").unwrap(), None);
    // A large part is read back chunk by chunk, a message's worth each, in order.
    let many: Vec<Vec<u8>> = (0..5000u32).map(|n| n.to_be_bytes().to_vec()).collect();
    assert!(store.put_release_part(&member, "r3", 0, &many).unwrap());
    let first = store.release_part_chunk(&member, "r3", 0).unwrap().unwrap();
    let second = store.release_part_chunk(&member, "r3", 1).unwrap().unwrap();
    assert_eq!(first.len(), crate::release::RECORDS_PER_MESSAGE);
    assert_eq!([first, second].concat(), many);
    assert_eq!(store.release_part_chunk(&member, "r3", 2).unwrap(), None);
    assert_eq!(store.release_part(&member, "r3").unwrap(), Some(many));
    assert!(
        store
            .put_screenshot(&member, &[5; 32], b"image bytes", crate::UnixSeconds(0))
            .unwrap()
    );
    assert!(
        !store
            .put_screenshot(&member, &[5; 32], b"image bytes", crate::UnixSeconds(0))
            .unwrap(),
        "stored once"
    );
    assert_eq!(
        store.screenshot(&member, &[5; 32]).unwrap(),
        Some(b"image bytes".to_vec())
    );
    assert!(
        store
            .put_screenshot(&member, &[9; 32], b"second", crate::UnixSeconds(0))
            .unwrap()
    );
    assert!(
        store
            .put_screenshot(&other, &[6; 32], b"theirs", crate::UnixSeconds(0))
            .unwrap()
    );
    assert_eq!(
        store.member_screenshots(&member, None, 10).unwrap(),
        vec![[5; 32], [9; 32]]
    );
    // Pages: strictly after the position, bounded, never another member's.
    assert_eq!(
        store.member_screenshots(&member, None, 1).unwrap(),
        vec![[5; 32]]
    );
    assert_eq!(
        store
            .member_screenshots(&member, Some(&[5; 32]), 1)
            .unwrap(),
        vec![[9; 32]]
    );
    assert!(
        store
            .member_screenshots(&member, Some(&[9; 32]), 10)
            .unwrap()
            .is_empty()
    );
    // Event pages: whole chunks, every event exactly once, then the end.
    let first = store.member_events_page(&member, None, 1).unwrap();
    assert_eq!(first.events.len(), 3, "a page holds whole chunks");
    let after = first.next.expect("a second chunk follows");
    let second = store.member_events_page(&member, Some(&after), 1).unwrap();
    assert_eq!(second.events, batch[..1].to_vec());
    if let Some(after) = second.next {
        let third = store.member_events_page(&member, Some(&after), 1).unwrap();
        assert!(third.events.is_empty() && third.next.is_none());
    }
    let whole = store.member_events_page(&member, None, 1000).unwrap();
    assert_eq!(whole.events.len(), 4);
    assert_eq!(whole.next, None);
    assert_eq!(store.erase_member(&member).unwrap(), 2);
    assert!(
        store
            .member_screenshots(&member, None, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.screenshot(&member, &[5; 32]).unwrap(),
        None,
        "erasure takes screenshots too"
    );
    assert_eq!(
        store.release_part(&member, "r1").unwrap(),
        None,
        "erasure takes release parts too"
    );
    assert!(store.member_events(&member).unwrap().is_empty());
    assert!(store.member_counts(&member).unwrap().is_empty());
    assert_eq!(
        store.member_events(&other).unwrap().len(),
        1,
        "other members are untouched"
    );
}

/// What retention needs of an event store: members with data, chunks replaced or deleted,
/// counts before a day, screenshots by reference and age, one release's parts.
pub fn retention_contract<S: crate::store::EventStore>(store: &S) {
    use crate::events::{Event, EventKind};
    use std::collections::BTreeSet;
    let member = test_key(40);
    let other = test_key(41);
    let day = 86_400_000;
    let event = |time_ms: i64, x: i32| Event {
        time_ms,
        application: "editor".into(),
        kind: EventKind::Pointer { x, y: 1 },
    };
    let shot = Event {
        time_ms: day + 5,
        application: "editor".into(),
        kind: EventKind::Screenshot {
            sha256: hex::encode([1u8; 32]),
            size_bytes: 3,
        },
    };
    let first = vec![event(day, 1), shot, event(5 * day, 2)];
    store.put_chunk(&member, "laptop", 1, &first).unwrap();
    store
        .put_chunk(&member, "laptop", 2, &[event(day + 9, 3)])
        .unwrap();
    store
        .put_chunk(&other, "laptop", 1, &[event(day, 4)])
        .unwrap();
    for (hash, stored_at) in [([1u8; 32], 1), ([2; 32], 1), ([3; 32], 10)] {
        store
            .put_screenshot(
                &member,
                &hash,
                b"img",
                crate::UnixSeconds(stored_at * 86_400),
            )
            .unwrap();
    }
    let members = store.members_with_data(None, 10).unwrap();
    assert!(members.contains(&member) && members.contains(&other));
    assert_eq!(
        store.members_with_data(Some(&members[0]), 10).unwrap(),
        members[1..].to_vec(),
        "pages start strictly after"
    );
    // One chunk a page; the first keeps its day-5 event, the second goes whole.
    let page = store.member_events_page(&member, None, 1).unwrap();
    assert_eq!(page.events, first);
    let key = page.next.unwrap();
    store
        .replace_chunk(&member, &key, &[event(5 * day, 2)])
        .unwrap();
    let page = store.member_events_page(&member, Some(&key), 1).unwrap();
    store
        .replace_chunk(&member, &page.next.unwrap(), &[])
        .unwrap();
    assert_eq!(
        store.member_events(&member).unwrap(),
        vec![event(5 * day, 2)]
    );
    assert_eq!(
        store.expire_counts(&member, 5).unwrap(),
        2,
        "day 1's pointer and screenshots counts"
    );
    assert!(
        store
            .member_counts(&member)
            .unwrap()
            .iter()
            .all(|count| count.day == 5)
    );
    // [1] only a deleted event referred to; [2] is older than the cut; [3] is recent.
    let dropped = BTreeSet::from([[1u8; 32]]);
    assert_eq!(
        store
            .expire_screenshots(
                &member,
                crate::UnixSeconds(5 * 86_400),
                crate::UnixSeconds(40 * 86_400),
                &BTreeSet::new(),
                &dropped,
            )
            .unwrap(),
        2
    );
    assert_eq!(
        store.member_screenshots(&member, None, 10).unwrap(),
        vec![[3; 32]]
    );
    // A kept event's image stays, however old.
    store
        .put_screenshot(&member, &[4; 32], b"img", crate::UnixSeconds(0))
        .unwrap();
    let referenced = BTreeSet::from([[4u8; 32]]);
    assert_eq!(
        store
            .expire_screenshots(
                &member,
                crate::UnixSeconds(5 * 86_400),
                crate::UnixSeconds(40 * 86_400),
                &referenced,
                &BTreeSet::new(),
            )
            .unwrap(),
        0
    );
    // One release's parts, not another's whose id it starts.
    let records: Vec<Vec<u8>> = (0..5000u32).map(|n| n.to_be_bytes().to_vec()).collect();
    assert!(store.put_release_part(&member, "r9", 0, &records).unwrap());
    assert!(
        store
            .put_release_part(&member, "r", 0, &records[..1])
            .unwrap()
    );
    assert_eq!(store.delete_release_part(&member, "r9").unwrap(), 2);
    assert_eq!(store.release_part(&member, "r9").unwrap(), None);
    assert_eq!(
        store.release_part(&member, "r").unwrap(),
        Some(records[..1].to_vec())
    );
    assert_eq!(
        store.member_events(&other).unwrap().len(),
        1,
        "others untouched"
    );
    if store.keeps_expiry_index() {
        expiry_index_contract(store);
    }
}

/// The expiry index, for stores that keep it: which chunks hold days before a cut, in
/// pages; a rewritten chunk moving in it; images expiring by their latest reference.
fn expiry_index_contract<S: crate::store::EventStore>(store: &S) {
    use crate::events::{Event, EventKind};
    let member = test_key(42);
    let day = 86_400_000;
    let pointer = |time_ms: i64| Event {
        time_ms,
        application: "editor".into(),
        kind: EventKind::Pointer { x: 1, y: 1 },
    };
    let shot = |time_ms: i64, image: u8| Event {
        time_ms,
        application: "editor".into(),
        kind: EventKind::Screenshot {
            sha256: hex::encode([image; 32]),
            size_bytes: 3,
        },
    };
    let first = vec![pointer(day), shot(day + 1, 7), pointer(5 * day)];
    store.put_chunk(&member, "laptop", 1, &first).unwrap();
    store
        .put_chunk(&member, "laptop", 2, &[pointer(6 * day)])
        .unwrap();
    store
        .put_chunk(&member, "laptop", 3, &[shot(9 * day, 7), shot(9 * day, 8)])
        .unwrap();
    for (image, stored_day) in [(7u8, 1), (8, 9), (9, 1)] {
        store
            .put_screenshot(
                &member,
                &[image; 32],
                b"img",
                crate::UnixSeconds(stored_day * 86_400),
            )
            .unwrap();
    }
    let before = |cut: i64, after: Option<&[u8]>, limit: usize| {
        store
            .chunks_with_days_before(&member, cut, after, limit)
            .unwrap()
    };
    assert!(before(1, None, 10).is_empty());
    let early = before(6, None, 10);
    assert_eq!(early.len(), 1, "only the chunk with day 1");
    assert_eq!(
        store.chunk_events(&member, &early[0].1).unwrap(),
        Some(first)
    );
    // Pages: the chunk of day 1, then the one of day 6.
    let page = before(7, None, 1);
    assert_eq!(page[0].1, early[0].1);
    let next = before(7, Some(&page[0].0), 1);
    assert_eq!(
        store.chunk_events(&member, &next[0].1).unwrap(),
        Some(vec![pointer(6 * day)])
    );
    assert!(before(7, Some(&next[0].0), 1).is_empty());
    // Rewritten with its day-5 event only, it leaves the range before day 5.
    store
        .replace_chunk(&member, &early[0].1, &[pointer(5 * day)])
        .unwrap();
    assert!(before(5, None, 10).is_empty());
    assert_eq!(before(6, None, 10).len(), 1);
    // Image 7 is referred to on day 9 still, 8 on day 9, 9 by nothing (stored day 1).
    let expire = |first_kept_day: i64| {
        store
            .expire_unreferenced_screenshots(
                &member,
                first_kept_day,
                crate::UnixSeconds(5 * 86_400),
                crate::UnixSeconds(40 * 86_400),
            )
            .unwrap()
    };
    assert_eq!(expire(6), 1, "the unreferenced old image");
    assert_eq!(
        store.member_screenshots(&member, None, 10).unwrap(),
        vec![[7; 32], [8; 32]]
    );
    assert_eq!(expire(10), 2, "every reference past retention");
    assert!(
        store
            .member_screenshots(&member, None, 10)
            .unwrap()
            .is_empty()
    );
    // An erased member leaves nothing in the index.
    store.erase_member(&member).unwrap();
    assert!(before(100, None, 10).is_empty());
}
