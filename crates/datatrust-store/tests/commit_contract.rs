//! The commit path's contract (`datatrust_tlog::contract`) on sled: the log's tree and the
//! state's trees in one transaction, flushed once per batch.

use std::sync::Arc;

use datatrust_store::SledStore;
use datatrust_tlog::{LogStore, contract};

fn sled_log(path: &std::path::Path) -> Arc<dyn LogStore> {
    let store = SledStore::open(path, [3; 32]).unwrap();
    Arc::new(store.log_store().unwrap())
}

#[test]
fn a_change_commits_its_entries_and_writes_together() {
    let directory = tempfile::tempdir().unwrap();
    contract::a_change_commits_its_entries_and_writes_together(sled_log(
        &directory.path().join("db"),
    ));
}

#[test]
fn of_two_conflicting_changes_exactly_one_is_taken() {
    let directory = tempfile::tempdir().unwrap();
    contract::of_two_conflicting_changes_exactly_one_is_taken(sled_log(
        &directory.path().join("db"),
    ));
}

#[test]
fn concurrent_read_modify_write_loses_no_update() {
    let directory = tempfile::tempdir().unwrap();
    contract::concurrent_read_modify_write_loses_no_update(sled_log(&directory.path().join("db")));
}

#[test]
fn acknowledged_changes_survive_reopening() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("db");
    contract::acknowledged_changes_survive_reopening(move || sled_log(&path));
}

#[test]
fn a_batch_that_fails_fails_as_a_whole() {
    use datatrust_core::store::TrustStore as _;
    let directory = tempfile::tempdir().unwrap();
    let store = SledStore::open(&directory.path().join("db"), [3; 32]).unwrap();
    let log: Arc<dyn LogStore> = Arc::new(store.log_store().unwrap());
    // The disk-space reserve refuses the batch before sled sees any of it.
    contract::a_batch_that_fails_fails_as_a_whole(log, move |fail| {
        store.set_minimum_free_disk(if fail { u64::MAX } else { 0 });
    });
}
