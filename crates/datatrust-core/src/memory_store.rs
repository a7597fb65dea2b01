//! The trust's state in memory: `TableStore` over ordered maps, telemetry kept in the
//! clear (nothing here outlives the test), for rule tests that sit beside the rules (with
//! `commit::MemoryJournal`, a whole registry without a disk). It passes the same store
//! contract as sled (`store_contract`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::PublicKey;
use crate::commit::TableWrite;
use crate::events::Event;
use crate::store::{ChunkInsert, DayCount, EventPage, EventStore, KeyValue, StoreError};
use crate::table_store::{TableStore, Tables};

/// A store in memory; clones share it.
pub type MemoryStore = TableStore<MemoryTables, MemoryEvents>;

impl MemoryStore {
    pub fn in_memory() -> MemoryStore {
        TableStore::new(MemoryTables::default(), MemoryEvents::default())
    }
}

/// (table, key) → value.
type TableMap = BTreeMap<(&'static str, Vec<u8>), Vec<u8>>;

/// Named tables as one ordered map.
#[derive(Clone, Default)]
pub struct MemoryTables(Arc<Mutex<TableMap>>);

impl MemoryTables {
    fn lock(&self) -> MutexGuard<'_, TableMap> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Tables for MemoryTables {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(&(table, key.to_vec())).cloned())
    }

    fn scan(
        &self,
        table: &'static str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self
            .lock()
            .range((table, prefix.to_vec())..)
            .take_while(|((name, key), _)| *name == table && key.starts_with(prefix))
            .filter(|((_, key), _)| after.is_none_or(|after| key.as_slice() > after))
            .take(limit)
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect())
    }

    fn apply(&self, writes: &[TableWrite]) -> Result<(), StoreError> {
        let mut tables = self.lock();
        for write in writes {
            let key = (write.table, write.key.clone());
            match &write.value {
                Some(value) => tables.insert(key, value.clone()),
                None => tables.remove(&key),
            };
        }
        Ok(())
    }

    fn insert_new(
        &self,
        table: &'static str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut tables = self.lock();
        let key = (table, key.to_vec());
        if let Some(existing) = tables.get(&key) {
            return Ok(Some(existing.clone()));
        }
        tables.insert(key, value.to_vec());
        Ok(None)
    }
}

/// Members' telemetry in memory.
#[derive(Clone, Default)]
pub struct MemoryEvents {
    inner: Arc<Mutex<Events>>,
}

#[derive(Default)]
struct Events {
    /// Members who have a telemetry key (made by their first chunk or screenshot).
    keyed: BTreeSet<PublicKey>,
    /// member || device || 0 || sequence (BE) → events.
    chunks: BTreeMap<Vec<u8>, Vec<Event>>,
    /// (member, day, category) → events.
    counts: BTreeMap<(PublicKey, i64, String), u64>,
    /// (member, release id) → the part's records, in chunks.
    release_parts: BTreeMap<(PublicKey, String), Vec<Vec<Vec<u8>>>>,
    /// (member, SHA-256) → (image, when it was stored).
    screenshots: BTreeMap<(PublicKey, [u8; 32]), (Vec<u8>, i64)>,
}

impl MemoryEvents {
    fn lock(&self) -> MutexGuard<'_, Events> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventStore for MemoryEvents {
    fn put_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[Event],
    ) -> Result<ChunkInsert, StoreError> {
        let key = [
            member.as_bytes().as_slice(),
            device_id.as_bytes(),
            &[0],
            &sequence.to_be_bytes(),
        ]
        .concat();
        let mut inner = self.lock();
        if inner.chunks.contains_key(&key) {
            return Ok(ChunkInsert::Duplicate);
        }
        inner.keyed.insert(*member);
        inner.chunks.insert(key, events.to_vec());
        for event in events {
            *inner
                .counts
                .entry((*member, event.day(), event.category().to_owned()))
                .or_default() += 1;
        }
        Ok(ChunkInsert::Stored)
    }

    fn remove_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let key = [
            member.as_bytes().as_slice(),
            device_id.as_bytes(),
            &[0],
            &sequence.to_be_bytes(),
        ]
        .concat();
        let mut inner = self.lock();
        if inner.chunks.remove(&key).is_none() {
            return Ok(false);
        }
        for event in events {
            let count = (*member, event.day(), event.category().to_owned());
            if let Some(value) = inner.counts.get_mut(&count) {
                *value = value.saturating_sub(1);
                if *value == 0 {
                    inner.counts.remove(&count);
                }
            }
        }
        Ok(true)
    }

    fn remove_screenshot(&self, member: &PublicKey, sha256: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .screenshots
            .remove(&(*member, *sha256))
            .is_some())
    }

    fn member_counts(&self, member: &PublicKey) -> Result<Vec<DayCount>, StoreError> {
        Ok(self
            .lock()
            .counts
            .iter()
            .filter(|((owner, _, _), _)| owner == member)
            .map(|((_, day, category), count)| DayCount {
                day: *day,
                category: category.clone(),
                count: *count,
            })
            .collect())
    }

    fn member_events(&self, member: &PublicKey) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .lock()
            .chunks
            .iter()
            .filter(|(key, _)| key.starts_with(member.as_bytes()))
            .flat_map(|(_, events)| events.clone())
            .collect())
    }

    fn member_events_page(
        &self,
        member: &PublicKey,
        after: Option<&[u8]>,
        max_events: usize,
    ) -> Result<EventPage, StoreError> {
        if after.is_some_and(|after| !after.starts_with(member.as_bytes())) {
            return Err(StoreError::new("a page position of another member"));
        }
        let inner = self.lock();
        let mut events = Vec::new();
        let chunks = inner
            .chunks
            .iter()
            .filter(|(key, _)| key.starts_with(member.as_bytes()))
            .filter(|(key, _)| after.is_none_or(|after| key.as_slice() > after));
        // As the disk stores do: a page that reached `max_events` gives its last chunk's key,
        // even when no chunk follows (the next page is then empty).
        for (key, chunk) in chunks {
            events.extend(chunk.iter().cloned());
            if events.len() >= max_events.max(1) {
                return Ok(EventPage {
                    events,
                    next: Some(key.clone()),
                });
            }
        }
        Ok(EventPage { events, next: None })
    }

    fn erase_member(&self, member: &PublicKey) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        inner.keyed.remove(member);
        let before = inner.chunks.len();
        inner
            .chunks
            .retain(|key, _| !key.starts_with(member.as_bytes()));
        let deleted = (before - inner.chunks.len()) as u64;
        inner.counts.retain(|(owner, _, _), _| owner != member);
        inner.release_parts.retain(|(owner, _), _| owner != member);
        inner.screenshots.retain(|(owner, _), _| owner != member);
        Ok(deleted)
    }

    fn put_release_part(
        &self,
        member: &PublicKey,
        release_id: &str,
        first_chunk: u32,
        records: &[Vec<u8>],
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if !inner.keyed.contains(member) {
            return Ok(false);
        }
        let part = inner
            .release_parts
            .entry((*member, release_id.to_owned()))
            .or_default();
        part.truncate(first_chunk as usize);
        part.extend(
            records
                .chunks(crate::release::RECORDS_PER_MESSAGE)
                .map(<[Vec<u8>]>::to_vec),
        );
        Ok(true)
    }

    fn put_screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
        image: &[u8],
        stored_at: crate::UnixSeconds,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.screenshots.contains_key(&(*member, *sha256)) {
            return Ok(false);
        }
        inner.keyed.insert(*member);
        inner
            .screenshots
            .insert((*member, *sha256), (image.to_vec(), stored_at.0));
        Ok(true)
    }

    fn members_with_data(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<PublicKey>, StoreError> {
        Ok(self
            .lock()
            .keyed
            .iter()
            .filter(|member| after.is_none_or(|after| *member > after))
            .take(limit)
            .copied()
            .collect())
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
        let mut inner = self.lock();
        if kept.is_empty() {
            inner.chunks.remove(key);
        } else if let Some(chunk) = inner.chunks.get_mut(key) {
            *chunk = kept.to_vec();
        }
        Ok(())
    }

    fn expire_counts(&self, member: &PublicKey, first_kept_day: i64) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let before = inner.counts.len();
        inner
            .counts
            .retain(|(owner, day, _), _| owner != member || *day >= first_kept_day);
        Ok((before - inner.counts.len()) as u64)
    }

    fn expire_screenshots(
        &self,
        member: &PublicKey,
        stored_before: crate::UnixSeconds,
        _now: crate::UnixSeconds,
        referenced: &BTreeSet<[u8; 32]>,
        dropped: &BTreeSet<[u8; 32]>,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let before = inner.screenshots.len();
        inner.screenshots.retain(|(owner, sha256), (_, stored_at)| {
            owner != member
                || referenced.contains(sha256)
                || (*stored_at >= stored_before.0 && !dropped.contains(sha256))
        });
        Ok((before - inner.screenshots.len()) as u64)
    }

    fn delete_release_part(&self, member: &PublicKey, release_id: &str) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .release_parts
            .remove(&(*member, release_id.to_owned()))
            .map_or(0, |chunks| chunks.len() as u64))
    }

    fn screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()
            .screenshots
            .get(&(*member, *sha256))
            .map(|(image, _)| image.clone()))
    }

    fn member_screenshots(
        &self,
        member: &PublicKey,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        Ok(self
            .lock()
            .screenshots
            .keys()
            .filter(|(owner, hash)| owner == member && after.is_none_or(|after| hash > after))
            .take(limit)
            .map(|(_, hash)| *hash)
            .collect())
    }

    fn release_part_chunk(
        &self,
        member: &PublicKey,
        release_id: &str,
        chunk: u32,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let inner = self.lock();
        if !inner.keyed.contains(member) {
            return Ok(None);
        }
        Ok(inner
            .release_parts
            .get(&(*member, release_id.to_owned()))
            .and_then(|chunks| chunks.get(chunk as usize).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_store_keeps_the_store_contract() {
        crate::store_contract::run_all(MemoryStore::in_memory);
        crate::store_contract::records_contract(&MemoryStore::in_memory());
        crate::store_contract::events_contract(&MemoryStore::in_memory());
        crate::store_contract::retention_contract(&MemoryStore::in_memory());
    }
}
