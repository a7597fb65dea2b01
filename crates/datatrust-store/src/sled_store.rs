//! `TrustStore` on sled 0.34: one tree per record kind, multi-tree transactions where records
//! change together, and a flush before any mutating method returns (acknowledged = durable).

use datatrust_core::store::{
    Invitation, KeyValue, PrincipalInsert, RecordKind, RecordStore, RecordWrite, StoreError,
    TrustStore,
};
use datatrust_core::{CollectorAuthorization, Principal, PublicKey, Role};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

/// Tree names. Keys are raw bytes: public keys are 32 bytes, so concatenations are unambiguous.
pub(crate) const PRINCIPALS: &str = "principals"; // public key -> Principal
pub(crate) const PRINCIPALS_BY_ROLE: &str = "principals_by_role"; // role byte || public key -> ()
pub(crate) const INVITATIONS: &str = "invitations"; // SHA-256(code) -> Invitation
pub(crate) const COLLECTORS_BY_MEMBER: &str = "collectors_by_member"; // member || collector -> authorisation
pub(crate) const MEMBERS_BY_COLLECTOR: &str = "members_by_collector"; // collector || member -> authorisation
pub(crate) const METADATA: &str = "metadata";
pub(crate) const SEGMENT_DEAD: &str = "segment_dead"; // segment id -> dead bytes (segments.rs)

#[derive(Clone)]
pub struct SledStore {
    database: sled::Db,
    principals: sled::Tree,
    principals_by_role: sled::Tree,
    invitations: sled::Tree,
    collectors_by_member: sled::Tree,
    members_by_collector: sled::Tree,
    /// One tree per governance record kind, in `RecordKind::ALL` order.
    records: Vec<sled::Tree>,
    /// Members' telemetry (see `vault.rs`).
    pub(crate) member_keys: std::sync::Arc<crate::member_keys::MemberKeyFiles>,
    pub(crate) chunks: sled::Tree,
    pub(crate) event_counts: sled::Tree,
    pub(crate) release_parts: sled::Tree,
    pub(crate) screenshots: sled::Tree,
    /// member(32) || SHA-256(image) -> when it was stored (Unix seconds, i64 BE).
    pub(crate) screenshot_times: sled::Tree,
    /// The expiry index (`vault.rs`): member || earliest day || chunk key -> ().
    pub(crate) chunk_days: sled::Tree,
    /// The expiry index: member || SHA-256(image) -> latest day of an event referring to it.
    pub(crate) screenshot_refs: sled::Tree,
    /// The bulk sealed values of `chunks`, `release_parts` and `screenshots`, which hold
    /// references into them (see `segments.rs`).
    pub(crate) segments: std::sync::Arc<crate::segments::Segments>,
    /// The trust's data key, which wraps every member's key.
    pub(crate) data_key: [u8; 32],
    /// The log's last published checkpoint, outside the database; `None` for temporary
    /// stores.
    published_checkpoint:
        Option<std::sync::Arc<crate::published_checkpoint::PublishedCheckpointFile>>,
    /// Free space on the database's disk; `None` for temporary stores.
    pub(crate) disk_space: Option<std::sync::Arc<crate::disk_space::DiskSpace>>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("SledStore").finish_non_exhaustive()
    }
}

/// sled's page cache, in bytes, for the databases this process opens from now on
/// (`set_cache_capacity`); sled's own default until set.
static CACHE_BYTES: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(DEFAULT_CACHE_BYTES);

/// sled's default page cache: 1 GiB.
pub const DEFAULT_CACHE_BYTES: u64 = 1024 * 1024 * 1024;

/// Sets the page cache of the embedded databases this process opens from now on (`serve
/// --cache-mb`). The process's memory grows with it: it is the largest part of a busy
/// trust's resident memory on the embedded store.
pub fn set_cache_capacity(bytes: u64) {
    CACHE_BYTES.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

impl SledStore {
    /// Opens (creating if needed) a sled database at `path`, with the members' key files in
    /// the sibling directory `member-keys` (so give `path` its own parent, e.g.
    /// `<data dir>/db`); `data_key` wraps the members' telemetry keys and must be the same
    /// every time the database is opened.
    pub fn open(path: &std::path::Path, data_key: [u8; 32]) -> Result<SledStore, StoreError> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES.load(std::sync::atomic::Ordering::Relaxed))
            // Durability comes from explicit flushes; the periodic background flush only
            // bounds how much unacknowledged work a crash can lose.
            .flush_every_ms(Some(500));
        // sled 0.34 releases its file lock from its flusher thread, after the last handle is
        // dropped (spacejam/sled#1289), so reopening right after closing can find the lock
        // still held by ourselves. Other processes are kept out by the data directory's own
        // lock, taken before this; so a held lock here is transient: wait for it, bounded.
        let mut attempts = 0;
        loop {
            match config.open() {
                Ok(database) => {
                    let keys = crate::member_keys::MemberKeyFiles::open(&member_keys_beside(path))?;
                    let segments = crate::segments::Segments::open(
                        &path.with_file_name("segments"),
                        database.open_tree(SEGMENT_DEAD).map_err(store_error)?,
                    )?;
                    let published = crate::published_checkpoint::PublishedCheckpointFile::open(
                        &path.with_file_name("log-checkpoint"),
                    )
                    .map_err(|error| StoreError::new(error.to_string()))?;
                    let mut store = SledStore::from_database(database, keys, segments, data_key)?;
                    store.published_checkpoint = Some(std::sync::Arc::new(published));
                    store.disk_space = Some(crate::disk_space::DiskSpace::new(path.to_path_buf()));
                    return Ok(store);
                }
                Err(sled::Error::Io(error))
                    if error.kind() == std::io::ErrorKind::WouldBlock && attempts < 100 =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(error) => return Err(store_error(error)),
            }
        }
    }

    /// A store in a temporary directory that sled deletes on drop, with a random data key;
    /// for tests.
    pub fn temporary() -> Result<SledStore, StoreError> {
        let database = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(store_error)?;
        let segments = crate::segments::Segments::temporary(
            database.open_tree(SEGMENT_DEAD).map_err(store_error)?,
        )?;
        SledStore::from_database(
            database,
            crate::member_keys::MemberKeyFiles::temporary()?,
            segments,
            rand::random(),
        )
    }

    fn from_database(
        database: sled::Db,
        member_keys: crate::member_keys::MemberKeyFiles,
        segments: crate::segments::Segments,
        data_key: [u8; 32],
    ) -> Result<SledStore, StoreError> {
        // Trusts made before the keys moved out of sled: move them, then clear the tree.
        let legacy = database.open_tree("member_keys").map_err(store_error)?;
        for entry in legacy.iter() {
            let (member, wrapped) = entry.map_err(store_error)?;
            let member = datatrust_core::PublicKey::from_slice(&member, "member_keys")
                .map_err(|error| StoreError::new(error.to_string()))?;
            member_keys.insert_if_absent(&member, &wrapped)?;
        }
        if !legacy.is_empty() {
            legacy.clear().map_err(store_error)?;
            database.flush().map_err(store_error)?;
        }
        let tree = |name: &str| database.open_tree(name).map_err(store_error);
        Ok(SledStore {
            principals: tree(PRINCIPALS)?,
            principals_by_role: tree(PRINCIPALS_BY_ROLE)?,
            invitations: tree(INVITATIONS)?,
            collectors_by_member: tree(COLLECTORS_BY_MEMBER)?,
            members_by_collector: tree(MEMBERS_BY_COLLECTOR)?,
            records: RecordKind::ALL
                .iter()
                .map(|kind| tree(kind.table()))
                .collect::<Result<_, _>>()?,
            member_keys: std::sync::Arc::new(member_keys),
            chunks: tree("chunks")?,
            event_counts: tree("event_counts")?,
            release_parts: tree("release_parts")?,
            screenshots: tree("screenshots")?,
            screenshot_times: tree("screenshot_times")?,
            chunk_days: tree("chunk_days")?,
            screenshot_refs: tree("screenshot_refs")?,
            segments: std::sync::Arc::new(segments),
            data_key,
            database,
            published_checkpoint: None,
            disk_space: None,
        })
    }

    /// The transparency log's storage, in the same database.
    pub fn log_store(&self) -> Result<crate::SledLogStore, StoreError> {
        crate::SledLogStore::open(
            &self.database,
            self.published_checkpoint.clone(),
            self.disk_space.clone(),
        )
    }

    /// The trust's data key, which wraps every member's telemetry key (for a backend that
    /// keeps telemetry elsewhere, sealed the same way).
    pub fn data_key(&self) -> [u8; 32] {
        self.data_key
    }

    pub(crate) fn database(&self) -> &sled::Db {
        &self.database
    }

    /// A principal as stored: sealed under the data key, since it holds the secret salt of
    /// the member's log commitments (which, with the key, links a member to their entries).
    pub(crate) fn encode_principal(&self, principal: &Principal) -> Result<Vec<u8>, StoreError> {
        self.seal_value(
            PRINCIPALS,
            principal.public_key.as_bytes(),
            &encode(principal)?,
        )
    }

    pub(crate) fn decode_principal(
        &self,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Principal, StoreError> {
        decode(&self.open_value(PRINCIPALS, key, stored)?)
    }

    /// Seals a value at rest under the data key, bound to its tree and key; sealed values
    /// start with `vault::SEALED_VALUE`, which no JSON value does.
    pub(crate) fn seal_value(
        &self,
        space: &str,
        key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        crate::vault::seal_value(&self.data_key, space, key, plaintext)
    }

    /// Opens a value `seal_value` made; a value stored before sealing (JSON) is returned as
    /// it is (`seal_legacy_values` reseals those on open).
    pub(crate) fn open_value(
        &self,
        space: &str,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        crate::vault::open_value(&self.data_key, space, key, stored)
    }

    /// Ballots are sealed at rest: how a member voted is theirs alone.
    pub(crate) fn seal_record(
        &self,
        kind: RecordKind,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        if kind == RecordKind::Ballot {
            self.seal_value(kind.name(), key, &value)
        } else {
            Ok(value)
        }
    }

    pub(crate) fn open_record(
        &self,
        kind: RecordKind,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        if kind == RecordKind::Ballot {
            self.open_value(kind.name(), key, stored)
        } else {
            Ok(stored.to_vec())
        }
    }

    /// Seals what an older trust stored in the clear: principals (their commitment salts)
    /// and ballots.
    pub(crate) fn seal_legacy_values(&self) -> Result<(), StoreError> {
        let ballots = self.records(RecordKind::Ballot).clone();
        for (space, tree) in [
            (PRINCIPALS, &self.principals),
            (RecordKind::Ballot.name(), &ballots),
        ] {
            let mut batch = sled::Batch::default();
            let mut sealed_any = false;
            for entry in tree.iter() {
                let (key, value) = entry.map_err(store_error)?;
                if value.first() != Some(&crate::vault::SEALED_VALUE) {
                    batch.insert(key.clone(), self.seal_value(space, &key, &value)?);
                    sealed_any = true;
                }
            }
            if sealed_any {
                tree.apply_batch(batch).map_err(store_error)?;
                self.flush_now()?;
            }
        }
        Ok(())
    }

    /// Refuses a write while the disk is nearly full (`disk_space.rs`).
    pub(crate) fn check_space(&self) -> Result<(), StoreError> {
        match &self.disk_space {
            Some(space) => space.check_write(),
            None => Ok(()),
        }
    }

    pub(crate) fn flush_now(&self) -> Result<(), StoreError> {
        self.database.flush().map_err(store_error)?;
        Ok(())
    }

    fn durable<T>(&self, value: T) -> Result<T, StoreError> {
        self.database.flush().map_err(store_error)?;
        Ok(value)
    }
}

impl TrustStore for SledStore {
    fn principal(&self, public_key: &PublicKey) -> Result<Option<Principal>, StoreError> {
        self.principals
            .get(public_key.as_bytes())
            .map_err(store_error)?
            .map(|bytes| self.decode_principal(public_key.as_bytes(), &bytes))
            .transpose()
    }

    fn list_principals(
        &self,
        role: Option<Role>,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<Principal>, StoreError> {
        let mut principals = Vec::with_capacity(limit.min(1024));
        match role {
            None => {
                let range = match after {
                    Some(after) => self.principals.range(exclusive_after(after.as_bytes())..),
                    None => self.principals.iter(),
                };
                for entry in range.take(limit) {
                    let (key, value) = entry.map_err(store_error)?;
                    principals.push(self.decode_principal(&key, &value)?);
                }
            }
            Some(role) => {
                let prefix = [role_byte(role)];
                let start = match after {
                    Some(after) => exclusive_after(&concat(&prefix, after.as_bytes())),
                    None => prefix.to_vec(),
                };
                for entry in self.principals_by_role.range(start..).take(limit) {
                    let (key, _) = entry.map_err(store_error)?;
                    if key.first() != Some(&prefix[0]) {
                        break;
                    }
                    let principal = self
                        .principals
                        .get(&key[1..])
                        .map_err(store_error)?
                        .ok_or_else(|| StoreError::new("role index names a missing principal"))?;
                    principals.push(self.decode_principal(&key[1..], &principal)?);
                }
            }
        }
        Ok(principals)
    }

    fn insert_principal(&self, principal: &Principal) -> Result<PrincipalInsert, StoreError> {
        self.check_space()?;
        let value = self.encode_principal(principal)?;
        let outcome = (&self.principals, &self.principals_by_role)
            .transaction(|(principals, by_role)| {
                let key = principal.public_key.as_bytes();
                if let Some(existing) = principals.get(key)? {
                    let existing = self.decode_principal(key, &existing).map_err(abort)?;
                    return Ok(PrincipalInsert::KeyTaken(existing));
                }
                principals.insert(&key[..], value.as_slice())?;
                by_role.insert(concat(&[role_byte(principal.role)], key), &[][..])?;
                Ok(PrincipalInsert::Inserted)
            })
            .map_err(transaction_error)?;
        self.durable(outcome)
    }

    fn insert_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        self.check_space()?;
        self.invitations
            .insert(invitation.code_hash, encode(invitation)?)
            .map_err(store_error)?;
        self.durable(())
    }

    fn invitation(&self, code_hash: &[u8; 32]) -> Result<Option<Invitation>, StoreError> {
        self.invitations
            .get(code_hash)
            .map_err(store_error)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    fn list_invitations(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError> {
        let range = match after {
            Some(after) => self.invitations.range(exclusive_after(after)..),
            None => self.invitations.iter(),
        };
        range
            .take(limit)
            .map(|entry| decode(&entry.map_err(store_error)?.1))
            .collect()
    }

    fn collectors_of_member(
        &self,
        member: &PublicKey,
    ) -> Result<Vec<CollectorAuthorization>, StoreError> {
        scan_prefix(&self.collectors_by_member, member.as_bytes())
    }

    fn members_of_collector(
        &self,
        collector: &PublicKey,
    ) -> Result<Vec<CollectorAuthorization>, StoreError> {
        scan_prefix(&self.members_by_collector, collector.as_bytes())
    }

    fn disk_space_low(&self) -> bool {
        self.disk_space.as_ref().is_some_and(|space| space.is_low())
    }

    fn set_minimum_free_disk(&self, bytes: u64) {
        if let Some(space) = &self.disk_space {
            space.set_minimum_free(bytes);
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.durable(())
    }
}

impl SledStore {
    fn records(&self, kind: RecordKind) -> &sled::Tree {
        let position = RecordKind::ALL
            .iter()
            .position(|candidate| *candidate == kind)
            .expect("every kind has a tree");
        &self.records[position]
    }
}

impl RecordStore for SledStore {
    fn get_record(&self, kind: RecordKind, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.records(kind)
            .get(key)
            .map_err(store_error)?
            .map(|value| self.open_record(kind, key, &value))
            .transpose()
    }

    fn scan_records(&self, kind: RecordKind, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.records(kind)
            .scan_prefix(prefix)
            .map(|entry| {
                let (key, value) = entry.map_err(store_error)?;
                let value = self.open_record(kind, &key, &value)?;
                Ok((key.to_vec(), value))
            })
            .collect()
    }

    fn scan_records_page(
        &self,
        kind: RecordKind,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let start = match after {
            // The smallest key after `after`.
            Some(after) if after >= prefix => [after, &[0]].concat(),
            _ => prefix.to_vec(),
        };
        self.records(kind)
            .range(start..)
            .take_while(|entry| {
                entry
                    .as_ref()
                    .map_or(true, |(key, _)| key.starts_with(prefix))
            })
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.map_err(store_error)?;
                let value = self.open_record(kind, &key, &value)?;
                Ok((key.to_vec(), value))
            })
            .collect()
    }

    fn write_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        self.check_space()?;
        let writes = writes
            .into_iter()
            .map(|(kind, key, value)| {
                let value = value
                    .map(|value| self.seal_record(kind, &key, value))
                    .transpose()?;
                Ok((kind, key, value))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let trees: Vec<&sled::Tree> = RecordKind::ALL
            .iter()
            .map(|kind| self.records(*kind))
            .collect();
        trees
            .as_slice()
            .transaction(|trees| {
                for (kind, key, value) in &writes {
                    let position = RecordKind::ALL
                        .iter()
                        .position(|candidate| candidate == kind)
                        .expect("every kind has a tree");
                    match value {
                        Some(value) => trees[position].insert(key.as_slice(), value.as_slice())?,
                        None => trees[position].remove(key.as_slice())?,
                    };
                }
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(transaction_error)?;
        self.durable(())
    }
}

fn scan_prefix<T: DeserializeOwned>(
    tree: &sled::Tree,
    prefix: &[u8],
) -> Result<Vec<T>, StoreError> {
    tree.scan_prefix(prefix)
        .map(|entry| decode(&entry.map_err(store_error)?.1))
        .collect()
}

pub(crate) fn role_byte(role: Role) -> u8 {
    match role {
        Role::Trustee => 1,
        Role::Member => 2,
        Role::Licensee => 3,
        Role::Collector => 4,
    }
}

fn concat(first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(first.len() + second.len());
    key.extend_from_slice(first);
    key.extend_from_slice(second);
    key
}

/// The first possible key after `key`: listings resume strictly after the last key they gave.
fn exclusive_after(key: &[u8]) -> Vec<u8> {
    concat(key, &[0])
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value)
        .map_err(|error| StoreError::new(format!("encoding a record: {error}")))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|error| StoreError::data_loss(format!("a stored record does not decode: {error}")))
}

pub(crate) fn store_error(error: sled::Error) -> StoreError {
    match &error {
        sled::Error::Io(io) if is_disk_full(io) => StoreError::disk_full(error.to_string()),
        sled::Error::Corruption { .. } => StoreError::data_loss(error.to_string()),
        _ => StoreError::new(error.to_string()),
    }
}

/// An I/O error on the store's own files (`what`: which), as a `StoreError`; a full disk
/// is said so.
pub(crate) fn file_error(what: &str, context: &str, error: std::io::Error) -> StoreError {
    let message = format!("{what}: {context}: {error}");
    if is_disk_full(&error) {
        StoreError::disk_full(message)
    } else {
        StoreError::new(message)
    }
}

/// Syncs a directory, so that files created or removed in it stay so after a crash.
pub(crate) fn sync_directory(what: &str, directory: &std::path::Path) -> Result<(), StoreError> {
    std::fs::File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| file_error(what, "syncing the directory", error))
}

/// ENOSPC or EDQUOT: the disk (or the user's quota) is full.
pub(crate) fn is_disk_full(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::StorageFull
        || error.kind() == std::io::ErrorKind::QuotaExceeded
}

fn abort(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
}

pub(crate) fn transaction_error(error: TransactionError<StoreError>) -> StoreError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => store_error(error),
    }
}

/// Where the members' key files live: beside the sled directory (`<data dir>/member-keys`).
fn member_keys_beside(database: &std::path::Path) -> std::path::PathBuf {
    database.with_file_name("member-keys")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_store_keeps_the_store_contract() {
        datatrust_core::store_contract::run_all(|| SledStore::temporary().unwrap());
        datatrust_core::store_contract::records_contract(&SledStore::temporary().unwrap());
        datatrust_core::store_contract::events_contract(&SledStore::temporary().unwrap());
        datatrust_core::store_contract::retention_contract(&SledStore::temporary().unwrap());
    }

    #[test]
    fn records_survive_reopening() {
        let directory = tempfile::tempdir().unwrap();
        let key = datatrust_core::store_contract::test_key(5);
        {
            let store = SledStore::open(&directory.path().join("db"), [7; 32]).unwrap();
            let principal = Principal::new_active(
                key,
                Role::Licensee,
                datatrust_core::DisplayName::parse("Acme", "display_name").unwrap(),
                datatrust_core::UnixSeconds(10),
                [1; 32],
            );
            store.insert_principal(&principal).unwrap();
        }
        let store = SledStore::open(&directory.path().join("db"), [7; 32]).unwrap();
        assert_eq!(store.principal(&key).unwrap().unwrap().role, Role::Licensee);
    }
}
