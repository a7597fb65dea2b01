//! The storage the log needs: tiles, entry bundles, a leaf-hash index and the latest signed
//! checkpoint, all written together in one atomic, durable commit per batch; and with them
//! the trust state that the batch's changes write (`StateWrite`), so that a change and the
//! log entries recording it are committed together or not at all.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::hash::Hash;

#[derive(Debug, thiserror::Error)]
#[error("log storage: {0}")]
pub struct LogStoreError(pub String);

/// How a `LogStoreError`'s message starts when the disk is full: nothing was written, and
/// appends succeed again once space returns.
pub const DISK_FULL: &str = "the disk is full";

/// One write to the trust's state: `value` under `key` in the named table (`None` deletes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    pub table: &'static str,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// What a change read and depends on: the value under `key` in `table` had this version
/// (`version_of` its bytes; `None`: absent). The sequencer commits the change only if that
/// still holds when its turn comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRead {
    pub table: &'static str,
    pub key: Vec<u8>,
    pub version: Option<Hash>,
}

/// A stored value's version (the SHA-256 of its bytes): the trust's one definition.
pub use datatrust_core::commit::version_of;

/// One sequencer batch: everything that changes when the tree grows, committed at once.
#[derive(Debug, Default, Clone)]
pub struct LogBatch {
    /// (tile level, tile index) → the tile's hashes as bytes (a partial tile is shorter).
    pub tiles: Vec<((u8, u64), Vec<u8>)>,
    /// bundle index → the bundle's length-prefixed entries.
    pub bundles: Vec<(u64, Vec<u8>)>,
    /// leaf hash → index, for proofs by leaf hash.
    pub leaf_indices: Vec<(Hash, u64)>,
    /// The new signed checkpoint note.
    pub checkpoint: String,
    /// The tree size that checkpoint signs.
    pub size: u64,
    /// The state the batch's changes write, in order (a later write to a key wins).
    pub state: Vec<StateWrite>,
}

/// What a writer reads while it holds the log's head (`LogStore::commit_with`): the stored
/// checkpoint, the right edge's tiles and bundle, and the state its batch's changes were
/// decided on, all as of the moment the batch will commit.
pub trait LogView {
    fn checkpoint(&self) -> Result<Option<String>, LogStoreError>;
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, LogStoreError>;
    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, LogStoreError>;
    fn states(&self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, LogStoreError>;
}

/// A store read directly: the view of a store that has one writer.
pub(crate) struct Direct<'a, S: ?Sized>(pub(crate) &'a S);

impl<S: LogStore + ?Sized> LogView for Direct<'_, S> {
    fn checkpoint(&self) -> Result<Option<String>, LogStoreError> {
        self.0.checkpoint()
    }
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, LogStoreError> {
        self.0.tile(level, index)
    }
    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, LogStoreError> {
        self.0.bundle(index)
    }
    fn states(&self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, LogStoreError> {
        self.0.states(keys)
    }
}

/// Builds a batch from the store as it is under the head lock; `Ok(None)`: nothing to commit.
pub type BuildBatch<'a> =
    dyn FnMut(&dyn LogView) -> Result<Option<LogBatch>, LogStoreError> + Send + 'a;

/// Contract: `commit` is atomic (all of the batch or none of it is visible after a crash) and
/// durable when it returns. Each process has one writer, its sequencer; a store that several
/// processes write (PostgreSQL under several nodes) serialises their batches in
/// `commit_with`, so that each is built on the tree and state the previous one left.
pub trait LogStore: Send + Sync + 'static {
    fn checkpoint(&self) -> Result<Option<String>, LogStoreError>;
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, LogStoreError>;
    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, LogStoreError>;
    fn leaf_index(&self, leaf: &Hash) -> Result<Option<u64>, LogStoreError>;
    fn commit(&self, batch: LogBatch) -> Result<(), LogStoreError>;
    /// The stored state value under `key` in `table`, as the last commit left it.
    fn state(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, LogStoreError>;
    /// The stored values under many keys at once, in the order asked (the sequencer reads a
    /// whole batch's preconditions with this; a backend across a network answers in one
    /// round trip).
    fn states(&self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, LogStoreError> {
        keys.iter()
            .map(|(table, key)| self.state(table, key))
            .collect()
    }
    /// The latest checkpoint this log has published, as kept apart from the rest of the store
    /// (a file outside the database): a store that was rolled back or damaged can then be
    /// told from a current one, and the log refuses to open rather than sign a checkpoint
    /// that forks from one already given out. `None` where the backend keeps no such copy.
    fn published_checkpoint(&self) -> Result<Option<String>, LogStoreError> {
        Ok(None)
    }
    /// Notes that this process now serves a checkpoint another writer committed (a store
    /// several nodes share), so that `published_checkpoint` covers it too. A store with one
    /// writer records its own commits and needs nothing here.
    fn record_published(&self, _size: u64, _note: &str) -> Result<(), LogStoreError> {
        Ok(())
    }
    /// Commits the batch `build` makes (called once) from the store as it is while this
    /// writer holds the log's head: no other writer commits between what `build` reads and
    /// the batch's commit. A store with one writer needs no lock (this default); a store
    /// shared by several processes takes one (a locked head row, in the same transaction as
    /// the reads and the batch).
    fn commit_with(&self, build: &mut BuildBatch<'_>) -> Result<(), LogStoreError> {
        match build(&Direct(self))? {
            Some(batch) => self.commit(batch),
            None => Ok(()),
        }
    }
}

/// A `LogStore` in memory, for tests of the log itself.
#[derive(Debug, Default)]
pub struct MemoryLogStore {
    inner: Mutex<MemoryInner>,
    /// Held from a batch's reads to its commit: several sequencers may share this store, as
    /// several nodes share one database.
    head: Mutex<()>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    checkpoint: Option<String>,
    tiles: HashMap<(u8, u64), Vec<u8>>,
    bundles: HashMap<u64, Vec<u8>>,
    leaves: HashMap<Hash, u64>,
    state: HashMap<(String, Vec<u8>), Vec<u8>>,
    /// Fail the next commit, for tests of a batch that fails as a whole.
    fail_next_commit: bool,
}

impl MemoryLogStore {
    /// Overwrites a stored tile, as disk corruption would; for tests.
    pub fn corrupt_tile(&self, level: u8, index: u64, bytes: Vec<u8>) {
        self.inner
            .lock()
            .unwrap()
            .tiles
            .insert((level, index), bytes);
    }

    pub fn corrupt_bundle(&self, index: u64, bytes: Vec<u8>) {
        self.inner.lock().unwrap().bundles.insert(index, bytes);
    }

    /// Replaces the stored checkpoint, as a database restored from an old backup would;
    /// for tests.
    pub fn set_checkpoint(&self, note: String) {
        self.inner.lock().unwrap().checkpoint = Some(note);
    }

    /// Makes the next commit fail with nothing written, as a full disk would; for tests.
    pub fn fail_next_commit(&self) {
        self.inner.lock().unwrap().fail_next_commit = true;
    }
}

impl LogStore for MemoryLogStore {
    fn checkpoint(&self) -> Result<Option<String>, LogStoreError> {
        Ok(self.inner.lock().unwrap().checkpoint.clone())
    }
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, LogStoreError> {
        Ok(self
            .inner
            .lock()
            .unwrap()
            .tiles
            .get(&(level, index))
            .cloned())
    }
    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, LogStoreError> {
        Ok(self.inner.lock().unwrap().bundles.get(&index).cloned())
    }
    fn leaf_index(&self, leaf: &Hash) -> Result<Option<u64>, LogStoreError> {
        Ok(self.inner.lock().unwrap().leaves.get(leaf).copied())
    }
    fn state(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, LogStoreError> {
        Ok(self
            .inner
            .lock()
            .unwrap()
            .state
            .get(&(table.to_owned(), key.to_vec()))
            .cloned())
    }
    fn commit(&self, batch: LogBatch) -> Result<(), LogStoreError> {
        let mut inner = self.inner.lock().unwrap();
        if std::mem::take(&mut inner.fail_next_commit) {
            return Err(LogStoreError(format!("{DISK_FULL} (a test's failure)")));
        }
        for write in batch.state {
            let key = (write.table.to_owned(), write.key);
            match write.value {
                Some(value) => inner.state.insert(key, value),
                None => inner.state.remove(&key),
            };
        }
        inner.tiles.extend(batch.tiles);
        inner.bundles.extend(batch.bundles);
        inner.leaves.extend(batch.leaf_indices);
        inner.checkpoint = Some(batch.checkpoint);
        Ok(())
    }
    fn commit_with(&self, build: &mut BuildBatch<'_>) -> Result<(), LogStoreError> {
        let _head = self.head.lock().unwrap();
        match build(&Direct(self))? {
            Some(batch) => self.commit(batch),
            None => Ok(()),
        }
    }
}
