//! One commit path. A state change is *decided*, a pure function of what it read (each read
//! with the version of the stored bytes), the command and `now`, into a [`Decision`]: the log
//! entries to append, the typed writes to apply, and the reads it depends on. One place
//! commits decisions: the log's sequencer, which appends the entries and applies the writes
//! in one storage transaction, many decisions per flush, and refuses a decision whose reads
//! changed since (`CommitError::Conflict`), which is then decided again on fresh state.
//!
//! Moved to this path so far: principals and invitations' redemption, consents, collector
//! authorisations, payments, no-use declarations, lifting suspensions, license requests,
//! denials and revocations, terms proposals,
//! closing votes and ratification (the other aggregates still change under the registry's writer lock; see
//! ARCHITECTURE.md).

use crate::governance::Consent;
use crate::log_entry::LogEntry;
use crate::store::{Invitation, RecordKind, StoreError};
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
    /// at commit to the index of the decision's first entry.
    RecordWithIndex {
        kind: RecordKind,
        key: Vec<u8>,
        value: serde_json::Value,
        index_at: &'static str,
    },
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
    /// This journal cannot commit state with its entries (test journals); the registry
    /// applies the decision itself under its writer lock.
    #[error("this journal does not commit state")]
    Unsupported,
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
    /// Applies writes durably, for journals that do not commit state themselves (tests).
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
