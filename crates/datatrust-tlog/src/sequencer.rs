//! The log's single writer. Appends from any number of callers queue up; a batch closes when
//! it holds `max_batch` entries or `max_delay` has passed since its first entry (Tessera's
//! rule). The batch is integrated into the tree, a new checkpoint is signed, and tiles,
//! bundles, leaf index and checkpoint are committed in one durable write; only then does
//! each caller learn its index.
//!
//! A *change* (`Sequencer::commit`) is log entries with the trust-state writes they record
//! and the state versions they were decided on: in its turn, the writer checks those
//! versions against the store as the batch so far has left it, and either takes the change
//! whole (entries integrated, writes committed in the same durable write) or answers
//! `Conflict` with nothing done, so the caller decides again on fresh state. Many changes
//! share one flush (group commit); none is acknowledged before it.
//!
//! Invariants: the tree only grows, so every checkpoint is consistent with every earlier one;
//! nothing is signed that was not committed with it (a failed commit rolls the in-memory
//! state back); on open, the stored checkpoint must match the stored tree or the log refuses.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use datatrust_core::NoteSigner;

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::hash::{Hash, complete_root, empty_root, leaf_hash, node_hash};
use crate::reader::LogReader;
use crate::storage::{
    Direct, LogBatch, LogStore, LogStoreError, LogView, StateRead, StateWrite, version_of,
};
use crate::tile::{
    MAXIMUM_ENTRY_BYTES, TILE_WIDTH, bundle_entries, bytes_to_hashes, hashes_to_bytes,
    push_bundle_entry,
};

#[derive(Debug, Clone, Copy)]
pub struct SequencerOptions {
    /// A batch closes at this many entries...
    pub max_batch: usize,
    /// ...or this long after its first entry arrived.
    pub max_delay: Duration,
}

impl Default for SequencerOptions {
    fn default() -> SequencerOptions {
        SequencerOptions {
            max_batch: 8192,
            max_delay: Duration::from_millis(5),
        }
    }
}

/// What a caller learns once its entry is durable and checkpointed.
#[derive(Debug, Clone)]
pub struct Appended {
    pub index: u64,
    /// The first checkpoint that contains the entry.
    pub checkpoint: Arc<SignedCheckpoint>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("entry is {0} bytes; a log entry is at most 65535")]
    TooLarge(usize),
    #[error("the log is shut down")]
    Closed,
    #[error("the log could not commit: {0}")]
    Storage(String),
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the stored checkpoint does not verify: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("the stored tree disagrees with the stored checkpoint: {0}")]
    Inconsistent(String),
    #[error(
        "the stored log is {stored}, but this trust has already published a checkpoint of \
         size {published} (kept outside the database): {reason}. The database was rolled back \
         or damaged, and serving it would fork the log. Restore the database (on the embedded \
         store, the data directory) from a backup taken after that checkpoint; do not delete the \
         published checkpoint to force a start"
    )]
    RolledBack {
        stored: String,
        published: u64,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] LogStoreError),
}

/// A change's writes, given the index its first entry gets.
pub type Writes = Box<dyn FnOnce(u64) -> Result<Vec<StateWrite>, String> + Send>;

/// A state change with the log entries that record it; see the module comment.
pub struct Change {
    pub entries: Vec<Vec<u8>>,
    /// The versions the change was decided on.
    pub reads: Vec<StateRead>,
    /// The writes, given the index the change's first entry gets (a record may hold the
    /// index of the entry that logged it). Called only when the change is taken; an error
    /// refuses the change, with nothing of it done.
    pub writes: Writes,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Change")
            .field("entries", &self.entries.len())
            .field("reads", &self.reads)
            .finish_non_exhaustive()
    }
}

/// A committed change: its entries got `first_index..first_index + count`.
#[derive(Debug, Clone)]
pub struct Committed {
    pub first_index: u64,
    pub count: u64,
    pub checkpoint: Arc<SignedCheckpoint>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// A value the change was decided on has changed since: nothing was done; decide again.
    #[error("the state changed since it was read ({table} key {key_hex}); decide again")]
    Conflict {
        table: &'static str,
        key_hex: String,
    },
    #[error(transparent)]
    Append(#[from] AppendError),
}

type Completion = Box<dyn FnOnce(Result<Committed, CommitError>) + Send>;

struct Request {
    entries: Vec<Vec<u8>>,
    reads: Vec<StateRead>,
    writes: Option<Writes>,
    done: Completion,
}

enum Message {
    Append(Request),
    /// Integrate what came before, then stop.
    Close,
}

/// Handle to the writer thread. `close` (or dropping every handle) ends the thread after it
/// has committed everything queued before.
#[derive(Clone)]
pub struct Sequencer {
    sender: mpsc::Sender<Message>,
    reader: Arc<LogReader>,
    thread: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl Sequencer {
    /// Opens the log in `store`: verifies the stored checkpoint against the stored tree (or
    /// commits the empty tree's checkpoint), then starts the writer thread.
    pub fn open(
        store: Arc<dyn LogStore>,
        signer: NoteSigner,
        options: SequencerOptions,
    ) -> Result<Sequencer, OpenError> {
        let (state, latest) = TreeState::open(store.as_ref(), &signer)?;
        let note = latest.note.clone();
        let reader = Arc::new(LogReader::new(
            Arc::clone(&store),
            latest,
            signer.verifier(),
        ));
        check_published(store.as_ref(), &reader, &signer)?;
        let (sender, receiver) = mpsc::channel();
        let writer = Writer {
            store,
            signer,
            options,
            state,
            note,
            reader: Arc::clone(&reader),
        };
        let thread = std::thread::Builder::new()
            .name("log-sequencer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|error| {
                OpenError::Store(LogStoreError(format!(
                    "starting the sequencer thread: {error}"
                )))
            })?;
        Ok(Sequencer {
            sender,
            reader,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
        })
    }

    pub fn reader(&self) -> &Arc<LogReader> {
        &self.reader
    }

    /// Queues `entry`; `done` is called from the writer thread once it is durable (or failed).
    pub fn append(
        &self,
        entry: Vec<u8>,
        done: impl FnOnce(Result<Appended, AppendError>) + Send + 'static,
    ) {
        self.send(
            vec![entry],
            Vec::new(),
            None,
            Box::new(move |outcome| {
                done(match outcome {
                    Ok(committed) => Ok(Appended {
                        index: committed.first_index,
                        checkpoint: committed.checkpoint,
                    }),
                    Err(CommitError::Append(error)) => Err(error),
                    Err(conflict) => Err(AppendError::Storage(conflict.to_string())),
                })
            }),
        );
    }

    /// Queues a change; `done` is called from the writer thread once it is durable, or
    /// refused (`Conflict`: nothing was done), or failed.
    pub fn commit(
        &self,
        change: Change,
        done: impl FnOnce(Result<Committed, CommitError>) + Send + 'static,
    ) {
        self.send(
            change.entries,
            change.reads,
            Some(change.writes),
            Box::new(done),
        );
    }

    /// Commits and blocks until durable; for tools and tests outside an async runtime.
    pub fn commit_blocking(&self, change: Change) -> Result<Committed, CommitError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        self.commit(change, move |outcome| {
            let _ = sender.send(outcome);
        });
        receiver
            .recv()
            .unwrap_or(Err(CommitError::Append(AppendError::Closed)))
    }

    fn send(
        &self,
        entries: Vec<Vec<u8>>,
        reads: Vec<StateRead>,
        writes: Option<Writes>,
        done: Completion,
    ) {
        if let Some(entry) = entries
            .iter()
            .find(|entry| entry.len() > MAXIMUM_ENTRY_BYTES)
        {
            done(Err(AppendError::TooLarge(entry.len()).into()));
            return;
        }
        if let Err(mpsc::SendError(Message::Append(request))) =
            self.sender.send(Message::Append(Request {
                entries,
                reads,
                writes,
                done,
            }))
        {
            (request.done)(Err(AppendError::Closed.into()));
        }
    }

    /// Appends and blocks until durable; for tools and tests outside an async runtime.
    pub fn append_blocking(&self, entry: Vec<u8>) -> Result<Appended, AppendError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        self.append(entry, move |outcome| {
            let _ = sender.send(outcome);
        });
        receiver.recv().unwrap_or(Err(AppendError::Closed))
    }

    /// Commits everything queued so far, stops the writer and waits for it, so that the
    /// storage is released when this returns. Later appends fail with `Closed`.
    pub fn close(&self) {
        let _ = self.sender.send(Message::Close);
        let handle = self
            .thread
            .lock()
            .expect("sequencer handle poisoned")
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Closes the log; kept for callers that own the last handle.
    pub fn shutdown(self) {
        self.close();
    }
}

/// The stored log must extend the last checkpoint published: the same size and root, or a
/// larger tree whose first `published` leaves hash to the published root.
fn check_published(
    store: &dyn LogStore,
    reader: &LogReader,
    signer: &NoteSigner,
) -> Result<(), OpenError> {
    let Some(note) = store.published_checkpoint()? else {
        return Ok(());
    };
    let published = SignedCheckpoint::open(&note, &signer.verifier()).map_err(|error| {
        OpenError::Inconsistent(format!(
            "the published checkpoint kept outside the database does not verify with the log key ({error}): the log key or that file was changed"
        ))
    })?;
    let stored = reader.latest();
    let (stored_size, published_size) = (stored.checkpoint.size, published.checkpoint.size);
    let rolled_back = |reason: String| OpenError::RolledBack {
        stored: format!("of size {stored_size}"),
        published: published_size,
        reason,
    };
    if stored_size < published_size {
        return Err(rolled_back(format!(
            "{} published entries are missing",
            published_size - stored_size
        )));
    }
    let root = reader.root(published_size).map_err(|error| {
        rolled_back(format!(
            "its first {published_size} entries cannot be read: {error}"
        ))
    })?;
    if root != published.checkpoint.root {
        return Err(rolled_back(format!(
            "its first {published_size} entries hash to a different root: the log diverges"
        )));
    }
    Ok(())
}

/// The right edge of the tree: the last, partial tile at every level and the last, partial
/// entry bundle. Everything to their left is in full tiles on disk and never changes.
#[derive(Debug, Clone)]
struct TreeState {
    size: u64,
    partial_tiles: Vec<Vec<Hash>>,
    partial_bundle: Vec<u8>,
}

impl TreeState {
    /// The stored tree, after committing the empty tree's checkpoint if the store has none
    /// (unless another node sharing the store commits it first).
    fn open(
        store: &dyn LogStore,
        signer: &NoteSigner,
    ) -> Result<(TreeState, SignedCheckpoint), OpenError> {
        if store.checkpoint()?.is_none() {
            let empty = Checkpoint {
                origin: signer.name().to_owned(),
                size: 0,
                root: empty_root(),
            }
            .sign(signer)?;
            store.commit_with(&mut |view| {
                Ok(view.checkpoint()?.is_none().then(|| LogBatch {
                    checkpoint: empty.note.clone(),
                    ..LogBatch::default()
                }))
            })?;
        }
        let note = store.checkpoint()?.ok_or_else(|| {
            OpenError::Inconsistent("the checkpoint just committed is missing".into())
        })?;
        TreeState::load(&Direct(store), signer, &note)
    }

    /// The tree `note` signs, its right edge read from `view`.
    fn load(
        view: &dyn LogView,
        signer: &NoteSigner,
        note: &str,
    ) -> Result<(TreeState, SignedCheckpoint), OpenError> {
        let signed = SignedCheckpoint::open(note, &signer.verifier())?;
        let size = signed.checkpoint.size;
        let mut partial_tiles = Vec::new();
        let mut level: u8 = 0;
        loop {
            let at_level = crate::reader::hashes_at_level(size, level);
            let width = (at_level % TILE_WIDTH) as usize;
            let mut hashes = Vec::new();
            if width > 0 {
                let bytes = view.tile(level, at_level / TILE_WIDTH)?.ok_or_else(|| {
                    OpenError::Inconsistent(format!("partial tile at level {level} is missing"))
                })?;
                hashes = bytes_to_hashes(&bytes)
                    .filter(|hashes| hashes.len() >= width)
                    .ok_or_else(|| {
                        OpenError::Inconsistent(format!(
                            "partial tile at level {level} is too short"
                        ))
                    })?;
                hashes.truncate(width);
            }
            partial_tiles.push(hashes);
            if at_level < TILE_WIDTH {
                break;
            }
            level += 1;
        }
        let bundle_width = (size % TILE_WIDTH) as usize;
        let mut partial_bundle = Vec::new();
        if bundle_width > 0 {
            let bundle = view.bundle(size / TILE_WIDTH)?.ok_or_else(|| {
                OpenError::Inconsistent("the last entry bundle is missing".into())
            })?;
            let entries = bundle_entries(&bundle).ok_or_else(|| {
                OpenError::Inconsistent("the last entry bundle is malformed".into())
            })?;
            if entries.len() < bundle_width {
                return Err(OpenError::Inconsistent(
                    "the last entry bundle is too short".into(),
                ));
            }
            for (entry, expected) in entries.iter().zip(&partial_tiles[0]) {
                if leaf_hash(entry) != *expected {
                    return Err(OpenError::Inconsistent(
                        "an entry in the last bundle does not match its leaf hash".into(),
                    ));
                }
                push_bundle_entry(&mut partial_bundle, entry);
            }
        }
        let state = TreeState {
            size,
            partial_tiles,
            partial_bundle,
        };
        if state.root() != signed.checkpoint.root {
            return Err(OpenError::Inconsistent(format!(
                "the tiles give a different root for size {size} than the checkpoint"
            )));
        }
        Ok((state, signed))
    }

    /// MTH of the whole tree from the right edge: each level's partial tile is split into
    /// complete power-of-two runs, largest first, and everything is folded from the right.
    fn root(&self) -> Hash {
        let mut subtrees = Vec::new();
        for hashes in self.partial_tiles.iter().rev() {
            let mut start = 0;
            while start < hashes.len() {
                let run = 1 << (usize::BITS - 1 - (hashes.len() - start).leading_zeros());
                subtrees.push(complete_root(&hashes[start..start + run]));
                start += run;
            }
        }
        let Some(mut root) = subtrees.pop() else {
            return empty_root();
        };
        while let Some(left) = subtrees.pop() {
            root = node_hash(&left, &root);
        }
        root
    }

    /// Adds one entry; records completed tiles and bundles in `batch`.
    fn push(&mut self, entry: &[u8], batch: &mut LogBatch) -> Hash {
        let leaf = leaf_hash(entry);
        let index = self.size;
        push_bundle_entry(&mut self.partial_bundle, entry);
        self.size += 1;
        if self.size.is_multiple_of(TILE_WIDTH) {
            batch
                .bundles
                .push((index / TILE_WIDTH, std::mem::take(&mut self.partial_bundle)));
        }
        let mut hash = leaf;
        let mut level = 0usize;
        let mut position = index;
        loop {
            if self.partial_tiles.len() == level {
                self.partial_tiles.push(Vec::new());
            }
            self.partial_tiles[level].push(hash);
            if self.partial_tiles[level].len() as u64 != TILE_WIDTH {
                break;
            }
            let full = std::mem::take(&mut self.partial_tiles[level]);
            hash = complete_root(&full);
            batch
                .tiles
                .push(((level as u8, position / TILE_WIDTH), hashes_to_bytes(&full)));
            position /= TILE_WIDTH;
            level += 1;
        }
        leaf
    }

    /// The right edge's partial tiles and bundle, which change with every batch.
    fn write_partials(&self, batch: &mut LogBatch) {
        for (level, hashes) in self.partial_tiles.iter().enumerate() {
            if !hashes.is_empty() {
                let index = crate::reader::hashes_at_level(self.size, level as u8) / TILE_WIDTH;
                batch
                    .tiles
                    .push(((level as u8, index), hashes_to_bytes(hashes)));
            }
        }
        if !self.partial_bundle.is_empty() {
            batch
                .bundles
                .push((self.size / TILE_WIDTH, self.partial_bundle.clone()));
        }
    }
}

/// State values by (table, key): what the store holds, or what a batch writes.
type StateView = HashMap<(&'static str, Vec<u8>), Option<Vec<u8>>>;

struct Writer {
    store: Arc<dyn LogStore>,
    signer: NoteSigner,
    options: SequencerOptions,
    state: TreeState,
    /// The checkpoint note `state` is the tree of.
    note: String,
    reader: Arc<LogReader>,
}

impl Writer {
    fn run(mut self, receiver: mpsc::Receiver<Message>) {
        let mut closing = false;
        while !closing {
            let first = match receiver.recv() {
                Ok(Message::Append(request)) => request,
                Ok(Message::Close) | Err(_) => break,
            };
            let deadline = Instant::now() + self.options.max_delay;
            let mut requests = vec![first];
            while requests.len() < self.options.max_batch {
                let now = Instant::now();
                let waited = if now >= deadline {
                    receiver.try_recv().map_err(|error| match error {
                        mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                        mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                    })
                } else {
                    receiver.recv_timeout(deadline - now)
                };
                match waited {
                    Ok(Message::Append(request)) => requests.push(request),
                    Ok(Message::Close) => {
                        closing = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.integrate(requests);
        }
        // Anything sent after Close is refused, not dropped silently.
        while let Ok(message) = receiver.try_recv() {
            if let Message::Append(request) = message {
                (request.done)(Err(AppendError::Closed.into()));
            }
        }
    }

    /// The value under a key as the store holds it (`stored`, read for the whole batch at
    /// once) with this batch's writes so far on top.
    fn current(
        overlay: &StateView,
        stored: &StateView,
        read: &StateRead,
    ) -> Result<Option<Vec<u8>>, LogStoreError> {
        let key = (read.table, read.key.clone());
        match overlay.get(&key).or_else(|| stored.get(&key)) {
            Some(value) => Ok(value.clone()),
            None => Err(LogStoreError(
                "a precondition was not read with its batch".into(),
            )),
        }
    }

    /// Every key the batch's changes were decided on, as the store holds it now: one
    /// `states` call (one round trip on a networked store). The batch is built under the
    /// log's head (`commit_with`), so these stay current until it commits.
    fn stored_reads(view: &dyn LogView, requests: &[Request]) -> Result<StateView, LogStoreError> {
        let mut keys: Vec<(&'static str, Vec<u8>)> = requests
            .iter()
            .flat_map(|request| request.reads.iter())
            .map(|read| (read.table, read.key.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        let asked: Vec<(&str, &[u8])> = keys
            .iter()
            .map(|(table, key)| (*table, key.as_slice()))
            .collect();
        let values = view.states(&asked)?;
        Ok(keys.into_iter().zip(values).collect())
    }

    /// Brings the right edge up to the stored head: another node sharing the store may have
    /// committed since this writer's last batch. A stored log smaller than one this writer
    /// committed, or a different checkpoint of the same size, is refused: signing on it
    /// would fork the log.
    fn catch_up(&mut self, view: &dyn LogView) -> Result<(), LogStoreError> {
        let note = view
            .checkpoint()?
            .ok_or_else(|| LogStoreError("the log's checkpoint is missing".into()))?;
        if note == self.note {
            return Ok(());
        }
        let (state, signed) = TreeState::load(view, &self.signer, &note)
            .map_err(|error| LogStoreError(format!("reading the stored log: {error}")))?;
        let (stored, mine) = (signed.checkpoint.size, self.state.size);
        if stored <= mine {
            return Err(LogStoreError(format!(
                "the stored log has {stored} entries and a checkpoint other than the one this \
                 node committed at {mine}: the database was rolled back or another writer \
                 forked it; refusing to sign on it"
            )));
        }
        // Kept as published by this node before it serves it.
        self.store
            .record_published(signed.checkpoint.size, &signed.note)?;
        self.state = state;
        self.note = note;
        self.reader.publish(signed);
        Ok(())
    }

    /// Builds the batch under the log's head: catches up, checks each change's reads
    /// against the store and the batch so far, takes or refuses it, signs the new
    /// checkpoint. Taken changes go to `taken` with their first index, refused ones to
    /// `refused`; nothing is answered here, since the batch may still fail to commit.
    fn build(
        &mut self,
        view: &dyn LogView,
        pending: &mut Vec<Request>,
        taken: &mut Vec<(Request, u64)>,
        refused: &mut Vec<(Request, CommitError)>,
        signed: &mut Option<SignedCheckpoint>,
    ) -> Result<Option<LogBatch>, LogStoreError> {
        self.catch_up(view)?;
        let stored = Self::stored_reads(view, pending)?;
        let mut batch = LogBatch::default();
        let mut overlay = HashMap::new();
        for mut request in pending.drain(..) {
            let mut refusal = None;
            for read in &request.reads {
                match Self::current(&overlay, &stored, read) {
                    Ok(value) if version_of(value.as_deref()) == read.version => {}
                    Ok(_) => {
                        refusal = Some(CommitError::Conflict {
                            table: read.table,
                            key_hex: read.key.iter().map(|byte| format!("{byte:02x}")).collect(),
                        });
                        break;
                    }
                    Err(error) => {
                        refusal = Some(AppendError::Storage(error.to_string()).into());
                        break;
                    }
                }
            }
            if let Some(error) = refusal {
                refused.push((request, error));
                continue;
            }
            let first_index = self.state.size;
            let writes = match request.writes.take().map(|writes| writes(first_index)) {
                None => Vec::new(),
                Some(Ok(writes)) => writes,
                Some(Err(error)) => {
                    refused.push((request, AppendError::Storage(error).into()));
                    continue;
                }
            };
            for entry in &request.entries {
                let leaf = self.state.push(entry, &mut batch);
                batch.leaf_indices.push((leaf, self.state.size - 1));
            }
            for write in writes {
                overlay.insert((write.table, write.key.clone()), write.value.clone());
                batch.state.push(write);
            }
            taken.push((request, first_index));
        }
        if taken.is_empty() {
            return Ok(None);
        }
        self.state.write_partials(&mut batch);
        let checkpoint = Checkpoint {
            origin: self.signer.name().to_owned(),
            size: self.state.size,
            root: self.state.root(),
        }
        .sign(&self.signer)
        .map_err(|error| LogStoreError(error.to_string()))?;
        batch.checkpoint = checkpoint.note.clone();
        batch.size = checkpoint.checkpoint.size;
        *signed = Some(checkpoint);
        Ok(Some(batch))
    }

    fn integrate(&mut self, requests: Vec<Request>) {
        let (before, before_note) = (self.state.clone(), self.note.clone());
        let mut pending = requests;
        let (mut taken, mut refused, mut signed) = (Vec::new(), Vec::new(), None);
        let store = Arc::clone(&self.store);
        let outcome = store.commit_with(&mut |view| {
            self.build(view, &mut pending, &mut taken, &mut refused, &mut signed)
        });
        for (request, refusal) in refused {
            (request.done)(Err(refusal));
        }
        match (outcome, signed) {
            (Ok(()), Some(signed)) => {
                self.note = signed.note.clone();
                self.reader.publish(signed.clone());
                let checkpoint = Arc::new(signed);
                for (request, first_index) in taken {
                    (request.done)(Ok(Committed {
                        first_index,
                        count: request.entries.len() as u64,
                        checkpoint: Arc::clone(&checkpoint),
                    }));
                }
            }
            (Ok(()), None) => {}
            (Err(error), _) => {
                let error = AppendError::Storage(error.to_string());
                tracing::error!(error = %error, changes = taken.len() + pending.len(), "log batch not committed; rolled back");
                // What was signed for this batch is never given out; the next batch catches
                // up from the store again.
                self.state = before;
                self.note = before_note;
                for (request, _) in taken {
                    (request.done)(Err(error.clone().into()));
                }
                for request in pending {
                    (request.done)(Err(error.clone().into()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::verify_inclusion;
    use crate::storage::MemoryLogStore;

    fn signer() -> NoteSigner {
        NoteSigner::new("trust.test", [1; 32]).unwrap()
    }

    #[test]
    fn appends_get_consecutive_indices_and_checkpoints_that_prove_them() {
        let store = Arc::new(MemoryLogStore::default());
        let sequencer =
            Sequencer::open(store.clone(), signer(), SequencerOptions::default()).unwrap();
        assert_eq!(sequencer.reader().size(), 0);
        let mut entries = Vec::new();
        for index in 0..700u32 {
            let entry = format!("entry {index}").into_bytes();
            let appended = sequencer.append_blocking(entry.clone()).unwrap();
            assert_eq!(appended.index, u64::from(index));
            entries.push(entry);
        }
        let reader = sequencer.reader().clone();
        let latest = reader.latest();
        assert_eq!(latest.checkpoint.size, 700);
        let leaves: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
        assert_eq!(latest.checkpoint.root, crate::hash::root_of(&leaves));
        for index in [0u64, 255, 256, 511, 512, 699] {
            let proof = reader.inclusion_proof(index, 700).unwrap();
            verify_inclusion(
                index,
                700,
                &leaves[index as usize],
                &proof,
                &latest.checkpoint.root,
            )
            .unwrap();
        }
        assert_eq!(
            reader.entries(250, 260).unwrap(),
            entries[250..260].to_vec()
        );
        assert_eq!(reader.leaf_index(&leaves[300]).unwrap(), Some(300));
        assert_eq!(
            reader.root(300).unwrap(),
            crate::hash::root_of(&leaves[..300])
        );
        sequencer.shutdown();

        // Reopening rebuilds the right edge and continues.
        let reopened = Sequencer::open(store, signer(), SequencerOptions::default()).unwrap();
        assert_eq!(
            reopened.append_blocking(b"after".to_vec()).unwrap().index,
            700
        );
    }

    #[test]
    fn concurrent_appenders_are_batched_and_all_acknowledged() {
        let store = Arc::new(MemoryLogStore::default());
        let sequencer = Sequencer::open(store, signer(), SequencerOptions::default()).unwrap();
        let indices: Vec<u64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|thread| {
                    let sequencer = sequencer.clone();
                    scope.spawn(move || {
                        (0..200)
                            .map(|index| {
                                sequencer
                                    .append_blocking(format!("{thread}-{index}").into_bytes())
                                    .unwrap()
                                    .index
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|handle| handle.join().unwrap())
                .collect()
        });
        let mut sorted = indices.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, (0..1600).collect::<Vec<_>>());
    }

    #[test]
    fn oversized_entries_are_refused_before_queueing() {
        let sequencer = Sequencer::open(
            Arc::new(MemoryLogStore::default()),
            signer(),
            SequencerOptions::default(),
        )
        .unwrap();
        assert!(matches!(
            sequencer.append_blocking(vec![0; 65_536]),
            Err(AppendError::TooLarge(65_536))
        ));
        assert_eq!(sequencer.append_blocking(vec![0; 65_535]).unwrap().index, 0);
    }

    #[test]
    fn a_changed_tile_is_detected_on_open_and_on_read() {
        let store = Arc::new(MemoryLogStore::default());
        let sequencer =
            Sequencer::open(store.clone(), signer(), SequencerOptions::default()).unwrap();
        for index in 0..600u32 {
            sequencer
                .append_blocking(index.to_be_bytes().to_vec())
                .unwrap();
        }
        // A full tile in the middle: detected when read.
        let mut tile = store.tile(0, 0).unwrap().unwrap();
        tile[5] ^= 1;
        store.corrupt_tile(0, 0, tile);
        let reader = sequencer.reader().clone();
        assert!(matches!(
            reader.tile(0, 0, None),
            Err(crate::reader::ReadError::Corrupt(_))
        ));
        assert!(matches!(
            reader.inclusion_proof(3, 600),
            Err(crate::reader::ReadError::Corrupt(_))
        ));
        // An entry changed in a bundle: detected when served.
        let mut bundle = store.bundle(1).unwrap().unwrap();
        let last = bundle.len() - 1;
        bundle[last] ^= 1;
        store.corrupt_bundle(1, bundle);
        assert!(matches!(
            reader.bundle(1, None),
            Err(crate::reader::ReadError::Corrupt(_))
        ));
        sequencer.shutdown();
        // The right edge: detected on open.
        let mut edge = store.tile(0, 2).unwrap().unwrap();
        edge[0] ^= 1;
        store.corrupt_tile(0, 2, edge);
        assert!(matches!(
            Sequencer::open(store, signer(), SequencerOptions::default()),
            Err(OpenError::Inconsistent(_))
        ));
    }

    #[test]
    fn out_of_range_reads_are_errors() {
        let sequencer = Sequencer::open(
            Arc::new(MemoryLogStore::default()),
            signer(),
            SequencerOptions::default(),
        )
        .unwrap();
        for index in 0..10u32 {
            sequencer
                .append_blocking(index.to_be_bytes().to_vec())
                .unwrap();
        }
        let reader = sequencer.reader();
        assert!(matches!(
            reader.inclusion_proof(10, 10),
            Err(crate::reader::ReadError::OutOfRange(_))
        ));
        assert!(matches!(
            reader.inclusion_proof(1, 11),
            Err(crate::reader::ReadError::OutOfRange(_))
        ));
        assert!(matches!(
            reader.consistency_proof(5, 3),
            Err(crate::reader::ReadError::OutOfRange(_))
        ));
        assert!(matches!(
            reader.tile(0, 0, Some(11)),
            Err(crate::reader::ReadError::OutOfRange(_))
        ));
        assert!(matches!(
            reader.tile(0, 0, None),
            Err(crate::reader::ReadError::OutOfRange(_))
        ));
        assert!(reader.tile(0, 0, Some(10)).is_ok());
        assert!(matches!(
            reader.entries(5, 11),
            Err(crate::reader::ReadError::OutOfRange(_))
        ));
    }
}

#[cfg(test)]
mod commit_contract {
    use std::sync::Arc;

    use crate::contract;
    use crate::sequencer::{AppendError, Sequencer, SequencerOptions};
    use crate::storage::{LogStore, MemoryLogStore};
    use datatrust_core::NoteSigner;

    fn signer() -> NoteSigner {
        NoteSigner::new("trust.test", [1; 32]).unwrap()
    }

    #[test]
    fn a_change_commits_its_entries_and_writes_together() {
        contract::a_change_commits_its_entries_and_writes_together(Arc::new(
            MemoryLogStore::default(),
        ));
    }

    #[test]
    fn of_two_conflicting_changes_exactly_one_is_taken() {
        contract::of_two_conflicting_changes_exactly_one_is_taken(Arc::new(
            MemoryLogStore::default(),
        ));
    }

    #[test]
    fn concurrent_read_modify_write_loses_no_update() {
        contract::concurrent_read_modify_write_loses_no_update(Arc::new(MemoryLogStore::default()));
    }

    #[test]
    fn acknowledged_changes_survive_reopening() {
        let store = Arc::new(MemoryLogStore::default());
        contract::acknowledged_changes_survive_reopening(|| {
            Arc::clone(&store) as Arc<dyn LogStore>
        });
    }

    #[test]
    fn a_batch_that_fails_fails_as_a_whole() {
        let store = Arc::new(MemoryLogStore::default());
        let failing = Arc::clone(&store);
        contract::a_batch_that_fails_fails_as_a_whole(store, move |fail| {
            if fail {
                failing.fail_next_commit();
            }
        });
    }

    #[test]
    fn several_writers_extend_one_log() {
        let store = Arc::new(MemoryLogStore::default());
        contract::several_writers_extend_one_log(|| Arc::clone(&store) as Arc<dyn LogStore>);
    }

    /// A store rolled back under a writer (the database restored from an old backup while a
    /// node runs) is refused, not signed on.
    #[test]
    fn a_store_rolled_back_under_a_writer_is_refused() {
        let store = Arc::new(MemoryLogStore::default());
        let sequencer = Sequencer::open(
            Arc::clone(&store) as Arc<dyn LogStore>,
            signer(),
            SequencerOptions::default(),
        )
        .unwrap();
        sequencer.append_blocking(b"one".to_vec()).unwrap();
        let early = store.checkpoint().unwrap().unwrap();
        sequencer.append_blocking(b"two".to_vec()).unwrap();
        store.set_checkpoint(early);
        let refused = sequencer.append_blocking(b"fork".to_vec());
        assert!(
            matches!(&refused, Err(AppendError::Storage(message)) if message.contains("rolled back")),
            "{refused:?}"
        );
        sequencer.shutdown();
    }
}
