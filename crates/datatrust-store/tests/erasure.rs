//! Erasure on disk: after a member is erased, no file under the data directory holds their
//! wrapped key (it lived in a file of its own, now unlinked) nor the plaintext of their
//! events; and a trust made when the keys lived in sled has them moved out on open.

use std::os::unix::fs::PermissionsExt as _;

use datatrust_core::events::{Event, EventKind};
use datatrust_core::store::EventStore as _;
use datatrust_core::{NoteSigner, PublicKey};
use datatrust_store::SledStore;

mod common;
use common::files_containing;

fn member() -> PublicKey {
    NoteSigner::new("m", rand::random()).unwrap().public_key()
}

fn events(marker: &str) -> Vec<Event> {
    vec![Event {
        time_ms: 1_800_000_000_000,
        application: marker.to_owned(),
        kind: EventKind::Pointer { x: 1, y: 2 },
    }]
}

#[test]
fn an_erased_members_key_is_in_no_file() {
    let directory = tempfile::tempdir().unwrap();
    let data_key = rand::random();
    let ada = member();
    let bea = member();
    let key_file = directory
        .path()
        .join("member-keys")
        .join(hex::encode(ada.as_bytes()));
    let wrapped = {
        let store = SledStore::open(&directory.path().join("db"), data_key).unwrap();
        store
            .put_chunk(&ada, "laptop", 1, &events("marker-ada-7f3c9e"))
            .unwrap();
        store
            .put_chunk(&bea, "laptop", 1, &events("marker-bea-1d5a2b"))
            .unwrap();
        let wrapped = std::fs::read(&key_file).unwrap();
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(store.erase_member(&ada).unwrap(), 1);
        assert!(store.member_events(&ada).unwrap().is_empty());
        assert_eq!(store.member_events(&bea).unwrap().len(), 1);
        wrapped
    };
    assert!(!key_file.exists());
    assert_eq!(
        files_containing(directory.path(), &wrapped),
        Vec::<String>::new(),
        "the erased member's wrapped key is gone from every file"
    );
    assert!(files_containing(directory.path(), b"marker-ada-7f3c9e").is_empty());
    assert!(files_containing(directory.path(), b"marker-bea-1d5a2b").is_empty());
}

#[test]
fn keys_kept_in_sled_by_older_trusts_move_out_on_open() {
    let directory = tempfile::tempdir().unwrap();
    let data_key = rand::random();
    let ada = member();
    let key_file = directory
        .path()
        .join("member-keys")
        .join(hex::encode(ada.as_bytes()));
    {
        let store = SledStore::open(&directory.path().join("db"), data_key).unwrap();
        store.put_chunk(&ada, "laptop", 1, &events("old")).unwrap();
    }
    // Put the trust back as an older version left it: the key in sled, no key file.
    let wrapped = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    {
        // sled lets go of its file lock from a background thread after the last drop.
        let database = common::reopen_sled(&directory.path().join("db"));
        let tree = database.open_tree("member_keys").unwrap();
        tree.insert(ada.as_bytes(), wrapped.as_slice()).unwrap();
        database.flush().unwrap();
    }
    let store = SledStore::open(&directory.path().join("db"), data_key).unwrap();
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        wrapped,
        "moved to its file"
    );
    assert_eq!(store.member_events(&ada).unwrap()[0].application, "old");
}
