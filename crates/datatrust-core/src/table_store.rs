//! The trust's state tables over any ordered key-value engine (`Tables`): every principal,
//! invitation, authorisation and record as JSON under (table, key), with the commit path's
//! encodings (`StateTables`). The core's `MemoryStore` is one over maps in memory; the
//! PostgreSQL backend is one over a table of rows; telemetry (`EventStore`) is the `E` part,
//! each backend's own.

use crate::commit::{StateTables, TableRead, TableWrite, Write, version_of};
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

/// An ordered key-value engine of named tables.
pub trait Tables: Send + Sync + 'static {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// The values of `table` whose key starts with `prefix` and comes strictly after
    /// `after`, in key order (bytewise), at most `limit` of them.
    fn scan(
        &self,
        table: &'static str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError>;
    /// Applies the writes atomically and durably.
    fn apply(&self, writes: &[TableWrite]) -> Result<(), StoreError>;
    /// Stores `value` unless `key` is taken; returns what was there (and then changes
    /// nothing).
    fn insert_new(
        &self,
        table: &'static str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// The bytes to store for `plaintext` under `key` in `table`. A backend that keeps some
    /// tables sealed at rest (principals, which hold members' commitment salts, and ballots)
    /// seals them here; the commit path's versions are of the stored bytes. By default,
    /// stored as it is.
    fn seal(
        &self,
        _table: &'static str,
        _key: &[u8],
        plaintext: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        Ok(plaintext)
    }
    /// The plaintext of what `seal` stored.
    fn open(
        &self,
        _table: &'static str,
        _key: &[u8],
        stored: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        Ok(stored.to_vec())
    }
}

/// The trust's state over `T`, with telemetry in `E`; clones share both.
#[derive(Clone)]
pub struct TableStore<T, E> {
    tables: T,
    events: E,
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

impl<T: Tables, E> TableStore<T, E> {
    pub fn new(tables: T, events: E) -> TableStore<T, E> {
        TableStore { tables, events }
    }

    pub fn tables(&self) -> &T {
        &self.tables
    }

    fn versioned(
        &self,
        table: &'static str,
        key: Vec<u8>,
    ) -> Result<(Option<Vec<u8>>, TableRead), StoreError> {
        let stored = self.tables.get(table, &key)?;
        let read = TableRead {
            table,
            version: version_of(stored.as_deref()),
            key,
        };
        Ok((stored, read))
    }

    fn decoded<V: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        key: Vec<u8>,
    ) -> Result<(Option<V>, TableRead), StoreError> {
        let (stored, read) = self.versioned(table, key)?;
        let value = stored
            .map(|bytes| from_json(&self.tables.open(table, &read.key, &bytes)?))
            .transpose()?;
        Ok((value, read))
    }

    /// Opens every value of a scan of `table`.
    fn opened(
        &self,
        table: &'static str,
        rows: Vec<KeyValue>,
    ) -> Result<Vec<KeyValue>, StoreError> {
        rows.into_iter()
            .map(|(key, value)| {
                let value = self.tables.open(table, &key, &value)?;
                Ok((key, value))
            })
            .collect()
    }

    fn authorizations(
        &self,
        table: &'static str,
        key: &PublicKey,
    ) -> Result<Vec<CollectorAuthorization>, StoreError> {
        self.tables
            .scan(table, key.as_bytes(), None, usize::MAX)?
            .iter()
            .map(|(_, value)| from_json(value))
            .collect()
    }
}

impl<T: Tables, E: Send + Sync + 'static> StateTables for TableStore<T, E> {
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
        let (stored, read) = self.versioned(kind.table(), key.to_vec())?;
        let value = stored
            .map(|bytes| self.tables.open(kind.table(), key, &bytes))
            .transpose()?;
        Ok((value, read))
    }

    fn table_get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.tables.get(table, key)
    }

    fn encode(&self, write: &Write, first_index: u64) -> Result<Vec<TableWrite>, StoreError> {
        if let Some((kind, key, value)) = write.record_at(first_index)? {
            let value = value
                .map(|value| self.tables.seal(kind.table(), &key, value))
                .transpose()?;
            return Ok(vec![TableWrite {
                table: kind.table(),
                key,
                value,
            }]);
        }
        let one =
            |table, key: Vec<u8>, value: Option<Vec<u8>>| vec![TableWrite { table, key, value }];
        Ok(match write {
            Write::Principal(principal) => {
                let key = principal.public_key.as_bytes().to_vec();
                let value = self.tables.seal(PRINCIPALS, &key, json(principal)?)?;
                one(PRINCIPALS, key, Some(value))
            }
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
            Write::Record { .. }
            | Write::RecordWithIndex { .. }
            | Write::LicenseRevoked(_)
            | Write::Payment(_) => Vec::new(), // encoded above, by `record_at`
        })
    }

    fn apply(&self, writes: &[TableWrite]) -> Result<(), StoreError> {
        self.tables.apply(writes)
    }
}

impl<T: Tables, E: Send + Sync + 'static> TrustStore for TableStore<T, E> {
    fn principal(&self, public_key: &PublicKey) -> Result<Option<Principal>, StoreError> {
        Ok(self.read_principal(public_key)?.0)
    }

    fn list_principals(
        &self,
        role: Option<Role>,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<Principal>, StoreError> {
        let mut listed = Vec::new();
        let mut after = after.map(|key| key.as_bytes().to_vec());
        while listed.len() < limit {
            let page = self.tables.scan(PRINCIPALS, b"", after.as_deref(), 1000)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, value) in &page {
                let principal: Principal = from_json(&self.tables.open(PRINCIPALS, key, value)?)?;
                if role.is_none_or(|role| principal.role == role) && listed.len() < limit {
                    listed.push(principal);
                }
            }
        }
        Ok(listed)
    }

    fn insert_principal(&self, principal: &Principal) -> Result<PrincipalInsert, StoreError> {
        let key = principal.public_key.as_bytes();
        let value = self.tables.seal(PRINCIPALS, key, json(principal)?)?;
        match self.tables.insert_new(PRINCIPALS, key, &value)? {
            Some(existing) => Ok(PrincipalInsert::KeyTaken(from_json(
                &self.tables.open(PRINCIPALS, key, &existing)?,
            )?)),
            None => Ok(PrincipalInsert::Inserted),
        }
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
        self.tables
            .scan(INVITATIONS, b"", after.map(|after| after.as_slice()), limit)?
            .iter()
            .map(|(_, value)| from_json(value))
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

impl<T: Tables, E: Send + Sync + 'static> RecordStore for TableStore<T, E> {
    fn get_record(&self, kind: RecordKind, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read_record(kind, key)?.0)
    }

    fn scan_records(&self, kind: RecordKind, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let rows = self.tables.scan(kind.table(), prefix, None, usize::MAX)?;
        self.opened(kind.table(), rows)
    }

    fn scan_records_page(
        &self,
        kind: RecordKind,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let rows = self.tables.scan(kind.table(), prefix, after, limit)?;
        self.opened(kind.table(), rows)
    }

    fn write_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        let writes = writes
            .into_iter()
            .map(|(kind, key, value)| {
                let value = value
                    .map(|value| self.tables.seal(kind.table(), &key, value))
                    .transpose()?;
                Ok(TableWrite {
                    table: kind.table(),
                    key,
                    value,
                })
            })
            .collect::<Result<Vec<TableWrite>, StoreError>>()?;
        self.apply(&writes)
    }
}

impl<T: Tables, E: EventStore> EventStore for TableStore<T, E> {
    fn put_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[crate::events::Event],
    ) -> Result<ChunkInsert, StoreError> {
        self.events.put_chunk(member, device_id, sequence, events)
    }
    fn remove_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[crate::events::Event],
    ) -> Result<bool, StoreError> {
        self.events
            .remove_chunk(member, device_id, sequence, events)
    }
    fn remove_screenshot(&self, member: &PublicKey, sha256: &[u8; 32]) -> Result<bool, StoreError> {
        self.events.remove_screenshot(member, sha256)
    }
    fn member_counts(&self, member: &PublicKey) -> Result<Vec<DayCount>, StoreError> {
        self.events.member_counts(member)
    }
    fn member_events(&self, member: &PublicKey) -> Result<Vec<crate::events::Event>, StoreError> {
        self.events.member_events(member)
    }
    fn member_events_page(
        &self,
        member: &PublicKey,
        after: Option<&[u8]>,
        max_events: usize,
    ) -> Result<EventPage, StoreError> {
        self.events.member_events_page(member, after, max_events)
    }
    fn erase_member(&self, member: &PublicKey) -> Result<u64, StoreError> {
        self.events.erase_member(member)
    }
    fn put_release_part(
        &self,
        member: &PublicKey,
        release_id: &str,
        first_chunk: u32,
        records: &[Vec<u8>],
    ) -> Result<bool, StoreError> {
        self.events
            .put_release_part(member, release_id, first_chunk, records)
    }
    fn put_screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
        image: &[u8],
        stored_at: crate::UnixSeconds,
    ) -> Result<bool, StoreError> {
        self.events.put_screenshot(member, sha256, image, stored_at)
    }
    fn members_with_data(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<PublicKey>, StoreError> {
        self.events.members_with_data(after, limit)
    }
    fn replace_chunk(
        &self,
        member: &PublicKey,
        key: &[u8],
        kept: &[crate::events::Event],
    ) -> Result<(), StoreError> {
        self.events.replace_chunk(member, key, kept)
    }
    fn expire_counts(&self, member: &PublicKey, first_kept_day: i64) -> Result<u64, StoreError> {
        self.events.expire_counts(member, first_kept_day)
    }
    fn expire_screenshots(
        &self,
        member: &PublicKey,
        stored_before: crate::UnixSeconds,
        now: crate::UnixSeconds,
        referenced: &std::collections::BTreeSet<[u8; 32]>,
        dropped: &std::collections::BTreeSet<[u8; 32]>,
    ) -> Result<u64, StoreError> {
        self.events
            .expire_screenshots(member, stored_before, now, referenced, dropped)
    }
    fn delete_release_part(&self, member: &PublicKey, release_id: &str) -> Result<u64, StoreError> {
        self.events.delete_release_part(member, release_id)
    }
    fn reclaim_space(&self) -> Result<(u64, u64), StoreError> {
        self.events.reclaim_space()
    }
    fn keeps_expiry_index(&self) -> bool {
        self.events.keeps_expiry_index()
    }
    fn chunks_with_days_before(
        &self,
        member: &PublicKey,
        day: i64,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<crate::store::IndexedChunk>, StoreError> {
        self.events
            .chunks_with_days_before(member, day, after, limit)
    }
    fn chunk_events(
        &self,
        member: &PublicKey,
        key: &[u8],
    ) -> Result<Option<Vec<crate::events::Event>>, StoreError> {
        self.events.chunk_events(member, key)
    }
    fn expire_unreferenced_screenshots(
        &self,
        member: &PublicKey,
        first_kept_day: i64,
        stored_before: crate::UnixSeconds,
        now: crate::UnixSeconds,
    ) -> Result<u64, StoreError> {
        self.events
            .expire_unreferenced_screenshots(member, first_kept_day, stored_before, now)
    }
    fn screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.events.screenshot(member, sha256)
    }
    fn member_screenshots(
        &self,
        member: &PublicKey,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        self.events.member_screenshots(member, after, limit)
    }
    fn release_part_chunk(
        &self,
        member: &PublicKey,
        release_id: &str,
        chunk: u32,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        self.events.release_part_chunk(member, release_id, chunk)
    }
    fn sealed_rows(
        &self,
        table: crate::store::SealedTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.events.sealed_rows(table, after, limit)
    }
    fn put_sealed_rows(
        &self,
        table: crate::store::SealedTable,
        rows: &[KeyValue],
    ) -> Result<(), StoreError> {
        self.events.put_sealed_rows(table, rows)
    }
}
