//! What every handler shares: the registry over the store, the trust's keys, the sessions.

use datatrust_core::commit::{CommitError, TableRead};
use datatrust_core::registry::StateWrites;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datatrust_core::log_entry::LogEntry;
use datatrust_core::registry::{DomainError, Journal, JournalError, Registry};
use datatrust_core::store::Store;
use datatrust_core::{NoteSigner, Origin, Principal, Role, UnixSeconds};
use datatrust_tlog::{LogReader, OpenError, Sequencer, SequencerOptions};
use tonic::Status;
use tonic::metadata::MetadataMap;
use tracing::Span;

use crate::auth::{Session, Sessions};
use crate::status;

pub(crate) type TrustRegistry = Registry<Arc<dyn Store>, LogJournal>;

/// The embedded store and where its files are, which backups copy.
#[derive(Clone)]
pub struct Embedded {
    pub store: datatrust_store::SledStore,
    pub data_dir: std::path::PathBuf,
    pub keys_dir: std::path::PathBuf,
}

/// The journal of erasures in the backup directory (`TrustState::journal_erasure`).
pub const ERASURE_JOURNAL: &str = "erasures";

/// The running trust. Cheap to clone.
#[derive(Clone)]
pub struct TrustState {
    inner: Arc<Inner>,
}

struct Inner {
    registry: TrustRegistry,
    log_signer: NoteSigner,
    license_signer: NoteSigner,
    sessions: Sessions,
    /// Keys release pseudonyms: derived from the license key's seed, so it is as secret and
    /// as durable as that key, and unrelated to anything published.
    pseudonym_secret: [u8; 32],
    /// Releases being built in the background, by id (in memory: a restart forgets them,
    /// and the licensee asks again).
    builds: std::sync::Mutex<std::collections::HashMap<String, Arc<ReleaseBuild>>>,
    /// Refused training-use reports each licensee may still make: every refusal is logged,
    /// so this bounds how fast one licensee can grow the log with them.
    refused_reports: crate::limits::TokenBuckets<datatrust_core::PublicKey>,
    /// The public transparency report, computed at most every few seconds.
    transparency_report: TransparencyReportCache,
    clock: Clock,
    /// The log's HTTP prefix as served, once the HTTP listener is bound.
    log_url: std::sync::OnceLock<String>,
    /// What this node shares with the other nodes on one PostgreSQL database (sign-ins,
    /// release builds, the duties lease); `None` when it runs alone.
    shared: Option<datatrust_postgres::PgShared>,
    /// This node's name in leases: random per start.
    node: String,
    metrics: Arc<crate::metrics::Metrics>,
    /// Every operation on the store holds it shared (`blocking`); a backup holds it alone,
    /// so the copy is of one moment.
    backup_gate: Arc<tokio::sync::RwLock<()>>,
    /// The embedded store and its data directory, for backups.
    embedded: Option<Embedded>,
    /// Where backups (and the journal of erasures since) are written: `serve --backup-dir`.
    backup_dir: std::sync::OnceLock<std::path::PathBuf>,
    /// Where the key files are: a rotated license key is `license-<generation>.key` there.
    keys_dir: std::path::PathBuf,
    /// The license key signing now, when a rotation replaced the first, by generation.
    rotated_license_key: std::sync::Mutex<Option<(u32, NoteSigner)>>,
}

/// When it was computed, the log size it saw, and the report.
type TransparencyReportCache = std::sync::Mutex<
    Option<(
        std::time::Instant,
        u64,
        datatrust_proto::v1::GetTransparencyReportResponse,
    )>,
>;

/// Refused training-use reports one licensee may make per hour (all at once, at most).
pub const REFUSED_REPORTS_PER_HOUR: u32 = 60;

/// A release being built in the background.
pub(crate) struct ReleaseBuild {
    pub licensee: datatrust_core::PublicKey,
    pub license_id: String,
    pub done: std::sync::atomic::AtomicU64,
    pub total: std::sync::atomic::AtomicU64,
    /// Set when the build failed: the status to answer once with.
    pub failure: std::sync::Mutex<Option<Status>>,
}

/// The registry's journal: the transparency log's sequencer. `commit` blocks until the
/// entry is durable, so it runs on blocking threads only (see `TrustState::blocking`).
pub struct LogJournal {
    sequencer: Sequencer,
    metrics: Arc<crate::metrics::Metrics>,
    clock: Clock,
}

impl LogJournal {
    /// Appends one entry without state (the trust's genesis entries) once it is durable.
    fn record(&self, entry: &LogEntry) -> Result<u64, JournalError> {
        let appended = self
            .sequencer
            .append_blocking(entry.encode())
            .map_err(|error| JournalError(error.to_string()))?;
        tracing::info!(log_index = appended.index, kind = entry.kind(), "logged");
        self.counted(1, appended.checkpoint.checkpoint.size);
        Ok(appended.index)
    }
}

impl LogJournal {
    /// Counts `entries` this node committed, and the log's size after them.
    fn counted(&self, entries: u64, size: u64) {
        self.metrics.log_appends.inc_by(entries);
        self.metrics.note_log_size(size, self.clock.now().0);
    }
}

impl Journal for LogJournal {
    /// The one commit path: the entries and the writes in the sequencer's next batch.
    fn commit(
        &self,
        entries: &[LogEntry],
        reads: Vec<TableRead>,
        writes: StateWrites,
    ) -> Result<u64, CommitError> {
        let change = datatrust_tlog::Change {
            entries: entries.iter().map(LogEntry::encode).collect(),
            reads: reads
                .into_iter()
                .map(|read| datatrust_tlog::StateRead {
                    table: read.table,
                    key: read.key,
                    version: read.version,
                })
                .collect(),
            writes: Box::new(move |first_index| {
                Ok(writes(first_index)?
                    .into_iter()
                    .map(|write| datatrust_tlog::StateWrite {
                        table: write.table,
                        key: write.key,
                        value: write.value,
                    })
                    .collect())
            }),
        };
        match self.sequencer.commit_blocking(change) {
            Ok(committed) => {
                self.counted(committed.count, committed.checkpoint.checkpoint.size);
                for (offset, entry) in entries.iter().enumerate() {
                    tracing::info!(
                        log_index = committed.first_index + offset as u64,
                        kind = entry.kind(),
                        "logged"
                    );
                }
                Ok(committed.first_index)
            }
            Err(datatrust_tlog::CommitError::Conflict { .. }) => Err(CommitError::Conflict),
            Err(error) => Err(CommitError::Failed(error.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the transparency log cannot be opened: {0}")]
    Log(#[from] OpenError),
    #[error("writing the first log entries: {0}")]
    Genesis(String),
    #[error("{0}")]
    KeyMismatch(String),
}

impl TrustState {
    /// Opens the log over `log_store` (refusing a log whose checkpoint disagrees with its
    /// tree) and, for a new trust, logs its creation and its first trustee. Blocks on disk.
    pub fn open(
        storage: crate::Storage,
        origin: Origin,
        log_signer: NoteSigner,
        license_signer: NoteSigner,
        token_lifetime: Duration,
        sequencer_options: SequencerOptions,
        predecessor_checkpoint: Option<String>,
    ) -> Result<TrustState, StartError> {
        let crate::Storage {
            store,
            log: log_store,
            shared,
            embedded,
            sign_ins,
            keys_dir,
        } = storage;
        let sequencer = Sequencer::open(log_store, log_signer.clone(), sequencer_options)
            .map_err(|error| match error {
                OpenError::Checkpoint(reason) => StartError::KeyMismatch(format!(
                    "keys/log.key does not verify the log's stored checkpoint ({reason}): it is not \
                     the key that signed this log; restore the original keys/log.key from your backup"
                )),
                other => StartError::Log(other),
            })?;
        let pseudonym_secret = {
            use sha2::Digest as _;
            let mut hasher = sha2::Sha256::new();
            hasher.update(b"datatrust pseudonym secret v1\n");
            hasher.update(license_signer.sign(b"datatrust pseudonym secret v1"));
            hasher.finalize().into()
        };
        let sessions = Sessions::shared(token_lifetime, sign_ins).map_err(|error| {
            StartError::Genesis(format!("reading the stored sign-in secret: {error}"))
        })?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let clock = Clock::default();
        let node = format!(
            "{}-{}-{:08x}",
            hostname(),
            std::process::id(),
            rand::random::<u32>()
        );
        let state = TrustState {
            inner: Arc::new(Inner {
                registry: Registry::new(
                    store,
                    LogJournal {
                        sequencer,
                        metrics: Arc::clone(&metrics),
                        clock: clock.clone(),
                    },
                    origin,
                ),
                log_signer,
                license_signer,
                sessions,
                pseudonym_secret,
                builds: std::sync::Mutex::default(),
                transparency_report: std::sync::Mutex::new(None),
                clock,
                log_url: std::sync::OnceLock::new(),
                refused_reports: crate::limits::TokenBuckets::new(
                    f64::from(REFUSED_REPORTS_PER_HOUR) / 3600.0,
                    f64::from(REFUSED_REPORTS_PER_HOUR),
                    100_000,
                ),
                shared,
                node,
                metrics,
                backup_gate: Arc::default(),
                embedded,
                backup_dir: std::sync::OnceLock::new(),
                keys_dir,
                rotated_license_key: std::sync::Mutex::new(None),
            }),
        };
        state
            .inner
            .registry
            .ensure_member_release_index()
            .map_err(|error| {
                StartError::Genesis(format!("indexing releases by member: {error}"))
            })?;
        state
            .inner
            .registry
            .ensure_licensee_indexes()
            .map_err(|error| {
                StartError::Genesis(format!("indexing licensees' charges: {error}"))
            })?;
        state
            .inner
            .registry
            .ensure_active_terms_pointer()
            .map_err(|error| StartError::Genesis(format!("noting the terms in force: {error}")))?;
        if state.log_reader().size() == 0 {
            state.log_genesis(predecessor_checkpoint.as_deref())?;
        } else if let Err(error) = state.check_keys_against_genesis() {
            // Stop the log's writer (and with it its hold on the database) before refusing.
            state.close_log();
            return Err(error);
        }
        let now = state.clock().now();
        match state.inner.registry.resume_erasures(now) {
            Ok(0) => {}
            Ok(finished) => tracing::warn!(finished, "finished erasures a stop interrupted"),
            Err(error) => {
                state.close_log();
                return Err(StartError::Genesis(format!(
                    "finishing interrupted erasures: {error}"
                )));
            }
        }
        Ok(state)
    }

    /// The trust committed to its keys in its first log entry: a key file replaced since
    /// (even by another valid key) would sign licenses or checkpoints that nobody can tie
    /// to this trust. Refuses the start, naming the file.
    fn check_keys_against_genesis(&self) -> Result<(), StartError> {
        let first = self.log_reader().entries(0, 1).map_err(|error| {
            StartError::Genesis(format!("reading the first log entry: {error}"))
        })?;
        let entry = first
            .first()
            .and_then(|bytes| datatrust_core::log_entry::DecodedEntry::parse(bytes))
            .filter(|entry| entry.kind == "trust-created")
            .ok_or_else(|| {
                StartError::Genesis("the log's first entry is not the trust's creation".into())
            })?;
        for (file, field, verifier) in [
            ("keys/log.key", "log-vkey", self.inner.log_signer.verifier()),
            (
                "keys/license.key",
                "license-vkey",
                self.inner.license_signer.verifier(),
            ),
        ] {
            let logged = entry.field(field).unwrap_or_default();
            if logged != verifier.to_text() {
                return Err(StartError::KeyMismatch(format!(
                    "{file} is not the key this trust logged at its creation (entry 0 names {logged}; \
                     the file holds {}): restore the original {file} from your backup",
                    verifier.to_text()
                )));
            }
        }
        Ok(())
    }

    /// The first entries of a new trust: its identity and keys, then its trustees.
    /// A trust succeeding a log whose key was compromised logs that log's final checkpoint
    /// in its first entry (`predecessor-checkpoint`, the signed note in base64).
    fn log_genesis(&self, predecessor_checkpoint: Option<&str>) -> Result<(), StartError> {
        let registry = &self.inner.registry;
        let genesis = |error: &dyn std::fmt::Display| StartError::Genesis(error.to_string());
        let now = self.clock().now();
        let mut created = LogEntry::trust_created(
            registry.origin().as_str(),
            &self.inner.log_signer.verifier(),
            &self.inner.license_signer.verifier(),
            now,
        );
        if let Some(note) = predecessor_checkpoint {
            created = created.with_predecessor(note);
        }
        registry
            .journal()
            .record(&created)
            .map_err(|error| genesis(&error))?;
        let trustees = registry
            .store()
            .list_principals(Some(Role::Trustee), None, 1000)
            .map_err(|error| genesis(&error))?;
        for trustee in trustees {
            registry
                .journal()
                .record(&LogEntry::principal_registered(
                    &trustee,
                    None,
                    trustee.created_at,
                ))
                .map_err(|error| genesis(&error))?;
        }
        Ok(())
    }

    /// Commits what the log has queued and stops its writer; called once at shutdown.
    pub fn close_log(&self) {
        self.inner.registry.journal().sequencer.close();
    }

    pub fn log_reader(&self) -> &Arc<LogReader> {
        self.inner.registry.journal().sequencer.reader()
    }

    pub fn origin(&self) -> &Origin {
        self.inner.registry.origin()
    }

    pub fn log_signer(&self) -> &NoteSigner {
        &self.inner.log_signer
    }

    pub fn license_signer(&self) -> &NoteSigner {
        &self.inner.license_signer
    }

    pub(crate) fn pseudonym_secret(&self) -> [u8; 32] {
        self.inner.pseudonym_secret
    }

    /// The log's HTTP prefix, once `serve` has bound the HTTP listener.
    pub fn log_url(&self) -> Option<&str> {
        self.inner.log_url.get().map(String::as_str)
    }

    pub(crate) fn set_log_url(&self, url: String) {
        let _ = self.inner.log_url.set(url);
    }

    /// The trust's clock (a handle: clones move together).
    pub fn clock(&self) -> Clock {
        self.inner.clock.clone()
    }

    pub(crate) fn transparency_report_cache(&self) -> &TransparencyReportCache {
        &self.inner.transparency_report
    }

    pub(crate) fn refused_reports(
        &self,
    ) -> &crate::limits::TokenBuckets<datatrust_core::PublicKey> {
        &self.inner.refused_reports
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// What this node shares with the others on one database; `None` when it runs alone.
    pub(crate) fn shared(&self) -> Option<&datatrust_postgres::PgShared> {
        self.inner.shared.as_ref()
    }

    /// This node's name in leases and logs.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The figures `/metrics` serves.
    pub(crate) fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.inner.metrics
    }

    pub(crate) fn builds(
        &self,
    ) -> &std::sync::Mutex<std::collections::HashMap<String, Arc<ReleaseBuild>>> {
        &self.inner.builds
    }

    /// Sets the free space below which the store refuses writes.
    pub fn set_minimum_free_disk(&self, bytes: u64) {
        self.inner.registry.store().set_minimum_free_disk(bytes);
    }

    /// True while the store refuses writes for want of disk space.
    pub fn disk_space_low(&self) -> bool {
        self.inner.registry.store().disk_space_low()
    }

    /// Makes all stored state durable; called once more at shutdown.
    pub fn flush(&self) -> Result<(), datatrust_core::store::StoreError> {
        self.inner.registry.store().flush()
    }

    /// The license key that signs licenses now: the first one, or the latest a rotation
    /// made (its file, `license-<generation>.key`, read once). A node that lacks the file
    /// (several nodes: it was made on another) refuses to sign, saying which file to copy.
    pub(crate) fn current_license_signer(
        &self,
        registry: &TrustRegistry,
    ) -> Result<NoteSigner, DomainError> {
        let Some(latest) = registry.license_keys()?.pop() else {
            return Ok(self.inner.license_signer.clone());
        };
        let mut cached = self
            .inner
            .rotated_license_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((generation, signer)) = cached.as_ref()
            && *generation == latest.generation
        {
            return Ok(signer.clone());
        }
        let path = self.license_key_path(latest.generation);
        let unusable = |why: String| {
            DomainError::Store(datatrust_core::store::StoreError::new(format!(
                "{}: {why}; the license key was rotated to generation {}: copy this file from \
                 the node that rotated it",
                path.display(),
                latest.generation
            )))
        };
        let text = std::fs::read_to_string(&path).map_err(|error| unusable(error.to_string()))?;
        let signer = NoteSigner::parse(&text).map_err(|error| unusable(error.to_string()))?;
        if signer.verifier().to_text() != latest.vkey {
            return Err(unusable("it is not the key the rotation logged".into()));
        }
        *cached = Some((latest.generation, signer.clone()));
        Ok(signer)
    }

    /// Where a rotated license key's file is.
    pub(crate) fn license_key_path(&self, generation: u32) -> std::path::PathBuf {
        self.inner
            .keys_dir
            .join(format!("license-{generation}.key"))
    }

    /// Makes a new license key, writes it beside the others (private, durable) and logs the
    /// rotation; licenses are signed by it from now on.
    pub(crate) fn rotate_license_key(
        &self,
        registry: &TrustRegistry,
        caller: &Principal,
        now: UnixSeconds,
    ) -> Result<
        datatrust_core::registry::Logged<datatrust_core::recovery::LicenseKeyRecord>,
        DomainError,
    > {
        datatrust_core::registry::require_role(caller, Role::Trustee, "rotate the license key")?;
        let generation = registry
            .license_keys()?
            .last()
            .map_or(1, |latest| latest.generation + 1);
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        let signer =
            NoteSigner::new(&registry.origin().license_key_name(), seed).map_err(|error| {
                DomainError::Store(datatrust_core::store::StoreError::new(error.to_string()))
            })?;
        let path = self.license_key_path(generation);
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            file.write_all(format!("{}\n", signer.to_private_text()).as_bytes())?;
            file.sync_all()?;
            if let Some(parent) = path.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|error| {
            DomainError::Store(datatrust_core::store::StoreError::new(format!(
                "writing {}: {error}",
                path.display()
            )))
        })?;
        match registry.rotate_license_key(caller, generation, &signer.verifier().to_text(), now) {
            Ok(logged) => Ok(logged),
            Err(error) => {
                // Not logged: the file signs nothing.
                let _ = std::fs::remove_file(&path);
                Err(error)
            }
        }
    }

    /// Sets where backups go (`serve --backup-dir`); once.
    pub fn set_backup_dir(&self, directory: std::path::PathBuf) {
        let _ = self.inner.backup_dir.set(directory);
    }

    /// Writes a consistent copy of the trust under the backup directory: `<origin>-<time>/`
    /// (data) and `<origin>-<time>-keys/`. The segment files nobody writes any more are
    /// copied first, with the trust running; then every store operation waits while the
    /// rest (the database, the newest segments, the keys) is copied.
    pub(crate) async fn backup(
        &self,
    ) -> Result<
        (
            std::path::PathBuf,
            std::path::PathBuf,
            Arc<datatrust_tlog::SignedCheckpoint>,
        ),
        Status,
    > {
        let Some(Embedded {
            store,
            data_dir,
            keys_dir,
        }) = self.inner.embedded.clone()
        else {
            return Err(Status::failed_precondition(
                "this trust is on PostgreSQL: back up the database with its own tools \
                 (pg_basebackup, or pg_dump of the schema) and keys/ apart (README, \"Backups\")",
            ));
        };
        let Some(directory) = self.inner.backup_dir.get().cloned() else {
            return Err(Status::failed_precondition(
                "the server was started without --backup-dir: there is nowhere to write a backup",
            ));
        };
        let reader = Arc::clone(self.log_reader());
        let name = format!(
            "{}-{}",
            self.inner
                .registry
                .origin()
                .as_str()
                .replace(['/', ':'], "_"),
            self.clock().now().rfc3339().replace(':', "")
        );
        let (data, keys) = (
            directory.join(&name),
            directory.join(format!("{name}-keys")),
        );
        let failed = |error: datatrust_store::DataDirectoryError| {
            tracing::error!(%error, "a backup failed");
            Status::internal(format!("the backup failed: {error}"))
        };
        // The first half (the segment files nobody writes any more, the bulk) while the
        // trust goes on; the rest with every store operation waiting.
        let (data_copy, keys_copy, first_store) = (data.clone(), keys.clone(), store.clone());
        let started = tokio::task::spawn_blocking(move || {
            datatrust_store::begin_backup(&first_store, &data_copy, &keys_copy).map_err(failed)
        })
        .await
        .map_err(|error| status::internal(&error))??;
        let _alone = Arc::clone(&self.inner.backup_gate).write_owned().await;
        let paused = std::time::Instant::now();
        let latest = tokio::task::spawn_blocking(move || {
            let latest = reader
                .refresh()
                .map_err(|error| Status::internal(error.to_string()))?;
            datatrust_store::finish_backup(&store, &data_dir, &keys_dir, started)
                .map_err(failed)?;
            Ok::<_, Status>(latest)
        })
        .await
        .map_err(|error| status::internal(&error))??;
        let paused_ms = paused.elapsed().as_millis() as u64;
        tracing::info!(data = %data.display(), keys = %keys.display(), log_size = latest.checkpoint.size, paused_ms, "backup written");
        Ok((data, keys, latest))
    }

    /// Notes an erasure in the backup directory's journal, so that restoring an older
    /// backup erases the member again (`admin restore`): the SHA-256 of the member's key
    /// and the erasure's log index, a line each, made durable. Nothing without a backup
    /// directory.
    pub(crate) fn journal_erasure(&self, member: &datatrust_core::PublicKey, log_index: u64) {
        let Some(directory) = self.inner.backup_dir.get() else {
            return;
        };
        use sha2::Digest as _;
        use std::io::Write as _;
        let line = format!(
            "{} {log_index}\n",
            hex::encode(sha2::Sha256::digest(member.as_bytes()))
        );
        let path = directory.join(ERASURE_JOURNAL);
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(line.as_bytes())?;
                file.sync_all()
            });
        if let Err(error) = written {
            tracing::error!(%error, path = %path.display(), "journaling an erasure for backups failed: restore would not replay it");
        }
    }

    /// Erases again the member whose key hashes (SHA-256, hex) to `key_hash`, as she asked
    /// before (a journaled erasure after a restored backup's point); false if no member
    /// with data or an active membership has that key. Blocks on disk.
    pub fn erase_member_by_key_hash(
        &self,
        key_hash: &str,
        now: UnixSeconds,
    ) -> Result<bool, DomainError> {
        use datatrust_core::store::TrustStore as _;
        use sha2::Digest as _;
        let registry = &self.inner.registry;
        let mut after = None;
        loop {
            let page =
                registry
                    .store()
                    .list_principals(Some(Role::Member), after.as_ref(), 1000)?;
            for member in &page {
                if hex::encode(sha2::Sha256::digest(member.public_key.as_bytes())) == key_hash {
                    registry.erase_my_data(member, now)?;
                    return Ok(true);
                }
            }
            match page.last() {
                Some(last) if page.len() == 1000 => after = Some(last.public_key),
                _ => return Ok(false),
            }
        }
    }

    /// Runs `operation` on a blocking thread (storage work blocks on disk), in the RPC's span.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&TrustRegistry) -> Result<T, DomainError> + Send + 'static,
    ) -> Result<T, Status> {
        let state = self.clone();
        let span = Span::current();
        let shared = Arc::clone(&self.inner.backup_gate).read_owned().await;
        tokio::task::spawn_blocking(move || {
            let _shared = shared;
            span.in_scope(|| operation(&state.inner.registry))
        })
        .await
        .map_err(|error| status::internal(&error))?
        .map_err(status::from_domain)
    }

    /// Authenticates the caller from its bearer token, then runs `operation` as that caller.
    pub(crate) async fn as_caller<T: Send + 'static>(
        &self,
        metadata: &MetadataMap,
        operation: impl FnOnce(&TrustRegistry, &Principal) -> Result<T, DomainError> + Send + 'static,
    ) -> Result<T, Status> {
        let session = self.session(metadata)?;
        self.blocking(move |registry| {
            let caller = current_principal(registry, &session)?;
            let span = Span::current();
            span.record("caller_role", caller.role.as_str());
            span.record("caller_key", tracing::field::display(&caller.public_key));
            operation(registry, &caller)
        })
        .await
    }

    /// The signed-in caller, read on the calling task: a point read of the principals'
    /// table, which sled serves from memory for keys in use. For cheap reads (`WhoAmI`),
    /// where a hop to a blocking thread would cost more than the read itself.
    pub(crate) fn caller_inline(
        &self,
        metadata: &MetadataMap,
    ) -> Result<(Session, Principal), Status> {
        let session = self.session(metadata)?;
        let caller =
            current_principal(&self.inner.registry, &session).map_err(status::from_domain)?;
        Ok((session, caller))
    }

    /// The session behind the request's bearer token, checked in memory only.
    pub(crate) fn session(&self, metadata: &MetadataMap) -> Result<Session, Status> {
        let header = metadata.get("authorization").ok_or_else(|| {
            Status::unauthenticated(
                "authorization: missing; sign in (CreateChallenge, Login) and send \"authorization: Bearer <token>\"",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization: expected \"Bearer <token>\""))?;
        self.inner
            .sessions
            .session(token.trim(), self.clock().now())
            .map_err(status::from_auth)?
            .ok_or_else(|| {
                Status::unauthenticated("authorization: token unknown or expired; sign in again")
            })
    }
}

/// The caller's principal as stored now: deactivated keys and changed roles end the session.
pub(crate) fn current_principal(
    registry: &TrustRegistry,
    session: &Session,
) -> Result<Principal, DomainError> {
    // The session is of the key that signed in: a key a rotation or recovery replaced
    // finds nobody from then on.
    match registry.principal_signing_with(&session.public_key)? {
        Some(principal) if principal.role == session.role => Ok(principal),
        _ => Err(DomainError::Unauthenticated(
            "authorization: this key is no longer active in that role (deactivated, or replaced by a rotation or recovery); sign in again".into(),
        )),
    }
}

/// A fresh secret salt for a principal's log commitment.
pub(crate) fn random_salt() -> [u8; 32] {
    use rand::RngCore as _;
    let mut salt = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    salt
}

/// The trust's clock: the wall clock, moved by an offset that tests control. Every time the
/// server acts on comes from here (the core never reads a clock), so a test moves time past
/// a deadline instead of sleeping until it.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_seconds: Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> UnixSeconds {
        now().plus_seconds(
            self.offset_seconds
                .load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    /// Moves this clock (and every server holding it) forward by `seconds`; for tests.
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds
            .fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The wall clock in Unix seconds; the core never reads a clock itself.
pub fn now() -> UnixSeconds {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    UnixSeconds(i64::try_from(seconds).unwrap_or(i64::MAX))
}

/// The machine's name, for naming this node in leases (best effort).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "node".to_owned())
}
