//! Members' sealed values in segment files: deleted values leave the disk once their
//! segment is compacted, the live ones are still read after it, and values an older format
//! kept in sled are moved out (`move_values_to_segments`).

use std::path::Path;

use datatrust_core::events::{Event, EventKind};
use datatrust_core::store::{EventStore as _, SealedTable};
use datatrust_core::{NoteSigner, PublicKey, UnixSeconds};
use datatrust_store::SledStore;

mod common;
use common::files_containing;

fn member() -> PublicKey {
    NoteSigner::new("m", rand::random()).unwrap().public_key()
}

fn events(marker: &str, count: usize) -> Vec<Event> {
    (0..count)
        .map(|index| Event {
            time_ms: 1_800_000_000_000 + index as i64,
            application: format!("{marker}-{index}"),
            kind: EventKind::Pointer { x: 1, y: 2 },
        })
        .collect()
}

fn segment_files(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory.join("segments"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// sled lets go of its file lock from a background thread after the last handle is dropped.
fn reopen(directory: &Path, data_key: [u8; 32]) -> SledStore {
    SledStore::open(&directory.join("db"), data_key).unwrap()
}

#[test]
fn an_erased_members_sealed_values_leave_the_disk_when_their_segment_is_compacted() {
    let directory = tempfile::tempdir().unwrap();
    let data_key = rand::random();
    let (ada, bea) = (member(), member());
    let ada_sealed = {
        let store = reopen(directory.path(), data_key);
        for sequence in 1..=3 {
            store
                .put_chunk(&ada, "laptop", sequence, &events("ada", 50))
                .unwrap();
        }
        store
            .put_screenshot(&ada, &[7; 32], &[0xaa; 4000], UnixSeconds(0))
            .unwrap();
        store
            .put_release_part(&ada, "r1", 0, &[b"ada's record".to_vec()])
            .unwrap();
        store
            .put_chunk(&bea, "laptop", 1, &events("bea", 10))
            .unwrap();
        // What lies in the segments for Ada, sealed, as a backend copy would read it.
        let mut sealed = Vec::new();
        for table in [
            SealedTable::Chunks,
            SealedTable::Screenshots,
            SealedTable::ReleaseParts,
        ] {
            for (key, value) in store.sealed_rows(table, None, 100).unwrap() {
                if key.starts_with(ada.as_bytes()) {
                    sealed.push(value);
                }
            }
        }
        assert_eq!(sealed.len(), 5);
        sealed
    };
    for value in &ada_sealed {
        assert_eq!(files_containing(directory.path(), value).len(), 1);
    }
    // A new run writes to a segment of its own; the first is now read-only.
    let store = reopen(directory.path(), data_key);
    assert_eq!(store.member_events(&bea).unwrap().len(), 10);
    assert_eq!(store.reclaim_space().unwrap(), (0, 0), "nothing dead yet");
    assert_eq!(store.erase_member(&ada).unwrap(), 3);
    let before = segment_files(directory.path());
    let (removed, freed) = store.reclaim_space().unwrap();
    assert_eq!(removed, 1, "the first segment, mostly Ada's: {before:?}");
    assert!(freed > 3 * 50 * 20, "{freed} bytes freed");
    assert!(!segment_files(directory.path()).contains(&before[0]));
    for value in &ada_sealed {
        assert!(
            files_containing(directory.path(), value).is_empty(),
            "an erased member's sealed value is in no file once compacted"
        );
    }
    // Bea's chunk was copied on, and is read from its new place, now and after a restart.
    assert_eq!(store.member_events(&bea).unwrap()[9].application, "bea-9");
    drop(store);
    let store = reopen(directory.path(), data_key);
    assert_eq!(store.member_events(&bea).unwrap()[9].application, "bea-9");
    assert_eq!(
        store.reclaim_space().unwrap(),
        (0, 0),
        "the last run's segment holds Bea's live copy"
    );
}

#[test]
fn values_an_older_format_kept_in_sled_move_to_segments() {
    let directory = tempfile::tempdir().unwrap();
    let data_key = rand::random();
    let ada = member();
    let sealed = {
        let store = reopen(directory.path(), data_key);
        store
            .put_chunk(&ada, "laptop", 1, &events("ada", 5))
            .unwrap();
        store
            .put_screenshot(&ada, &[3; 32], b"an image", UnixSeconds(0))
            .unwrap();
        let chunks = store.sealed_rows(SealedTable::Chunks, None, 10).unwrap();
        let images = store
            .sealed_rows(SealedTable::Screenshots, None, 10)
            .unwrap();
        [chunks, images].concat()
    };
    // Put the values back as format 2 kept them: inline in sled.
    {
        let database = common::reopen_sled(&directory.path().join("db"));
        let (chunk, image) = (&sealed[0], &sealed[1]);
        database
            .open_tree("chunks")
            .unwrap()
            .insert(chunk.0.as_slice(), chunk.1.as_slice())
            .unwrap();
        database
            .open_tree("screenshots")
            .unwrap()
            .insert(image.0.as_slice(), image.1.as_slice())
            .unwrap();
        // Format 2 had no expiry index either.
        database.drop_tree("chunk_days").unwrap();
        database.drop_tree("screenshot_refs").unwrap();
        database.flush().unwrap();
    }
    std::fs::remove_dir_all(directory.path().join("segments")).unwrap();
    let store = reopen(directory.path(), data_key);
    // Read inline still, then moved (idempotently).
    assert_eq!(store.member_events(&ada).unwrap()[4].application, "ada-4");
    assert_eq!(store.move_values_to_segments().unwrap(), 2);
    assert_eq!(store.move_values_to_segments().unwrap(), 0);
    let day = events("ada", 1)[0].day();
    assert!(
        store
            .chunks_with_days_before(&ada, day + 1, None, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.build_expiry_index().unwrap(), 1);
    assert_eq!(
        store
            .chunks_with_days_before(&ada, day + 1, None, 10)
            .unwrap()
            .len(),
        1,
        "the chunk is found by its earliest day once the index is built"
    );
    assert_eq!(store.member_events(&ada).unwrap()[4].application, "ada-4");
    assert_eq!(
        store.screenshot(&ada, &[3; 32]).unwrap().unwrap(),
        b"an image"
    );
    assert_eq!(
        files_containing(&directory.path().join("segments"), &sealed[0].1).len(),
        1
    );
}

#[test]
fn a_backup_copies_settled_segments_first_and_is_still_of_one_moment() {
    let directory = tempfile::tempdir().unwrap();
    let data_key = rand::random();
    let (ada, bea, cai) = (member(), member(), member());
    {
        let store = reopen(directory.path(), data_key);
        for sequence in 1..=4 {
            store
                .put_chunk(&ada, "laptop", sequence, &events("ada", 50))
                .unwrap();
        }
        store
            .put_chunk(&bea, "laptop", 1, &events("bea", 10))
            .unwrap();
    }
    let store = reopen(directory.path(), data_key);
    let backups = tempfile::tempdir().unwrap();
    let (data, keys) = (backups.path().join("data"), backups.path().join("keys"));
    // The first half copies the first run's segment, settled.
    let started = datatrust_store::begin_backup(&store, &data, &keys).unwrap();
    assert_eq!(segment_files(&data), ["0000000000000001"]);
    // Meanwhile the trust goes on: Ada is erased and her segment compacted away (Bea's
    // chunk copied on), Cai uploads.
    store.erase_member(&ada).unwrap();
    assert_eq!(store.reclaim_space().unwrap().0, 1);
    store
        .put_chunk(&cai, "phone", 1, &events("cai", 3))
        .unwrap();
    // The second half (writers kept out by the caller) makes it this moment's copy.
    datatrust_store::finish_backup(
        &store,
        directory.path(),
        &directory.path().join("keys"),
        started,
    )
    .unwrap();
    assert_eq!(segment_files(&data), ["0000000000000002"]);
    drop(store);
    let copy = reopen(&data, data_key);
    assert!(copy.member_events(&ada).unwrap().is_empty());
    assert_eq!(copy.member_events(&bea).unwrap()[9].application, "bea-9");
    assert_eq!(copy.member_events(&cai).unwrap().len(), 3);
}
