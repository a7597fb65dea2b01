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
    PgTables::open(config, schema, [9; 32])
        .unwrap()
        .store(events)
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
    datatrust_core::store_contract::retention_contract(&pg_store(&config, &fresh_schema()));
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

fn shared(config: &str, schema: &str) -> datatrust_postgres::PgShared {
    datatrust_postgres::PgShared::open(config, schema).unwrap()
}

fn key(seed: u8) -> datatrust_core::PublicKey {
    NoteSigner::new("k", [seed; 32]).unwrap().public_key()
}

/// The duties lease: one holder at a time; another takes over once it lapses or is given up.
#[test]
fn one_node_holds_the_duties_lease_and_another_takes_over() {
    let Some(config) = database("one_node_holds_the_duties_lease_and_another_takes_over") else {
        return;
    };
    let schema = fresh_schema();
    let (first, second) = (shared(&config, &schema), shared(&config, &schema));
    assert!(first.lease("duties", "a", 60.0).unwrap());
    assert!(!second.lease("duties", "b", 60.0).unwrap(), "held by a");
    assert!(first.lease("duties", "a", 60.0).unwrap(), "a renews");
    first.release_lease("duties", "a").unwrap();
    assert!(
        second.lease("duties", "b", 60.0).unwrap(),
        "given up: b takes it"
    );
    // b stops renewing: a lease that has lapsed (here at once) is taken by a.
    assert!(second.lease("duties", "b", 0.0).unwrap());
    assert!(
        first.lease("duties", "a", 60.0).unwrap(),
        "lapsed: a takes it"
    );
    assert!(!second.lease("duties", "b", 60.0).unwrap());
}

/// Sign-ins across nodes: the challenge secret is the same for all, a challenge is spent
/// once on all of them, a key keeps its newest sessions only, and expired sessions end.
#[test]
fn sign_ins_are_shared_by_every_node() {
    let Some(config) = database("sign_ins_are_shared_by_every_node") else {
        return;
    };
    let schema = fresh_schema();
    let (first, second) = (shared(&config, &schema), shared(&config, &schema));
    let secret = first.secret("challenge", [1; 32]).unwrap();
    assert_eq!(second.secret("challenge", [2; 32]).unwrap(), secret);
    assert!(first.use_challenge(b"challenge-1", 100, 10).unwrap());
    assert!(
        !second.use_challenge(b"challenge-1", 100, 10).unwrap(),
        "spent"
    );
    let session = |expires| datatrust_postgres::StoredSession {
        public_key: key(1),
        role: datatrust_core::Role::Member,
        expires,
    };
    for token in 0..20u8 {
        first
            .start_session(&[token; 32], session(1_000), 16, 10)
            .unwrap();
    }
    assert_eq!(
        second.session(&[0; 32], 10).unwrap(),
        None,
        "the oldest ended"
    );
    assert_eq!(second.session(&[3; 32], 10).unwrap(), None);
    assert_eq!(second.session(&[4; 32], 10).unwrap(), Some(session(1_000)));
    assert_eq!(second.session(&[19; 32], 10).unwrap(), Some(session(1_000)));
    assert_eq!(second.session(&[19; 32], 1_000).unwrap(), None, "expired");
}

/// A release build is seen from every node; one whose node stopped (no heartbeat for 30 s)
/// is reported as failed instead of building for ever.
#[test]
fn release_builds_are_seen_by_every_node_and_abandoned_ones_fail() {
    let Some(config) = database("release_builds_are_seen_by_every_node_and_abandoned_ones_fail")
    else {
        return;
    };
    let schema = fresh_schema();
    let (first, second) = (shared(&config, &schema), shared(&config, &schema));
    first.start_build("r1", &key(2), "lic-1").unwrap();
    first.build_progress("r1", 3, 10).unwrap();
    let seen = second.build("r1").unwrap().unwrap();
    assert_eq!((seen.done, seen.total, seen.failure), (3, 10, None));
    first.end_build("r1", Some("9:refused")).unwrap();
    assert_eq!(
        second.build("r1").unwrap().unwrap().failure.as_deref(),
        Some("9:refused")
    );
    first.end_build("r1", None).unwrap();
    assert_eq!(second.build("r1").unwrap(), None);
    // The building node dies: its heartbeat stops (moved back here, as 31 s passing would).
    first.start_build("r2", &key(2), "lic-1").unwrap();
    let mut client = postgres::Client::connect(&config, postgres::NoTls).unwrap();
    client
        .execute(
            &format!(
                "UPDATE {schema}.release_builds SET heartbeat = now() - interval '31 seconds'"
            ),
            &[],
        )
        .unwrap();
    let abandoned = second.build("r2").unwrap().unwrap();
    assert!(
        abandoned
            .failure
            .is_some_and(|failure| failure.contains("stopped")),
        "an abandoned build fails"
    );
}

/// Principals (their commitment salts) and ballots are sealed in the database, as on sled:
/// reading the `state` table shows neither a display name nor how anyone voted; the store
/// reads both back.
#[test]
fn principals_and_ballots_are_sealed_at_rest() {
    use datatrust_core::store::{RecordKind, RecordStore as _, TrustStore as _};
    let Some(config) = database("principals_and_ballots_are_sealed_at_rest") else {
        return;
    };
    let schema = fresh_schema();
    let store = pg_store(&config, &schema);
    let principal = datatrust_core::Principal::new_active(
        key(7),
        datatrust_core::Role::Member,
        datatrust_core::DisplayName::parse("Ada Lovelace", "display_name").unwrap(),
        datatrust_core::UnixSeconds(1_000),
        [3; 32],
    );
    store.insert_principal(&principal).unwrap();
    let ballot = br#"{"approve":true,"secret":"how-ada-voted"}"#.to_vec();
    store
        .write_records(vec![(
            RecordKind::Ballot,
            b"ballot-1".to_vec(),
            Some(ballot.clone()),
        )])
        .unwrap();
    assert_eq!(store.principal(&key(7)).unwrap(), Some(principal));
    assert_eq!(
        store.get_record(RecordKind::Ballot, b"ballot-1").unwrap(),
        Some(ballot)
    );
    let mut client = postgres::Client::connect(&config, postgres::NoTls).unwrap();
    for row in client
        .query(&format!("SELECT tbl, value FROM {schema}.state"), &[])
        .unwrap()
    {
        let (table, value): (String, Vec<u8>) = (row.get(0), row.get(1));
        let text = String::from_utf8_lossy(&value);
        assert!(
            !text.contains("Ada Lovelace") && !text.contains("how-ada-voted"),
            "{table} holds plaintext: {text}"
        );
    }
}

/// `admin migrate` copies when each screenshot was stored (retention counts from it), both
/// ways, as it copies everything sealed: a table at a time.
#[test]
fn screenshot_times_are_copied_both_ways() {
    use datatrust_core::store::{EventStore, SealedTable};
    let Some(config) = database("screenshot_times_are_copied_both_ways") else {
        return;
    };
    fn copy(from: &impl EventStore, to: &impl EventStore) {
        for table in [SealedTable::Screenshots, SealedTable::ScreenshotTimes] {
            to.put_sealed_rows(table, &from.sealed_rows(table, None, 100).unwrap())
                .unwrap();
        }
    }
    let member = key(7);
    let sled = datatrust_store::SledStore::temporary().unwrap();
    sled.put_screenshot(
        &member,
        &[1; 32],
        b"image",
        datatrust_core::UnixSeconds(1_000),
    )
    .unwrap();
    let expected = vec![(
        [member.as_bytes().as_slice(), &[1; 32]].concat(),
        1_000i64.to_be_bytes().to_vec(),
    )];
    let postgres = pg_store(&config, &fresh_schema());
    copy(&sled, &postgres);
    assert_eq!(
        postgres
            .sealed_rows(SealedTable::ScreenshotTimes, None, 10)
            .unwrap(),
        expected
    );
    let back = datatrust_store::SledStore::temporary().unwrap();
    copy(&postgres, &back);
    assert_eq!(
        back.sealed_rows(SealedTable::ScreenshotTimes, None, 10)
            .unwrap(),
        expected
    );
}
