//! The trust on PostgreSQL (the first part of issue 14): the log's storage
//! (`datatrust_tlog::LogStore`) with the commit path's state tables in the same database, so a
//! batch's tiles, bundles, leaf index, signed checkpoint and state writes commit in one
//! transaction. The schema is versioned (`schema_version`) and migrated when a store
//! opens; a schema newer than this binary is refused. The checkpoint row is a
//! compare-and-swap on the tree size: a writer whose idea of the log's size is stale (a
//! second node that believes it leads) has its batch refused instead of forking the log.
//!
//! ```text
//! <schema>.schema_version (version)            the migrations applied
//! <schema>.log_checkpoint (size, note)         one row: the latest signed checkpoint
//! <schema>.log_tiles (level, idx, bytes)       tile hashes (right-edge tiles shorter)
//! <schema>.log_bundles (idx, bytes)            entry bundles
//! <schema>.log_leaves (hash, idx)              leaf hash → index, for proofs by hash
//! <schema>.state (tbl, key, value)             the commit path's state tables
//! <schema>.sessions, used_challenges, secrets  sign-ins every node honours (`shared.rs`)
//! <schema>.release_builds                      releases being built, by any node
//! <schema>.leases                              which node runs the periodic duties
//! ```
//!
//! and members' telemetry, sealed (`events.rs`).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use datatrust_tlog::{Hash, LogBatch, LogStore, LogStoreError};

mod blocking;
mod events;
mod shared;
mod tables;
pub use events::PgEvents;
pub use shared::{Build, PgShared, StoredSession};
pub use tables::{PgStore, PgTables};

/// The schema version this binary writes and reads.
pub const SCHEMA_VERSION: i32 = 4;

/// Each migration, in order: migration `n` takes the schema from version `n - 1` to `n`.
/// `{s}` is the schema's name.
const MIGRATIONS: [&str; 4] = [
    "
    CREATE TABLE {s}.log_checkpoint (
        id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
        size BIGINT NOT NULL,
        note TEXT NOT NULL
    );
    CREATE TABLE {s}.log_tiles (
        level SMALLINT NOT NULL,
        idx BIGINT NOT NULL,
        bytes BYTEA NOT NULL,
        PRIMARY KEY (level, idx)
    );
    CREATE TABLE {s}.log_bundles (idx BIGINT PRIMARY KEY, bytes BYTEA NOT NULL);
    CREATE TABLE {s}.log_leaves (hash BYTEA PRIMARY KEY, idx BIGINT NOT NULL);
    CREATE TABLE {s}.state (
        tbl TEXT NOT NULL,
        key BYTEA NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (tbl, key)
    );
",
    "
    CREATE TABLE {s}.member_keys (member BYTEA PRIMARY KEY, wrapped BYTEA NOT NULL);
    CREATE TABLE {s}.event_chunks (key BYTEA PRIMARY KEY, sealed BYTEA NOT NULL);
    CREATE TABLE {s}.event_counts (
        member BYTEA NOT NULL,
        day BIGINT NOT NULL,
        category TEXT NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (member, day, category)
    );
    CREATE TABLE {s}.release_parts (key BYTEA PRIMARY KEY, sealed BYTEA NOT NULL);
    CREATE TABLE {s}.screenshots (key BYTEA PRIMARY KEY, sealed BYTEA NOT NULL);
    -- Ciphertext does not compress: store it as it is.
    ALTER TABLE {s}.event_chunks ALTER COLUMN sealed SET STORAGE EXTERNAL;
    ALTER TABLE {s}.release_parts ALTER COLUMN sealed SET STORAGE EXTERNAL;
    ALTER TABLE {s}.screenshots ALTER COLUMN sealed SET STORAGE EXTERNAL;
",
    "
    CREATE TABLE {s}.secrets (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
    CREATE TABLE {s}.used_challenges (challenge BYTEA PRIMARY KEY, expires BIGINT NOT NULL);
    CREATE INDEX ON {s}.used_challenges (expires);
    CREATE TABLE {s}.sessions (
        token_hash BYTEA PRIMARY KEY,
        public_key BYTEA NOT NULL,
        role TEXT NOT NULL,
        expires BIGINT NOT NULL,
        started BIGSERIAL
    );
    CREATE INDEX ON {s}.sessions (public_key, started);
    CREATE INDEX ON {s}.sessions (expires);
    CREATE TABLE {s}.release_builds (
        id TEXT PRIMARY KEY,
        licensee BYTEA NOT NULL,
        license_id TEXT NOT NULL,
        done BIGINT NOT NULL DEFAULT 0,
        total BIGINT NOT NULL DEFAULT 0,
        failure TEXT,
        heartbeat TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE {s}.leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires TIMESTAMPTZ NOT NULL
    );
",
    "
    -- When each screenshot was stored (Unix seconds), which retention counts from; NULL for
    -- images stored before: the next retention sweep gives them its own time.
    ALTER TABLE {s}.screenshots ADD COLUMN stored_at BIGINT;
",
];

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("database: {0}")]
    Database(#[from] postgres::Error),
    #[error(
        "the database schema is version {found}, newer than this binary's {supported}: run the datatrust release that wrote it, or a newer one"
    )]
    SchemaTooNew { found: i32, supported: i32 },
    #[error(
        "schema name {0:?}: use lowercase letters, digits and underscores, starting with a letter"
    )]
    SchemaName(String),
}

/// The log's storage on PostgreSQL: a few connections, one for the writer (the sequencer)
/// at a time, the others for readers. Several nodes may open it on one database: their
/// batches are serialised by `commit_with`'s lock on the log's head.
pub struct PgLogStore {
    pool: crate::blocking::Pool,
    schema: String,
    /// The tree size this store last read or committed: the expected value of the
    /// checkpoint row's compare-and-swap.
    size: Mutex<Option<i64>>,
    /// The latest checkpoint this node committed or served, kept outside the database (a
    /// file in the node's data directory): a database restored from an older copy is then
    /// refused at start instead of signed on.
    published: Option<datatrust_store::PublishedCheckpointFile>,
}

impl std::fmt::Debug for PgLogStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PgLogStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn log_error(error: impl std::fmt::Display) -> LogStoreError {
    LogStoreError(format!("postgresql: {error}"))
}

fn as_index(value: u64) -> Result<i64, LogStoreError> {
    i64::try_from(value).map_err(|_| LogStoreError(format!("{value} does not fit a BIGINT")))
}

impl PgLogStore {
    /// Connects (`config`: a libpq connection string or URL), creates `schema` if it does
    /// not exist and migrates it to `SCHEMA_VERSION`, refusing a newer one.
    pub fn open(config: &str, schema: &str) -> Result<PgLogStore, OpenError> {
        check_schema_name(schema)?;
        let pool = crate::blocking::Pool::open(config, crate::blocking::POOL_SIZE)?;
        migrate(&mut pool.get(), schema)?;
        Ok(PgLogStore {
            pool,
            schema: schema.to_owned(),
            size: Mutex::new(None),
            published: None,
        })
    }

    /// Keeps the checkpoints this node commits or serves in `path` too (see `published`).
    pub fn with_published_file(
        mut self,
        path: &std::path::Path,
    ) -> Result<PgLogStore, datatrust_store::PublishedCheckpointError> {
        self.published = Some(datatrust_store::PublishedCheckpointFile::open(path)?);
        Ok(self)
    }

    fn record(&self, size: u64, note: &str) -> Result<(), LogStoreError> {
        match &self.published {
            Some(file) => file
                .record(size, note)
                .map_err(|error| LogStoreError(error.to_string())),
            None => Ok(()),
        }
    }

    fn client(&self) -> MutexGuard<'_, crate::blocking::Connection> {
        self.pool.get()
    }

    /// True while the log holds no entry (a new trust, before its creation is logged).
    pub fn is_empty(&self) -> Result<bool, LogStoreError> {
        crate::blocking::off_runtime(|| {
            let sql = format!("SELECT size FROM {}.log_checkpoint", self.schema);
            let row = self.client().query_opt(&sql, &[]).map_err(log_error)?;
            Ok(row.is_none_or(|row| row.get::<_, i64>(0) == 0))
        })
    }

    fn query_bytes(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<Vec<u8>>, LogStoreError> {
        let sql = sql.replace("{s}", &self.schema);
        let row = self.client().query_opt(&sql, params).map_err(log_error)?;
        Ok(row.map(|row| row.get(0)))
    }
}

/// A schema name is spliced into SQL: lowercase letters, digits and underscores only.
pub(crate) fn check_schema_name(schema: &str) -> Result<(), OpenError> {
    let valid = schema.starts_with(|first: char| first.is_ascii_lowercase())
        && schema.chars().all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_'
        });
    if !valid || schema.len() > 48 {
        return Err(OpenError::SchemaName(schema.to_owned()));
    }
    Ok(())
}

/// Brings `schema` to `SCHEMA_VERSION` under a lock, so that nodes starting together migrate
/// once.
pub(crate) fn migrate(client: &mut postgres::Client, schema: &str) -> Result<(), OpenError> {
    let mut transaction = client.transaction()?;
    transaction.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock(hashtext('datatrust schema {schema}'));
         CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_version (version INTEGER NOT NULL);"
    ))?;
    let found: Option<i32> = transaction
        .query_one(
            &format!("SELECT max(version) FROM {schema}.schema_version"),
            &[],
        )?
        .get(0);
    let found = found.unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (number, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        transaction.batch_execute(&migration.replace("{s}", schema))?;
        transaction.execute(
            &format!("INSERT INTO {schema}.schema_version (version) VALUES ($1)"),
            &[&(number as i32 + 1)],
        )?;
    }
    transaction.commit()?;
    Ok(())
}

/// Applies state writes in one transaction, a later write to a key winning: upserts and
/// deletes each as one statement over arrays.
pub(crate) fn apply_state<'a>(
    transaction: &mut postgres::Transaction<'_>,
    s: &str,
    writes: impl Iterator<Item = (&'a str, &'a [u8], Option<&'a [u8]>)>,
) -> Result<(), postgres::Error> {
    let mut state: BTreeMap<(&str, &[u8]), Option<&[u8]>> = BTreeMap::new();
    for (table, key, value) in writes {
        state.insert((table, key), value);
    }
    let (mut put_tables, mut put_keys, mut put_values) = (Vec::new(), Vec::new(), Vec::new());
    let (mut gone_tables, mut gone_keys) = (Vec::new(), Vec::new());
    for ((table, key), value) in state {
        match value {
            Some(value) => {
                put_tables.push(table);
                put_keys.push(key);
                put_values.push(value);
            }
            None => {
                gone_tables.push(table);
                gone_keys.push(key);
            }
        }
    }
    if !put_tables.is_empty() {
        transaction.execute(
            &format!(
                "INSERT INTO {s}.state (tbl, key, value)
                 SELECT * FROM UNNEST($1::text[], $2::bytea[], $3::bytea[])
                 ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value"
            ),
            &[&put_tables, &put_keys, &put_values],
        )?;
    }
    if !gone_tables.is_empty() {
        transaction.execute(
            &format!(
                "DELETE FROM {s}.state WHERE (tbl, key) IN
                 (SELECT * FROM UNNEST($1::text[], $2::bytea[]))"
            ),
            &[&gone_tables, &gone_keys],
        )?;
    }
    Ok(())
}

/// Writes a batch's tiles, bundles, leaf index, state and checkpoint in `transaction`.
fn write_batch(
    transaction: &mut postgres::Transaction<'_>,
    s: &str,
    batch: &LogBatch,
) -> Result<(), LogStoreError> {
    let mut levels = Vec::with_capacity(batch.tiles.len());
    let mut indices = Vec::with_capacity(batch.tiles.len());
    let mut bytes = Vec::with_capacity(batch.tiles.len());
    for ((level, index), tile) in &batch.tiles {
        levels.push(i16::from(*level));
        indices.push(as_index(*index)?);
        bytes.push(tile.as_slice());
    }
    transaction
        .execute(
            &format!(
                "INSERT INTO {s}.log_tiles (level, idx, bytes)
                 SELECT * FROM UNNEST($1::int2[], $2::int8[], $3::bytea[])
                 ON CONFLICT (level, idx) DO UPDATE SET bytes = EXCLUDED.bytes"
            ),
            &[&levels, &indices, &bytes],
        )
        .map_err(log_error)?;
    let bundle_indices = batch
        .bundles
        .iter()
        .map(|(index, _)| as_index(*index))
        .collect::<Result<Vec<i64>, _>>()?;
    let bundle_bytes: Vec<&[u8]> = batch
        .bundles
        .iter()
        .map(|(_, bytes)| bytes.as_slice())
        .collect();
    transaction
        .execute(
            &format!(
                "INSERT INTO {s}.log_bundles (idx, bytes)
                 SELECT * FROM UNNEST($1::int8[], $2::bytea[])
                 ON CONFLICT (idx) DO UPDATE SET bytes = EXCLUDED.bytes"
            ),
            &[&bundle_indices, &bundle_bytes],
        )
        .map_err(log_error)?;
    let leaf_hashes: Vec<&[u8]> = batch
        .leaf_indices
        .iter()
        .map(|(leaf, _)| leaf.as_slice())
        .collect();
    let leaf_indices = batch
        .leaf_indices
        .iter()
        .map(|(_, index)| as_index(*index))
        .collect::<Result<Vec<i64>, _>>()?;
    transaction
        .execute(
            &format!(
                "INSERT INTO {s}.log_leaves (hash, idx)
                 SELECT * FROM UNNEST($1::bytea[], $2::int8[])
                 ON CONFLICT (hash) DO NOTHING"
            ),
            &[&leaf_hashes, &leaf_indices],
        )
        .map_err(log_error)?;
    apply_state(
        transaction,
        s,
        batch
            .state
            .iter()
            .map(|write| (write.table, write.key.as_slice(), write.value.as_deref())),
    )
    .map_err(log_error)?;
    transaction
        .execute(
            &format!(
                "INSERT INTO {s}.log_checkpoint (id, size, note) VALUES (TRUE, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET size = EXCLUDED.size, note = EXCLUDED.note"
            ),
            &[&as_index(batch.size)?, &batch.checkpoint],
        )
        .map_err(log_error)?;
    Ok(())
}

/// The log as a batch's transaction sees it, under the head lock.
struct PgView<'t, 'c> {
    transaction: std::cell::RefCell<&'t mut postgres::Transaction<'c>>,
    schema: &'t str,
}

impl PgView<'_, '_> {
    fn bytes(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<Vec<u8>>, LogStoreError> {
        let sql = sql.replace("{s}", self.schema);
        let row = self
            .transaction
            .borrow_mut()
            .query_opt(&sql, params)
            .map_err(log_error)?;
        Ok(row.map(|row| row.get(0)))
    }
}

impl datatrust_tlog::LogView for PgView<'_, '_> {
    fn checkpoint(&self) -> Result<Option<String>, LogStoreError> {
        let sql = format!("SELECT note FROM {}.log_checkpoint", self.schema);
        let row = self
            .transaction
            .borrow_mut()
            .query_opt(&sql, &[])
            .map_err(log_error)?;
        Ok(row.map(|row| row.get(0)))
    }
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, LogStoreError> {
        self.bytes(
            "SELECT bytes FROM {s}.log_tiles WHERE level = $1 AND idx = $2",
            &[&i16::from(level), &as_index(index)?],
        )
    }
    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, LogStoreError> {
        self.bytes(
            "SELECT bytes FROM {s}.log_bundles WHERE idx = $1",
            &[&as_index(index)?],
        )
    }
    fn states(&self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, LogStoreError> {
        read_states(&mut **self.transaction.borrow_mut(), self.schema, keys)
    }
}

/// The stored values under many keys, in the order asked, in one query.
fn read_states(
    client: &mut impl postgres::GenericClient,
    s: &str,
    keys: &[(&str, &[u8])],
) -> Result<Vec<Option<Vec<u8>>>, LogStoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let tables: Vec<&str> = keys.iter().map(|(table, _)| *table).collect();
    let names: Vec<&[u8]> = keys.iter().map(|(_, key)| *key).collect();
    let rows = client
        .query(
            &format!(
                "SELECT tbl, key, value FROM {s}.state WHERE (tbl, key) IN
                 (SELECT * FROM UNNEST($1::text[], $2::bytea[]))"
            ),
            &[&tables, &names],
        )
        .map_err(log_error)?;
    let found: std::collections::HashMap<(String, Vec<u8>), Vec<u8>> = rows
        .into_iter()
        .map(|row| ((row.get(0), row.get(1)), row.get(2)))
        .collect();
    Ok(keys
        .iter()
        .map(|(table, key)| found.get(&((*table).to_owned(), key.to_vec())).cloned())
        .collect())
}

impl LogStore for PgLogStore {
    fn checkpoint(&self) -> Result<Option<String>, LogStoreError> {
        crate::blocking::off_runtime(|| {
            let sql = format!("SELECT size, note FROM {}.log_checkpoint", self.schema);
            let row = self.client().query_opt(&sql, &[]).map_err(log_error)?;
            let Some(row) = row else {
                return Ok(None);
            };
            *self.size.lock().unwrap_or_else(PoisonError::into_inner) = Some(row.get(0));
            Ok(Some(row.get(1)))
        })
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, LogStoreError> {
        crate::blocking::off_runtime(|| {
            self.query_bytes(
                "SELECT bytes FROM {s}.log_tiles WHERE level = $1 AND idx = $2",
                &[&i16::from(level), &as_index(index)?],
            )
        })
    }

    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, LogStoreError> {
        crate::blocking::off_runtime(|| {
            self.query_bytes(
                "SELECT bytes FROM {s}.log_bundles WHERE idx = $1",
                &[&as_index(index)?],
            )
        })
    }

    fn leaf_index(&self, leaf: &Hash) -> Result<Option<u64>, LogStoreError> {
        crate::blocking::off_runtime(|| {
            let sql = format!("SELECT idx FROM {}.log_leaves WHERE hash = $1", self.schema);
            let row = self
                .client()
                .query_opt(&sql, &[&leaf.as_slice()])
                .map_err(log_error)?;
            Ok(row.map(|row| row.get::<_, i64>(0) as u64))
        })
    }

    fn commit(&self, batch: LogBatch) -> Result<(), LogStoreError> {
        crate::blocking::off_runtime(|| {
            let s = &self.schema;
            let mut expected = self.size.lock().unwrap_or_else(PoisonError::into_inner);
            let mut client = self.client();
            let mut transaction = client.transaction().map_err(log_error)?;
            // The compare-and-swap: the tree this batch extends must still be the stored one.
            let stored: Option<i64> = transaction
                .query_opt(
                    &format!("SELECT size FROM {s}.log_checkpoint FOR UPDATE"),
                    &[],
                )
                .map_err(log_error)?
                .map(|row| row.get(0));
            if stored != *expected {
                return Err(LogStoreError(format!(
                    "the stored log has size {stored:?}, not the {:?} this writer extends: another writer committed; refusing to fork the log",
                    *expected
                )));
            }
            write_batch(&mut transaction, s, &batch)?;
            // Durable when this returns: PostgreSQL's commit waits for its WAL flush (with
            // synchronous replication configured, for the standby's too).
            transaction.commit().map_err(log_error)?;
            *expected = Some(as_index(batch.size)?);
            self.record(batch.size, &batch.checkpoint)
        })
    }

    /// The log's head lock is a transaction-scoped advisory lock: held from the batch's
    /// reads (checkpoint, right edge, preconditions, all in this transaction) to its
    /// commit, released by the commit or by the connection's end (a node killed mid-batch
    /// holds nothing). Only one node builds a batch at a time, on the tree the last one left.
    fn commit_with(&self, build: &mut datatrust_tlog::BuildBatch<'_>) -> Result<(), LogStoreError> {
        crate::blocking::off_runtime(|| {
            let s = &self.schema;
            let mut client = self.client();
            let mut transaction = client.transaction().map_err(log_error)?;
            transaction
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))",
                    &[&format!("datatrust log head {s}")],
                )
                .map_err(log_error)?;
            let batch = {
                let view = PgView {
                    transaction: std::cell::RefCell::new(&mut transaction),
                    schema: s,
                };
                build(&view)?
            };
            let Some(batch) = batch else {
                return Ok(());
            };
            write_batch(&mut transaction, s, &batch)?;
            transaction.commit().map_err(log_error)?;
            *self.size.lock().unwrap_or_else(PoisonError::into_inner) = Some(as_index(batch.size)?);
            // Only after the database holds the tree it signs: the file may lag the
            // database, never lead it.
            self.record(batch.size, &batch.checkpoint)
        })
    }

    fn state(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, LogStoreError> {
        crate::blocking::off_runtime(|| {
            self.query_bytes(
                "SELECT value FROM {s}.state WHERE tbl = $1 AND key = $2",
                &[&table, &key],
            )
        })
    }

    fn states(&self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, LogStoreError> {
        crate::blocking::off_runtime(|| read_states(&mut **self.client(), &self.schema, keys))
    }

    fn published_checkpoint(&self) -> Result<Option<String>, LogStoreError> {
        match &self.published {
            Some(file) => file
                .latest()
                .map_err(|error| LogStoreError(error.to_string())),
            None => Ok(None),
        }
    }

    fn record_published(&self, size: u64, note: &str) -> Result<(), LogStoreError> {
        self.record(size, note)
    }
}
