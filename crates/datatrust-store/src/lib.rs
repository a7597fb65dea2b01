//! Storage for datatrust: the on-disk data directory (keys, lock, format marker) and
//! `SledStore`, the embedded implementation of the core's `TrustStore`.

mod data_directory;
mod sled_store;

pub use data_directory::{DataDirectory, DataDirectoryError, OpenedTrust, TrustMetadata};
pub use sled_store::SledStore;
