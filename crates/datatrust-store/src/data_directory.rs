//! The data directory: a format marker, an exclusive lock, the trust's signing keys, the first
//! trustee's credential and the sled database.
//!
//! ```text
//! <data-dir>/DATATRUST             format marker, written last during initialisation
//! <data-dir>/lock                  held (flock) by the one process serving this directory
//! <data-dir>/keys/log.key          log (checkpoint) key, signed-note private key text, 0600
//! <data-dir>/keys/license.key      license key, likewise
//! <data-dir>/keys/data.key         the data key wrapping members' telemetry keys (hex), 0600
//! <data-dir>/initial-trustee.key   the first trustee's credential, 0600; move it off the host
//! <data-dir>/db/                   sled
//! ```
//!
//! Initialisation writes `.initialising` first and the marker last, so a crash part-way
//! leaves a directory the next start recognises and initialises again from scratch.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use datatrust_core::store::{PrincipalInsert, StoreError, TrustStore as _};
use datatrust_core::{DisplayName, NoteSigner, Origin, Principal, Role, UnixSeconds};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::SledStore;
use crate::sled_store::{METADATA, decode, encode, store_error};

const MARKER_FILE: &str = "DATATRUST";
const INITIALISING_FILE: &str = ".initialising";
const LOCK_FILE: &str = "lock";
const KEYS_DIRECTORY: &str = "keys";
const LOG_KEY_FILE: &str = "log.key";
const LICENSE_KEY_FILE: &str = "license.key";
const DATA_KEY_FILE: &str = "data.key";
const INITIAL_TRUSTEE_KEY_FILE: &str = "initial-trustee.key";
const DATABASE_DIRECTORY: &str = "db";
const MEMBER_KEYS_DIRECTORY: &str = "member-keys";
const SEGMENTS_DIRECTORY: &str = "segments";
/// The names initialisation may leave behind if it is interrupted.
const INITIALISATION_NAMES: [&str; 7] = [
    INITIALISING_FILE,
    LOCK_FILE,
    KEYS_DIRECTORY,
    INITIAL_TRUSTEE_KEY_FILE,
    DATABASE_DIRECTORY,
    SEGMENTS_DIRECTORY,
    MARKER_FILE,
];
/// The on-disk format this build reads and writes. Bump it with a migration, never silently:
/// an older directory is migrated when it is opened (`migrate`), a newer one refused.
/// - 1: the first format.
/// - 2: screenshots carry the time they were stored (`screenshot_times`), which retention
///   counts from; images of format 1 are given the migration's time.
/// - 3: members' sealed chunks, release parts and screenshots lie in segment files
///   (`segments/`), sled holding a reference to each; the migration moves them out of sled.
///   The expiry index (`chunk_days`, `screenshot_refs`) is built from every chunk.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format this build migrates.
pub const OLDEST_MIGRATED_FORMAT: u32 = 1;
const MARKER_FIRST_LINE: &str = "datatrust data directory";
const METADATA_KEY: &[u8] = b"trust";

#[derive(Debug, thiserror::Error)]
pub enum DataDirectoryError {
    #[error(
        "{path} is not a datatrust data directory (it has no DATATRUST file) and is not empty; \
         pass --data-dir with a new or empty directory, or the directory of an existing trust"
    )]
    NotADataDirectory { path: PathBuf },
    #[error(
        "{path} was written by an incompatible version of datatrust (format {found}); this \
         build reads formats {OLDEST_MIGRATED_FORMAT} to {FORMAT_VERSION} (and migrates the older \
         ones): run a newer datatrust, the one that wrote it or a later one"
    )]
    IncompatibleFormat { path: PathBuf, found: String },
    #[error(
        "{path} is in use by another datatrust process (it holds {path}/lock); stop that \
         process first, or pass a different --data-dir"
    )]
    Locked { path: PathBuf },
    #[error(
        "{path} belongs to the trust {stored}, not {requested}; leave --origin unset or set it to {stored}"
    )]
    OriginMismatch {
        path: PathBuf,
        stored: String,
        requested: String,
    },
    #[error("{path}: {message}")]
    KeyMismatch { path: PathBuf, message: String },
    #[error(
        "{path} can be {access} by other users of this machine (mode {mode:o}); the trust's \
         keys must be readable by its own user only: chmod 600 {path}"
    )]
    KeyExposed {
        path: PathBuf,
        access: &'static str,
        mode: u32,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A backup under way: its first half copied (`begin_backup`), its second to come
/// (`finish_backup`).
#[derive(Debug)]
pub struct BackupInProgress {
    data: PathBuf,
    keys: PathBuf,
    settled_segments: std::collections::BTreeSet<u64>,
}

/// A backup's first half, with writers running: makes `data` and `keys` (neither may exist)
/// and copies into `data` the segment files nobody writes any more, the bulk of the data,
/// so that the second half, which keeps every writer out, copies little.
pub fn begin_backup(
    store: &SledStore,
    data: &Path,
    keys: &Path,
) -> Result<BackupInProgress, DataDirectoryError> {
    for target in [data, keys] {
        if target.exists() {
            return Err(DataDirectoryError::Io {
                path: target.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists already"),
            });
        }
        create_private_directory(target)?;
    }
    let settled_segments = store
        .segments
        .copy_settled_to(&data.join(SEGMENTS_DIRECTORY))?;
    Ok(BackupInProgress {
        data: data.to_path_buf(),
        keys: keys.to_path_buf(),
        settled_segments,
    })
}

/// A backup's second half, which makes it a consistent copy of one moment: the caller keeps
/// every writer out meanwhile. `data` gets the database (sled's own export, imported into a
/// new database: a logical copy, whatever sled's files hold), the segment files written
/// since the first half (and loses those compacted away since), the members' wrapped keys,
/// the format marker and the published checkpoint; `keys` gets the trust's key files,
/// apart, since whoever holds both reads every member's data.
pub fn finish_backup(
    store: &SledStore,
    data_dir: &Path,
    keys_dir: &Path,
    backup: BackupInProgress,
) -> Result<(), DataDirectoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataDirectoryError::Io { path, source }
    };
    let (data, keys) = (backup.data.as_path(), backup.keys.as_path());
    store.flush()?;
    let copy = sled::Config::new()
        .path(data.join(DATABASE_DIRECTORY))
        .open()
        .map_err(|error| StoreError::new(format!("creating the backup's database: {error}")))?;
    copy.import(store.database().export());
    copy.flush()
        .map_err(|error| StoreError::new(format!("flushing the backup's database: {error}")))?;
    drop(copy);
    store
        .segments
        .copy_rest_to(&data.join(SEGMENTS_DIRECTORY), &backup.settled_segments)?;
    let copy_files = |from: &Path, to: &Path| -> Result<(), DataDirectoryError> {
        create_private_directory(to)?;
        let Ok(entries) = fs::read_dir(from) else {
            return Ok(());
        };
        for entry in entries {
            let entry = entry.map_err(io(from))?;
            if entry.file_type().map_err(io(from))?.is_file() {
                let target = to.join(entry.file_name());
                fs::copy(entry.path(), &target).map_err(io(&target))?;
                File::open(&target)
                    .and_then(|file| file.sync_all())
                    .map_err(io(&target))?;
            }
        }
        sync_directory(to)
    };
    copy_files(
        &data_dir.join(MEMBER_KEYS_DIRECTORY),
        &data.join(MEMBER_KEYS_DIRECTORY),
    )?;
    for name in [MARKER_FILE, "log-checkpoint"] {
        let from = data_dir.join(name);
        if from.exists() {
            fs::copy(&from, data.join(name)).map_err(io(&from))?;
        }
    }
    sync_directory(data)?;
    copy_files(keys_dir, keys)?;
    Ok(())
}

/// Rebuilds a data directory from a backup's two halves (`backup`): the target must not
/// exist. The caller opens it afterwards, which checks the keys against the database.
pub fn restore(data: &Path, keys: &Path, target: &Path) -> Result<(), DataDirectoryError> {
    if target.exists()
        && fs::read_dir(target)
            .map_err(|source| DataDirectoryError::Io {
                path: target.to_path_buf(),
                source,
            })?
            .next()
            .is_some()
    {
        return Err(DataDirectoryError::NotADataDirectory {
            path: target.to_path_buf(),
        });
    }
    if !data.join(MARKER_FILE).exists() {
        return Err(DataDirectoryError::Corrupt {
            path: data.to_path_buf(),
            message: "this is not a datatrust backup (no DATATRUST file)".into(),
        });
    }
    create_private_directory(target)?;
    copy_tree(data, target)?;
    create_private_directory(&target.join(KEYS_DIRECTORY))?;
    copy_tree(keys, &target.join(KEYS_DIRECTORY))?;
    sync_directory(target)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), DataDirectoryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataDirectoryError::Io { path, source }
    };
    for entry in fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(io(from))?.is_dir() {
            create_private_directory(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target).map_err(io(&target))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).map_err(io(&target))?;
            File::open(&target)
                .and_then(|file| file.sync_all())
                .map_err(io(&target))?;
        }
    }
    sync_directory(to)
}

/// The trust's identity as recorded at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustMetadata {
    pub origin: Origin,
    pub created_at: UnixSeconds,
    pub format_version: u32,
    /// `data_key_check(data key)`: lets a start tell a missing or changed `keys/data.key`
    /// from the right one before any member's data fails to decrypt. Absent in trusts made
    /// before it existed; filled on their next start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key_check: Option<String>,
    /// The final checkpoint (signed note) of the log this trust succeeds, after that log's
    /// key was compromised: the new log's first entry logs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predecessor_checkpoint: Option<String>,
}

/// Records, in a trust not yet served, the final checkpoint of the log it succeeds (its
/// first entry will log it). Refused once the trust has served: its first entry is written.
pub fn record_predecessor(
    store: &SledStore,
    checkpoint_note: &str,
) -> Result<(), DataDirectoryError> {
    let mut metadata = read_metadata(store)?.ok_or_else(|| DataDirectoryError::Corrupt {
        path: PathBuf::from("."),
        message: "the database holds no trust metadata".into(),
    })?;
    metadata.predecessor_checkpoint = Some(checkpoint_note.to_owned());
    write_metadata(store, &metadata)?;
    store.flush()?;
    Ok(())
}

/// The key check value of a data key: a hash that names the key without revealing it.
pub fn data_key_check(data_key: &[u8; 32]) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"datatrust data key check v1\n");
    hasher.update(data_key);
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// An open data directory. Holding it holds the lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirectory {
    path: PathBuf,
    /// Where the trust's key files are: `<path>/keys`, or a directory the operator keeps
    /// apart (a mounted secret).
    keys: PathBuf,
    _lock: File,
}

/// What opening a data directory yields.
#[derive(Debug)]
pub struct OpenedTrust {
    pub directory: DataDirectory,
    pub store: SledStore,
    pub metadata: TrustMetadata,
    pub log_signer: NoteSigner,
    pub license_signer: NoteSigner,
    /// Set only when this call created the trust: where the first trustee's key was written.
    pub created_trustee_key: Option<PathBuf>,
    /// Set when this call migrated the directory: the format it was in.
    pub migrated_from: Option<u32>,
}

impl DataDirectory {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the trust's key files are.
    pub fn keys_path(&self) -> &Path {
        &self.keys
    }

    /// Opens the trust in `path`, creating it if the directory is new or empty.
    /// `requested_origin` is the origin asked for on the command line, if any: it names a new
    /// trust, and must match an existing one.
    pub fn open_or_create(
        path: &Path,
        requested_origin: Option<&Origin>,
        default_origin: &Origin,
        now: UnixSeconds,
    ) -> Result<OpenedTrust, DataDirectoryError> {
        DataDirectory::open_or_create_with_keys(path, None, requested_origin, default_origin, now)
    }

    /// As `open_or_create`, with the trust's key files in `keys` instead of `<path>/keys`
    /// (a directory the operator keeps apart, e.g. a mounted secret; a new trust's keys are
    /// written there). Key files others may read are refused, wherever they are.
    pub fn open_or_create_with_keys(
        path: &Path,
        keys: Option<&Path>,
        requested_origin: Option<&Origin>,
        default_origin: &Origin,
        now: UnixSeconds,
    ) -> Result<OpenedTrust, DataDirectoryError> {
        // Everything this process creates from now on (sled's files included, which it
        // opens with the default mode) is its user's alone. Process-wide on purpose: the
        // process serving a trust writes nothing that others should read.
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        create_private_directory(path)?;
        let path = path.to_path_buf();
        let state = inspect(&path)?;
        if state == DirectoryState::Foreign {
            return Err(DataDirectoryError::NotADataDirectory { path });
        }
        let lock = lock(&path)?;
        // Inspect again under the lock: another process may have initialised it meanwhile.
        let keys = keys.map_or_else(|| path.join(KEYS_DIRECTORY), Path::to_path_buf);
        let directory = DataDirectory {
            path,
            keys,
            _lock: lock,
        };
        match inspect(&directory.path)? {
            DirectoryState::Initialised { format } => directory.open(requested_origin, format, now),
            DirectoryState::Empty | DirectoryState::InterruptedInitialisation => {
                directory.create(requested_origin.unwrap_or(default_origin), now)
            }
            DirectoryState::Foreign => Err(DataDirectoryError::NotADataDirectory {
                path: directory.path,
            }),
        }
    }

    fn open(
        self,
        requested_origin: Option<&Origin>,
        format: u32,
        now: UnixSeconds,
    ) -> Result<OpenedTrust, DataDirectoryError> {
        check_private_files(&self.path, &self.keys)?;
        let data_key = self.existing_data_key()?;
        let store = SledStore::open(
            &self.path.join(DATABASE_DIRECTORY),
            data_key.unwrap_or([0; 32]),
        )?;
        let mut metadata = read_metadata(&store)?.ok_or_else(|| DataDirectoryError::Corrupt {
            path: self.path.clone(),
            message: "the database holds no trust metadata".into(),
        })?;
        let data_key_path = self.keys.join(DATA_KEY_FILE);
        let holds_member_keys = fs::read_dir(self.path.join(MEMBER_KEYS_DIRECTORY))
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(false);
        let store = match (data_key, &metadata.data_key_check) {
            (Some(key), Some(check)) if data_key_check(&key) == *check => store,
            (Some(_), Some(_)) => {
                return Err(DataDirectoryError::KeyMismatch {
                    path: data_key_path,
                    message: "this is not the data key the trust was created with: members' data \
                              would not decrypt. Restore the original keys/data.key from your backup"
                        .into(),
                });
            }
            (None, Some(_)) => {
                return Err(DataDirectoryError::KeyMismatch {
                    path: data_key_path,
                    message: "the data key is missing: without it no member's data can be \
                              decrypted. Restore keys/data.key from your backup; do not create a new one"
                        .into(),
                });
            }
            (None, None) if holds_member_keys => {
                return Err(DataDirectoryError::KeyMismatch {
                    path: data_key_path,
                    message: "the data key is missing while members' keys are stored: restore \
                              keys/data.key from your backup"
                        .into(),
                });
            }
            // A trust made before the check value existed: record it now. One made before
            // telemetry existed has no data key yet: make one.
            (key, None) => {
                drop(store);
                let key = match key {
                    Some(key) => key,
                    None => self.create_data_key()?,
                };
                let store = SledStore::open(&self.path.join(DATABASE_DIRECTORY), key)?;
                metadata.data_key_check = Some(data_key_check(&key));
                write_metadata(&store, &metadata)?;
                store.flush()?;
                store
            }
        };
        if let Some(requested) = requested_origin
            && *requested != metadata.origin
        {
            return Err(DataDirectoryError::OriginMismatch {
                path: self.path.clone(),
                stored: metadata.origin.to_string(),
                requested: requested.to_string(),
            });
        }
        let log_signer = self.read_signer(LOG_KEY_FILE, metadata.origin.as_str())?;
        let license_signer =
            self.read_signer(LICENSE_KEY_FILE, &metadata.origin.license_key_name())?;
        // Only now that the data key is known to be the trust's own.
        store.seal_legacy_values()?;
        let migrated_from = if format < FORMAT_VERSION {
            self.migrate(&store, &mut metadata, format, now)?;
            Some(format)
        } else {
            None
        };
        Ok(OpenedTrust {
            directory: self,
            store,
            metadata,
            log_signer,
            license_signer,
            created_trustee_key: None,
            migrated_from,
        })
    }

    /// Migrates the open store from `format` to `FORMAT_VERSION`, one step at a time, each
    /// idempotent (a crash repeats it), then rewrites the marker: until then the directory
    /// says it is in the older format.
    fn migrate(
        &self,
        store: &SledStore,
        metadata: &mut TrustMetadata,
        format: u32,
        now: UnixSeconds,
    ) -> Result<(), DataDirectoryError> {
        for step in format..FORMAT_VERSION {
            match step {
                1 => {
                    let stamped = store.stamp_screenshot_times(now)?;
                    tracing::info!(
                        screenshots = stamped,
                        "format 1 to 2: screenshots given the time of the migration"
                    );
                }
                2 => {
                    let moved = store.move_values_to_segments()?;
                    tracing::info!(
                        values = moved,
                        "format 2 to 3: members' sealed values moved from sled to segment files"
                    );
                    let indexed = store.build_expiry_index()?;
                    tracing::info!(
                        chunks = indexed,
                        "format 2 to 3: the retention sweep's index of days and image references built"
                    );
                }
                other => {
                    return Err(self.corrupt(format!("no migration from format {other}")));
                }
            }
        }
        metadata.format_version = FORMAT_VERSION;
        write_metadata(store, metadata)?;
        store.flush()?;
        let marker = self.path.join(MARKER_FILE);
        let replacement = self.path.join(format!("{MARKER_FILE}.new"));
        let _ = fs::remove_file(&replacement);
        write_private_file(
            &replacement,
            format!("{MARKER_FIRST_LINE}\nformat {FORMAT_VERSION}\n").as_bytes(),
        )?;
        fs::rename(&replacement, &marker).map_err(|source| DataDirectoryError::Io {
            path: marker.clone(),
            source,
        })?;
        sync_directory(&self.path)?;
        tracing::warn!(
            path = %self.path.display(),
            from = format,
            to = FORMAT_VERSION,
            "the data directory was migrated to this version's format; older versions of datatrust will refuse it"
        );
        Ok(())
    }

    fn create(self, origin: &Origin, now: UnixSeconds) -> Result<OpenedTrust, DataDirectoryError> {
        // Clear what an interrupted initialisation left, except our own lock.
        for name in INITIALISATION_NAMES {
            if name == LOCK_FILE {
                continue;
            }
            let target = self.path.join(name);
            let removed = if target.is_dir() {
                fs::remove_dir_all(&target)
            } else {
                fs::remove_file(&target)
            };
            match removed {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(DataDirectoryError::Io {
                        path: target,
                        source,
                    });
                }
            }
        }
        if self.keys != self.path.join(KEYS_DIRECTORY)
            && [LOG_KEY_FILE, LICENSE_KEY_FILE, DATA_KEY_FILE]
                .iter()
                .any(|name| self.keys.join(name).exists())
        {
            return Err(DataDirectoryError::Corrupt {
                path: self.keys.clone(),
                message: "this key directory already holds a trust's keys, and the data directory \
                          holds no trust: give the data directory of the trust these keys are \
                          for, or an empty key directory for a new trust"
                    .into(),
            });
        }
        write_private_file(&self.path.join(INITIALISING_FILE), b"")?;
        create_private_directory(&self.keys)?;

        let log_signer = NoteSigner::new(origin.as_str(), random_seed())
            .map_err(|error| self.corrupt(error.to_string()))?;
        let license_signer = NoteSigner::new(&origin.license_key_name(), random_seed())
            .map_err(|error| self.corrupt(error.to_string()))?;
        let trustee_signer = NoteSigner::new("datatrust-trustee", random_seed())
            .map_err(|error| self.corrupt(error.to_string()))?;
        write_private_file(
            &self.keys.join(LOG_KEY_FILE),
            format!("{}\n", log_signer.to_private_text()).as_bytes(),
        )?;
        write_private_file(
            &self.keys.join(LICENSE_KEY_FILE),
            format!("{}\n", license_signer.to_private_text()).as_bytes(),
        )?;
        let trustee_key_path = self.path.join(INITIAL_TRUSTEE_KEY_FILE);
        write_private_file(
            &trustee_key_path,
            format!("{}\n", trustee_signer.to_private_text()).as_bytes(),
        )?;

        let data_key = self.create_data_key()?;
        let store = SledStore::open(&self.path.join(DATABASE_DIRECTORY), data_key)?;
        let metadata = TrustMetadata {
            origin: origin.clone(),
            created_at: now,
            format_version: FORMAT_VERSION,
            data_key_check: Some(data_key_check(&data_key)),
            predecessor_checkpoint: None,
        };
        write_metadata(&store, &metadata)?;
        let trustee = Principal::new_active(
            trustee_signer.public_key(),
            Role::Trustee,
            DisplayName::parse("Initial trustee", "display_name")
                .map_err(|error| self.corrupt(error.to_string()))?,
            now,
            random_seed(),
        );
        if store.insert_principal(&trustee)? != PrincipalInsert::Inserted {
            return Err(self.corrupt("the new database already held the first trustee".into()));
        }
        store.flush()?;

        // The marker goes last: only now is the directory a trust.
        write_private_file(
            &self.path.join(MARKER_FILE),
            format!("{MARKER_FIRST_LINE}\nformat {FORMAT_VERSION}\n").as_bytes(),
        )?;
        fs::remove_file(self.path.join(INITIALISING_FILE)).map_err(|source| {
            DataDirectoryError::Io {
                path: self.path.join(INITIALISING_FILE),
                source,
            }
        })?;
        sync_directory(&self.path)?;
        Ok(OpenedTrust {
            directory: self,
            store,
            metadata,
            log_signer,
            license_signer,
            created_trustee_key: Some(trustee_key_path),
            migrated_from: None,
        })
    }

    /// The data key, if its file exists. It is never made here: a missing key is either a
    /// trust from before telemetry or a loss, and only the caller can tell which.
    fn existing_data_key(&self) -> Result<Option<[u8; 32]>, DataDirectoryError> {
        let path = self.keys.join(DATA_KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                hex_decode(text.trim())
                    .map(Some)
                    .ok_or_else(|| DataDirectoryError::KeyMismatch {
                        path: path.clone(),
                        message: "the data key is not 64 hex digits; restore it from your backup"
                            .into(),
                    })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DataDirectoryError::Io { path, source }),
        }
    }

    fn create_data_key(&self) -> Result<[u8; 32], DataDirectoryError> {
        let key = random_seed();
        let text: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
        write_private_file(
            &self.keys.join(DATA_KEY_FILE),
            format!("{text}\n").as_bytes(),
        )?;
        Ok(key)
    }

    fn read_signer(
        &self,
        relative: &str,
        expected_name: &str,
    ) -> Result<NoteSigner, DataDirectoryError> {
        let path = self.keys.join(relative);
        let text = fs::read_to_string(&path).map_err(|source| DataDirectoryError::Io {
            path: path.clone(),
            source,
        })?;
        let signer = NoteSigner::parse(&text).map_err(|error| DataDirectoryError::Corrupt {
            path: path.clone(),
            message: error.to_string(),
        })?;
        if signer.name() != expected_name {
            return Err(DataDirectoryError::Corrupt {
                path,
                message: format!("key name is {}, expected {expected_name}", signer.name()),
            });
        }
        Ok(signer)
    }

    fn corrupt(&self, message: String) -> DataDirectoryError {
        DataDirectoryError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum DirectoryState {
    Empty,
    Initialised { format: u32 },
    InterruptedInitialisation,
    Foreign,
}

fn inspect(path: &Path) -> Result<DirectoryState, DataDirectoryError> {
    let io = |source| DataDirectoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let marker_path = path.join(MARKER_FILE);
    if path.join(INITIALISING_FILE).exists() {
        return Ok(DirectoryState::InterruptedInitialisation);
    }
    match fs::read_to_string(&marker_path) {
        Ok(marker) => {
            let mut lines = marker.lines();
            let first = lines.next().unwrap_or_default();
            let format = lines.next().unwrap_or_default();
            if first != MARKER_FIRST_LINE {
                return Err(DataDirectoryError::IncompatibleFormat {
                    path: path.to_path_buf(),
                    found: "unknown".into(),
                });
            }
            let found = format.strip_prefix("format ").unwrap_or(format);
            match found.parse::<u32>() {
                Ok(format) if (OLDEST_MIGRATED_FORMAT..=FORMAT_VERSION).contains(&format) => {
                    Ok(DirectoryState::Initialised { format })
                }
                _ => Err(DataDirectoryError::IncompatibleFormat {
                    path: path.to_path_buf(),
                    found: found.to_owned(),
                }),
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut entries = fs::read_dir(path).map_err(io)?;
            match entries.next() {
                None => Ok(DirectoryState::Empty),
                Some(entry) => {
                    // A lock file alone is what a start that found the directory empty leaves.
                    let only_lock =
                        entry.map_err(io)?.file_name() == LOCK_FILE && entries.next().is_none();
                    Ok(if only_lock {
                        DirectoryState::Empty
                    } else {
                        DirectoryState::Foreign
                    })
                }
            }
        }
        Err(source) => Err(io(source)),
    }
}

fn lock(path: &Path) -> Result<File, DataDirectoryError> {
    let lock_path = path.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|source| DataDirectoryError::Io {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(DataDirectoryError::Locked {
            path: path.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(DataDirectoryError::Io {
            path: lock_path,
            source,
        }),
    }
}

fn write_metadata(store: &SledStore, metadata: &TrustMetadata) -> Result<(), StoreError> {
    store
        .database()
        .open_tree(METADATA)
        .map_err(store_error)?
        .insert(METADATA_KEY, encode(metadata)?)
        .map_err(store_error)?;
    Ok(())
}

/// Every file of the trust is its user's alone (0600, directories 0700). Keys that others
/// could read are refused, naming the file, since they may already have been copied; the
/// rest (the database, members' wrapped keys) is tightened in place with a warning.
fn check_private_files(path: &Path, keys: &Path) -> Result<(), DataDirectoryError> {
    let io = |path: &Path, source| DataDirectoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    for key in [LOG_KEY_FILE, LICENSE_KEY_FILE, DATA_KEY_FILE] {
        let key_path = keys.join(key);
        match fs::metadata(&key_path) {
            Ok(found) => {
                let mode = found.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(DataDirectoryError::KeyExposed {
                        path: key_path,
                        access: if mode & 0o022 != 0 { "written" } else { "read" },
                        mode,
                    });
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(io(&key_path, source)),
        }
    }
    let mut pending = vec![path.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in fs::read_dir(&directory).map_err(|source| io(&directory, source))? {
            let entry = entry.map_err(|source| io(&directory, source))?;
            let entry_path = entry.path();
            let found =
                fs::symlink_metadata(&entry_path).map_err(|source| io(&entry_path, source))?;
            if found.file_type().is_symlink() {
                continue;
            }
            let wanted = if found.is_dir() {
                pending.push(entry_path.clone());
                0o700
            } else {
                0o600
            };
            let mode = found.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %entry_path.display(), mode = format!("{mode:o}"), "tightening permissions: others could reach this file");
                fs::set_permissions(&entry_path, fs::Permissions::from_mode(wanted))
                    .map_err(|source| io(&entry_path, source))?;
            }
        }
    }
    Ok(())
}

fn read_metadata(store: &SledStore) -> Result<Option<TrustMetadata>, StoreError> {
    store
        .database()
        .open_tree(METADATA)
        .map_err(store_error)?
        .get(METADATA_KEY)
        .map_err(store_error)?
        .map(|bytes| decode(&bytes))
        .transpose()
}

fn hex_decode(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(bytes)
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    seed
}

fn create_private_directory(path: &Path) -> Result<(), DataDirectoryError> {
    let io = |source| DataDirectoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(path).map_err(io)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io)
}

/// Writes a new file readable by its owner only, synced before it returns.
pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), DataDirectoryError> {
    let io = |source| DataDirectoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    if let Some(parent) = path.parent() {
        sync_directory(parent)?;
    }
    Ok(())
}

fn sync_directory(path: &Path) -> Result<(), DataDirectoryError> {
    File::open(path)
        .and_then(|directory| directory.sync_all())
        .map_err(|source| DataDirectoryError::Io {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::parse("trust.test").unwrap()
    }

    #[test]
    fn creates_then_reopens_the_same_trust() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("data");
        let created =
            DataDirectory::open_or_create(&path, None, &origin(), UnixSeconds(1)).unwrap();
        let trustee_key = created.created_trustee_key.clone().unwrap();
        let mode = fs::metadata(&trustee_key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let log_mode = fs::metadata(path.join(KEYS_DIRECTORY).join(LOG_KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(log_mode, 0o600);
        let log_vkey = created.log_signer.verifier();
        drop(created);

        let reopened =
            DataDirectory::open_or_create(&path, Some(&origin()), &origin(), UnixSeconds(2))
                .unwrap();
        assert!(reopened.created_trustee_key.is_none());
        assert_eq!(reopened.log_signer.verifier(), log_vkey);
        assert_eq!(reopened.metadata.created_at, UnixSeconds(1));
        let trustee_text = fs::read_to_string(trustee_key).unwrap();
        let trustee = NoteSigner::parse(&trustee_text).unwrap();
        let principal = reopened
            .store
            .principal(&trustee.public_key())
            .unwrap()
            .unwrap();
        assert_eq!(principal.role, Role::Trustee);
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_it() {
        let directory = tempfile::tempdir().unwrap();
        let _first =
            DataDirectory::open_or_create(directory.path(), None, &origin(), UnixSeconds(1))
                .unwrap();
        let error =
            DataDirectory::open_or_create(directory.path(), None, &origin(), UnixSeconds(1))
                .unwrap_err();
        assert!(
            matches!(error, DataDirectoryError::Locked { .. }),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_foreign_directory_and_an_incompatible_format() {
        let directory = tempfile::tempdir().unwrap();
        fs::write(directory.path().join("notes.txt"), "hello").unwrap();
        let error =
            DataDirectory::open_or_create(directory.path(), None, &origin(), UnixSeconds(1))
                .unwrap_err();
        assert!(
            matches!(error, DataDirectoryError::NotADataDirectory { .. }),
            "{error}"
        );
        // Nothing was written into the foreign directory.
        assert_eq!(fs::read_dir(directory.path()).unwrap().count(), 1);

        let other = tempfile::tempdir().unwrap();
        drop(DataDirectory::open_or_create(other.path(), None, &origin(), UnixSeconds(1)).unwrap());
        fs::write(
            other.path().join(MARKER_FILE),
            "datatrust data directory\nformat 99\n",
        )
        .unwrap();
        let error = DataDirectory::open_or_create(other.path(), None, &origin(), UnixSeconds(1))
            .unwrap_err();
        assert!(error.to_string().contains("format 99"), "{error}");
    }

    #[test]
    fn refuses_another_origin_for_an_existing_trust() {
        let directory = tempfile::tempdir().unwrap();
        drop(
            DataDirectory::open_or_create(directory.path(), None, &origin(), UnixSeconds(1))
                .unwrap(),
        );
        let other = Origin::parse("other.test").unwrap();
        let error = DataDirectory::open_or_create(
            directory.path(),
            Some(&other),
            &origin(),
            UnixSeconds(1),
        )
        .unwrap_err();
        assert!(
            matches!(error, DataDirectoryError::OriginMismatch { .. }),
            "{error}"
        );
    }

    #[test]
    fn an_interrupted_initialisation_starts_again() {
        let directory = tempfile::tempdir().unwrap();
        fs::write(directory.path().join(INITIALISING_FILE), "").unwrap();
        fs::create_dir(directory.path().join(KEYS_DIRECTORY)).unwrap();
        fs::write(
            directory.path().join(KEYS_DIRECTORY).join(LOG_KEY_FILE),
            "half written",
        )
        .unwrap();
        let opened =
            DataDirectory::open_or_create(directory.path(), None, &origin(), UnixSeconds(1))
                .unwrap();
        assert!(opened.created_trustee_key.is_some());
        assert!(!directory.path().join(INITIALISING_FILE).exists());
        assert!(directory.path().join(MARKER_FILE).exists());
    }
}
