//! The log crate's `LogStore` on sled: one tree, keys prefixed by kind, each sequencer batch
//! applied atomically and flushed before `commit` returns. A batch that also writes trust
//! state commits the log tree and the state's trees in one sled transaction.
//!
//! ```text
//! "c"                          -> the latest signed checkpoint note
//! "t" level(u8) index(u64 BE)  -> tile hashes (the right edge's tiles are shorter)
//! "b" index(u64 BE)            -> entry bundle
//! "l" leaf hash(32)            -> index(u64 BE)
//! ```

use std::sync::Arc;

use datatrust_tlog::{Hash, LogBatch, LogStore, LogStoreError};
use sled::Transactional as _;

use crate::published_checkpoint::PublishedCheckpointFile;

const LOG_TREE: &str = "log";
const CHECKPOINT_KEY: &[u8] = b"c";

#[derive(Clone)]
pub struct SledLogStore {
    database: sled::Db,
    tree: sled::Tree,
    published: Option<Arc<PublishedCheckpointFile>>,
    disk_space: Option<Arc<crate::disk_space::DiskSpace>>,
}

impl std::fmt::Debug for SledLogStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SledLogStore")
            .finish_non_exhaustive()
    }
}

impl SledLogStore {
    pub(crate) fn open(
        database: &sled::Db,
        published: Option<Arc<PublishedCheckpointFile>>,
        disk_space: Option<Arc<crate::disk_space::DiskSpace>>,
    ) -> Result<SledLogStore, datatrust_core::store::StoreError> {
        Ok(SledLogStore {
            published,
            disk_space,
            tree: database
                .open_tree(LOG_TREE)
                .map_err(crate::sled_store::store_error)?,
            database: database.clone(),
        })
    }

    /// Overwrites a stored tile as disk corruption would; for tests of corruption detection.
    pub fn overwrite_tile_for_test(
        &self,
        level: u8,
        index: u64,
        bytes: &[u8],
    ) -> Result<(), LogStoreError> {
        self.tree
            .insert(tile_key(level, index), bytes)
            .map_err(log_error)?;
        self.database.flush().map_err(log_error)?;
        Ok(())
    }
}

fn tile_key(level: u8, index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(10);
    key.push(b't');
    key.push(level);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn bundle_key(index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(b'b');
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn leaf_key(leaf: &Hash) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(b'l');
    key.extend_from_slice(leaf);
    key
}

fn log_error(error: sled::Error) -> LogStoreError {
    LogStoreError(error.to_string())
}

impl LogStore for SledLogStore {
    fn checkpoint(&self) -> Result<Option<String>, LogStoreError> {
        self.tree
            .get(CHECKPOINT_KEY)
            .map_err(log_error)?
            .map(|bytes| {
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| LogStoreError("the stored checkpoint is not UTF-8".into()))
            })
            .transpose()
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, LogStoreError> {
        Ok(self
            .tree
            .get(tile_key(level, index))
            .map_err(log_error)?
            .map(|bytes| bytes.to_vec()))
    }

    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, LogStoreError> {
        Ok(self
            .tree
            .get(bundle_key(index))
            .map_err(log_error)?
            .map(|bytes| bytes.to_vec()))
    }

    fn leaf_index(&self, leaf: &Hash) -> Result<Option<u64>, LogStoreError> {
        self.tree
            .get(leaf_key(leaf))
            .map_err(log_error)?
            .map(|bytes| {
                <[u8; 8]>::try_from(bytes.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| LogStoreError("a stored leaf index is not 8 bytes".into()))
            })
            .transpose()
    }

    fn commit(&self, batch: LogBatch) -> Result<(), LogStoreError> {
        if let Some(space) = &self.disk_space {
            space.check_write().map_err(|error| {
                LogStoreError(format!("{}: {}", datatrust_tlog::DISK_FULL, error.message))
            })?;
        }
        let mut writes = sled::Batch::default();
        for ((level, index), bytes) in &batch.tiles {
            writes.insert(tile_key(*level, *index), bytes.as_slice());
        }
        for (index, bytes) in &batch.bundles {
            writes.insert(bundle_key(*index), bytes.as_slice());
        }
        for (leaf, index) in &batch.leaf_indices {
            writes.insert(leaf_key(leaf), &index.to_be_bytes());
        }
        writes.insert(CHECKPOINT_KEY, batch.checkpoint.as_bytes());
        if batch.state.is_empty() {
            // sled applies a batch atomically: after a crash all of it or none of it is there.
            self.tree.apply_batch(writes).map_err(log_error)?;
        } else {
            // The log's batch and the state's writes in one transaction over all their trees.
            let mut tables: Vec<&'static str> =
                batch.state.iter().map(|write| write.table).collect();
            tables.sort_unstable();
            tables.dedup();
            let mut trees = vec![self.tree.clone()];
            for table in &tables {
                trees.push(self.database.open_tree(table).map_err(log_error)?);
            }
            trees
                .as_slice()
                .transaction(|views| {
                    views[0].apply_batch(&writes)?;
                    for write in &batch.state {
                        let position = tables.binary_search(&write.table).unwrap_or_default();
                        let view = &views[position + 1];
                        match &write.value {
                            Some(value) => view.insert(write.key.as_slice(), value.as_slice())?,
                            None => view.remove(write.key.as_slice())?,
                        };
                    }
                    Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
                })
                .map_err(|error| LogStoreError(format!("{error:?}")))?;
        }
        self.database.flush().map_err(log_error)?;
        // Only after the database holds the tree it signs: the file may lag the database
        // (a crash between the two), never lead it.
        if let Some(published) = &self.published {
            published
                .record(batch.size, &batch.checkpoint)
                .map_err(|error| LogStoreError(error.to_string()))?;
        }
        Ok(())
    }

    fn state(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, LogStoreError> {
        Ok(self
            .database
            .open_tree(table)
            .map_err(log_error)?
            .get(key)
            .map_err(log_error)?
            .map(|value| value.to_vec()))
    }

    fn published_checkpoint(&self) -> Result<Option<String>, LogStoreError> {
        match &self.published {
            None => Ok(None),
            Some(published) => published
                .latest()
                .map_err(|error| LogStoreError(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datatrust_core::NoteSigner;
    use datatrust_tlog::{Sequencer, SequencerOptions};

    use crate::SledStore;

    #[test]
    fn a_log_on_sled_survives_reopening_and_keeps_growing() {
        let directory = tempfile::tempdir().unwrap();
        let signer = || NoteSigner::new("trust.test", [1; 32]).unwrap();
        let options = SequencerOptions {
            max_delay: std::time::Duration::from_millis(1),
            ..SequencerOptions::default()
        };
        let root = {
            let store = SledStore::open(&directory.path().join("db"), [3; 32]).unwrap();
            let sequencer =
                Sequencer::open(Arc::new(store.log_store().unwrap()), signer(), options).unwrap();
            for index in 0..300u32 {
                sequencer
                    .append_blocking(index.to_be_bytes().to_vec())
                    .unwrap();
            }
            let root = sequencer.reader().latest().checkpoint.root;
            sequencer.shutdown();
            root
        };
        let store = SledStore::open(&directory.path().join("db"), [3; 32]).unwrap();
        let sequencer =
            Sequencer::open(Arc::new(store.log_store().unwrap()), signer(), options).unwrap();
        let reader = sequencer.reader().clone();
        assert_eq!(reader.size(), 300);
        assert_eq!(reader.root(300).unwrap(), root);
        assert_eq!(
            sequencer.append_blocking(b"next".to_vec()).unwrap().index,
            300
        );
        assert_eq!(
            reader.entries(299, 301).unwrap(),
            vec![299u32.to_be_bytes().to_vec(), b"next".to_vec()]
        );
    }
}
