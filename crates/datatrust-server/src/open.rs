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
    let opened =
        DataDirectory::open_or_create(data_dir, requested_origin, default_origin, crate::now())?;
    let origin = opened.metadata.origin.clone();
    let (store, log_store): Storage = match database {
        None => {
            let log_store = Arc::new(opened.store.log_store()?);
            (Arc::new(opened.store), log_store)
        }
        Some((database, schema)) => on_postgres(&opened.store, database, schema)?,
    };
    let state = TrustState::open(
        store,
        log_store,
        origin.clone(),
        opened.log_signer,
        opened.license_signer,
        token_lifetime,
        sequencer,
    )?;
    Ok(OpenTrust {
        state,
        origin,
        created_trustee_key: opened.created_trustee_key,
        directory: opened.directory,
    })
}

/// Where a trust's state and log are kept.
type Storage = (Arc<dyn Store>, Arc<dyn LogStore>);

/// The trust's log and state in PostgreSQL (`schema`), its telemetry sealed under the data
/// directory's data key. The trustees the data directory made at its creation are carried
/// over once (an existing principal is left as it is).
fn on_postgres(
    directory_store: &datatrust_store::SledStore,
    database: &str,
    schema: &str,
) -> Result<Storage, OpenTrustError> {
    use datatrust_core::store::TrustStore as _;
    let events = datatrust_postgres::PgEvents::open(database, schema, directory_store.data_key())?;
    let store = datatrust_postgres::PgTables::open(database, schema)?.store(events);
    for trustee in
        directory_store.list_principals(Some(datatrust_core::Role::Trustee), None, 1000)?
    {
        store.insert_principal(&trustee)?;
    }
    let log_store = datatrust_postgres::PgLogStore::open(database, schema)?;
    Ok((Arc::new(store), Arc::new(log_store)))
}
