//! The transparency log: RFC 6962 Merkle hashing and proofs, tiles (c2sp.org/tlog-tiles),
//! checkpoints (c2sp.org/tlog-checkpoint, signed as c2sp.org/signed-note), receipts
//! (c2sp.org/tlog-proof), and a sequencer that batches appends into durable, signed
//! checkpoints over the small `LogStore` trait. No async runtime and no storage engine here.

pub mod checkpoint;
pub mod contract;
/// RFC 6962 hashing, from the core (releases use it too).
pub use datatrust_core::merkle::hash;
/// RFC 6962 proofs, from the core.
pub use datatrust_core::merkle::proof;
pub mod reader;
pub mod receipt;
pub mod sequencer;
pub mod storage;
pub mod tile;

pub use hash::{Hash, leaf_hash, node_hash};

pub use checkpoint::{Checkpoint, SignedCheckpoint};
pub use reader::{LogReader, ReadError};
pub use sequencer::{
    AppendError, Appended, Change, CommitError, Committed, OpenError, Sequencer, SequencerOptions,
    Writes,
};
pub use storage::{
    BuildBatch, DISK_FULL, LogBatch, LogStore, LogStoreError, LogView, MemoryLogStore, StateRead,
    StateWrite, version_of,
};
