//! The commit path's contract, run by every `LogStore` backend's tests (memory here, sled in
//! `datatrust-store`): a change's entries and state writes commit together; of two changes
//! decided on the same version exactly one is taken; concurrent read-modify-write loops
//! that decide again on `Conflict` lose no update; a batch whose commit fails fails as a
//! whole; what was acknowledged is there after reopening.

use std::sync::Arc;

use datatrust_core::NoteSigner;

use crate::sequencer::{Change, CommitError, Sequencer, SequencerOptions};
use crate::storage::{LogStore, StateRead, StateWrite, version_of};

const TABLE: &str = "contract_counters";

fn signer() -> NoteSigner {
    NoteSigner::new("contract.test", [7; 32]).expect("a valid signer")
}

fn options() -> SequencerOptions {
    SequencerOptions {
        max_batch: 8192,
        max_delay: std::time::Duration::from_millis(20),
    }
}

/// A change that sets `key` from `read` (the value it was decided on) to `value`.
fn set(key: &[u8], read: Option<&[u8]>, value: &[u8], entry: &str) -> Change {
    let (key, value) = (key.to_vec(), value.to_vec());
    Change {
        entries: vec![entry.as_bytes().to_vec()],
        reads: vec![StateRead {
            table: TABLE,
            key: key.clone(),
            version: version_of(read),
        }],
        writes: Box::new(move |first_index| {
            let mut stored = value;
            stored.extend_from_slice(&first_index.to_be_bytes());
            Ok(vec![StateWrite {
                table: TABLE,
                key,
                value: Some(stored),
            }])
        }),
    }
}

/// A change's entries are in the log and its writes in the state, with the index it got.
pub fn a_change_commits_its_entries_and_writes_together(store: Arc<dyn LogStore>) {
    let sequencer = Sequencer::open(Arc::clone(&store), signer(), options()).unwrap();
    let committed = sequencer
        .commit_blocking(set(b"a", None, b"one", "set a"))
        .unwrap();
    assert_eq!(committed.count, 1);
    assert_eq!(
        committed.checkpoint.checkpoint.size,
        committed.first_index + 1
    );
    let mut expected = b"one".to_vec();
    expected.extend_from_slice(&committed.first_index.to_be_bytes());
    assert_eq!(store.state(TABLE, b"a").unwrap(), Some(expected));
    assert_eq!(
        sequencer
            .reader()
            .entries(committed.first_index, committed.first_index + 1)
            .unwrap(),
        vec![b"set a".to_vec()]
    );
    sequencer.shutdown();
}

/// Two changes decided on the same version of one key, in one batch: exactly one is taken;
/// the other is refused with `Conflict`, and neither its entry nor its write is anywhere.
pub fn of_two_conflicting_changes_exactly_one_is_taken(store: Arc<dyn LogStore>) {
    let sequencer = Sequencer::open(Arc::clone(&store), signer(), options()).unwrap();
    let size_before = sequencer.reader().size();
    let (sender, receiver) = std::sync::mpsc::channel();
    for value in [b"left".as_slice(), b"right"] {
        let sender = sender.clone();
        sequencer.commit(
            set(b"race", None, value, std::str::from_utf8(value).unwrap()),
            move |outcome| sender.send((value, outcome)).unwrap(),
        );
    }
    let outcomes: Vec<_> = (0..2).map(|_| receiver.recv().unwrap()).collect();
    let won: Vec<_> = outcomes
        .iter()
        .filter(|(_, outcome)| outcome.is_ok())
        .collect();
    let lost: Vec<_> = outcomes
        .iter()
        .filter(|(_, outcome)| matches!(outcome, Err(CommitError::Conflict { .. })))
        .collect();
    assert_eq!((won.len(), lost.len()), (1, 1), "{outcomes:?}");
    let stored = store.state(TABLE, b"race").unwrap().unwrap();
    assert!(stored.starts_with(won[0].0), "the winner's write is stored");
    assert_eq!(
        sequencer.reader().size(),
        size_before + 1,
        "one entry logged"
    );
    sequencer.shutdown();
}

/// Threads incrementing one counter, each deciding on the value it read and deciding again
/// on `Conflict`: the counter ends at the number of increments, and the log holds one entry
/// per increment. Without the version check, updates would be lost.
pub fn concurrent_read_modify_write_loses_no_update(store: Arc<dyn LogStore>) {
    let sequencer = Sequencer::open(Arc::clone(&store), signer(), options()).unwrap();
    let size_before = sequencer.reader().size();
    let (threads, increments) = (8u64, 25u64);
    let read = |store: &dyn LogStore| store.state(TABLE, b"counter").unwrap();
    let count = |value: Option<&[u8]>| {
        value.map_or(0, |bytes| {
            u64::from_be_bytes(bytes[..8].try_into().unwrap())
        })
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (sequencer, store) = (sequencer.clone(), Arc::clone(&store));
            scope.spawn(move || {
                for _ in 0..increments {
                    loop {
                        let current = read(store.as_ref());
                        let next = (count(current.as_deref()) + 1).to_be_bytes();
                        match sequencer.commit_blocking(set(
                            b"counter",
                            current.as_deref(),
                            &next,
                            "increment",
                        )) {
                            Ok(_) => break,
                            Err(CommitError::Conflict { .. }) => continue,
                            Err(error) => panic!("{error}"),
                        }
                    }
                }
            });
        }
    });
    assert_eq!(count(read(store.as_ref()).as_deref()), threads * increments);
    assert_eq!(
        sequencer.reader().size(),
        size_before + threads * increments
    );
    sequencer.shutdown();
}

/// What was acknowledged is there after the store is closed and opened again.
pub fn acknowledged_changes_survive_reopening(open: impl Fn() -> Arc<dyn LogStore>) {
    let first_index = {
        let store = open();
        let sequencer = Sequencer::open(Arc::clone(&store), signer(), options()).unwrap();
        let committed = sequencer
            .commit_blocking(set(b"kept", None, b"value", "kept"))
            .unwrap();
        sequencer.shutdown();
        committed.first_index
    };
    let store = open();
    let mut expected = b"value".to_vec();
    expected.extend_from_slice(&first_index.to_be_bytes());
    assert_eq!(store.state(TABLE, b"kept").unwrap(), Some(expected));
    let sequencer = Sequencer::open(Arc::clone(&store), signer(), options()).unwrap();
    assert_eq!(sequencer.reader().size(), first_index + 1);
    sequencer.shutdown();
}

/// A batch whose commit fails fails as a whole: every change in it is answered with the
/// error, nothing of it is stored, and the next change goes on from where the log was.
/// `fail(true)` makes the backend's next commit fail; `fail(false)` lets commits through.
pub fn a_batch_that_fails_fails_as_a_whole(store: Arc<dyn LogStore>, fail: impl Fn(bool)) {
    let options = SequencerOptions {
        max_batch: 8192,
        max_delay: std::time::Duration::from_millis(50),
    };
    let sequencer = Sequencer::open(Arc::clone(&store), signer(), options).expect("opens");
    fail(true);
    let (sender, receiver) = std::sync::mpsc::channel();
    for key in [b"a".as_slice(), b"b"] {
        let sender = sender.clone();
        sequencer.commit(set(key, None, b"x", "failing"), move |outcome| {
            sender.send(outcome).expect("the test waits")
        });
    }
    for _ in 0..2 {
        assert!(receiver.recv().expect("an answer").is_err());
    }
    assert_eq!(store.state(TABLE, b"a").expect("reads"), None);
    assert_eq!(store.state(TABLE, b"b").expect("reads"), None);
    assert_eq!(sequencer.reader().size(), 0);
    fail(false);
    let committed = sequencer
        .commit_blocking(set(b"c", None, b"x", "after"))
        .expect("commits");
    assert_eq!(committed.first_index, 0);
    assert!(store.state(TABLE, b"c").expect("reads").is_some());
    sequencer.shutdown();
}

/// Several writers on one store, as several nodes on one database: three sequencers, each
/// over its own handle from `open`, increment one counter concurrently, deciding again on
/// `Conflict`. No update is lost, every acknowledged index is distinct, each writer's
/// checkpoints only grow, no two checkpoints of the same size differ, and the stored tree
/// verifies when opened again. For stores whose `commit_with` serialises writers.
pub fn several_writers_extend_one_log(open: impl Fn() -> Arc<dyn LogStore>) {
    let options = SequencerOptions {
        max_batch: 8192,
        max_delay: std::time::Duration::from_millis(2),
    };
    let writers: Vec<(Sequencer, Arc<dyn LogStore>)> = (0..3)
        .map(|_| {
            let store = open();
            let sequencer = Sequencer::open(Arc::clone(&store), signer(), options).unwrap();
            (sequencer, store)
        })
        .collect();
    let size_before = writers[0].0.reader().size();
    let count = |value: Option<&[u8]>| {
        value.map_or(0, |bytes| {
            u64::from_be_bytes(bytes[..8].try_into().unwrap())
        })
    };
    let increments = 40u64;
    let seen: std::sync::Mutex<Vec<(u64, u64, String)>> = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for (writer, (sequencer, store)) in writers.iter().enumerate() {
            for thread in 0..2 {
                let seen = &seen;
                scope.spawn(move || {
                    for step in 0..increments {
                        loop {
                            let current = store.state(TABLE, b"shared").unwrap();
                            let next = (count(current.as_deref()) + 1).to_be_bytes();
                            let entry = format!("writer {writer} thread {thread} step {step}");
                            match sequencer.commit_blocking(set(
                                b"shared",
                                current.as_deref(),
                                &next,
                                &entry,
                            )) {
                                Ok(committed) => {
                                    seen.lock().unwrap().push((
                                        committed.first_index,
                                        committed.checkpoint.checkpoint.size,
                                        committed.checkpoint.note.clone(),
                                    ));
                                    break;
                                }
                                Err(CommitError::Conflict { .. }) => continue,
                                Err(error) => panic!("writer {writer}: {error}"),
                            }
                        }
                    }
                });
            }
        }
    });
    let total = 3 * 2 * increments;
    let store = open();
    assert_eq!(
        count(store.state(TABLE, b"shared").unwrap().as_deref()),
        total
    );
    let seen = seen.into_inner().unwrap();
    let mut indices: Vec<u64> = seen.iter().map(|(index, _, _)| *index).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len() as u64, total, "an index was given twice");
    let mut by_size = std::collections::HashMap::new();
    for (_, size, note) in &seen {
        if let Some(other) = by_size.insert(*size, note.clone()) {
            assert_eq!(&other, note, "two checkpoints of size {size} differ");
        }
    }
    for (sequencer, _) in &writers {
        assert!(sequencer.reader().size() <= size_before + total);
        sequencer.close();
    }
    let reopened = Sequencer::open(store, signer(), options).unwrap();
    assert_eq!(reopened.reader().size(), size_before + total);
    // Every checkpoint given out is a prefix of the final tree.
    for (_, size, note) in &seen {
        let root = reopened.reader().root(*size).unwrap();
        let given = crate::SignedCheckpoint::open(note, &signer().verifier()).unwrap();
        assert_eq!(given.checkpoint.root, root, "checkpoint {size} forks");
    }
    reopened.shutdown();
}
