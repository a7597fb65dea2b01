//! `EventStore` on sled: members' events in encrypted chunks, one per uploaded batch.
//!
//! Each member has a random 32-byte data key, stored only wrapped (XChaCha20-Poly1305) by the
//! trust's data key (`keys/data.key`), in a file of its own (`member_keys.rs`). A chunk is `nonce || XChaCha20-Poly1305(member key,
//! postcard(events))`, its key (member, device, sequence) bound in as associated data, so a
//! chunk cannot be moved to another member or batch. Erasure deletes the member's wrapped
//! key, chunks and counts: without the key nothing of the member can be decrypted.
//!
//! The sealed values themselves (`nonce(24) || ciphertext`) lie in segment files
//! (`segments.rs`); the sled trees below hold a 21-byte reference to each (format 3; before
//! it, the sealed value itself, which the migration moves out).
//!
//! ```text
//! member-keys/<hex member>  (a file, not sled)               : nonce(24) || wrapped key
//! chunks:       member(32) || SHA-256(device)[..8] || seq   -> reference to a sealed chunk
//! event_counts: member(32) || day(i64 BE) || category       -> count(u64 BE)
//! release_parts: member(32) || release id || chunk (u32 BE) -> reference to a sealed chunk
//!                (4096 records a chunk; parts stored before chunking: no chunk suffix)
//! screenshots:  member(32) || SHA-256(image)                -> reference to a sealed image
//! screenshot_times: member(32) || SHA-256(image)            -> stored at (i64 BE seconds)
//!                (absent for images stored before format 2: `stamp_screenshot_times`)
//! chunk_days:   member(32) || day(8, order-preserving) || chunk key -> ()
//!                (the chunk's earliest event day: the retention sweep reads only these)
//! screenshot_refs: member(32) || SHA-256(image)         -> latest day (i64 BE) of an event
//!                referring to it (images expire with their last reference)
//! ```

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use datatrust_core::PublicKey;
use datatrust_core::events::Event;
use datatrust_core::store::{
    ChunkInsert, DayCount, EventPage, EventStore, KeyValue, SealedTable, StoreError,
};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use crate::SledStore;
use crate::segments::{REFERENCE_BYTES, Reference, Table};
use crate::sled_store::{store_error, transaction_error};

const NONCE_BYTES: usize = 24;

/// The device id's tag in chunk keys: 8 bytes of its SHA-256 keep devices apart.
fn device_tag(device_id: &str) -> [u8; 8] {
    let digest = Sha256::digest(device_id.as_bytes());
    digest[..8]
        .try_into()
        .expect("a SHA-256 digest has 8 bytes to spare")
}

fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(Key::from_slice(key))
}

pub fn seal(key: &[u8; 32], plaintext: &[u8], associated: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher(key)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: associated,
            },
        )
        .map_err(|_| StoreError::new("encryption failed"))?;
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

pub fn open(key: &[u8; 32], sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>, StoreError> {
    if sealed.len() < NONCE_BYTES {
        return Err(StoreError::data_loss("a sealed value is too short"));
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    cipher(key)
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: associated,
            },
        )
        .map_err(|_| StoreError::data_loss("a sealed value does not decrypt: wrong key or damaged"))
}

/// The first byte of a value sealed at rest by `seal_value`, which no JSON value starts with.
pub(crate) const SEALED_VALUE: u8 = 0xd7;

/// Seals a stored value (a principal, a ballot) under the data key, bound to its table (or
/// record kind) and key: `SEALED_VALUE || nonce || ciphertext`.
pub fn seal_value(
    data_key: &[u8; 32],
    space: &str,
    key: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let associated = [space.as_bytes(), &[0], key].concat();
    let mut sealed = vec![SEALED_VALUE];
    sealed.extend(seal(data_key, plaintext, &associated)?);
    Ok(sealed)
}

/// Opens a value `seal_value` made; a value stored before sealing (JSON) is returned as it
/// is.
pub fn open_value(
    data_key: &[u8; 32],
    space: &str,
    key: &[u8],
    stored: &[u8],
) -> Result<Vec<u8>, StoreError> {
    match stored.split_first() {
        Some((&SEALED_VALUE, sealed)) => {
            let associated = [space.as_bytes(), &[0], key].concat();
            open(data_key, sealed, &associated)
        }
        _ => Ok(stored.to_vec()),
    }
}

pub fn key_associated_data(member: &PublicKey) -> Vec<u8> {
    [b"datatrust member key v1\n".as_slice(), member.as_bytes()].concat()
}

/// A release part's chunk of records, from its postcard encoding (a sequence of byte
/// strings, as `postcard::to_stdvec(&[Vec<u8>])` writes it). Each record is read as bytes at
/// once: serde's default reads a `Vec<u8>` a byte at a time, which was a quarter of the
/// server's time streaming a release.
pub fn decode_release_chunk(plaintext: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
    struct Record(Vec<u8>);
    struct RecordVisitor;
    impl<'de> serde::de::Visitor<'de> for RecordVisitor {
        type Value = Record;
        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str("a release record's bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Record, E> {
            Ok(Record(bytes.to_vec()))
        }
        fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Record, E> {
            Ok(Record(bytes))
        }
    }
    impl<'de> serde::Deserialize<'de> for Record {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Record, D::Error> {
            deserializer.deserialize_bytes(RecordVisitor)
        }
    }
    let records: Vec<Record> = postcard::from_bytes(plaintext)
        .map_err(|error| StoreError::data_loss(format!("decoding a release part: {error}")))?;
    Ok(records.into_iter().map(|record| record.0).collect())
}

/// A release part's chunk of records in postcard's encoding of `&[Vec<u8>]`, each record
/// written as bytes at once (the same bytes serde's default writes a byte at a time).
pub fn encode_release_chunk(records: &[Vec<u8>]) -> Result<Vec<u8>, StoreError> {
    struct Record<'a>(&'a [u8]);
    impl serde::Serialize for Record<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }
    let records: Vec<Record> = records.iter().map(|record| Record(record)).collect();
    postcard::to_stdvec(&records)
        .map_err(|error| StoreError::new(format!("encoding a release part: {error}")))
}

/// Records per stored chunk of a release part: one streamed message's worth.
pub const RELEASE_PART_CHUNK_RECORDS: usize = datatrust_core::release::RECORDS_PER_MESSAGE;

pub fn release_chunk_key(member: &PublicKey, release_id: &str, chunk: u32) -> Vec<u8> {
    [
        member.as_bytes().as_slice(),
        release_id.as_bytes(),
        &chunk.to_be_bytes(),
    ]
    .concat()
}

/// A day in index keys: i64 with its sign bit flipped, big-endian, so that byte order is
/// numeric order.
fn day_bytes(day: i64) -> [u8; 8] {
    ((day as u64) ^ (1 << 63)).to_be_bytes()
}

/// What the expiry index holds for a chunk of `events`: its earliest day, and the latest
/// day each image is referred to.
fn expiry_entries(events: &[Event]) -> (Option<i64>, std::collections::BTreeMap<[u8; 32], i64>) {
    let first_day = events.iter().map(Event::day).min();
    let mut images = std::collections::BTreeMap::new();
    for event in events {
        if let datatrust_core::events::EventKind::Screenshot { sha256, .. } = &event.kind
            && let Some(hash) = hex::decode(sha256)
                .ok()
                .and_then(|hash| <[u8; 32]>::try_from(hash).ok())
        {
            let latest = images.entry(hash).or_insert(event.day());
            *latest = (*latest).max(event.day());
        }
    }
    (first_day, images)
}

/// How many of `events` fall on each of the member's count keys (member || day || category).
fn count_keys(member: &PublicKey, events: &[Event]) -> std::collections::BTreeMap<Vec<u8>, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for event in events {
        let key = [
            member.as_bytes().as_slice(),
            &event.day().to_be_bytes(),
            event.category().as_bytes(),
        ]
        .concat();
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// An image's latest referencing day once an event of `day` refers to it too (`stored`: the
/// `screenshot_refs` value so far).
fn later_reference(stored: Option<&[u8]>, day: i64) -> i64 {
    stored
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map(i64::from_be_bytes)
        .map_or(day, |stored| stored.max(day))
}

fn chunk_day_key(member: &PublicKey, day: i64, chunk_key: &[u8]) -> Vec<u8> {
    [member.as_bytes().as_slice(), &day_bytes(day), chunk_key].concat()
}

pub fn chunk_key(member: &PublicKey, device_id: &str, sequence: u64) -> Vec<u8> {
    [
        member.as_bytes().as_slice(),
        &device_tag(device_id),
        &sequence.to_be_bytes(),
    ]
    .concat()
}

impl SledStore {
    fn member_key(&self, member: &PublicKey) -> Result<Option<[u8; 32]>, StoreError> {
        let Some(wrapped) = self.member_keys.get(member)? else {
            return Ok(None);
        };
        let key = open(&self.data_key, &wrapped, &key_associated_data(member))?;
        Ok(Some(key.try_into().map_err(|_| {
            StoreError::data_loss("a member key is not 32 bytes")
        })?))
    }
}

impl SledStore {
    /// The member's key, made (random, wrapped by the data key) on first use. Racing
    /// creators agree: the first stored key wins (`MemberKeyFiles::insert_if_absent`).
    fn member_key_or_create(&self, member: &PublicKey) -> Result<[u8; 32], StoreError> {
        if let Some(key) = self.member_key(member)? {
            return Ok(key);
        }
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let wrapped = seal(&self.data_key, &fresh, &key_associated_data(member))?;
        let standing = self.member_keys.insert_if_absent(member, &wrapped)?;
        let key = open(&self.data_key, &standing, &key_associated_data(member))?;
        key.try_into()
            .map_err(|_| StoreError::data_loss("a member key is not 32 bytes"))
    }
}

/// Removes `keys` from `tree` one by one. Not as a batch: a batch takes sled 0.34's
/// process-wide lock alone, and a flush in progress (of any sled database in the process)
/// can then wait on it for ever (seen with gdb in `bench ingest`). Callers that need the
/// removals together do not use this: erasure deletes the member's key first, so whatever a
/// crash leaves is unreadable anyway; retention and release parts are idempotent.
fn remove_each(tree: &sled::Tree, keys: &[sled::IVec]) -> Result<(), StoreError> {
    for key in keys {
        tree.remove(key).map_err(store_error)?;
    }
    Ok(())
}

impl SledStore {
    /// The sealed value under `key` in `tree`, read from its segment (or, stored by a format
    /// before 3, inline).
    fn load(&self, tree: &sled::Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        // A segment compacted away between reading the reference and the value: the
        // reference has moved; read it again.
        for _ in 0..16 {
            let Some(stored) = tree.get(key).map_err(store_error)? else {
                return Ok(None);
            };
            if let Some(value) = self.resolve(&stored)? {
                return Ok(Some(value));
            }
        }
        Err(StoreError::new(
            "a stored value kept moving while it was read; try again",
        ))
    }

    /// The value an index entry stands for; `None` if its segment was compacted away since.
    fn resolve(&self, stored: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match Reference::decode(stored) {
            Some(reference) => self.segments.read(reference),
            None => Ok(Some(stored.to_vec())),
        }
    }

    /// The value of an index entry read in a scan, read again from the index if it moved;
    /// `None` if it was deleted meanwhile.
    fn resolve_scanned(
        &self,
        tree: &sled::Tree,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self.resolve(stored)? {
            Some(value) => Ok(Some(value)),
            None => self.load(tree, key),
        }
    }

    /// Stores a sealed value in a segment (durably) and its reference under `key` in
    /// `tree`; a value it replaces is counted dead. The caller flushes sled.
    fn store_value(
        &self,
        table: Table,
        tree: &sled::Tree,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        let reference = self.segments.append(table, key, sealed)?;
        let replaced = tree
            .insert(key, reference.encode().as_slice())
            .map_err(store_error)?;
        if let Some(replaced) = replaced {
            self.forget(key, &replaced)?;
        }
        Ok(())
    }

    /// When the image under `key` was stored (Unix seconds); an image whose time a crash
    /// lost between its two inserts is given `now`.
    fn screenshot_stored_at(
        &self,
        key: &[u8],
        now: datatrust_core::UnixSeconds,
    ) -> Result<i64, StoreError> {
        match self.screenshot_times.get(key).map_err(store_error)? {
            Some(time) => {
                Ok(i64::from_be_bytes(time.as_ref().try_into().map_err(
                    |_| StoreError::data_loss("a screenshot time is malformed"),
                )?))
            }
            None => {
                self.screenshot_times
                    .insert(key, &now.0.to_be_bytes())
                    .map_err(store_error)?;
                Ok(now.0)
            }
        }
    }

    /// Counts a removed index entry's value dead in its segment.
    fn forget(&self, key: &[u8], stored: &[u8]) -> Result<(), StoreError> {
        match Reference::decode(stored) {
            Some(reference) => self.segments.forget(key, reference),
            None => Ok(()),
        }
    }

    /// Removes index entries and counts their values dead. One key at a time (see
    /// `remove_each`).
    fn remove_values(&self, tree: &sled::Tree, keys: &[sled::IVec]) -> Result<(), StoreError> {
        for key in keys {
            if let Some(removed) = tree.remove(key).map_err(store_error)? {
                self.forget(key, &removed)?;
            }
        }
        Ok(())
    }

    /// Rewrites the segments at least half dead (after retention, erasure, expired release
    /// parts); returns (segments removed, bytes freed).
    pub fn compact_segments(&self) -> Result<(u64, u64), StoreError> {
        let index = |table: Table| match table {
            Table::Chunks => self.chunks.clone(),
            Table::ReleaseParts => self.release_parts.clone(),
            Table::Screenshots => self.screenshots.clone(),
        };
        self.segments.compact(&index, &|| self.flush_now())
    }

    /// Puts a stored chunk (`key`, whose first 32 bytes are its member) in the expiry index,
    /// from its events; nothing if its member's key is gone (erased: unreadable anyway).
    /// Idempotent.
    fn index_stored_chunk(&self, key: &[u8]) -> Result<(), StoreError> {
        let member = PublicKey::from_slice(&key[..32.min(key.len())], "chunk key")
            .map_err(|error| StoreError::data_loss(error.to_string()))?;
        if self.member_key(&member)?.is_none() {
            return Ok(());
        }
        let Some(events) = self.chunk_events(&member, key)? else {
            return Ok(());
        };
        let (first_day, images) = expiry_entries(&events);
        if let Some(day) = first_day {
            self.chunk_days
                .insert(chunk_day_key(&member, day, key), &[])
                .map_err(store_error)?;
        }
        for (hash, day) in images {
            let reference = [member.as_bytes().as_slice(), &hash].concat();
            self.screenshot_refs
                .fetch_and_update(&reference, |stored| {
                    let latest = later_reference(stored, day);
                    Some(latest.to_be_bytes().to_vec())
                })
                .map_err(store_error)?;
        }
        Ok(())
    }

    /// Format 2 to 3: builds the expiry index (each chunk's earliest day, each image's
    /// latest reference) by reading every chunk once. Idempotent; returns how many chunks.
    pub fn build_expiry_index(&self) -> Result<u64, StoreError> {
        let mut indexed = 0;
        for key in self.chunks.iter().keys() {
            self.index_stored_chunk(&key.map_err(store_error)?)?;
            indexed += 1;
        }
        self.flush_now()?;
        Ok(indexed)
    }

    /// Format 2 to 3: moves the sealed values stored in sled into segments, leaving
    /// references. Idempotent (a reference is left as it is); returns how many it moved.
    pub fn move_values_to_segments(&self) -> Result<u64, StoreError> {
        let mut moved = 0;
        for (table, tree) in [
            (Table::Chunks, &self.chunks),
            (Table::ReleaseParts, &self.release_parts),
            (Table::Screenshots, &self.screenshots),
        ] {
            for entry in tree.iter() {
                let (key, stored) = entry.map_err(store_error)?;
                if stored.len() == REFERENCE_BYTES && Reference::decode(&stored).is_some() {
                    continue;
                }
                let reference = self.segments.append(table, &key, &stored)?;
                let swapped = tree
                    .compare_and_swap(&key, Some(&stored), Some(reference.encode().as_slice()))
                    .map_err(store_error)?;
                match swapped {
                    Ok(()) => moved += 1,
                    Err(_) => self.segments.forget(&key, reference)?,
                }
            }
        }
        self.flush_now()?;
        Ok(moved)
    }

    /// Format 1 to 2: gives every screenshot stored without a time `now` (so retention
    /// keeps it a whole retention period from the upgrade). Idempotent; returns how many.
    pub fn stamp_screenshot_times(
        &self,
        now: datatrust_core::UnixSeconds,
    ) -> Result<u64, StoreError> {
        let mut stamped = 0;
        for key in self.screenshots.iter().keys() {
            let key = key.map_err(store_error)?;
            if !self
                .screenshot_times
                .contains_key(&key)
                .map_err(store_error)?
            {
                self.screenshot_times
                    .insert(key, &now.0.to_be_bytes())
                    .map_err(store_error)?;
                stamped += 1;
            }
        }
        self.flush_now()?;
        Ok(stamped)
    }
}

impl EventStore for SledStore {
    fn put_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[Event],
    ) -> Result<ChunkInsert, StoreError> {
        self.check_space()?;
        let chunk_key = chunk_key(member, device_id, sequence);
        if self.chunks.contains_key(&chunk_key).map_err(store_error)? {
            return Ok(ChunkInsert::Duplicate);
        }
        let member_key = self.member_key_or_create(member)?;
        let plaintext = postcard::to_stdvec(events)
            .map_err(|error| StoreError::new(format!("encoding events: {error}")))?;
        let sealed = seal(&member_key, &plaintext, &chunk_key)?;
        // The sealed chunk goes to its segment (durably) first; its reference then lands
        // with the counts.
        let reference = self
            .segments
            .append(Table::Chunks, &chunk_key, &sealed)?
            .encode();
        let counts = count_keys(member, events);
        // The chunk and its counts change together; a concurrent retry of the same batch
        // finds the chunk inside the transaction and changes nothing.
        let (first_day, images) = expiry_entries(events);
        let day_key = first_day.map(|day| chunk_day_key(member, day, &chunk_key));
        let outcome = (
            &self.chunks,
            &self.event_counts,
            &self.chunk_days,
            &self.screenshot_refs,
        )
            .transaction(|(chunks, event_counts, chunk_days, screenshot_refs)| {
                if chunks.get(&chunk_key)?.is_some() {
                    return Ok(ChunkInsert::Duplicate);
                }
                chunks.insert(chunk_key.as_slice(), reference.as_slice())?;
                if let Some(day_key) = &day_key {
                    chunk_days.insert(day_key.as_slice(), &[])?;
                }
                for (hash, day) in &images {
                    let key = [member.as_bytes().as_slice(), hash].concat();
                    let latest = later_reference(screenshot_refs.get(&key)?.as_deref(), *day);
                    screenshot_refs.insert(key, &latest.to_be_bytes())?;
                }
                for (key, added) in &counts {
                    let current = event_counts
                        .get(key)?
                        .map(|bytes| {
                            u64::from_be_bytes(bytes.as_ref().try_into().unwrap_or([0; 8]))
                        })
                        .unwrap_or(0);
                    event_counts.insert(key.as_slice(), &(current + added).to_be_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(ChunkInsert::Stored)
            })
            .map_err(transaction_error)?;
        if outcome == ChunkInsert::Duplicate
            && let Some(reference) = Reference::decode(&reference)
        {
            self.segments.forget(&chunk_key, reference)?;
        }
        self.flush_now()?;
        Ok(outcome)
    }

    fn remove_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let chunk_key = chunk_key(member, device_id, sequence);
        let counts = count_keys(member, events);
        let day_key = expiry_entries(events)
            .0
            .map(|day| chunk_day_key(member, day, &chunk_key));
        // The chunk, its counts and its place in the expiry index go together.
        let removed = (&self.chunks, &self.event_counts, &self.chunk_days)
            .transaction(|(chunks, event_counts, chunk_days)| {
                let Some(removed) = chunks.remove(chunk_key.as_slice())? else {
                    return Ok(None);
                };
                for (key, taken) in &counts {
                    let current = event_counts
                        .get(key)?
                        .map(|bytes| {
                            u64::from_be_bytes(bytes.as_ref().try_into().unwrap_or([0; 8]))
                        })
                        .unwrap_or(0);
                    match current.saturating_sub(*taken) {
                        0 => {
                            event_counts.remove(key.as_slice())?;
                        }
                        left => {
                            event_counts.insert(key.as_slice(), &left.to_be_bytes())?;
                        }
                    }
                }
                if let Some(day_key) = &day_key {
                    chunk_days.remove(day_key.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(Some(removed))
            })
            .map_err(transaction_error)?;
        let Some(removed) = removed else {
            return Ok(false);
        };
        self.forget(&chunk_key, &removed)?;
        self.flush_now()?;
        Ok(true)
    }

    fn remove_screenshot(&self, member: &PublicKey, sha256: &[u8; 32]) -> Result<bool, StoreError> {
        let key = sled::IVec::from([member.as_bytes().as_slice(), sha256].concat());
        let present = self.screenshots.contains_key(&key).map_err(store_error)?;
        self.remove_values(&self.screenshots, std::slice::from_ref(&key))?;
        self.screenshot_times.remove(&key).map_err(store_error)?;
        self.flush_now()?;
        Ok(present)
    }

    fn member_counts(&self, member: &PublicKey) -> Result<Vec<DayCount>, StoreError> {
        self.event_counts
            .scan_prefix(member.as_bytes())
            .map(|entry| {
                let (key, value) = entry.map_err(store_error)?;
                let day = i64::from_be_bytes(
                    key[32..40]
                        .try_into()
                        .map_err(|_| StoreError::data_loss("bad count key"))?,
                );
                let category = String::from_utf8(key[40..].to_vec())
                    .map_err(|_| StoreError::data_loss("bad count key"))?;
                let count = u64::from_be_bytes(
                    value
                        .as_ref()
                        .try_into()
                        .map_err(|_| StoreError::data_loss("bad count"))?,
                );
                Ok(DayCount {
                    day,
                    category,
                    count,
                })
            })
            .collect()
    }

    fn member_events_page(
        &self,
        member: &PublicKey,
        after: Option<&[u8]>,
        max_events: usize,
    ) -> Result<EventPage, StoreError> {
        let start = match after {
            // The smallest key after `after`.
            Some(after) if after.starts_with(member.as_bytes()) => [after, &[0]].concat(),
            Some(_) => return Err(StoreError::new("a page position of another member")),
            None => member.as_bytes().to_vec(),
        };
        let mut chunks = self.chunks.range(start..);
        let mut events = Vec::new();
        let mut member_key = None;
        let mut last_key = None;
        while events.len() < max_events.max(1) {
            let Some(entry) = chunks.next() else {
                return Ok(EventPage { events, next: None });
            };
            let (key, stored) = entry.map_err(store_error)?;
            if !key.starts_with(member.as_bytes()) {
                return Ok(EventPage { events, next: None });
            }
            let Some(sealed) = self.resolve_scanned(&self.chunks, &key, &stored)? else {
                continue; // deleted since the scan read it
            };
            let member_key = match member_key {
                Some(key) => key,
                None => *member_key.insert(self.member_key(member)?.ok_or_else(|| {
                    StoreError::data_loss(
                        "the member's data is stored but their key file is missing",
                    )
                })?),
            };
            let plaintext = open(&member_key, &sealed, &key)?;
            let chunk: Vec<Event> = postcard::from_bytes(&plaintext)
                .map_err(|error| StoreError::data_loss(format!("decoding a chunk: {error}")))?;
            events.extend(chunk);
            last_key = Some(key.to_vec());
        }
        Ok(EventPage {
            events,
            next: last_key,
        })
    }

    fn erase_member(&self, member: &PublicKey) -> Result<u64, StoreError> {
        // The key goes first: from this point nothing of the member can be decrypted, even if
        // deleting the chunks were interrupted.
        self.member_keys.remove(member)?;
        let mut deleted = 0;
        for tree in [
            &self.chunks,
            &self.event_counts,
            &self.release_parts,
            &self.screenshots,
            &self.screenshot_times,
            &self.chunk_days,
            &self.screenshot_refs,
        ] {
            // A page of keys at a time, however much the member has: deleted keys leave
            // the prefix, so each page starts it again.
            loop {
                let keys: Vec<sled::IVec> = tree
                    .scan_prefix(member.as_bytes())
                    .keys()
                    .take(1024)
                    .collect::<Result<_, _>>()
                    .map_err(store_error)?;
                if keys.is_empty() {
                    break;
                }
                if std::ptr::eq(tree, &self.chunks) {
                    deleted += keys.len() as u64;
                }
                self.remove_values(tree, &keys)?;
            }
        }
        self.flush_now()?;
        Ok(deleted)
    }

    fn put_release_part(
        &self,
        member: &PublicKey,
        release_id: &str,
        first_chunk: u32,
        records: &[Vec<u8>],
    ) -> Result<bool, StoreError> {
        self.check_space()?;
        let Some(member_key) = self.member_key(member)? else {
            return Ok(false);
        };
        // In chunks, so that streaming reads one chunk at a time, whatever the part's size.
        // One insert each, not a batch (see `remove_each`): nothing refers to a part's
        // chunks before its release is logged, so they need not land together.
        for (index, chunk) in records.chunks(RELEASE_PART_CHUNK_RECORDS).enumerate() {
            let index = u32::try_from(index)
                .ok()
                .and_then(|index| index.checked_add(first_chunk))
                .ok_or_else(|| StoreError::new("a release part of more than 2^32 chunks"))?;
            let key = release_chunk_key(member, release_id, index);
            let plaintext = encode_release_chunk(chunk)?;
            let sealed = seal(&member_key, &plaintext, &key)?;
            self.store_value(Table::ReleaseParts, &self.release_parts, &key, &sealed)?;
        }
        self.flush_now()?;
        Ok(true)
    }

    fn release_part_chunk(
        &self,
        member: &PublicKey,
        release_id: &str,
        chunk: u32,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let mut key = release_chunk_key(member, release_id, chunk);
        let mut sealed = self.load(&self.release_parts, &key)?;
        if sealed.is_none() && chunk == 0 {
            // A part stored whole, before parts were chunked: its one chunk.
            key = [member.as_bytes().as_slice(), release_id.as_bytes()].concat();
            sealed = self.load(&self.release_parts, &key)?;
        }
        let (Some(sealed), Some(member_key)) = (sealed, self.member_key(member)?) else {
            return Ok(None);
        };
        let plaintext = open(&member_key, &sealed, &key)?;
        decode_release_chunk(&plaintext).map(Some)
    }

    fn put_screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
        image: &[u8],
        stored_at: datatrust_core::UnixSeconds,
    ) -> Result<bool, StoreError> {
        self.check_space()?;
        let key = [member.as_bytes().as_slice(), sha256].concat();
        if self.screenshots.contains_key(&key).map_err(store_error)? {
            return Ok(false);
        }
        let member_key = self.member_key_or_create(member)?;
        let sealed = seal(&member_key, image, &key)?;
        // The time first: an image whose time a crash lost is stamped by the next sweep.
        self.screenshot_times
            .insert(key.as_slice(), &stored_at.0.to_be_bytes())
            .map_err(store_error)?;
        self.store_value(Table::Screenshots, &self.screenshots, &key, &sealed)?;
        self.flush_now()?;
        Ok(true)
    }

    fn members_with_data(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<PublicKey>, StoreError> {
        self.member_keys
            .members(after.map(|member| member.as_bytes().as_slice()), limit)
    }

    fn replace_chunk(
        &self,
        member: &PublicKey,
        key: &[u8],
        kept: &[Event],
    ) -> Result<(), StoreError> {
        if !key.starts_with(member.as_bytes()) {
            return Err(StoreError::new("a chunk of another member"));
        }
        // Its place in the expiry index moves with its earliest day (references are
        // latest days: kept events never lower them).
        if let Some(old) = self.chunk_events(member, key)?
            && let (Some(day), _) = expiry_entries(&old)
        {
            self.chunk_days
                .remove(chunk_day_key(member, day, key))
                .map_err(store_error)?;
        }
        if let (Some(day), _) = expiry_entries(kept) {
            self.chunk_days
                .insert(chunk_day_key(member, day, key), &[])
                .map_err(store_error)?;
        }
        if kept.is_empty() {
            self.remove_values(&self.chunks, &[sled::IVec::from(key)])?;
        } else {
            let member_key = self.member_key(member)?.ok_or_else(|| {
                StoreError::data_loss("the member's data is stored but their key file is missing")
            })?;
            let plaintext = postcard::to_stdvec(kept)
                .map_err(|error| StoreError::new(format!("encoding events: {error}")))?;
            let sealed = seal(&member_key, &plaintext, key)?;
            self.store_value(Table::Chunks, &self.chunks, key, &sealed)?;
        }
        self.flush_now()
    }

    fn expire_counts(&self, member: &PublicKey, first_kept_day: i64) -> Result<u64, StoreError> {
        let end = [member.as_bytes().as_slice(), &first_kept_day.to_be_bytes()].concat();
        let keys: Vec<sled::IVec> = self
            .event_counts
            .range(member.as_bytes().to_vec()..end)
            .keys()
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        remove_each(&self.event_counts, &keys)?;
        if !keys.is_empty() {
            self.flush_now()?;
        }
        Ok(keys.len() as u64)
    }

    fn expire_screenshots(
        &self,
        member: &PublicKey,
        stored_before: datatrust_core::UnixSeconds,
        now: datatrust_core::UnixSeconds,
        referenced: &std::collections::BTreeSet<[u8; 32]>,
        dropped: &std::collections::BTreeSet<[u8; 32]>,
    ) -> Result<u64, StoreError> {
        let mut deleted = 0;
        let keys: Vec<sled::IVec> = self
            .screenshots
            .scan_prefix(member.as_bytes())
            .keys()
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        for key in keys {
            let sha256: [u8; 32] = key[32..]
                .try_into()
                .map_err(|_| StoreError::data_loss("a screenshot key is malformed"))?;
            let stored_at = self.screenshot_stored_at(&key, now)?;
            if !referenced.contains(&sha256)
                && (stored_at < stored_before.0 || dropped.contains(&sha256))
            {
                self.remove_values(&self.screenshots, std::slice::from_ref(&key))?;
                self.screenshot_times.remove(&key).map_err(store_error)?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            self.flush_now()?;
        }
        Ok(deleted)
    }

    fn delete_release_part(&self, member: &PublicKey, release_id: &str) -> Result<u64, StoreError> {
        let prefix = [member.as_bytes().as_slice(), release_id.as_bytes()].concat();
        // Chunk keys are the prefix and a u32; a longer release id sharing the prefix is
        // another release.
        let keys: Vec<sled::IVec> = self
            .release_parts
            .scan_prefix(&prefix)
            .keys()
            .filter(|key| {
                key.as_ref().map_or(true, |key| {
                    key.len() == prefix.len() + 4 || key.len() == prefix.len()
                })
            })
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        self.remove_values(&self.release_parts, &keys)?;
        if !keys.is_empty() {
            self.flush_now()?;
        }
        Ok(keys.len() as u64)
    }

    fn reclaim_space(&self) -> Result<(u64, u64), StoreError> {
        self.compact_segments()
    }

    fn keeps_expiry_index(&self) -> bool {
        true
    }

    fn chunks_with_days_before(
        &self,
        member: &PublicKey,
        day: i64,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<datatrust_core::store::IndexedChunk>, StoreError> {
        let start = match after {
            Some(after) if after.starts_with(member.as_bytes()) => [after, &[0]].concat(),
            Some(_) => return Err(StoreError::new("a position of another member")),
            None => member.as_bytes().to_vec(),
        };
        let end = [member.as_bytes().as_slice(), &day_bytes(day)].concat();
        self.chunk_days
            .range(start..end)
            .keys()
            .take(limit)
            .map(|key| {
                let key = key.map_err(store_error)?;
                let chunk = key[40..].to_vec();
                Ok((key.to_vec(), chunk))
            })
            .collect()
    }

    fn chunk_events(
        &self,
        member: &PublicKey,
        key: &[u8],
    ) -> Result<Option<Vec<Event>>, StoreError> {
        if !key.starts_with(member.as_bytes()) {
            return Err(StoreError::new("a chunk of another member"));
        }
        let Some(sealed) = self.load(&self.chunks, key)? else {
            return Ok(None);
        };
        let member_key = self.member_key(member)?.ok_or_else(|| {
            StoreError::data_loss("the member's data is stored but their key file is missing")
        })?;
        let plaintext = open(&member_key, &sealed, key)?;
        postcard::from_bytes(&plaintext)
            .map(Some)
            .map_err(|error| StoreError::data_loss(format!("decoding a chunk: {error}")))
    }

    fn expire_unreferenced_screenshots(
        &self,
        member: &PublicKey,
        first_kept_day: i64,
        stored_before: datatrust_core::UnixSeconds,
        now: datatrust_core::UnixSeconds,
    ) -> Result<u64, StoreError> {
        let latest_reference = |key: &[u8]| -> Result<Option<i64>, StoreError> {
            Ok(self
                .screenshot_refs
                .get(key)
                .map_err(store_error)?
                .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_ref()).ok())
                .map(i64::from_be_bytes))
        };
        let mut deleted = 0;
        let images: Vec<sled::IVec> = self
            .screenshots
            .scan_prefix(member.as_bytes())
            .keys()
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        for key in images {
            let expired = match latest_reference(&key)? {
                // Every event that referred to it is past retention, so deleted.
                Some(day) => day < first_kept_day,
                None => self.screenshot_stored_at(&key, now)? < stored_before.0,
            };
            if expired {
                self.remove_values(&self.screenshots, std::slice::from_ref(&key))?;
                self.screenshot_times.remove(&key).map_err(store_error)?;
                deleted += 1;
            }
        }
        // References that all expired, whether or not their image came.
        let stale: Vec<sled::IVec> = self
            .screenshot_refs
            .scan_prefix(member.as_bytes())
            .filter_map(|entry| match entry {
                Ok((key, day)) => <[u8; 8]>::try_from(day.as_ref())
                    .ok()
                    .filter(|day| i64::from_be_bytes(*day) < first_kept_day)
                    .map(|_| Ok(key)),
                Err(error) => Some(Err(error)),
            })
            .collect::<Result<_, _>>()
            .map_err(store_error)?;
        remove_each(&self.screenshot_refs, &stale)?;
        if deleted > 0 || !stale.is_empty() {
            self.flush_now()?;
        }
        Ok(deleted)
    }

    fn screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = [member.as_bytes().as_slice(), sha256].concat();
        let Some(sealed) = self.load(&self.screenshots, &key)? else {
            return Ok(None);
        };
        let member_key = self.member_key(member)?.ok_or_else(|| {
            StoreError::data_loss("a screenshot is stored but the member's key file is missing")
        })?;
        Ok(Some(open(&member_key, &sealed, &key)?))
    }

    fn member_screenshots(
        &self,
        member: &PublicKey,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        let start = match after {
            Some(after) => [member.as_bytes().as_slice(), after, &[0]].concat(),
            None => member.as_bytes().to_vec(),
        };
        self.screenshots
            .range(start..)
            .keys()
            .take_while(|key| {
                key.as_ref()
                    .map_or(true, |key| key.starts_with(member.as_bytes()))
            })
            .take(limit)
            .map(|key| {
                let key = key.map_err(store_error)?;
                key[32..]
                    .try_into()
                    .map_err(|_| StoreError::data_loss("a screenshot key is malformed"))
            })
            .collect()
    }
    fn sealed_rows(
        &self,
        table: SealedTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let (tree, bulk) = match table {
            SealedTable::MemberKeys => {
                return self
                    .member_keys
                    .members(after, limit)?
                    .into_iter()
                    .filter_map(|member| match self.member_keys.get(&member) {
                        Ok(Some(wrapped)) => Some(Ok((member.as_bytes().to_vec(), wrapped))),
                        Ok(None) => None, // erased meanwhile
                        Err(error) => Some(Err(error)),
                    })
                    .collect();
            }
            SealedTable::Chunks => (&self.chunks, true),
            SealedTable::Counts => (&self.event_counts, false),
            SealedTable::ReleaseParts => (&self.release_parts, true),
            SealedTable::Screenshots => (&self.screenshots, true),
            SealedTable::ScreenshotTimes => (&self.screenshot_times, false),
        };
        let range = match after {
            Some(after) => tree
                .range::<&[u8], _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => tree.iter(),
        };
        let mut rows = Vec::new();
        for entry in range {
            if rows.len() >= limit {
                break;
            }
            let (key, stored) = entry.map_err(store_error)?;
            // A time whose image a crash lost before it was stored is no row of a copy.
            if table == SealedTable::ScreenshotTimes
                && !self.screenshots.contains_key(&key).map_err(store_error)?
            {
                continue;
            }
            let value = if bulk {
                match self.resolve_scanned(tree, &key, &stored)? {
                    Some(value) => value,
                    None => continue, // deleted meanwhile
                }
            } else {
                stored.to_vec()
            };
            rows.push((key.to_vec(), value));
        }
        Ok(rows)
    }

    fn put_sealed_rows(&self, table: SealedTable, rows: &[KeyValue]) -> Result<(), StoreError> {
        let tree = match table {
            SealedTable::MemberKeys => {
                for (member, wrapped) in rows {
                    let member = PublicKey::from_slice(member, "member")
                        .map_err(|error| StoreError::new(error.to_string()))?;
                    self.member_keys.insert_if_absent(&member, wrapped)?;
                }
                return Ok(());
            }
            SealedTable::Chunks => (&self.chunks, Some(Table::Chunks)),
            SealedTable::Counts => (&self.event_counts, None),
            SealedTable::ReleaseParts => (&self.release_parts, Some(Table::ReleaseParts)),
            SealedTable::Screenshots => (&self.screenshots, Some(Table::Screenshots)),
            SealedTable::ScreenshotTimes => (&self.screenshot_times, None),
        };
        let (tree, bulk) = tree;
        for (key, value) in rows {
            match bulk {
                Some(Table::Chunks) => {
                    self.store_value(Table::Chunks, tree, key, value)?;
                    self.index_stored_chunk(key)?;
                }
                Some(table) => self.store_value(table, tree, key, value)?,
                None => {
                    tree.insert(key.as_slice(), value.as_slice())
                        .map_err(store_error)?;
                }
            }
        }
        self.flush_now()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_chunks_decode_as_postcard_wrote_them() {
        let records: Vec<Vec<u8>> =
            vec![Vec::new(), b"{\"member\":\"x\"}".to_vec(), vec![0xff; 300]];
        let encoded = postcard::to_stdvec(&records).unwrap();
        assert_eq!(super::encode_release_chunk(&records).unwrap(), encoded);
        assert_eq!(super::decode_release_chunk(&encoded).unwrap(), records);
        assert!(super::decode_release_chunk(&encoded[..encoded.len() - 1]).is_err());
    }
}
