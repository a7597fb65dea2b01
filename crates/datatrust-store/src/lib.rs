//! Storage for datatrust: the on-disk data directory (keys, lock, format marker) and
//! `SledStore`, the embedded implementation of the core's `TrustStore`, and `SledLogStore`,
//! the log crate's `LogStore` in the same database.

mod data_directory;
mod disk_space;
mod member_keys;
mod published_checkpoint;
mod segments;
mod sign_ins;
mod sled_log;
mod sled_store;
mod state_tables;
mod vault;

pub use data_directory::{
    BackupInProgress, DataDirectory, DataDirectoryError, FORMAT_VERSION, OpenedTrust,
    TrustMetadata, begin_backup, finish_backup, record_predecessor,
    restore as restore_data_directory,
};
pub use disk_space::DEFAULT_MINIMUM_FREE_BYTES;
pub use published_checkpoint::{PublishedCheckpointError, PublishedCheckpointFile};
pub use sign_ins::SledSignIns;
pub use sled_log::SledLogStore;
pub use sled_store::{DEFAULT_CACHE_BYTES, SledStore, set_cache_capacity};

/// How members' telemetry is sealed and keyed, for other backends that store it the same way.
pub mod sealing {
    pub use crate::vault::{
        RELEASE_PART_CHUNK_RECORDS, chunk_key, decode_release_chunk, encode_release_chunk,
        key_associated_data, open, open_value, release_chunk_key, seal, seal_value,
    };
}
