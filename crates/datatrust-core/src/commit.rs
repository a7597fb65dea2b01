//! One commit path. A state change is *decided*, a pure function of what it read (each read
//! with the version of the stored bytes), the command and `now`, into a [`Decision`]: the log
//! entries to append, the typed writes to apply, and the reads it depends on. One place
//! commits decisions: the log's sequencer, which appends the entries and applies the writes
//! in one storage transaction, many decisions per flush, and refuses a decision whose reads
//! changed since (`CommitError::Conflict`), which is then decided again on fresh state.
//!
//! Every state change of the trust takes this path; no lock is held across a decision. A
//! rule that spans many keys is kept true by a key every decision under it reads and writes
//! (a guard: e.g. one per licensee's duties, one per member's payouts), or by a state that
//! stops the competing changes first (a vote being closed refuses ballots).

use crate::governance::Consent;
use crate::log_entry::LogEntry;
use crate::store::{Invitation, RecordKind, RecordWrite, StoreError};
use crate::{CollectorAuthorization, Principal, PublicKey};

/// A stored value's version: the SHA-256 of its bytes (`None`: absent). Any write that
/// changes the bytes, by any writer, changes the version.
pub fn version_of(value: Option<&[u8]>) -> Option<[u8; 32]> {
    value.map(|bytes| {
        use sha2::Digest as _;
        sha2::Sha256::digest(bytes).into()
    })
}

/// A read a decision depends on: the bytes under `key` in `table` had `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRead {
    pub table: &'static str,
    pub key: Vec<u8>,
    pub version: Option<[u8; 32]>,
}

/// One write in a backend's terms: `value` under `key` in `table` (`None` deletes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableWrite {
    pub table: &'static str,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A typed write to the trust's state; the store says how it is stored (`StateTables::encode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A principal, new or changed (its role never changes).
    Principal(Principal),
    Invitation(Invitation),
    Consent {
        member: PublicKey,
        consent: Consent,
    },
    CollectorAuthorized(CollectorAuthorization),
    CollectorRevoked {
        member: PublicKey,
        collector: PublicKey,
    },
    /// A record as its JSON (`None` deletes it), for records that do not hold the index
    /// of the entry that logged them.
    Record {
        kind: RecordKind,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    },
    /// A payment; its `log_index` is set at commit, to the decision's first entry's.
    Payment(crate::compensation::PaymentRecord),
    /// A revoked license; its revocation's `log_index` is set at commit, likewise.
    LicenseRevoked(crate::governance::LicenseRecord),
    /// A record as JSON whose field at the JSON pointer `index_at` (e.g. `/log_index`) is set
    /// at commit to the index of the decision's entry number `entry` (0: its first).
    RecordWithIndex {
        kind: RecordKind,
        key: Vec<u8>,
        value: serde_json::Value,
        index_at: &'static str,
        entry: u64,
    },
}

impl Write {
    /// A write of a record (`Record`, `RecordWithIndex`, `LicenseRevoked`, `Payment`) as its
    /// kind, key and JSON bytes (`None` deletes), any log index set from `first_index`;
    /// `None` for the writes a backend stores in tables of its own (principals,
    /// invitations, consents, authorisations). Every backend encodes records through this.
    pub fn record_at(&self, first_index: u64) -> Result<Option<RecordWrite>, StoreError> {
        Ok(Some(match self {
            Write::Record { kind, key, value } => (*kind, key.clone(), value.clone()),
            Write::RecordWithIndex {
                kind,
                key,
                value,
                index_at,
                entry,
            } => {
                let mut value = value.clone();
                let slot = value.pointer_mut(index_at).ok_or_else(|| {
                    StoreError::new(format!("a {} record has no {index_at}", kind.name()))
                })?;
                *slot = (first_index + entry).into();
                (*kind, key.clone(), Some(json_bytes(&value)?))
            }
            Write::LicenseRevoked(license) => {
                let mut license = license.clone();
                if let crate::governance::LicenseStatus::Revoked { log_index, .. } =
                    &mut license.status
                {
                    *log_index = first_index;
                }
                let key = license.id.as_bytes().to_vec();
                (RecordKind::License, key, Some(json_bytes(&license)?))
            }
            Write::Payment(payment) => {
                let mut payment = payment.clone();
                payment.log_index = first_index;
                let key = payment.reference.as_bytes().to_vec();
                (RecordKind::Payment, key, Some(json_bytes(&payment)?))
            }
            Write::Principal(_)
            | Write::Invitation(_)
            | Write::Consent { .. }
            | Write::CollectorAuthorized(_)
            | Write::CollectorRevoked { .. } => return Ok(None),
        }))
    }
}

fn json_bytes<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value)
        .map_err(|error| StoreError::new(format!("encoding a record: {error}")))
}

/// A record's JSON as a write (`Write::Record`).
pub(crate) fn record_write<T: serde::Serialize>(
    kind: RecordKind,
    key: &[u8],
    value: &T,
) -> Result<Write, crate::registry::DomainError> {
    Ok(Write::Record {
        kind,
        key: key.to_vec(),
        value: Some(crate::governance::encode(value)?),
    })
}

/// A record whose field at `index_at` (a JSON pointer) is its decision's entry number
/// `entry`'s index, set at commit.
pub(crate) fn indexed_write<T: serde::Serialize>(
    kind: RecordKind,
    key: &[u8],
    value: &T,
    index_at: &'static str,
    entry: u64,
) -> Result<Write, crate::registry::DomainError> {
    let value = serde_json::to_value(value).map_err(|error| {
        crate::registry::DomainError::Store(StoreError::new(format!(
            "encoding a {} record: {error}",
            kind.name()
        )))
    })?;
    Ok(Write::RecordWithIndex {
        kind,
        key: key.to_vec(),
        value,
        index_at,
        entry,
    })
}

/// The read and the write of a guard (`RecordKind::Guard`): a decision under a rule that
/// spans many keys (a license's run count, a member's balance) reads the rule's guard and
/// bumps it, so two decisions under the same rule conflict and one is decided again.
pub(crate) fn guard<S: StateTables + ?Sized>(
    store: &S,
    key: &[u8],
) -> Result<(TableRead, Write), crate::registry::DomainError> {
    let (stored, read) = store.read_record(RecordKind::Guard, key)?;
    let count: u64 = stored
        .map(|bytes| crate::governance::decode(&bytes))
        .transpose()?
        .unwrap_or(0);
    Ok((read, record_write(RecordKind::Guard, key, &(count + 1))?))
}

/// What a command decided: the entries that log it, the writes that apply it, the reads
/// it was decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub entries: Vec<LogEntry>,
    pub writes: Vec<Write>,
    pub reads: Vec<TableRead>,
}

/// Why a commit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A read changed since the decision; nothing was done. Decide again.
    #[error("the state changed since it was read; decide again")]
    Conflict,
    #[error("{0}")]
    Failed(String),
}

/// The versioned reads and the encodings of the aggregates on the commit path, implemented
/// by each storage backend.
pub trait StateTables {
    /// A principal, with the read it is.
    fn read_principal(&self, key: &PublicKey)
    -> Result<(Option<Principal>, TableRead), StoreError>;
    /// An invitation by its code's hash, with the read it is.
    fn read_invitation(
        &self,
        code_hash: &[u8; 32],
    ) -> Result<(Option<Invitation>, TableRead), StoreError>;
    /// A member's consent to one purpose, with the read it is.
    fn read_consent(
        &self,
        member: &PublicKey,
        purpose: &str,
    ) -> Result<(Option<Consent>, TableRead), StoreError>;
    /// A member's authorisation of one collector, with the read it is.
    fn read_collector_authorization(
        &self,
        member: &PublicKey,
        collector: &PublicKey,
    ) -> Result<(Option<CollectorAuthorization>, TableRead), StoreError>;
    /// A record's JSON, with the read it is.
    fn read_record(
        &self,
        kind: RecordKind,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, TableRead), StoreError>;
    /// The stored bytes under `key` in `table`, to check a read's version.
    fn table_get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// How a write is stored, given the index of the decision's first log entry.
    fn encode(&self, write: &Write, first_index: u64) -> Result<Vec<TableWrite>, StoreError>;
    /// Applies writes durably, for journals that commit outside the log's sequencer
    /// (`MemoryJournal`).
    fn apply(&self, writes: &[TableWrite]) -> Result<(), StoreError>;
}

impl<T: StateTables + ?Sized> StateTables for std::sync::Arc<T> {
    fn read_principal(
        &self,
        key: &PublicKey,
    ) -> Result<(Option<Principal>, TableRead), StoreError> {
        (**self).read_principal(key)
    }
    fn read_invitation(
        &self,
        code_hash: &[u8; 32],
    ) -> Result<(Option<Invitation>, TableRead), StoreError> {
        (**self).read_invitation(code_hash)
    }
    fn read_consent(
        &self,
        member: &PublicKey,
        purpose: &str,
    ) -> Result<(Option<Consent>, TableRead), StoreError> {
        (**self).read_consent(member, purpose)
    }
    fn read_collector_authorization(
        &self,
        member: &PublicKey,
        collector: &PublicKey,
    ) -> Result<(Option<CollectorAuthorization>, TableRead), StoreError> {
        (**self).read_collector_authorization(member, collector)
    }
    fn read_record(
        &self,
        kind: RecordKind,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, TableRead), StoreError> {
        (**self).read_record(kind, key)
    }
    fn table_get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).table_get(table, key)
    }
    fn encode(&self, write: &Write, first_index: u64) -> Result<Vec<TableWrite>, StoreError> {
        (**self).encode(write, first_index)
    }
    fn apply(&self, writes: &[TableWrite]) -> Result<(), StoreError> {
        (**self).apply(writes)
    }
}

/// A journal whose log is a list in memory and which commits to `store` under one lock: the
/// commit path for tests of the rules, without a log on disk.
pub struct MemoryJournal<S> {
    store: S,
    entries: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl<S> MemoryJournal<S> {
    pub fn new(store: S) -> MemoryJournal<S> {
        MemoryJournal {
            store,
            entries: std::sync::Mutex::default(),
        }
    }

    /// The entries committed so far, encoded.
    pub fn entries(&self) -> Vec<Vec<u8>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl<S: StateTables + Send + Sync> crate::registry::Journal for MemoryJournal<S> {
    fn commit(
        &self,
        entries: &[LogEntry],
        reads: Vec<TableRead>,
        writes: crate::registry::StateWrites,
    ) -> Result<u64, CommitError> {
        // One commit at a time: the check of the reads holds until the writes are applied.
        let mut log = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for read in &reads {
            let stored = self
                .store
                .table_get(read.table, &read.key)
                .map_err(|error| CommitError::Failed(error.to_string()))?;
            if version_of(stored.as_deref()) != read.version {
                return Err(CommitError::Conflict);
            }
        }
        let first = log.len() as u64;
        let writes = writes(first).map_err(CommitError::Failed)?;
        self.store
            .apply(&writes)
            .map_err(|error| CommitError::Failed(error.to_string()))?;
        log.extend(entries.iter().map(LogEntry::encode));
        Ok(first)
    }
}
