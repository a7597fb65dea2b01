//! Reading the log: the latest checkpoint, tiles and bundles as served over HTTP, entries,
//! and proofs. Every tile read for a proof is checked against the level above, and every
//! bundle against its level-0 tile, so a tile or entry changed on disk is reported, not
//! served as good.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::checkpoint::SignedCheckpoint;
use crate::hash::{Hash, leaf_hash};
use crate::proof::{self, ProofError, SubtreeSource};
use crate::storage::{LogStore, LogStoreError};
use crate::tile::{
    ExpandedTile, TILE_HEIGHT, TILE_WIDTH, bundle_entries, bytes_to_hashes, hashes_to_bytes,
};
use datatrust_core::NoteVerifier;

/// Full tiles never change, so their expansions are cached; this bounds the cache
/// (each is at most 511 hashes, 16 KiB).
const DEFAULT_CACHE_TILES: usize = 4096;
/// Most entries one `entries` call returns.
pub const MAXIMUM_ENTRIES_PER_READ: u64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The request names something beyond the tree or malformed: the caller's mistake.
    #[error("{0}")]
    OutOfRange(String),
    /// Stored data disagrees with the tree: never served as good.
    #[error("log storage is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] LogStoreError),
}

impl From<ProofError> for ReadError {
    fn from(error: ProofError) -> ReadError {
        match error {
            ProofError::Source(message) => ReadError::Corrupt(message),
            other => ReadError::OutOfRange(other.to_string()),
        }
    }
}

pub struct LogReader {
    store: Arc<dyn LogStore>,
    latest: RwLock<Arc<SignedCheckpoint>>,
    /// Checks checkpoints read back from the store (`refresh`).
    verifier: NoteVerifier,
    /// Expanded tiles by (level, index, width). A tile's first `width` hashes never change,
    /// so right-edge tiles are cached per width as safely as full ones.
    cache: RwLock<HashMap<(u8, u64, u16), Arc<ExpandedTile>>>,
    cache_capacity: usize,
}

impl LogReader {
    pub(crate) fn new(
        store: Arc<dyn LogStore>,
        latest: SignedCheckpoint,
        verifier: NoteVerifier,
    ) -> LogReader {
        LogReader {
            store,
            latest: RwLock::new(Arc::new(latest)),
            verifier,
            cache: RwLock::new(HashMap::new()),
            cache_capacity: DEFAULT_CACHE_TILES,
        }
    }

    /// Serves `checkpoint` from now on, unless a larger tree is already served: the tree
    /// only grows.
    pub(crate) fn publish(&self, checkpoint: SignedCheckpoint) {
        let mut latest = self.latest.write().expect("checkpoint lock poisoned");
        if checkpoint.checkpoint.size >= latest.checkpoint.size {
            *latest = Arc::new(checkpoint);
        }
    }

    /// Reads the stored checkpoint and serves it if it is newer: on a store that several
    /// nodes write, what the others committed. The note must verify with the log's key.
    pub fn refresh(&self) -> Result<Arc<SignedCheckpoint>, ReadError> {
        if let Some(note) = self.store.checkpoint()?
            && note != self.latest().note
        {
            let stored = SignedCheckpoint::open(&note, &self.verifier).map_err(|error| {
                ReadError::Corrupt(format!("the stored checkpoint does not verify: {error}"))
            })?;
            if stored.checkpoint.size > self.size() {
                // Kept before it is served, as this node's own commits are.
                self.store
                    .record_published(stored.checkpoint.size, &stored.note)?;
            }
            self.publish(stored);
        }
        Ok(self.latest())
    }

    /// The latest checkpoint, read again from the store first when it has fewer than
    /// `size` entries (another node may have logged them).
    pub fn latest_covering(&self, size: u64) -> Result<Arc<SignedCheckpoint>, ReadError> {
        let latest = self.latest();
        if latest.checkpoint.size >= size {
            return Ok(latest);
        }
        self.refresh()
    }

    /// The latest signed checkpoint: every read below is bounded by it.
    pub fn latest(&self) -> Arc<SignedCheckpoint> {
        Arc::clone(&self.latest.read().expect("checkpoint lock poisoned"))
    }

    pub fn size(&self) -> u64 {
        self.latest().checkpoint.size
    }

    /// Tile bytes as c2sp.org/tlog-tiles serves them: a full tile, or the first `width`
    /// hashes of a partial one, provided the latest tree has them.
    pub fn tile(&self, level: u8, index: u64, width: Option<u8>) -> Result<Vec<u8>, ReadError> {
        let wanted = width.map_or(TILE_WIDTH, u64::from);
        let end = index
            .checked_mul(TILE_WIDTH)
            .and_then(|start| start.checked_add(wanted))
            .ok_or_else(|| ReadError::OutOfRange("tile index out of range".into()))?;
        let mut available = hashes_at_level(self.size(), level);
        if end > available {
            available = hashes_at_level(self.refresh()?.checkpoint.size, level);
        }
        if end > available {
            return Err(ReadError::OutOfRange(format!(
                "tile {level}/{index} of width {wanted} is beyond the tree"
            )));
        }
        let bytes = self
            .store
            .tile(level, index)?
            .ok_or_else(|| ReadError::Corrupt(format!("tile {level}/{index} is missing")))?;
        let hashes = bytes_to_hashes(&bytes)
            .ok_or_else(|| ReadError::Corrupt(format!("tile {level}/{index} has a bad length")))?;
        if (hashes.len() as u64) < wanted {
            return Err(ReadError::Corrupt(format!(
                "tile {level}/{index} is too short"
            )));
        }
        if wanted == TILE_WIDTH {
            // A full tile must hash to its slot in the level above.
            self.full_tile(level, index)?;
        }
        Ok(hashes_to_bytes(&hashes[..wanted as usize]))
    }

    /// An entry bundle (full, or the first `width` entries), each entry checked against the
    /// leaf hash in its level-0 tile.
    pub fn bundle(&self, index: u64, width: Option<u8>) -> Result<Vec<u8>, ReadError> {
        let hash_bytes = self.tile(0, index, width)?;
        let hashes = bytes_to_hashes(&hash_bytes).expect("tile() returns whole hashes");
        let bundle = self
            .store
            .bundle(index)?
            .ok_or_else(|| ReadError::Corrupt(format!("entry bundle {index} is missing")))?;
        let entries = bundle_entries(&bundle)
            .ok_or_else(|| ReadError::Corrupt(format!("entry bundle {index} is malformed")))?;
        if entries.len() < hashes.len() {
            return Err(ReadError::Corrupt(format!(
                "entry bundle {index} is too short"
            )));
        }
        let mut served = Vec::with_capacity(bundle.len());
        for (position, (entry, expected)) in entries.iter().zip(&hashes).enumerate() {
            if leaf_hash(entry) != *expected {
                return Err(ReadError::Corrupt(format!(
                    "entry {} does not match its leaf hash",
                    index * TILE_WIDTH + position as u64
                )));
            }
            crate::tile::push_bundle_entry(&mut served, entry);
        }
        Ok(served)
    }

    /// Entries [start, end) of the latest tree, at most `MAXIMUM_ENTRIES_PER_READ`.
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, ReadError> {
        let size = self.latest_covering(end)?.checkpoint.size;
        if start >= end || end > size {
            return Err(ReadError::OutOfRange(format!(
                "entries [{start}, {end}) are not a non-empty range within the tree of size {size}"
            )));
        }
        if end - start > MAXIMUM_ENTRIES_PER_READ {
            return Err(ReadError::OutOfRange(format!(
                "at most {MAXIMUM_ENTRIES_PER_READ} entries per read"
            )));
        }
        let mut entries = Vec::with_capacity((end - start) as usize);
        let mut bundle_index = start / TILE_WIDTH;
        while bundle_index * TILE_WIDTH < end {
            let bundle_end = ((bundle_index + 1) * TILE_WIDTH).min(size);
            let width = if bundle_end - bundle_index * TILE_WIDTH == TILE_WIDTH {
                None
            } else {
                Some((bundle_end - bundle_index * TILE_WIDTH) as u8)
            };
            let bundle = self.bundle(bundle_index, width)?;
            let parsed = bundle_entries(&bundle).expect("bundle() returns a well-formed bundle");
            for (position, entry) in parsed.into_iter().enumerate() {
                let index = bundle_index * TILE_WIDTH + position as u64;
                if (start..end).contains(&index) {
                    entries.push(entry.to_vec());
                }
            }
            bundle_index += 1;
        }
        Ok(entries)
    }

    pub fn leaf_index(&self, leaf: &Hash) -> Result<Option<u64>, ReadError> {
        Ok(self
            .store
            .leaf_index(leaf)?
            .map(|index| Ok::<_, ReadError>((index, self.latest_covering(index + 1)?)))
            .transpose()?
            .filter(|(index, latest)| *index < latest.checkpoint.size)
            .map(|(index, _)| index))
    }

    /// Inclusion proof for `index` in the tree of `size` (at most the latest size).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ReadError> {
        self.check_size(size)?;
        Ok(proof::inclusion_proof(&self.source(size), index, size)?)
    }

    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ReadError> {
        self.check_size(second)?;
        Ok(proof::consistency_proof(
            &self.source(second),
            first,
            second,
        )?)
    }

    /// The root of the tree of `size` leaves, recomputed from stored tiles.
    pub fn root(&self, size: u64) -> Result<Hash, ReadError> {
        self.check_size(size)?;
        Ok(proof::range_root(&self.source(size), 0, size)?)
    }

    fn check_size(&self, size: u64) -> Result<(), ReadError> {
        let available = self.latest_covering(size)?.checkpoint.size;
        if size > available {
            return Err(ReadError::OutOfRange(format!(
                "tree size {size} is larger than the log ({available})"
            )));
        }
        Ok(())
    }

    fn source(&self, size: u64) -> TileSource<'_> {
        TileSource {
            reader: self,
            size,
            latest_size: self.size(),
        }
    }

    /// A full tile, expanded, checked against its slot in the level above; cached.
    fn full_tile(&self, level: u8, index: u64) -> Result<Arc<ExpandedTile>, ReadError> {
        self.expanded_tile(level, index, TILE_WIDTH as usize)
    }

    /// The first `width` hashes of a tile, expanded; cached. A full tile is first checked
    /// against its slot in the level above.
    fn expanded_tile(
        &self,
        level: u8,
        index: u64,
        width: usize,
    ) -> Result<Arc<ExpandedTile>, ReadError> {
        let key = (level, index, width as u16);
        if let Some(tile) = self.cache.read().expect("tile cache poisoned").get(&key) {
            return Ok(Arc::clone(tile));
        }
        let mut hashes = self.stored_hashes(level, index)?;
        if hashes.len() < width {
            return Err(ReadError::Corrupt(format!(
                "tile {level}/{index} is shorter than {width}"
            )));
        }
        hashes.truncate(width);
        let tile = Arc::new(ExpandedTile::new(hashes));
        if let Some(root) = tile.root() {
            let parent = self.stored_hashes(level + 1, index / TILE_WIDTH)?;
            if parent.get((index % TILE_WIDTH) as usize) != Some(&root) {
                tracing::error!(
                    level,
                    index,
                    "stored tile does not hash to its slot in the level above"
                );
                return Err(ReadError::Corrupt(format!(
                    "tile {level}/{index} does not match the level above"
                )));
            }
        }
        let mut cache = self.cache.write().expect("tile cache poisoned");
        if cache.len() >= self.cache_capacity {
            // Crude but bounded: start over rather than track recency.
            cache.clear();
        }
        cache.insert(key, Arc::clone(&tile));
        Ok(tile)
    }

    fn stored_hashes(&self, level: u8, index: u64) -> Result<Vec<Hash>, ReadError> {
        let bytes = self
            .store
            .tile(level, index)?
            .ok_or_else(|| ReadError::Corrupt(format!("tile {level}/{index} is missing")))?;
        bytes_to_hashes(&bytes)
            .ok_or_else(|| ReadError::Corrupt(format!("tile {level}/{index} has a bad length")))
    }
}

/// How many hashes exist at tile level `level` in a tree of `size` leaves.
pub fn hashes_at_level(size: u64, level: u8) -> u64 {
    let shift = u32::from(level) * TILE_HEIGHT;
    if shift >= 64 { 0 } else { size >> shift }
}

/// Subtree hashes for proofs over a tree of `size`, read from tiles.
struct TileSource<'a> {
    reader: &'a LogReader,
    size: u64,
    /// The stored tiles are those of the latest tree, at least `size`.
    latest_size: u64,
}

impl SubtreeSource for TileSource<'_> {
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        let end = (index + 1).checked_shl(level).unwrap_or(u64::MAX);
        if end > self.size {
            return Err(ProofError::SizeOutOfRange {
                requested: end,
                available: self.size,
            });
        }
        let tile_level = (level / TILE_HEIGHT) as u8;
        let height = level % TILE_HEIGHT;
        let position = index << height; // index among the tile level's hashes
        let tile_index = position / TILE_WIDTH;
        let offset = position % TILE_WIDTH;
        let to_source = |error: ReadError| ProofError::Source(error.to_string());
        let available = hashes_at_level(self.latest_size, tile_level);
        let width = (available - tile_index * TILE_WIDTH).min(TILE_WIDTH) as usize;
        let node = self
            .reader
            .expanded_tile(tile_level, tile_index, width)
            .map_err(to_source)?
            .node(height, offset >> height);
        node.ok_or_else(|| {
            ProofError::Source(format!(
                "tile {tile_level}/{tile_index} lacks a node it should hold"
            ))
        })
    }
}
