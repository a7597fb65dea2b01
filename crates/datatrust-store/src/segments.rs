//! Members' bulk sealed values (event chunks, release parts, screenshots) in append-only
//! segment files beside sled, which keeps only a 21-byte reference per value.
//!
//! Why: sled 0.34's resident memory grows with the bytes written through it, whatever its
//! cache setting (about 230 MB per million ingested events, `bench ingest`). Kept out of sled,
//! the values cost the process nothing but the kernel's page cache, which is not its own.
//!
//! ```text
//! <data dir>/segments/<id, 16 hex digits>   mode 0600, append-only:
//!   header:  b"DTSEG001"
//!   records: table(u8) || key length(u16 BE) || key || value length(u32 BE) || value
//! sled `segment_dead`: id(u64 BE) -> dead bytes(u64 BE), or COMPACTING while rewritten
//! a reference (the index's value): REFERENCE_TAG || id(u64 BE) || value offset(u64 BE)
//!                                   || value length(u32 BE)
//! ```
//!
//! Writes go to the newest segment, opened fresh at every start (so a torn tail is never
//! written after). A value is durable once `append` returns: concurrent appenders share one
//! `fdatasync` (group commit). Only then does the caller put the reference in sled and flush.
//! A crash between the two leaves unreferenced bytes, never a reference to missing bytes.
//!
//! Deleting a value removes its reference and adds its record's size to the segment's dead
//! bytes. `compact` rewrites every segment at least half dead: its live records (those the
//! index still points at) are appended anew, synced, swapped into the index by
//! compare-and-swap, and the file is removed. A segment is marked COMPACTING first, so a
//! crash mid-way is finished by the next compaction. Readers that meet a removed file read
//! the reference again (`SledStore::load`).

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use datatrust_core::store::StoreError;

const HEADER: &[u8; 8] = b"DTSEG001";
/// A reference's first byte; a reference is `REFERENCE_BYTES` long, and a sealed value
/// (nonce, tag) at least 40, so the two never look alike.
const REFERENCE_TAG: u8 = 0xb1;
pub(crate) const REFERENCE_BYTES: usize = 21;
/// A new segment is started once the current one is this long.
const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// The dead-bytes mark of a segment being compacted.
const COMPACTING: u64 = u64::MAX;
/// Open read handles kept at once.
const READ_HANDLES: usize = 256;

/// Which index a record belongs to, so that compaction can find its reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Chunks = 1,
    ReleaseParts = 2,
    Screenshots = 3,
}

impl Table {
    fn from_byte(byte: u8) -> Option<Table> {
        match byte {
            1 => Some(Table::Chunks),
            2 => Some(Table::ReleaseParts),
            3 => Some(Table::Screenshots),
            _ => None,
        }
    }
}

/// Where a value lies: segment, offset of its first byte, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reference {
    pub segment: u64,
    pub offset: u64,
    pub length: u32,
}

impl Reference {
    pub(crate) fn encode(&self) -> [u8; REFERENCE_BYTES] {
        let mut bytes = [0u8; REFERENCE_BYTES];
        bytes[0] = REFERENCE_TAG;
        bytes[1..9].copy_from_slice(&self.segment.to_be_bytes());
        bytes[9..17].copy_from_slice(&self.offset.to_be_bytes());
        bytes[17..21].copy_from_slice(&self.length.to_be_bytes());
        bytes
    }

    /// The reference a stored index value holds, or `None` for a value stored inline (by a
    /// format before 3).
    pub(crate) fn decode(stored: &[u8]) -> Option<Reference> {
        if stored.len() != REFERENCE_BYTES || stored[0] != REFERENCE_TAG {
            return None;
        }
        Some(Reference {
            segment: u64::from_be_bytes(stored[1..9].try_into().ok()?),
            offset: u64::from_be_bytes(stored[9..17].try_into().ok()?),
            length: u32::from_be_bytes(stored[17..21].try_into().ok()?),
        })
    }

    /// The bytes its whole record takes in the segment.
    pub(crate) fn record_bytes(&self, key: &[u8]) -> u64 {
        1 + 2 + key.len() as u64 + 4 + u64::from(self.length)
    }
}

struct Writer {
    id: u64,
    file: Arc<File>,
    length: u64,
}

pub(crate) struct Segments {
    directory: PathBuf,
    writer: Mutex<Writer>,
    /// How far (segment, length) is known durable.
    synced: Mutex<(u64, u64)>,
    readers: Mutex<HashMap<u64, Arc<File>>>,
    /// One compaction at a time (the duties' sweep and `EnforceDuties` may overlap).
    compaction: Mutex<()>,
    dead: sled::Tree,
    segment_bytes: u64,
    _temporary: Option<tempfile::TempDir>,
}

fn io_error(context: &str, error: std::io::Error) -> StoreError {
    crate::sled_store::file_error("segments", context, error)
}

fn sync_directory(directory: &Path) -> Result<(), StoreError> {
    crate::sled_store::sync_directory("segments", directory)
}

fn segment_name(id: u64) -> String {
    format!("{id:016x}")
}

/// The ids of the segment files in `directory`, in order.
fn segment_ids(directory: &Path) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(|error| io_error("listing", error))? {
        let entry = entry.map_err(|error| io_error("listing", error))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 16
            && let Ok(id) = u64::from_str_radix(name, 16)
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

impl Segments {
    /// Opens the segments in `directory` (created, mode 0700, if missing) and starts a new
    /// one for this run's writes. `dead`: the sled tree of dead bytes per segment.
    pub(crate) fn open(directory: &Path, dead: sled::Tree) -> Result<Segments, StoreError> {
        std::fs::create_dir_all(directory).map_err(|error| io_error("creating", error))?;
        std::fs::set_permissions(
            directory,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|error| io_error("restricting", error))?;
        let next = segment_ids(directory)?.last().map_or(1, |last| last + 1);
        let writer = create_segment(directory, next)?;
        Ok(Segments {
            directory: directory.to_path_buf(),
            synced: Mutex::new((writer.id, writer.length)),
            writer: Mutex::new(writer),
            readers: Mutex::default(),
            compaction: Mutex::new(()),
            dead,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            _temporary: None,
        })
    }

    pub(crate) fn temporary(dead: sled::Tree) -> Result<Segments, StoreError> {
        let temporary = tempfile::tempdir().map_err(|error| io_error("temporary", error))?;
        let mut segments = Segments::open(temporary.path(), dead)?;
        segments._temporary = Some(temporary);
        Ok(segments)
    }

    /// Appends one value, durably (see the module's notes), and returns where it lies.
    pub(crate) fn append(
        &self,
        table: Table,
        key: &[u8],
        value: &[u8],
    ) -> Result<Reference, StoreError> {
        let (reference, position) = self.append_unsynced(table, key, value)?;
        self.sync_through(position)?;
        Ok(reference)
    }

    /// Appends without waiting for the disk; `sync_through` the returned position makes it
    /// durable.
    fn append_unsynced(
        &self,
        table: Table,
        key: &[u8],
        value: &[u8],
    ) -> Result<(Reference, (u64, u64)), StoreError> {
        let key_length = u16::try_from(key.len())
            .map_err(|_| StoreError::new("segments: a key of more than 65535 bytes"))?;
        let length = u32::try_from(value.len())
            .map_err(|_| StoreError::new("segments: a value of more than 4 GiB"))?;
        let mut record = Vec::with_capacity(7 + key.len() + value.len());
        record.push(table as u8);
        record.extend_from_slice(&key_length.to_be_bytes());
        record.extend_from_slice(key);
        record.extend_from_slice(&length.to_be_bytes());
        record.extend_from_slice(value);
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.length >= self.segment_bytes {
            // Everything in the full segment is synced before the next one takes writes, so a
            // position in an older segment is always durable once a newer one's is.
            writer
                .file
                .sync_data()
                .map_err(|error| io_error("syncing a full segment", error))?;
            *writer = create_segment(&self.directory, writer.id + 1)?;
        }
        writer
            .file
            .write_all_at(&record, writer.length)
            .map_err(|error| io_error("appending", error))?;
        let reference = Reference {
            segment: writer.id,
            offset: writer.length + 7 + key.len() as u64,
            length,
        };
        writer.length += record.len() as u64;
        Ok((reference, (writer.id, writer.length)))
    }

    /// Waits until everything up to `position` is on disk: one `fdatasync` covers every
    /// append made before it, so concurrent appenders mostly find theirs done already.
    fn sync_through(&self, position: (u64, u64)) -> Result<(), StoreError> {
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        if *synced >= position {
            return Ok(());
        }
        let (file, end) = {
            let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            (writer.file.clone(), (writer.id, writer.length))
        };
        file.sync_data()
            .map_err(|error| io_error("syncing", error))?;
        *synced = end;
        Ok(())
    }

    /// The value at `reference`; `None` when its segment was compacted away since the
    /// reference was read: read the reference again.
    pub(crate) fn read(&self, reference: Reference) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(file) = self.reader(reference.segment)? else {
            return Ok(None);
        };
        let mut value = vec![0u8; reference.length as usize];
        file.read_exact_at(&mut value, reference.offset)
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::UnexpectedEof => StoreError::data_loss(format!(
                    "segments: segment {} ends before a value it should hold",
                    segment_name(reference.segment)
                )),
                _ => io_error("reading", error),
            })?;
        Ok(Some(value))
    }

    fn reader(&self, segment: u64) -> Result<Option<Arc<File>>, StoreError> {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = readers.get(&segment) {
            return Ok(Some(file.clone()));
        }
        let file = match File::open(self.directory.join(segment_name(segment))) {
            Ok(file) => Arc::new(file),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(io_error(
                    &format!("opening {}", segment_name(segment)),
                    error,
                ));
            }
        };
        if readers.len() >= READ_HANDLES {
            readers.clear();
        }
        readers.insert(segment, file.clone());
        Ok(Some(file))
    }

    /// Counts a deleted value's record as dead in its segment.
    pub(crate) fn forget(&self, key: &[u8], reference: Reference) -> Result<(), StoreError> {
        let bytes = reference.record_bytes(key);
        self.dead
            .fetch_and_update(reference.segment.to_be_bytes(), |current| {
                let current = current
                    .and_then(|bytes| bytes.try_into().ok())
                    .map_or(0, u64::from_be_bytes);
                if current == COMPACTING {
                    return Some(current.to_be_bytes().to_vec());
                }
                Some(current.saturating_add(bytes).to_be_bytes().to_vec())
            })
            .map_err(crate::sled_store::store_error)?;
        Ok(())
    }

    /// Rewrites every segment but the one taking writes whose dead bytes are at least half
    /// its length (or whose compaction a crash interrupted): `index` gives each table's
    /// tree. Returns (segments removed, bytes freed).
    pub(crate) fn compact(
        &self,
        index: &dyn Fn(Table) -> sled::Tree,
        flush: &dyn Fn() -> Result<(), StoreError>,
    ) -> Result<(u64, u64), StoreError> {
        let _alone = self
            .compaction
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let active = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .id;
        let (mut removed, mut freed) = (0, 0);
        let ids = segment_ids(&self.directory)?;
        // Counts of segments a crash removed before their count.
        for entry in self.dead.iter().keys() {
            let key = entry.map_err(crate::sled_store::store_error)?;
            let id = key.as_ref().try_into().map(u64::from_be_bytes);
            if id.is_ok_and(|id| id < active && ids.binary_search(&id).is_err()) {
                self.dead
                    .remove(&key)
                    .map_err(crate::sled_store::store_error)?;
            }
        }
        for id in ids {
            if id >= active {
                continue;
            }
            let path = self.directory.join(segment_name(id));
            let length = std::fs::metadata(&path)
                .map_err(|error| io_error("measuring", error))?
                .len();
            let dead = self
                .dead
                .get(id.to_be_bytes())
                .map_err(crate::sled_store::store_error)?
                .and_then(|bytes| bytes.as_ref().try_into().ok())
                .map_or(0, u64::from_be_bytes);
            let content = length.saturating_sub(HEADER.len() as u64);
            if dead != COMPACTING && dead.saturating_mul(2) < content {
                continue;
            }
            self.dead
                .insert(id.to_be_bytes(), &COMPACTING.to_be_bytes())
                .map_err(crate::sled_store::store_error)?;
            flush()?;
            self.rewrite_live(id, &path, index)?;
            flush()?;
            // A damaged record stops the reading before the end: the values after it were
            // not moved, and the file must stay for their references (which read by
            // offset, not by parsing). Its mark stays too, so that every sweep says so.
            let stranded = self.references_into(id, index)?;
            if stranded > 0 {
                tracing::error!(
                    segment = %path.display(),
                    values = stranded,
                    "a segment file could not be read to its end (damaged?); kept, with the values compaction could not move"
                );
                continue;
            }
            self.readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            std::fs::remove_file(&path).map_err(|error| io_error("removing", error))?;
            sync_directory(&self.directory)?;
            self.dead
                .remove(id.to_be_bytes())
                .map_err(crate::sled_store::store_error)?;
            flush()?;
            removed += 1;
            freed += length;
        }
        Ok((removed, freed))
    }

    /// How many references of the index point into segment `id`.
    fn references_into(
        &self,
        id: u64,
        index: &dyn Fn(Table) -> sled::Tree,
    ) -> Result<u64, StoreError> {
        let mut count = 0;
        for table in [Table::Chunks, Table::ReleaseParts, Table::Screenshots] {
            for value in index(table).iter().values() {
                let value = value.map_err(crate::sled_store::store_error)?;
                if Reference::decode(&value).is_some_and(|reference| reference.segment == id) {
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// Copies segment `id`'s live records to the segment taking writes and points the index
    /// at the copies.
    fn rewrite_live(
        &self,
        id: u64,
        path: &Path,
        index: &dyn Fn(Table) -> sled::Tree,
    ) -> Result<(), StoreError> {
        let file = File::open(path).map_err(|error| io_error("opening", error))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut header = [0u8; 8];
        if reader.read_exact(&mut header).is_err() || &header != HEADER {
            return Err(StoreError::data_loss(format!(
                "segments: {} is not a segment file",
                path.display()
            )));
        }
        let mut offset = HEADER.len() as u64;
        let mut moved: Vec<(Table, Vec<u8>, Reference, Reference)> = Vec::new();
        let mut position = (0, 0);
        loop {
            // A torn tail (a crash mid-append, never acknowledged) ends the segment.
            let mut head = [0u8; 3];
            if reader.read_exact(&mut head).is_err() {
                break;
            }
            let Some(table) = Table::from_byte(head[0]) else {
                break;
            };
            let mut key = vec![0u8; usize::from(u16::from_be_bytes([head[1], head[2]]))];
            let mut length = [0u8; 4];
            if reader.read_exact(&mut key).is_err() || reader.read_exact(&mut length).is_err() {
                break;
            }
            let length = u32::from_be_bytes(length);
            let here = Reference {
                segment: id,
                offset: offset + 7 + key.len() as u64,
                length,
            };
            offset = here.offset + u64::from(length);
            let tree = index(table);
            let live = tree
                .get(&key)
                .map_err(crate::sled_store::store_error)?
                .is_some_and(|stored| Reference::decode(&stored) == Some(here));
            if !live {
                std::io::copy(
                    &mut (&mut reader).take(u64::from(length)),
                    &mut std::io::sink(),
                )
                .map_err(|error| io_error("skipping", error))?;
                continue;
            }
            let mut value = vec![0u8; length as usize];
            if reader.read_exact(&mut value).is_err() {
                break;
            }
            let (copy, at) = self.append_unsynced(table, &key, &value)?;
            position = at;
            moved.push((table, key, here, copy));
            if moved.len() >= 1024 {
                self.swap(&mut moved, position, index)?;
            }
        }
        self.swap(&mut moved, position, index)
    }

    /// Syncs the copies, then points the index at them where it still points at the
    /// originals; a copy whose original was deleted or replaced meanwhile is dead.
    fn swap(
        &self,
        moved: &mut Vec<(Table, Vec<u8>, Reference, Reference)>,
        position: (u64, u64),
        index: &dyn Fn(Table) -> sled::Tree,
    ) -> Result<(), StoreError> {
        if moved.is_empty() {
            return Ok(());
        }
        self.sync_through(position)?;
        for (table, key, original, copy) in moved.drain(..) {
            let swapped = index(table)
                .compare_and_swap(
                    &key,
                    Some(original.encode().as_slice()),
                    Some(copy.encode().as_slice()),
                )
                .map_err(crate::sled_store::store_error)?;
            if swapped.is_err() {
                self.forget(&key, copy)?;
            }
        }
        Ok(())
    }

    /// A backup's first half, with writers running: copies to `target` (created) the
    /// segment files nobody writes any more (every one older than the one taking writes),
    /// and returns their ids. A file compacted away meanwhile is left out.
    pub(crate) fn copy_settled_to(&self, target: &Path) -> Result<BTreeSet<u64>, StoreError> {
        let active = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .id;
        std::fs::create_dir_all(target).map_err(|error| io_error("creating a copy", error))?;
        std::fs::set_permissions(target, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|error| io_error("restricting a copy", error))?;
        let mut copied = BTreeSet::new();
        for id in segment_ids(&self.directory)? {
            if id >= active {
                continue;
            }
            match copy_file(
                &self.directory.join(segment_name(id)),
                &target.join(segment_name(id)),
            ) {
                Ok(()) => {
                    copied.insert(id);
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    let _ = std::fs::remove_file(target.join(segment_name(id)));
                }
                Err(error) => return Err(io_error("copying", error)),
            }
        }
        sync_directory(target)?;
        Ok(copied)
    }

    /// A backup's second half, with every writer kept out: copies the segment files not in
    /// `settled` (the one taking writes, and any made since the first half) and removes from
    /// `target` those compacted away since, so that `target` holds exactly this moment's.
    pub(crate) fn copy_rest_to(
        &self,
        target: &Path,
        settled: &BTreeSet<u64>,
    ) -> Result<(), StoreError> {
        {
            let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            writer
                .file
                .sync_data()
                .map_err(|error| io_error("syncing", error))?;
        }
        let now: BTreeSet<u64> = segment_ids(&self.directory)?.into_iter().collect();
        for id in now.difference(settled) {
            copy_file(
                &self.directory.join(segment_name(*id)),
                &target.join(segment_name(*id)),
            )
            .map_err(|error| io_error("copying", error))?;
        }
        for id in settled.difference(&now) {
            std::fs::remove_file(target.join(segment_name(*id)))
                .map_err(|error| io_error("removing a compacted copy", error))?;
        }
        sync_directory(target)
    }
}

/// Copies a file and syncs the copy.
fn copy_file(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::copy(from, to)?;
    File::open(to)?.sync_all()
}

fn create_segment(directory: &Path, id: u64) -> Result<Writer, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(directory.join(segment_name(id)))
        .map_err(|error| io_error("creating a segment", error))?;
    file.write_all_at(HEADER, 0)
        .and_then(|()| file.sync_data())
        .map_err(|error| io_error("creating a segment", error))?;
    sync_directory(directory)?;
    Ok(Writer {
        id,
        file: Arc::new(file),
        length: HEADER.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory for segments, a database, and its `chunks` tree as the one index.
    fn fixture() -> (tempfile::TempDir, sled::Db, sled::Tree) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let chunks = db.open_tree("chunks").unwrap();
        (tempfile::tempdir().unwrap(), db, chunks)
    }

    fn open(directory: &Path, db: &sled::Db) -> Segments {
        Segments::open(directory, db.open_tree("segment_dead").unwrap()).unwrap()
    }

    #[test]
    fn values_survive_a_reopen_and_compaction_keeps_only_live_ones() {
        let (temporary, db, chunks) = fixture();
        let index = |_: Table| chunks.clone();
        let flush = || Ok(());
        let directory = temporary.path().join("segments");
        let mut references = Vec::new();
        {
            let segments = open(&directory, &db);
            for number in 0u32..10 {
                let key = number.to_be_bytes();
                let value = vec![number as u8; 1000];
                let reference = segments.append(Table::Chunks, &key, &value).unwrap();
                chunks.insert(key, &reference.encode()).unwrap();
                references.push(reference);
            }
        }
        // A new run writes to a new segment; the old one is read as it was.
        let segments = open(&directory, &db);
        assert_eq!(
            segments.read(references[3]).unwrap().unwrap(),
            vec![3u8; 1000]
        );
        // Six of ten deleted: the first segment is more than half dead.
        for number in 0u32..6 {
            let key = number.to_be_bytes();
            chunks.remove(key).unwrap();
            segments.forget(&key, references[number as usize]).unwrap();
        }
        let (removed, freed) = segments.compact(&index, &flush).unwrap();
        assert_eq!(removed, 1);
        assert!(freed > 10_000, "the whole first segment: {freed}");
        assert!(!directory.join(segment_name(1)).exists());
        for number in 6u32..10 {
            let stored = chunks.get(number.to_be_bytes()).unwrap().unwrap();
            let reference = Reference::decode(&stored).unwrap();
            assert_eq!(reference.segment, 2, "moved to the segment taking writes");
            assert_eq!(
                segments.read(reference).unwrap().unwrap(),
                vec![number as u8; 1000]
            );
        }
        // A reference into the removed segment says so, for the caller to read it again.
        assert_eq!(segments.read(references[7]).unwrap(), None);
        // Nothing more to do.
        assert_eq!(segments.compact(&index, &flush).unwrap(), (0, 0));
    }

    #[test]
    fn an_interrupted_compaction_is_finished_and_a_torn_tail_ignored() {
        let (temporary, db, chunks) = fixture();
        let index = |_: Table| chunks.clone();
        let flush = || Ok(());
        let directory = temporary.path().join("segments");
        let kept = {
            let segments = open(&directory, &db);
            let reference = segments.append(Table::Chunks, b"kept", b"value").unwrap();
            chunks.insert(b"kept", &reference.encode()).unwrap();
            reference
        };
        // A crash mid-append left half a record; a crash mid-compaction left the mark.
        let path = directory.join(segment_name(1));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[1, 0, 9, b'x']);
        std::fs::write(&path, bytes).unwrap();
        db.open_tree("segment_dead")
            .unwrap()
            .insert(1u64.to_be_bytes(), &COMPACTING.to_be_bytes())
            .unwrap();
        let segments = open(&directory, &db);
        assert_eq!(segments.read(kept).unwrap().unwrap(), b"value");
        assert_eq!(segments.compact(&index, &flush).unwrap().0, 1);
        let moved = Reference::decode(&chunks.get(b"kept").unwrap().unwrap()).unwrap();
        assert_eq!(segments.read(moved).unwrap().unwrap(), b"value");
    }

    #[test]
    fn a_damaged_record_keeps_its_segment_and_the_values_after_it() {
        let (temporary, db, chunks) = fixture();
        let tables = [
            chunks.clone(),
            db.open_tree("release_parts").unwrap(),
            db.open_tree("screenshots").unwrap(),
        ];
        let index = |table: Table| tables[table as usize - 1].clone();
        let flush = || Ok(());
        let directory = temporary.path().join("segments");
        let references: Vec<Reference> = {
            let segments = open(&directory, &db);
            (0u8..3)
                .map(|number| {
                    let reference = segments
                        .append(Table::Chunks, &[number], &[number; 100])
                        .unwrap();
                    chunks.insert([number], &reference.encode()).unwrap();
                    reference
                })
                .collect()
        };
        // The second record's table byte is damaged; the first value is deleted.
        let path = directory.join(segment_name(1));
        let mut bytes = std::fs::read(&path).unwrap();
        let second_record = (references[1].offset - 7 - 1) as usize;
        bytes[second_record] = 0xee;
        std::fs::write(&path, bytes).unwrap();
        let segments = open(&directory, &db);
        chunks.remove([0u8]).unwrap();
        segments.forget(&[0], references[0]).unwrap();
        db.open_tree("segment_dead")
            .unwrap()
            .insert(1u64.to_be_bytes(), &COMPACTING.to_be_bytes())
            .unwrap();
        assert_eq!(segments.compact(&index, &flush).unwrap(), (0, 0));
        assert!(path.exists(), "kept for the values it still holds");
        assert_eq!(
            segments.read(references[2]).unwrap().unwrap(),
            vec![2u8; 100],
            "a value after the damage is still read by its reference"
        );
    }

    #[test]
    fn references_and_inline_values_are_told_apart() {
        let reference = Reference {
            segment: 7,
            offset: 99,
            length: 5,
        };
        assert_eq!(Reference::decode(&reference.encode()), Some(reference));
        // A sealed value is at least a nonce and a tag long.
        assert_eq!(Reference::decode(&[REFERENCE_TAG; 40]), None);
    }
}
