//! The trust's state tables on PostgreSQL: the core's `TableStore` over the `state` table the
//! log's commits write (`PgLogStore::commit`), so the registry reads what the sequencer
//! committed, with the same versions; telemetry in `PgEvents`.

use std::sync::{Arc, MutexGuard};

use datatrust_core::commit::TableWrite;
use datatrust_core::store::{KeyValue, StoreError};
use datatrust_core::table_store::{TableStore, Tables};

use datatrust_store::sealing::{open_value, seal_value};

use crate::{OpenError, apply_state, check_schema_name, migrate};

/// The trust's state (principals, invitations, authorisations, records) and members'
/// telemetry on PostgreSQL.
pub type PgStore = TableStore<PgTables, crate::PgEvents>;

/// Named tables as rows of `<schema>.state`; clones share the connection. Principals
/// (which hold members' commitment salts) and ballots (how each member voted) are sealed
/// under the data key, as on sled: the database alone does not reveal them.
#[derive(Clone)]
pub struct PgTables {
    pool: Arc<crate::blocking::Pool>,
    schema: Arc<str>,
    data_key: [u8; 32],
}

/// The space a sealed table's values are bound to, as sled binds them; `None` for tables
/// stored as they are.
fn sealed_space(table: &str) -> Option<&'static str> {
    use datatrust_core::store::RecordKind;
    if table == "principals" {
        Some("principals")
    } else if table == RecordKind::Ballot.table() {
        Some(RecordKind::Ballot.name())
    } else {
        None
    }
}

fn store_error(error: postgres::Error) -> StoreError {
    StoreError::new(format!("postgresql: {error}"))
}

impl PgTables {
    /// Connects, creating and migrating `schema` as `PgLogStore::open` does; principals and
    /// ballots are sealed under `data_key`.
    pub fn open(config: &str, schema: &str, data_key: [u8; 32]) -> Result<PgTables, OpenError> {
        check_schema_name(schema)?;
        let pool = crate::blocking::Pool::open(config, crate::blocking::POOL_SIZE)?;
        migrate(&mut pool.get(), schema)?;
        Ok(PgTables {
            pool: Arc::new(pool),
            schema: schema.into(),
            data_key,
        })
    }

    /// The trust's state on these tables, with telemetry (on the same database) sealed
    /// under `data_key`.
    pub fn store(self, events: crate::PgEvents) -> PgStore {
        TableStore::new(self, events)
    }

    fn client(&self) -> MutexGuard<'_, crate::blocking::Connection> {
        self.pool.get()
    }
}

impl Tables for PgTables {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        crate::blocking::off_runtime(|| {
            let sql = format!(
                "SELECT value FROM {}.state WHERE tbl = $1 AND key = $2",
                self.schema
            );
            Ok(self
                .client()
                .query_opt(&sql, &[&table, &key])
                .map_err(store_error)?
                .map(|row| row.get(0)))
        })
    }

    fn scan(
        &self,
        table: &'static str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        crate::blocking::off_runtime(|| {
            // bytea compares bytewise, as the other engines' keys do.
            let sql = format!(
                "SELECT key, value FROM {}.state
             WHERE tbl = $1 AND key >= $2 AND substr(key, 1, length($2)) = $2
               AND ($3::bytea IS NULL OR key > $3)
             ORDER BY key LIMIT $4",
                self.schema
            );
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            Ok(self
                .client()
                .query(&sql, &[&table, &prefix, &after, &limit])
                .map_err(store_error)?
                .into_iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect())
        })
    }

    fn apply(&self, writes: &[TableWrite]) -> Result<(), StoreError> {
        crate::blocking::off_runtime(|| {
            let mut client = self.client();
            let mut transaction = client.transaction().map_err(store_error)?;
            apply_state(
                &mut transaction,
                &self.schema,
                writes
                    .iter()
                    .map(|write| (write.table, write.key.as_slice(), write.value.as_deref())),
            )
            .map_err(store_error)?;
            transaction.commit().map_err(store_error)
        })
    }

    fn insert_new(
        &self,
        table: &'static str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        crate::blocking::off_runtime(|| {
            let mut client = self.client();
            let inserted = client
                .execute(
                    &format!(
                        "INSERT INTO {}.state (tbl, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (tbl, key) DO NOTHING",
                        self.schema
                    ),
                    &[&table, &key, &value],
                )
                .map_err(store_error)?;
            if inserted == 1 {
                return Ok(None);
            }
            let sql = format!(
                "SELECT value FROM {}.state WHERE tbl = $1 AND key = $2",
                self.schema
            );
            Ok(client
                .query_opt(&sql, &[&table, &key])
                .map_err(store_error)?
                .map(|row| row.get(0)))
        })
    }

    fn seal(
        &self,
        table: &'static str,
        key: &[u8],
        plaintext: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        match sealed_space(table) {
            Some(space) => seal_value(&self.data_key, space, key, &plaintext),
            None => Ok(plaintext),
        }
    }

    fn open(&self, table: &'static str, key: &[u8], stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        match sealed_space(table) {
            Some(space) => open_value(&self.data_key, space, key, stored),
            None => Ok(stored.to_vec()),
        }
    }
}
