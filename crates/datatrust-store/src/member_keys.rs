//! Members' wrapped keys, one small file each, outside sled: `<data dir>/member-keys/<hex of
//! the member's public key>`, mode 0600, holding `nonce || wrapped key`. Erasure unlinks the
//! file and syncs the directory, so the key leaves the trust's files at once; in sled, a
//! deleted value can linger in old pages until its segments are reclaimed.
//!
//! Creation writes a temporary file, syncs it, renames it into place and syncs the directory;
//! one mutex orders creators, erasers and cache fills within the process (the data
//! directory's lock keeps other processes out). Keys once read are cached, wrapped; erasure
//! drops the cache entry under the same mutex.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use datatrust_core::PublicKey;
use datatrust_core::store::StoreError;

pub(crate) struct MemberKeyFiles {
    directory: PathBuf,
    writers: Mutex<()>,
    /// Keys read or written since opening (wrapped, as on disk): ingest asks for a member's
    /// key with every batch. Erasure takes the entry out with the file.
    cache: std::sync::RwLock<std::collections::HashMap<PublicKey, Vec<u8>>>,
    _temporary: Option<tempfile::TempDir>,
}

fn io_error(context: &str, error: std::io::Error) -> StoreError {
    crate::sled_store::file_error("member keys", context, error)
}

fn sync_directory(directory: &Path) -> Result<(), StoreError> {
    crate::sled_store::sync_directory("member keys", directory)
}

impl MemberKeyFiles {
    pub(crate) fn open(directory: &Path) -> Result<MemberKeyFiles, StoreError> {
        std::fs::create_dir_all(directory).map_err(|error| io_error("creating", error))?;
        std::fs::set_permissions(
            directory,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|error| io_error("restricting", error))?;
        Ok(MemberKeyFiles {
            directory: directory.to_path_buf(),
            writers: Mutex::new(()),
            cache: std::sync::RwLock::default(),
            _temporary: None,
        })
    }

    pub(crate) fn temporary() -> Result<MemberKeyFiles, StoreError> {
        let temporary = tempfile::tempdir().map_err(|error| io_error("temporary", error))?;
        let mut files = MemberKeyFiles::open(temporary.path())?;
        files._temporary = Some(temporary);
        Ok(files)
    }

    fn path(&self, member: &PublicKey) -> PathBuf {
        self.directory.join(hex::encode(member.as_bytes()))
    }

    pub(crate) fn get(&self, member: &PublicKey) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(wrapped) = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(member)
        {
            return Ok(Some(wrapped.clone()));
        }
        self.read_file(member)
    }

    /// Reads the file under the writers' lock, so an erasure cannot slip between reading
    /// and caching (which would leave a destroyed key in the cache).
    fn read_file(&self, member: &PublicKey) -> Result<Option<Vec<u8>>, StoreError> {
        let _writer = self
            .writers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.read_file_locked(member)
    }

    fn read_file_locked(&self, member: &PublicKey) -> Result<Option<Vec<u8>>, StoreError> {
        match std::fs::read(self.path(member)) {
            Ok(bytes) => {
                self.cache
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(*member, bytes.clone());
                Ok(Some(bytes))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("reading", error)),
        }
    }

    /// The members with a key file, in key order, strictly after `after`, at most `limit`.
    pub(crate) fn members(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<PublicKey>, StoreError> {
        let entries =
            std::fs::read_dir(&self.directory).map_err(|error| io_error("listing", error))?;
        let mut members = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| io_error("listing", error))?;
            let name = entry.file_name();
            let Some(bytes) = name.to_str().and_then(|name| hex::decode(name).ok()) else {
                continue; // a temporary file of a creation in progress
            };
            if after.is_some_and(|after| bytes.as_slice() <= after) {
                continue;
            }
            if let Ok(member) = PublicKey::from_slice(&bytes, "member") {
                members.push(member);
            }
        }
        members.sort_by(|first, second| first.as_bytes().cmp(second.as_bytes()));
        members.truncate(limit);
        Ok(members)
    }

    /// Stores `wrapped` unless the member has a key already; returns the key that stands.
    pub(crate) fn insert_if_absent(
        &self,
        member: &PublicKey,
        wrapped: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let _writer = self
            .writers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(existing) = self.read_file_locked(member)? {
            return Ok(existing);
        }
        let final_path = self.path(member);
        let temporary_path = final_path.with_extension("new");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary_path)
            .map_err(|error| io_error("creating a key file", error))?;
        file.write_all(wrapped)
            .and_then(|()| file.sync_all())
            .map_err(|error| io_error("writing a key file", error))?;
        std::fs::rename(&temporary_path, &final_path)
            .map_err(|error| io_error("placing a key file", error))?;
        sync_directory(&self.directory)?;
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(*member, wrapped.to_vec());
        Ok(wrapped.to_vec())
    }

    /// Destroys the member's key; durable when it returns.
    pub(crate) fn remove(&self, member: &PublicKey) -> Result<(), StoreError> {
        let _writer = self
            .writers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match std::fs::remove_file(self.path(member)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error("removing a key file", error)),
        }
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(member);
        sync_directory(&self.directory)
    }
}
