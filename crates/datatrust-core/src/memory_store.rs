//! The trust's state in memory: every storage trait of the core over ordered maps, for rule
//! tests that sit beside the rules (with `commit::MemoryJournal`, a whole registry without
//! a disk). State tables hold JSON; telemetry is kept in the clear, since nothing here
//! outlives the test. It passes the same store contract as sled (`store_contract`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::commit::{StateTables, TableRead, TableWrite, Write, version_of};
use crate::events::Event;
use crate::governance::Consent;
use crate::store::{
    ChunkInsert, DayCount, EventPage, EventStore, Invitation, KeyValue, PrincipalInsert,
    RecordKind, RecordStore, RecordWrite, StoreError, TrustStore,
};
use crate::{CollectorAuthorization, Principal, PublicKey, Role};

const PRINCIPALS: &str = "principals";
const INVITATIONS: &str = "invitations";
const COLLECTORS_BY_MEMBER: &str = "collectors_by_member";
const MEMBERS_BY_COLLECTOR: &str = "members_by_collector";

/// A store in memory; clones share it.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// (table, key) → bytes: principals, invitations, authorisations and every record kind.
    tables: BTreeMap<(&'static str, Vec<u8>), Vec<u8>>,
    /// Members who have a telemetry key (made by their first chunk or screenshot).
    keyed: BTreeSet<PublicKey>,
    /// member || device || sequence (BE) → events.
    chunks: BTreeMap<Vec<u8>, Vec<Event>>,
    /// (member, day, category) → events.
    counts: BTreeMap<(PublicKey, i64, String), u64>,
    /// (member, release id) → the part's records, in chunks.
    release_parts: BTreeMap<(PublicKey, String), Vec<Vec<Vec<u8>>>>,
    /// (member, SHA-256) → image.
    screenshots: BTreeMap<(PublicKey, [u8; 32]), Vec<u8>>,
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|error| StoreError::new(format!("encoding: {error}")))
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|error| StoreError::data_loss(format!("decoding: {error}")))
}

fn pair(first: &PublicKey, second: &PublicKey) -> Vec<u8> {
    [first.as_bytes().as_slice(), second.as_bytes()].concat()
}

fn consent_key(member: &PublicKey, purpose: &str) -> Vec<u8> {
    [member.as_bytes().as_slice(), purpose.as_bytes()].concat()
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, table: &'static str, key: &[u8]) -> Option<Vec<u8>> {
        self.lock().tables.get(&(table, key.to_vec())).cloned()
    }

    /// Values of `table` whose key starts with `prefix`, in key order.
    fn scan(&self, table: &'static str, prefix: &[u8]) -> Vec<KeyValue> {
        self.lock()
            .tables
            .range((table, prefix.to_vec())..)
            .take_while(|((name, key), _)| *name == table && key.starts_with(prefix))
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect()
    }

    fn versioned(&self, table: &'static str, key: Vec<u8>) -> (Option<Vec<u8>>, TableRead) {
        let stored = self.get(table, &key);
        let read = TableRead {
            table,
            version: version_of(stored.as_deref()),
            key,
        };
        (stored, read)
    }

    fn decoded<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        key: Vec<u8>,
    ) -> Result<(Option<T>, TableRead), StoreError> {
        let (stored, read) = self.versioned(table, key);
        Ok((stored.map(|bytes| from_json(&bytes)).transpose()?, read))
    }

    fn authorizations(
        &self,
        table: &'static str,
        key: &PublicKey,
    ) -> Result<Vec<CollectorAuthorization>, StoreError> {
        self.scan(table, key.as_bytes())
            .iter()
            .map(|(_, value)| from_json(value))
            .collect()
    }
}

impl StateTables for MemoryStore {
    fn read_principal(
        &self,
        key: &PublicKey,
    ) -> Result<(Option<Principal>, TableRead), StoreError> {
        self.decoded(PRINCIPALS, key.as_bytes().to_vec())
    }

    fn read_invitation(
        &self,
        code_hash: &[u8; 32],
    ) -> Result<(Option<Invitation>, TableRead), StoreError> {
        self.decoded(INVITATIONS, code_hash.to_vec())
    }

    fn read_consent(
        &self,
        member: &PublicKey,
        purpose: &str,
    ) -> Result<(Option<Consent>, TableRead), StoreError> {
        self.decoded(RecordKind::Consent.table(), consent_key(member, purpose))
    }

    fn read_collector_authorization(
        &self,
        member: &PublicKey,
        collector: &PublicKey,
    ) -> Result<(Option<CollectorAuthorization>, TableRead), StoreError> {
        self.decoded(COLLECTORS_BY_MEMBER, pair(member, collector))
    }

    fn read_record(
        &self,
        kind: RecordKind,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, TableRead), StoreError> {
        Ok(self.versioned(kind.table(), key.to_vec()))
    }

    fn table_get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(table, key))
    }

    fn encode(&self, write: &Write, first_index: u64) -> Result<Vec<TableWrite>, StoreError> {
        let one =
            |table, key: Vec<u8>, value: Option<Vec<u8>>| vec![TableWrite { table, key, value }];
        Ok(match write {
            Write::Record { kind, key, value } => one(kind.table(), key.clone(), value.clone()),
            Write::RecordWithIndex {
                kind,
                key,
                value,
                index_at,
                entry,
            } => {
                let mut value = value.clone();
                let slot = value.pointer_mut(index_at).ok_or_else(|| {
                    StoreError::new(format!("a {} record has no {index_at}", kind.name()))
                })?;
                *slot = (first_index + entry).into();
                one(kind.table(), key.clone(), Some(json(&value)?))
            }
            Write::LicenseRevoked(license) => {
                let mut license = license.clone();
                if let crate::governance::LicenseStatus::Revoked { log_index, .. } =
                    &mut license.status
                {
                    *log_index = first_index;
                }
                one(
                    RecordKind::License.table(),
                    license.id.as_bytes().to_vec(),
                    Some(json(&license)?),
                )
            }
            Write::Payment(payment) => {
                let mut payment = payment.clone();
                payment.log_index = first_index;
                one(
                    RecordKind::Payment.table(),
                    payment.reference.as_bytes().to_vec(),
                    Some(json(&payment)?),
                )
            }
            Write::Principal(principal) => one(
                PRINCIPALS,
                principal.public_key.as_bytes().to_vec(),
                Some(json(principal)?),
            ),
            Write::Invitation(invitation) => one(
                INVITATIONS,
                invitation.code_hash.to_vec(),
                Some(json(invitation)?),
            ),
            Write::Consent { member, consent } => one(
                RecordKind::Consent.table(),
                consent_key(member, &consent.purpose),
                Some(json(consent)?),
            ),
            Write::CollectorAuthorized(authorization) => {
                let value = json(authorization)?;
                vec![
                    TableWrite {
                        table: COLLECTORS_BY_MEMBER,
                        key: pair(&authorization.member, &authorization.collector),
                        value: Some(value.clone()),
                    },
                    TableWrite {
                        table: MEMBERS_BY_COLLECTOR,
                        key: pair(&authorization.collector, &authorization.member),
                        value: Some(value),
                    },
                ]
            }
            Write::CollectorRevoked { member, collector } => vec![
                TableWrite {
                    table: COLLECTORS_BY_MEMBER,
                    key: pair(member, collector),
                    value: None,
                },
                TableWrite {
                    table: MEMBERS_BY_COLLECTOR,
                    key: pair(collector, member),
                    value: None,
                },
            ],
        })
    }

    fn apply(&self, writes: &[TableWrite]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for write in writes {
            let key = (write.table, write.key.clone());
            match &write.value {
                Some(value) => inner.tables.insert(key, value.clone()),
                None => inner.tables.remove(&key),
            };
        }
        Ok(())
    }
}

impl TrustStore for MemoryStore {
    fn principal(&self, public_key: &PublicKey) -> Result<Option<Principal>, StoreError> {
        self.get(PRINCIPALS, public_key.as_bytes())
            .map(|bytes| from_json(&bytes))
            .transpose()
    }

    fn list_principals(
        &self,
        role: Option<Role>,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<Principal>, StoreError> {
        let mut listed = Vec::new();
        for (key, value) in self.scan(PRINCIPALS, b"") {
            if after.is_some_and(|after| key.as_slice() <= after.as_bytes().as_slice()) {
                continue;
            }
            let principal: Principal = from_json(&value)?;
            if role.is_none_or(|role| principal.role == role) {
                listed.push(principal);
                if listed.len() == limit {
                    break;
                }
            }
        }
        Ok(listed)
    }

    fn insert_principal(&self, principal: &Principal) -> Result<PrincipalInsert, StoreError> {
        let mut inner = self.lock();
        let key = (PRINCIPALS, principal.public_key.as_bytes().to_vec());
        if let Some(existing) = inner.tables.get(&key) {
            return Ok(PrincipalInsert::KeyTaken(from_json(existing)?));
        }
        inner.tables.insert(key, json(principal)?);
        Ok(PrincipalInsert::Inserted)
    }

    fn insert_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        self.apply(&[TableWrite {
            table: INVITATIONS,
            key: invitation.code_hash.to_vec(),
            value: Some(json(invitation)?),
        }])
    }

    fn invitation(&self, code_hash: &[u8; 32]) -> Result<Option<Invitation>, StoreError> {
        Ok(self.read_invitation(code_hash)?.0)
    }

    fn list_invitations(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError> {
        self.scan(INVITATIONS, b"")
            .into_iter()
            .filter(|(key, _)| after.is_none_or(|after| key.as_slice() > after.as_slice()))
            .take(limit)
            .map(|(_, value)| from_json(&value))
            .collect()
    }

    fn collectors_of_member(
        &self,
        member: &PublicKey,
    ) -> Result<Vec<CollectorAuthorization>, StoreError> {
        self.authorizations(COLLECTORS_BY_MEMBER, member)
    }

    fn members_of_collector(
        &self,
        collector: &PublicKey,
    ) -> Result<Vec<CollectorAuthorization>, StoreError> {
        self.authorizations(MEMBERS_BY_COLLECTOR, collector)
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl RecordStore for MemoryStore {
    fn get_record(&self, kind: RecordKind, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(kind.table(), key))
    }

    fn scan_records(&self, kind: RecordKind, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self.scan(kind.table(), prefix))
    }

    fn scan_records_page(
        &self,
        kind: RecordKind,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self
            .scan(kind.table(), prefix)
            .into_iter()
            .filter(|(key, _)| after.is_none_or(|after| key.as_slice() > after))
            .take(limit)
            .collect())
    }

    fn write_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        let writes: Vec<TableWrite> = writes
            .into_iter()
            .map(|(kind, key, value)| TableWrite {
                table: kind.table(),
                key,
                value,
            })
            .collect();
        self.apply(&writes)
    }
}

impl EventStore for MemoryStore {
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
        let mut last = None;
        let chunks = inner
            .chunks
            .iter()
            .filter(|(key, _)| key.starts_with(member.as_bytes()))
            .filter(|(key, _)| after.is_none_or(|after| key.as_slice() > after));
        for (key, chunk) in chunks {
            if events.len() >= max_events.max(1) {
                return Ok(EventPage { events, next: last });
            }
            events.extend(chunk.iter().cloned());
            last = Some(key.clone());
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
        records: &[Vec<u8>],
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if !inner.keyed.contains(member) {
            return Ok(false);
        }
        let chunks = records
            .chunks(crate::release::RECORDS_PER_MESSAGE)
            .map(<[Vec<u8>]>::to_vec)
            .collect();
        inner
            .release_parts
            .insert((*member, release_id.to_owned()), chunks);
        Ok(true)
    }

    fn put_screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
        image: &[u8],
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.screenshots.contains_key(&(*member, *sha256)) {
            return Ok(false);
        }
        inner.keyed.insert(*member);
        inner.screenshots.insert((*member, *sha256), image.to_vec());
        Ok(true)
    }

    fn screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().screenshots.get(&(*member, *sha256)).cloned())
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
        crate::store_contract::run_all(MemoryStore::new);
        crate::store_contract::records_contract(&MemoryStore::new());
        crate::store_contract::events_contract(&MemoryStore::new());
    }
}
