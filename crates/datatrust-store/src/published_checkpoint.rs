//! The log's latest published checkpoint, kept in a file of its own beside the database
//! (`<data dir>/log-checkpoint`), so that a database rolled back by damage or by restoring an
//! old copy can be told from a current one: the log refuses to open when its stored tree
//! does not extend this checkpoint (`datatrust_tlog::OpenError::RolledBack`).
//!
//! Two fixed slots, written alternately with one `fdatasync` each; a write torn by a crash
//! spoils only the slot being written, and the other still holds the previous checkpoint.
//!
//! ```text
//! slot (4096 bytes) = tree size (u64 BE) || note length (u32 BE) || note || SHA-256 of all before
//! ```

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

const SLOT_BYTES: usize = 4096;
const HEADER_BYTES: usize = 12;
const DIGEST_BYTES: usize = 32;

#[derive(Debug)]
pub struct PublishedCheckpointFile {
    path: PathBuf,
    file: File,
    /// (tree size, slot) of the newest valid slot; the next write goes to the other one.
    newest: Mutex<Option<(u64, u64)>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PublishedCheckpointError {
    pub path: PathBuf,
    pub message: String,
}

impl PublishedCheckpointFile {
    pub fn open(path: &Path) -> Result<PublishedCheckpointFile, PublishedCheckpointError> {
        let error = |message: String| PublishedCheckpointError {
            path: path.to_path_buf(),
            message,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|io| error(io.to_string()))?;
        let length = file.metadata().map_err(|io| error(io.to_string()))?.len();
        let mut newest = None;
        for slot in 0..2u64 {
            if length < (slot + 1) * SLOT_BYTES as u64 {
                continue;
            }
            let mut bytes = vec![0u8; SLOT_BYTES];
            file.read_exact_at(&mut bytes, slot * SLOT_BYTES as u64)
                .map_err(|io| error(io.to_string()))?;
            if let Some((size, _)) = decode_slot(&bytes)
                && newest.is_none_or(|(newest_size, _)| size >= newest_size)
            {
                newest = Some((size, slot));
            }
        }
        if length > 0 && newest.is_none() {
            return Err(error(
                "neither copy of the published checkpoint is readable; restore this file from a \
                 backup (or, only if you know the database is current, remove it to accept the \
                 database's log)"
                    .into(),
            ));
        }
        Ok(PublishedCheckpointFile {
            path: path.to_path_buf(),
            file,
            newest: Mutex::new(newest),
        })
    }

    /// The latest published checkpoint note, if any was recorded.
    pub fn latest(&self) -> Result<Option<String>, PublishedCheckpointError> {
        let Some((_, slot)) = *self.newest.lock().expect("checkpoint file lock poisoned") else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; SLOT_BYTES];
        self.file
            .read_exact_at(&mut bytes, slot * SLOT_BYTES as u64)
            .map_err(|io| self.error(io.to_string()))?;
        let (_, note) = decode_slot(&bytes)
            .ok_or_else(|| self.error("the published checkpoint changed on disk".into()))?;
        Ok(Some(note))
    }

    /// Records `note` (a checkpoint of `size`) durably. Never goes backwards: a tree no
    /// larger than the one recorded is not written.
    pub fn record(&self, size: u64, note: &str) -> Result<(), PublishedCheckpointError> {
        let mut newest = self.newest.lock().expect("checkpoint file lock poisoned");
        if newest.is_some_and(|(newest_size, _)| size <= newest_size) {
            return Ok(());
        }
        let slot = newest.map_or(0, |(_, slot)| 1 - slot);
        let bytes = encode_slot(size, note).ok_or_else(|| {
            self.error(format!(
                "a checkpoint note of {} bytes does not fit a slot",
                note.len()
            ))
        })?;
        self.file
            .write_all_at(&bytes, slot * SLOT_BYTES as u64)
            .and_then(|()| self.file.sync_data())
            .map_err(|io| self.error(io.to_string()))?;
        *newest = Some((size, slot));
        Ok(())
    }

    fn error(&self, message: String) -> PublishedCheckpointError {
        PublishedCheckpointError {
            path: self.path.clone(),
            message,
        }
    }
}

fn encode_slot(size: u64, note: &str) -> Option<Vec<u8>> {
    if HEADER_BYTES + note.len() + DIGEST_BYTES > SLOT_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(SLOT_BYTES);
    bytes.extend_from_slice(&size.to_be_bytes());
    bytes.extend_from_slice(&(note.len() as u32).to_be_bytes());
    bytes.extend_from_slice(note.as_bytes());
    let digest = Sha256::digest(&bytes);
    bytes.extend_from_slice(&digest);
    bytes.resize(SLOT_BYTES, 0);
    Some(bytes)
}

fn decode_slot(bytes: &[u8]) -> Option<(u64, String)> {
    let size = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let length = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?) as usize;
    let end = HEADER_BYTES.checked_add(length)?;
    let digest = bytes.get(end..end.checked_add(DIGEST_BYTES)?)?;
    if Sha256::digest(&bytes[..end]).as_slice() != digest {
        return None;
    }
    let note = String::from_utf8(bytes[HEADER_BYTES..end].to_vec()).ok()?;
    Some((size, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_slot_wins_and_a_torn_slot_leaves_the_other() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("log-checkpoint");
        let file = PublishedCheckpointFile::open(&path).unwrap();
        assert_eq!(file.latest().unwrap(), None);
        file.record(1, "one\n").unwrap();
        file.record(2, "two\n").unwrap();
        // Never backwards.
        file.record(1, "one again\n").unwrap();
        drop(file);
        let file = PublishedCheckpointFile::open(&path).unwrap();
        assert_eq!(file.latest().unwrap().as_deref(), Some("two\n"));
        file.record(3, "three\n").unwrap();
        drop(file);
        // Tear the slot holding "three": the previous checkpoint is still there.
        let raw = OpenOptions::new().write(true).open(&path).unwrap();
        raw.write_all_at(b"garbage", 20).unwrap();
        let file = PublishedCheckpointFile::open(&path).unwrap();
        assert_eq!(file.latest().unwrap().as_deref(), Some("two\n"));
        // Both slots spoiled: refused, naming the file.
        raw.write_all_at(b"garbage", SLOT_BYTES as u64 + 20)
            .unwrap();
        let error = PublishedCheckpointFile::open(&path).unwrap_err();
        assert!(error.to_string().contains("log-checkpoint"), "{error}");
    }
}
