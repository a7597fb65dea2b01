//! Members' telemetry on PostgreSQL, sealed as on sled (`datatrust_store::sealing`): each
//! chunk `nonce || XChaCha20-Poly1305(member key, postcard(events))` with its key bound in,
//! as `bytea` (ciphertext: no compression); the per-day counts in the same transaction; the
//! member's key stored only wrapped by the trust's data key, in the database, so an erasure
//! on one node is effective on all at once.
//!
//! ```text
//! <schema>.member_keys (member, wrapped)
//! <schema>.event_chunks (key, sealed)          key: member || device tag || sequence
//! <schema>.event_counts (member, day, category, count)
//! <schema>.release_parts (key, sealed)         key: member || release id || chunk
//! <schema>.screenshots (key, sealed)           key: member || SHA-256(image)
//! ```
//!
//! Erasure deletes the rows; PostgreSQL keeps dead tuples until VACUUM, and WAL, replicas
//! and backups keep what they kept: see the README for what an operator must do.

use std::sync::{Arc, MutexGuard};

use datatrust_core::PublicKey;
use datatrust_core::events::Event;
use datatrust_core::store::{
    ChunkInsert, DayCount, EventPage, EventStore, KeyValue, SealedTable, StoreError,
};
use datatrust_store::sealing::{
    RELEASE_PART_CHUNK_RECORDS, chunk_key, key_associated_data, open, release_chunk_key, seal,
};
use rand::RngCore as _;

use crate::{OpenError, check_schema_name, migrate};

/// Members' telemetry on PostgreSQL; clones share the connection.
#[derive(Clone)]
pub struct PgEvents {
    pool: Arc<crate::blocking::Pool>,
    schema: Arc<str>,
    /// The trust's data key, which wraps every member's key.
    data_key: [u8; 32],
}

fn store_error(error: postgres::Error) -> StoreError {
    StoreError::new(format!("postgresql: {error}"))
}

impl PgEvents {
    pub fn open(config: &str, schema: &str, data_key: [u8; 32]) -> Result<PgEvents, OpenError> {
        check_schema_name(schema)?;
        let pool = crate::blocking::Pool::open(config, crate::blocking::POOL_SIZE)?;
        migrate(&mut pool.get(), schema)?;
        Ok(PgEvents {
            pool: Arc::new(pool),
            schema: schema.into(),
            data_key,
        })
    }

    fn client(&self) -> MutexGuard<'_, crate::blocking::Connection> {
        self.pool.get()
    }

    fn sql(&self, text: &str) -> String {
        text.replace("{s}", &self.schema)
    }

    fn member_key(
        &self,
        client: &mut impl postgres::GenericClient,
        member: &PublicKey,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        let row = client
            .query_opt(
                &self.sql("SELECT wrapped FROM {s}.member_keys WHERE member = $1"),
                &[&member.as_bytes().as_slice()],
            )
            .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let wrapped: Vec<u8> = row.get(0);
        let key = open(&self.data_key, &wrapped, &key_associated_data(member))?;
        Ok(Some(key.try_into().map_err(|_| {
            StoreError::data_loss("a member key is not 32 bytes")
        })?))
    }

    /// The member's key, made (random, wrapped by the data key) on first use; racing
    /// creators on any node agree on the first stored.
    fn member_key_or_create(
        &self,
        client: &mut impl postgres::GenericClient,
        member: &PublicKey,
    ) -> Result<[u8; 32], StoreError> {
        if let Some(key) = self.member_key(client, member)? {
            return Ok(key);
        }
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let wrapped = seal(&self.data_key, &fresh, &key_associated_data(member))?;
        client
            .execute(
                &self.sql(
                    "INSERT INTO {s}.member_keys (member, wrapped) VALUES ($1, $2)
                     ON CONFLICT (member) DO NOTHING",
                ),
                &[&member.as_bytes().as_slice(), &wrapped],
            )
            .map_err(store_error)?;
        self.member_key(client, member)?
            .ok_or_else(|| StoreError::new("a member key vanished as it was made"))
    }

    fn sealed(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .client()
            .query_opt(
                &self.sql(&format!("SELECT sealed FROM {{s}}.{table} WHERE key = $1")),
                &[&key],
            )
            .map_err(store_error)?
            .map(|row| row.get(0)))
    }
}

impl EventStore for PgEvents {
    fn put_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[Event],
    ) -> Result<ChunkInsert, StoreError> {
        crate::blocking::off_runtime(|| {
            let key = chunk_key(member, device_id, sequence);
            let mut client = self.client();
            let mut transaction = client.transaction().map_err(store_error)?;
            let member_key = self.member_key_or_create(&mut transaction, member)?;
            let plaintext = postcard::to_stdvec(events)
                .map_err(|error| StoreError::new(format!("encoding events: {error}")))?;
            let sealed = seal(&member_key, &plaintext, &key)?;
            let inserted = transaction
                .execute(
                    &self.sql(
                        "INSERT INTO {s}.event_chunks (key, sealed) VALUES ($1, $2)
                     ON CONFLICT (key) DO NOTHING",
                    ),
                    &[&key, &sealed],
                )
                .map_err(store_error)?;
            if inserted == 0 {
                return Ok(ChunkInsert::Duplicate);
            }
            let mut counts: std::collections::BTreeMap<(i64, &str), i64> = Default::default();
            for event in events {
                *counts.entry((event.day(), event.category())).or_default() += 1;
            }
            let days: Vec<i64> = counts.keys().map(|(day, _)| *day).collect();
            let categories: Vec<&str> = counts.keys().map(|(_, category)| *category).collect();
            let added: Vec<i64> = counts.values().copied().collect();
            transaction
                .execute(
                    &self.sql(
                        "INSERT INTO {s}.event_counts (member, day, category, count)
                     SELECT $1, * FROM UNNEST($2::int8[], $3::text[], $4::int8[])
                     ON CONFLICT (member, day, category)
                     DO UPDATE SET count = {s}.event_counts.count + EXCLUDED.count",
                    ),
                    &[&member.as_bytes().as_slice(), &days, &categories, &added],
                )
                .map_err(store_error)?;
            transaction.commit().map_err(store_error)?;
            Ok(ChunkInsert::Stored)
        })
    }

    fn remove_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        crate::blocking::off_runtime(|| {
            let key = chunk_key(member, device_id, sequence);
            let mut client = self.client();
            let mut transaction = client.transaction().map_err(store_error)?;
            let removed = transaction
                .execute(
                    &self.sql("DELETE FROM {s}.event_chunks WHERE key = $1"),
                    &[&key],
                )
                .map_err(store_error)?;
            if removed == 0 {
                return Ok(false);
            }
            let mut counts: std::collections::BTreeMap<(i64, &str), i64> = Default::default();
            for event in events {
                *counts.entry((event.day(), event.category())).or_default() += 1;
            }
            let days: Vec<i64> = counts.keys().map(|(day, _)| *day).collect();
            let categories: Vec<&str> = counts.keys().map(|(_, category)| *category).collect();
            let taken: Vec<i64> = counts.values().copied().collect();
            transaction
                .execute(
                    &self.sql(
                        "UPDATE {s}.event_counts SET count = {s}.event_counts.count - taken.count
                         FROM UNNEST($2::int8[], $3::text[], $4::int8[]) AS taken(day, category, count)
                         WHERE {s}.event_counts.member = $1 AND {s}.event_counts.day = taken.day
                           AND {s}.event_counts.category = taken.category",
                    ),
                    &[&member.as_bytes().as_slice(), &days, &categories, &taken],
                )
                .map_err(store_error)?;
            transaction
                .execute(
                    &self.sql("DELETE FROM {s}.event_counts WHERE member = $1 AND count <= 0"),
                    &[&member.as_bytes().as_slice()],
                )
                .map_err(store_error)?;
            transaction.commit().map_err(store_error)?;
            Ok(true)
        })
    }

    fn remove_screenshot(&self, member: &PublicKey, sha256: &[u8; 32]) -> Result<bool, StoreError> {
        crate::blocking::off_runtime(|| {
            let key = [member.as_bytes().as_slice(), sha256].concat();
            let removed = self
                .client()
                .execute(
                    &self.sql("DELETE FROM {s}.screenshots WHERE key = $1"),
                    &[&key],
                )
                .map_err(store_error)?;
            Ok(removed > 0)
        })
    }

    fn member_counts(&self, member: &PublicKey) -> Result<Vec<DayCount>, StoreError> {
        crate::blocking::off_runtime(|| {
            Ok(self
                .client()
                .query(
                    &self.sql(
                        "SELECT day, category, count FROM {s}.event_counts WHERE member = $1
                     ORDER BY day, category",
                    ),
                    &[&member.as_bytes().as_slice()],
                )
                .map_err(store_error)?
                .into_iter()
                .map(|row| DayCount {
                    day: row.get(0),
                    category: row.get(1),
                    count: row.get::<_, i64>(2) as u64,
                })
                .collect())
        })
    }

    fn member_events_page(
        &self,
        member: &PublicKey,
        after: Option<&[u8]>,
        max_events: usize,
    ) -> Result<EventPage, StoreError> {
        crate::blocking::off_runtime(|| {
            if after.is_some_and(|after| !after.starts_with(member.as_bytes())) {
                return Err(StoreError::new("a page position of another member"));
            }
            let start = after.map_or_else(|| member.as_bytes().to_vec(), <[u8]>::to_vec);
            let mut client = self.client();
            let mut member_key = None;
            let mut events = Vec::new();
            let mut last: Option<Vec<u8>> = None;
            // A page of chunks at a time, until enough events are read.
            loop {
                let from = last.clone().unwrap_or_else(|| start.clone());
                let rows = client
                    .query(
                        &self.sql(
                            "SELECT key, sealed FROM {s}.event_chunks
                         WHERE key > $1 AND substr(key, 1, 32) = $2 ORDER BY key LIMIT 64",
                        ),
                        &[&from, &member.as_bytes().as_slice()],
                    )
                    .map_err(store_error)?;
                // The first page includes the start itself only when it is the bare member.
                let rows: Vec<_> = rows
                    .into_iter()
                    .filter(|row| row.get::<_, Vec<u8>>(0).starts_with(member.as_bytes()))
                    .collect();
                if rows.is_empty() {
                    return Ok(EventPage { events, next: None });
                }
                for row in rows {
                    let key: Vec<u8> = row.get(0);
                    let sealed: Vec<u8> = row.get(1);
                    let member_key = match member_key {
                        Some(key) => key,
                        None => *member_key.insert(
                            self.member_key(&mut **client, member)?.ok_or_else(|| {
                                StoreError::data_loss(
                                    "the member's data is stored but their key is missing",
                                )
                            })?,
                        ),
                    };
                    let plaintext = open(&member_key, &sealed, &key)?;
                    let chunk: Vec<Event> = postcard::from_bytes(&plaintext).map_err(|error| {
                        StoreError::data_loss(format!("decoding a chunk: {error}"))
                    })?;
                    events.extend(chunk);
                    last = Some(key);
                    if events.len() >= max_events.max(1) {
                        return Ok(EventPage { events, next: last });
                    }
                }
            }
        })
    }

    fn erase_member(&self, member: &PublicKey) -> Result<u64, StoreError> {
        crate::blocking::off_runtime(|| {
            let mut client = self.client();
            let mut transaction = client.transaction().map_err(store_error)?;
            let member_bytes = member.as_bytes().as_slice();

            // The key first: nothing of the member decrypts once this commits.
            transaction
                .execute(
                    &self.sql("DELETE FROM {s}.member_keys WHERE member = $1"),
                    &[&member_bytes],
                )
                .map_err(store_error)?;
            let deleted = transaction
                .execute(
                    &self.sql("DELETE FROM {s}.event_chunks WHERE substr(key, 1, 32) = $1"),
                    &[&member_bytes],
                )
                .map_err(store_error)?;
            for table in ["release_parts", "screenshots"] {
                transaction
                    .execute(
                        &self.sql(&format!(
                            "DELETE FROM {{s}}.{table} WHERE substr(key, 1, 32) = $1"
                        )),
                        &[&member_bytes],
                    )
                    .map_err(store_error)?;
            }
            transaction
                .execute(
                    &self.sql("DELETE FROM {s}.event_counts WHERE member = $1"),
                    &[&member_bytes],
                )
                .map_err(store_error)?;
            transaction.commit().map_err(store_error)?;
            Ok(deleted)
        })
    }

    fn put_release_part(
        &self,
        member: &PublicKey,
        release_id: &str,
        first_chunk: u32,
        records: &[Vec<u8>],
    ) -> Result<bool, StoreError> {
        crate::blocking::off_runtime(|| {
            let mut client = self.client();
            let Some(member_key) = self.member_key(&mut **client, member)? else {
                return Ok(false);
            };
            let mut keys = Vec::new();
            let mut sealed = Vec::new();
            for (index, chunk) in records.chunks(RELEASE_PART_CHUNK_RECORDS).enumerate() {
                let index = u32::try_from(index)
                    .ok()
                    .and_then(|index| index.checked_add(first_chunk))
                    .ok_or_else(|| StoreError::new("a release part of more than 2^32 chunks"))?;
                let key = release_chunk_key(member, release_id, index);
                let plaintext = datatrust_store::sealing::encode_release_chunk(chunk)?;
                sealed.push(seal(&member_key, &plaintext, &key)?);
                keys.push(key);
            }
            client
                .execute(
                    &self.sql(
                        "INSERT INTO {s}.release_parts (key, sealed)
                     SELECT * FROM UNNEST($1::bytea[], $2::bytea[])
                     ON CONFLICT (key) DO UPDATE SET sealed = EXCLUDED.sealed",
                    ),
                    &[&keys, &sealed],
                )
                .map_err(store_error)?;
            Ok(true)
        })
    }

    fn put_screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
        image: &[u8],
        stored_at: datatrust_core::UnixSeconds,
    ) -> Result<bool, StoreError> {
        crate::blocking::off_runtime(|| {
            let key = [member.as_bytes().as_slice(), sha256].concat();
            if self.sealed("screenshots", &key)?.is_some() {
                return Ok(false);
            }
            let mut client = self.client();
            let member_key = self.member_key_or_create(&mut **client, member)?;
            let sealed = seal(&member_key, image, &key)?;
            let inserted = client
                .execute(
                    &self.sql(
                        "INSERT INTO {s}.screenshots (key, sealed, stored_at) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO NOTHING",
                    ),
                    &[&key, &sealed, &stored_at.0],
                )
                .map_err(store_error)?;
            Ok(inserted == 1)
        })
    }

    fn members_with_data(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<PublicKey>, StoreError> {
        crate::blocking::off_runtime(|| {
            let after: &[u8] = after.map_or(&[], |member| member.as_bytes().as_slice());
            self.client()
                .query(
                    &self.sql(
                        "SELECT member FROM {s}.member_keys WHERE member > $1
                         ORDER BY member LIMIT $2",
                    ),
                    &[&after, &(limit.min(10_000) as i64)],
                )
                .map_err(store_error)?
                .into_iter()
                .map(|row| {
                    PublicKey::from_slice(row.get::<_, &[u8]>(0), "member")
                        .map_err(|error| StoreError::data_loss(error.to_string()))
                })
                .collect()
        })
    }

    fn replace_chunk(
        &self,
        member: &PublicKey,
        key: &[u8],
        kept: &[Event],
    ) -> Result<(), StoreError> {
        crate::blocking::off_runtime(|| {
            if !key.starts_with(member.as_bytes()) {
                return Err(StoreError::new("a chunk of another member"));
            }
            let mut client = self.client();
            if kept.is_empty() {
                client
                    .execute(
                        &self.sql("DELETE FROM {s}.event_chunks WHERE key = $1"),
                        &[&key],
                    )
                    .map_err(store_error)?;
                return Ok(());
            }
            let member_key = self.member_key(&mut **client, member)?.ok_or_else(|| {
                StoreError::data_loss("the member's data is stored but their key is missing")
            })?;
            let plaintext = postcard::to_stdvec(kept)
                .map_err(|error| StoreError::new(format!("encoding events: {error}")))?;
            let sealed = seal(&member_key, &plaintext, key)?;
            client
                .execute(
                    &self.sql("UPDATE {s}.event_chunks SET sealed = $2 WHERE key = $1"),
                    &[&key, &sealed],
                )
                .map_err(store_error)?;
            Ok(())
        })
    }

    fn expire_counts(&self, member: &PublicKey, first_kept_day: i64) -> Result<u64, StoreError> {
        crate::blocking::off_runtime(|| {
            self.client()
                .execute(
                    &self.sql("DELETE FROM {s}.event_counts WHERE member = $1 AND day < $2"),
                    &[&member.as_bytes().as_slice(), &first_kept_day],
                )
                .map_err(store_error)
        })
    }

    fn expire_screenshots(
        &self,
        member: &PublicKey,
        stored_before: datatrust_core::UnixSeconds,
        now: datatrust_core::UnixSeconds,
        referenced: &std::collections::BTreeSet<[u8; 32]>,
        dropped: &std::collections::BTreeSet<[u8; 32]>,
    ) -> Result<u64, StoreError> {
        crate::blocking::off_runtime(|| {
            let mut client = self.client();
            let member_bytes = member.as_bytes().as_slice();
            // Images of an older schema, stored without a time: from now.
            client
                .execute(
                    &self.sql(
                        "UPDATE {s}.screenshots SET stored_at = $2
                         WHERE substr(key, 1, 32) = $1 AND stored_at IS NULL",
                    ),
                    &[&member_bytes, &now.0],
                )
                .map_err(store_error)?;
            let keys = |hashes: &std::collections::BTreeSet<[u8; 32]>| -> Vec<Vec<u8>> {
                hashes
                    .iter()
                    .map(|sha256| [member_bytes, sha256].concat())
                    .collect()
            };
            client
                .execute(
                    &self.sql(
                        "DELETE FROM {s}.screenshots
                         WHERE substr(key, 1, 32) = $1
                           AND (stored_at < $2 OR key = ANY($4::bytea[]))
                           AND NOT (key = ANY($3::bytea[]))",
                    ),
                    &[
                        &member_bytes,
                        &stored_before.0,
                        &keys(referenced),
                        &keys(dropped),
                    ],
                )
                .map_err(store_error)
        })
    }

    fn delete_release_part(&self, member: &PublicKey, release_id: &str) -> Result<u64, StoreError> {
        crate::blocking::off_runtime(|| {
            let prefix = [member.as_bytes().as_slice(), release_id.as_bytes()].concat();
            let chunk_length = (prefix.len() + 4) as i32;
            self.client()
                .execute(
                    &self.sql(
                        "DELETE FROM {s}.release_parts
                         WHERE substr(key, 1, $2) = $1 AND length(key) IN ($2, $3)",
                    ),
                    &[&prefix, &(prefix.len() as i32), &chunk_length],
                )
                .map_err(store_error)
        })
    }

    fn screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        crate::blocking::off_runtime(|| {
            let key = [member.as_bytes().as_slice(), sha256].concat();
            let Some(sealed) = self.sealed("screenshots", &key)? else {
                return Ok(None);
            };
            let member_key = self
                .member_key(&mut **self.client(), member)?
                .ok_or_else(|| {
                    StoreError::data_loss("a screenshot is stored but the member's key is missing")
                })?;
            Ok(Some(open(&member_key, &sealed, &key)?))
        })
    }

    fn member_screenshots(
        &self,
        member: &PublicKey,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        crate::blocking::off_runtime(|| {
            let from = match after {
                Some(after) => [member.as_bytes().as_slice(), after].concat(),
                None => member.as_bytes().to_vec(),
            };
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            self.client()
                .query(
                    &self.sql(
                        "SELECT key FROM {s}.screenshots WHERE key > $1 AND substr(key, 1, 32) = $2
                     ORDER BY key LIMIT $3",
                    ),
                    &[&from, &member.as_bytes().as_slice(), &limit],
                )
                .map_err(store_error)?
                .into_iter()
                .map(|row| {
                    let key: Vec<u8> = row.get(0);
                    key.get(32..)
                        .and_then(|hash| <[u8; 32]>::try_from(hash).ok())
                        .ok_or_else(|| StoreError::data_loss("a screenshot key is malformed"))
                })
                .collect()
        })
    }

    fn release_part_chunk(
        &self,
        member: &PublicKey,
        release_id: &str,
        chunk: u32,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        crate::blocking::off_runtime(|| {
            let key = release_chunk_key(member, release_id, chunk);
            let Some(sealed) = self.sealed("release_parts", &key)? else {
                return Ok(None);
            };
            let Some(member_key) = self.member_key(&mut **self.client(), member)? else {
                return Ok(None);
            };
            let plaintext = open(&member_key, &sealed, &key)?;
            datatrust_store::sealing::decode_release_chunk(&plaintext).map(Some)
        })
    }

    fn sealed_rows(
        &self,
        table: SealedTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        crate::blocking::off_runtime(|| {
            let limit = limit.min(100_000) as i64;
            let mut client = self.client();
            if table == SealedTable::Counts {
                // Keyed as sled keys them: member || day (i64 BE) || category.
                let (member, day, category) = match after {
                    Some(after) if after.len() >= 40 => (
                        after[..32].to_vec(),
                        i64::from_be_bytes(after[32..40].try_into().expect("8 bytes")),
                        String::from_utf8_lossy(&after[40..]).into_owned(),
                    ),
                    Some(_) => return Err(StoreError::new("a count's key is too short")),
                    None => (Vec::new(), i64::MIN, String::new()),
                };
                let rows = client
                    .query(
                        &self.sql(
                            "SELECT member, day, category, count FROM {s}.event_counts
                             WHERE (member, day, category) > ($1, $2, $3)
                             ORDER BY member, day, category LIMIT $4",
                        ),
                        &[&member, &day, &category, &limit],
                    )
                    .map_err(store_error)?;
                return Ok(rows
                    .into_iter()
                    .map(|row| {
                        let (member, day, category, count): (Vec<u8>, i64, String, i64) =
                            (row.get(0), row.get(1), row.get(2), row.get(3));
                        let key =
                            [member.as_slice(), &day.to_be_bytes(), category.as_bytes()].concat();
                        (key, (count as u64).to_be_bytes().to_vec())
                    })
                    .collect());
            }
            if table == SealedTable::ScreenshotTimes {
                let after = after.unwrap_or_default();
                let rows = client
                    .query(
                        &self.sql(
                            "SELECT key, stored_at FROM {s}.screenshots
                             WHERE key > $1 AND stored_at IS NOT NULL ORDER BY key LIMIT $2",
                        ),
                        &[&after, &limit],
                    )
                    .map_err(store_error)?;
                return Ok(rows
                    .into_iter()
                    .map(|row| {
                        let stored_at: i64 = row.get(1);
                        (row.get(0), stored_at.to_be_bytes().to_vec())
                    })
                    .collect());
            }
            let (name, key_column, value_column) = sealed_columns(table);
            // No key is empty, so every key comes after the empty one.
            let after = after.unwrap_or_default();
            let rows = client
                .query(
                    &self.sql(&format!(
                        "SELECT {key_column}, {value_column} FROM {{s}}.{name}
                         WHERE {key_column} > $1 ORDER BY {key_column} LIMIT $2"
                    )),
                    &[&after, &limit],
                )
                .map_err(store_error)?;
            Ok(rows
                .into_iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect())
        })
    }

    fn put_sealed_rows(&self, table: SealedTable, rows: &[KeyValue]) -> Result<(), StoreError> {
        crate::blocking::off_runtime(|| {
            let mut client = self.client();
            if table == SealedTable::Counts {
                let (mut members, mut days, mut categories, mut counts) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for (key, value) in rows {
                    if key.len() < 40 || value.len() != 8 {
                        return Err(StoreError::new("a count's key or value is malformed"));
                    }
                    members.push(key[..32].to_vec());
                    days.push(i64::from_be_bytes(key[32..40].try_into().expect("8 bytes")));
                    categories.push(String::from_utf8_lossy(&key[40..]).into_owned());
                    counts.push(u64::from_be_bytes(value[..].try_into().expect("8 bytes")) as i64);
                }
                client
                    .execute(
                        &self.sql(
                            "INSERT INTO {s}.event_counts (member, day, category, count)
                             SELECT * FROM UNNEST($1::bytea[], $2::int8[], $3::text[], $4::int8[])
                             ON CONFLICT (member, day, category) DO UPDATE SET count = EXCLUDED.count",
                        ),
                        &[&members, &days, &categories, &counts],
                    )
                    .map_err(store_error)?;
                return Ok(());
            }
            if table == SealedTable::ScreenshotTimes {
                let mut keys = Vec::new();
                let mut times = Vec::new();
                for (key, value) in rows {
                    let time = <[u8; 8]>::try_from(value.as_slice())
                        .map_err(|_| StoreError::new("a screenshot time is not 8 bytes"))?;
                    keys.push(key.as_slice());
                    times.push(i64::from_be_bytes(time));
                }
                client
                    .execute(
                        &self.sql(
                            "UPDATE {s}.screenshots SET stored_at = times.stored_at
                             FROM UNNEST($1::bytea[], $2::int8[]) AS times(key, stored_at)
                             WHERE {s}.screenshots.key = times.key",
                        ),
                        &[&keys, &times],
                    )
                    .map_err(store_error)?;
                return Ok(());
            }
            let (name, key_column, value_column) = sealed_columns(table);
            let keys: Vec<&[u8]> = rows.iter().map(|(key, _)| key.as_slice()).collect();
            let values: Vec<&[u8]> = rows.iter().map(|(_, value)| value.as_slice()).collect();
            client
                .execute(
                    &self.sql(&format!(
                        "INSERT INTO {{s}}.{name} ({key_column}, {value_column})
                         SELECT * FROM UNNEST($1::bytea[], $2::bytea[])
                         ON CONFLICT DO NOTHING"
                    )),
                    &[&keys, &values],
                )
                .map_err(store_error)?;
            Ok(())
        })
    }
}

/// The table and columns that hold `table`'s rows (all but the counts, which have columns
/// of their own).
fn sealed_columns(table: SealedTable) -> (&'static str, &'static str, &'static str) {
    match table {
        SealedTable::MemberKeys => ("member_keys", "member", "wrapped"),
        SealedTable::Chunks => ("event_chunks", "key", "sealed"),
        SealedTable::ReleaseParts => ("release_parts", "key", "sealed"),
        SealedTable::Screenshots | SealedTable::Counts | SealedTable::ScreenshotTimes => {
            ("screenshots", "key", "sealed")
        }
    }
}
