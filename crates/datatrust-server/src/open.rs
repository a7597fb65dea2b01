//! The one way a trust is opened: the data directory (created if new), its store and log,
//! and the state that serves them. `datatrust serve`, the load generators and the tests all
//! open a trust through `open_trust`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datatrust_core::Origin;
use datatrust_core::store::{Store, StoreError};
use datatrust_store::{DataDirectory, DataDirectoryError};
use datatrust_tlog::{LogStore, SequencerOptions};

use crate::{StartError, TrustState};

/// A trust opened and ready to serve.
pub struct OpenTrust {
    pub state: TrustState,
    pub origin: Origin,
    /// Set only when this call created the trust: where the first trustee's key was written.
    pub created_trustee_key: Option<PathBuf>,
    /// Set when this call migrated the data directory: the format it was in.
    pub migrated_from: Option<u32>,
    /// Holds the data directory's lock: drop it only after the server has stopped and
    /// flushed.
    pub directory: DataDirectory,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenTrustError {
    #[error("--database: {0}")]
    Database(#[from] datatrust_postgres::OpenError),
    #[error(transparent)]
    DataDirectory(#[from] DataDirectoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Opens (or creates) the trust in `data_dir` and its log. `requested_origin` names a new
/// trust (an existing one must match it); `default_origin` is used when none is asked for.
/// Blocks on disk: call it from a blocking thread.
pub fn open_trust(
    data_dir: &Path,
    requested_origin: Option<&Origin>,
    default_origin: &Origin,
    token_lifetime: Duration,
    sequencer: SequencerOptions,
    database: Option<(&str, &str)>,
) -> Result<OpenTrust, OpenTrustError> {
    open_trust_with_keys(
        data_dir,
        None,
        requested_origin,
        default_origin,
        token_lifetime,
        sequencer,
        database,
    )
}

/// As `open_trust`, with the trust's key files in `keys_dir` (kept apart from the data
/// directory, e.g. a mounted secret) when it is given.
pub fn open_trust_with_keys(
    data_dir: &Path,
    keys_dir: Option<&Path>,
    requested_origin: Option<&Origin>,
    default_origin: &Origin,
    token_lifetime: Duration,
    sequencer: SequencerOptions,
    database: Option<(&str, &str)>,
) -> Result<OpenTrust, OpenTrustError> {
    let opened = DataDirectory::open_or_create_with_keys(
        data_dir,
        keys_dir,
        requested_origin,
        default_origin,
        crate::now(),
    )?;
    let origin = opened.metadata.origin.clone();
    let storage = match database {
        None => Storage {
            log: Arc::new(opened.store.log_store()?),
            embedded: Some(crate::state::Embedded {
                store: opened.store.clone(),
                data_dir: opened.directory.path().to_path_buf(),
                keys_dir: opened.directory.keys_path().to_path_buf(),
            }),
            sign_ins: Arc::new(datatrust_store::SledSignIns::open(&opened.store)?),
            keys_dir: opened.directory.keys_path().to_path_buf(),
            store: Arc::new(opened.store),
            shared: None,
        },
        Some((database, schema)) => {
            let mut storage = postgres_storage(
                &opened.store,
                database,
                schema,
                &published_file(opened.directory.path(), schema),
            )?;
            storage.keys_dir = opened.directory.keys_path().to_path_buf();
            storage
        }
    };
    let state = TrustState::open(
        storage,
        origin.clone(),
        opened.log_signer,
        opened.license_signer,
        token_lifetime,
        sequencer,
        opened.metadata.predecessor_checkpoint.clone(),
    )?;
    Ok(OpenTrust {
        state,
        origin,
        created_trustee_key: opened.created_trustee_key,
        migrated_from: opened.migrated_from,
        directory: opened.directory,
    })
}

/// Where a trust's state and log are kept, and what its nodes share.
pub struct Storage {
    pub store: Arc<dyn Store>,
    pub log: Arc<dyn LogStore>,
    /// Sign-ins, release builds and leases, when several nodes share one database.
    pub shared: Option<datatrust_postgres::PgShared>,
    /// Where the trust's key files are (license keys made by a rotation are written there).
    pub keys_dir: PathBuf,
    /// Where sign-ins are kept, so that they survive a restart (and, on PostgreSQL, are
    /// every node's).
    pub sign_ins: Arc<dyn datatrust_core::store::SignInStore>,
    /// The embedded store and its data directory, which `Backup` copies; `None` on
    /// PostgreSQL (whose own tools back it up).
    pub embedded: Option<crate::state::Embedded>,
}

/// The trust's log and state in PostgreSQL (`schema`), its telemetry sealed under the data
/// directory's data key. Every node of one trust starts from a copy of the same data
/// directory's keys: a node whose data key differs from the first node's is refused (its
/// members' data would not decrypt on the others). The first node to start on an empty
/// database carries over the trustees its data directory made at its creation.
pub fn postgres_storage(
    directory_store: &datatrust_store::SledStore,
    database: &str,
    schema: &str,
    published: &Path,
) -> Result<Storage, OpenTrustError> {
    use datatrust_core::store::TrustStore as _;
    let shared = datatrust_postgres::PgShared::open(database, schema)?;
    let data_key = directory_store.data_key();
    let check: [u8; 32] = {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"datatrust data key check v1\n");
        hasher.update(data_key);
        hasher.finalize().into()
    };
    if shared.secret("data-key-check", check)? != check {
        return Err(OpenTrustError::Store(StoreError::new(
            "keys/data.key is not the data key of the trust in this database: members' data \
             would not decrypt. Copy keys/ from the data directory of the trust's first node",
        )));
    }
    let events = datatrust_postgres::PgEvents::open(database, schema, data_key)?;
    let store = datatrust_postgres::PgTables::open(database, schema, data_key)?.store(events);
    let log_store = datatrust_postgres::PgLogStore::open(database, schema)?
        .with_published_file(published)
        .map_err(|error| StoreError::new(error.to_string()))?;
    if log_store
        .is_empty()
        .map_err(|error| StoreError::new(error.to_string()))?
    {
        for trustee in
            directory_store.list_principals(Some(datatrust_core::Role::Trustee), None, 1000)?
        {
            store.insert_principal(&trustee)?;
        }
    }
    Ok(Storage {
        store: Arc::new(store),
        log: Arc::new(log_store),
        sign_ins: Arc::new(shared.clone()),
        shared: Some(shared),
        embedded: None,
        // Set by the caller, which knows the data directory.
        keys_dir: PathBuf::new(),
    })
}

/// Where a node keeps the latest checkpoint of the log in `schema` it committed or served:
/// in its data directory, one file per schema.
pub fn published_file(data_dir: &Path, schema: &str) -> PathBuf {
    data_dir.join(format!("log-checkpoint.{schema}"))
}
