//! The commit path's contract (`datatrust_tlog::contract`) on a real PostgreSQL, each test in
//! a schema of its own; and what only a shared database needs: several writers (nodes) on
//! one log catch up with each other instead of forking it, and a schema newer than the
//! binary is refused.
//!
//! The database comes from `DATATRUST_TEST_POSTGRES` (a libpq connection string; `.ci/run`
//! starts a throwaway cluster with `.ci/postgres.sh`). Without it these tests say SKIPPED;
//! with `DATATRUST_REQUIRE_POSTGRES=1` (CI) they fail instead.

use std::sync::Arc;

use datatrust_core::NoteSigner;
use datatrust_postgres::{OpenError, PgEvents, PgLogStore, PgTables, SCHEMA_VERSION};
use datatrust_tlog::{LogStore, Sequencer, SequencerOptions, contract};

/// The test database, or `None` after saying SKIPPED.
fn database(test: &str) -> Option<String> {
    match std::env::var("DATATRUST_TEST_POSTGRES") {
        Ok(config) => Some(config),
        Err(_) if std::env::var("DATATRUST_REQUIRE_POSTGRES").is_ok_and(|value| value == "1") => {
            panic!("{test}: DATATRUST_TEST_POSTGRES is not set, and DATATRUST_REQUIRE_POSTGRES=1")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED {test}: no PostgreSQL (set DATATRUST_TEST_POSTGRES; `eval \"$(bash .ci/postgres.sh)\"` starts one)"
            );
            None
        }
    }
}

fn fresh_schema() -> String {
    format!("test_{:016x}", rand::random::<u64>())
}

/// The trust's state and telemetry on `schema`.
fn pg_store(config: &str, schema: &str) -> datatrust_postgres::PgStore {
    let events = PgEvents::open(config, schema, [9; 32]).unwrap();
    PgTables::open(config, schema).unwrap().store(events)
}

fn store(config: &str, schema: &str) -> Arc<dyn LogStore> {
    Arc::new(PgLogStore::open(config, schema).unwrap())
}

#[test]
fn a_change_commits_its_entries_and_writes_together() {
    let Some(config) = database("a_change_commits_its_entries_and_writes_together") else {
        return;
    };
    contract::a_change_commits_its_entries_and_writes_together(store(&config, &fresh_schema()));
}

#[test]
fn of_two_conflicting_changes_exactly_one_is_taken() {
    let Some(config) = database("of_two_conflicting_changes_exactly_one_is_taken") else {
        return;
    };
    contract::of_two_conflicting_changes_exactly_one_is_taken(store(&config, &fresh_schema()));
}

#[test]
fn concurrent_read_modify_write_loses_no_update() {
    let Some(config) = database("concurrent_read_modify_write_loses_no_update") else {
        return;
    };
    contract::concurrent_read_modify_write_loses_no_update(store(&config, &fresh_schema()));
}

#[test]
fn acknowledged_changes_survive_reopening() {
    let Some(config) = database("acknowledged_changes_survive_reopening") else {
        return;
    };
    let schema = fresh_schema();
    contract::acknowledged_changes_survive_reopening(move || store(&config, &schema));
}

#[test]
fn a_batch_that_fails_fails_as_a_whole() {
    let Some(config) = database("a_batch_that_fails_fails_as_a_whole") else {
        return;
    };
    let schema = fresh_schema();
    let log = store(&config, &schema);
    // A constraint no new tile satisfies makes the database refuse the whole transaction.
    let admin = std::sync::Mutex::new(postgres::Client::connect(&config, postgres::NoTls).unwrap());
    contract::a_batch_that_fails_fails_as_a_whole(log, move |fail| {
        let sql = if fail {
            format!("ALTER TABLE {schema}.log_tiles ADD CONSTRAINT refuse CHECK (false) NOT VALID")
        } else {
            format!("ALTER TABLE {schema}.log_tiles DROP CONSTRAINT refuse")
        };
        admin.lock().unwrap().batch_execute(&sql).unwrap();
    });
}

/// Three nodes on one database, each with its own connections and sequencer: their batches
/// are serialised by the head lock, each built on the tree the last one left, so no update
/// is lost and no two checkpoints of the same size differ.
#[test]
fn several_nodes_extend_one_log() {
    let Some(config) = database("several_nodes_extend_one_log") else {
        return;
    };
    let schema = fresh_schema();
    contract::several_writers_extend_one_log(|| store(&config, &schema));
}

#[test]
fn a_schema_newer_than_the_binary_is_refused() {
    let Some(config) = database("a_schema_newer_than_the_binary_is_refused") else {
        return;
    };
    let schema = fresh_schema();
    drop(PgLogStore::open(&config, &schema).unwrap());
    let mut admin = postgres::Client::connect(&config, postgres::NoTls).unwrap();
    admin
        .execute(
            &format!("INSERT INTO {schema}.schema_version (version) VALUES ($1)"),
            &[&(SCHEMA_VERSION + 1)],
        )
        .unwrap();
    match PgLogStore::open(&config, &schema) {
        Err(OpenError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected the newer schema refused, got {other:?}"),
    }
    // Opening again migrates nothing twice.
    let other = fresh_schema();
    drop(PgLogStore::open(&config, &other).unwrap());
    drop(PgLogStore::open(&config, &other).unwrap());
    let versions: i64 = admin
        .query_one(&format!("SELECT count(*) FROM {other}.schema_version"), &[])
        .unwrap()
        .get(0);
    assert_eq!(versions, i64::from(SCHEMA_VERSION));
}

/// The store contract every backend passes (principals, invitations, authorisations,
/// versions, eight concurrent redemptions through the registry, records).
#[test]
fn the_store_contract_holds_on_postgresql() {
    let Some(config) = database("the_store_contract_holds_on_postgresql") else {
        return;
    };
    datatrust_core::store_contract::run_all(|| pg_store(&config, &fresh_schema()));
    datatrust_core::store_contract::records_contract(&pg_store(&config, &fresh_schema()));
    datatrust_core::store_contract::events_contract(&pg_store(&config, &fresh_schema()));
}

/// What the log's sequencer commits is what the store reads, with the same version: the
/// commit path on one database.
#[test]
fn the_store_reads_what_the_log_commits() {
    use datatrust_core::commit::StateTables as _;
    let Some(config) = database("the_store_reads_what_the_log_commits") else {
        return;
    };
    let schema = fresh_schema();
    let sequencer = Sequencer::open(
        store(&config, &schema),
        NoteSigner::new("pg.test", [6; 32]).unwrap(),
        SequencerOptions::default(),
    )
    .unwrap();
    let change = datatrust_tlog::Change {
        entries: vec![b"entry".to_vec()],
        reads: Vec::new(),
        writes: Box::new(|first_index| {
            Ok(vec![datatrust_tlog::StateWrite {
                table: "records_guards",
                key: b"proposals".to_vec(),
                value: Some(first_index.to_string().into_bytes()),
            }])
        }),
    };
    let committed = sequencer.commit_blocking(change).unwrap();
    let tables = pg_store(&config, &schema);
    let (value, read) = tables
        .read_record(datatrust_core::store::RecordKind::Guard, b"proposals")
        .unwrap();
    assert_eq!(value, Some(committed.first_index.to_string().into_bytes()));
    assert_eq!(read.version, datatrust_tlog::version_of(value.as_deref()));
    sequencer.shutdown();
}
