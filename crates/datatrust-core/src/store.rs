//! The storage the domain needs, as a trait the core defines and storage crates implement.
//!
//! Contract for every implementation (checked by `store_contract`, run against each one):
//! - every method that changes state returns only once the change is durable: a crash after
//!   it returns loses nothing;
//! - a method that changes several records changes all of them or none (a transaction), and
//!   its preconditions are checked inside that transaction, so two concurrent callers can
//!   never both win (one invitation, one redemption);
//! - expected outcomes (already exists, already redeemed) are values, not errors; `StoreError`
//!   means the storage itself failed.

use serde::{Deserialize, Serialize};

use crate::{CollectorAuthorization, DisplayName, Principal, PublicKey, Role, UnixSeconds};

/// The storage itself failed (I/O, corruption). Never an expected outcome.
#[derive(Debug, thiserror::Error)]
#[error("storage failure: {message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

/// What kind of storage failure: callers answer each differently (INTERNAL, DATA_LOSS,
/// RESOURCE_EXHAUSTED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The storage failed for a reason of its own (I/O, a bug).
    Failed,
    /// Data the trust should hold is missing or damaged: a value that does not decrypt or
    /// decode, a member key gone while the member's data remains.
    DataLoss,
    /// The disk is full: nothing was written; writes resume once space returns.
    DiskFull,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: StoreErrorKind::Failed,
            message: message.into(),
        }
    }

    pub fn data_loss(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: StoreErrorKind::DataLoss,
            message: message.into(),
        }
    }

    pub fn disk_full(message: impl Into<String>) -> StoreError {
        StoreError {
            kind: StoreErrorKind::DiskFull,
            message: message.into(),
        }
    }
}

/// A pending or used invitation. The code itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub code_hash: [u8; 32],
    pub role: Role,
    pub display_name: DisplayName,
    pub created_by: PublicKey,
    pub created_at: UnixSeconds,
    pub expires_at: UnixSeconds,
    pub redeemed_by: Option<PublicKey>,
}

/// What inserting a new principal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalInsert {
    Inserted,
    /// A principal with this key exists already; nothing was changed.
    KeyTaken(Principal),
}

pub trait TrustStore: crate::commit::StateTables + Send + Sync + 'static {
    fn principal(&self, public_key: &PublicKey) -> Result<Option<Principal>, StoreError>;

    /// Principals in public-key order, strictly after `after`, at most `limit` of them.
    fn list_principals(
        &self,
        role: Option<Role>,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<Principal>, StoreError>;

    fn insert_principal(&self, principal: &Principal) -> Result<PrincipalInsert, StoreError>;

    fn insert_invitation(&self, invitation: &Invitation) -> Result<(), StoreError>;

    fn invitation(&self, code_hash: &[u8; 32]) -> Result<Option<Invitation>, StoreError>;

    /// Invitations in code-hash order, strictly after `after`, at most `limit` of them.
    fn list_invitations(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError>;

    fn collectors_of_member(
        &self,
        member: &PublicKey,
    ) -> Result<Vec<CollectorAuthorization>, StoreError>;

    fn members_of_collector(
        &self,
        collector: &PublicKey,
    ) -> Result<Vec<CollectorAuthorization>, StoreError>;

    /// Makes everything written so far durable. Mutating methods already do this; shutdown
    /// calls it once more.
    fn flush(&self) -> Result<(), StoreError>;

    /// True while the store refuses writes for want of disk space.
    fn disk_space_low(&self) -> bool {
        false
    }

    /// Sets the free space below which writes are refused.
    fn set_minimum_free_disk(&self, _bytes: u64) {}
}

/// A shared store is a store: the server holds `Arc<dyn TrustStore>` so that the backend is
/// chosen at start-up, not at compile time.
impl<T: TrustStore + ?Sized> TrustStore for std::sync::Arc<T> {
    fn principal(&self, public_key: &PublicKey) -> Result<Option<Principal>, StoreError> {
        (**self).principal(public_key)
    }
    fn list_principals(
        &self,
        role: Option<Role>,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<Principal>, StoreError> {
        (**self).list_principals(role, after, limit)
    }
    fn insert_principal(&self, principal: &Principal) -> Result<PrincipalInsert, StoreError> {
        (**self).insert_principal(principal)
    }
    fn insert_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        (**self).insert_invitation(invitation)
    }
    fn invitation(&self, code_hash: &[u8; 32]) -> Result<Option<Invitation>, StoreError> {
        (**self).invitation(code_hash)
    }
    fn list_invitations(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError> {
        (**self).list_invitations(after, limit)
    }
    fn collectors_of_member(
        &self,
        member: &PublicKey,
    ) -> Result<Vec<CollectorAuthorization>, StoreError> {
        (**self).collectors_of_member(member)
    }
    fn members_of_collector(
        &self,
        collector: &PublicKey,
    ) -> Result<Vec<CollectorAuthorization>, StoreError> {
        (**self).members_of_collector(collector)
    }
    fn flush(&self) -> Result<(), StoreError> {
        (**self).flush()
    }
    fn disk_space_low(&self) -> bool {
        (**self).disk_space_low()
    }
    fn set_minimum_free_disk(&self, bytes: u64) {
        (**self).set_minimum_free_disk(bytes)
    }
}

/// The kinds of governance record, each its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Terms,
    Ballot,
    Consent,
    LicenseRequest,
    License,
    TrainingUse,
    Release,
    Charge,
    Payment,
    Payout,
    Suspension,
    UsageAccount,
    ChargeShares,
    /// Index: member || release id → release id, for the releases holding the member's
    /// records (a member's audit reads its own releases, not every release).
    MemberRelease,
    /// Index: member || charge id → the member's share of it (currency, amount), so a
    /// member's statement reads their own charges and totals, not every charge's shares.
    MemberShare,
    /// Index: member || payout reference → the payout.
    MemberPayout,
    /// Derived: `active` → the SHA-256 of the terms in force, written when terms are
    /// ratified, so reading the terms in force reads one key, not every version.
    ActiveTerms,
    /// Derived: charge id → what has been paid towards it (a payment reads one key).
    ChargePaid,
    /// Derived: licensee || due time (u64 BE) || charge id → charge id, for each charge not
    /// yet paid in full, so the duty check reads a licensee's earliest unpaid charges only.
    OpenCharge,
    /// Index: licensee || license id → license id, for a licensee's licenses.
    LicenseeLicense,
    /// Guards: a counter per rule that spans many keys (one per member's payouts, one for
    /// proposals), read and bumped by every change under the rule,
    /// so that two such changes never commit on the same state (`commit::guard`).
    Guard,
    /// Member → an erasure logged and not yet finished (`telemetry::PendingErasure`).
    PendingErasure,
    /// Derived: license id → its accepted training runs and the latest one's time
    /// (`compensation::RunTally`), kept as uses commit, so a report's run count and a
    /// license's reporting deadline read one key, not every use.
    RunTally,
    /// A key a principal signs with now that is not its first: key → the principal's first
    /// key (its identity), as JSON (`recovery.rs`).
    KeyBinding,
    /// Member (first key) || new key → trustees' approvals of a recovery not yet at quorum.
    PendingRecovery,
    /// Principal (first key) || log index (u64 BE) → a rotation or recovery of its key,
    /// which the principal's audit lists.
    KeyChange,
    /// Safety action (kind || 0 || subject) → trustees' approvals below the quorum
    /// (`safety.rs`).
    PendingAction,
    /// Generation (u32 BE, from 1) → a license-signing key that replaced the one before
    /// (`LicenseKeyRecord`); generation 0 is the trust's first key, logged at its creation.
    LicenseKey,
}

impl RecordKind {
    pub const ALL: [RecordKind; 28] = [
        RecordKind::Terms,
        RecordKind::Ballot,
        RecordKind::Consent,
        RecordKind::LicenseRequest,
        RecordKind::License,
        RecordKind::TrainingUse,
        RecordKind::Release,
        RecordKind::Charge,
        RecordKind::Payment,
        RecordKind::Payout,
        RecordKind::Suspension,
        RecordKind::UsageAccount,
        RecordKind::ChargeShares,
        RecordKind::MemberRelease,
        RecordKind::MemberShare,
        RecordKind::MemberPayout,
        RecordKind::ActiveTerms,
        RecordKind::ChargePaid,
        RecordKind::OpenCharge,
        RecordKind::LicenseeLicense,
        RecordKind::Guard,
        RecordKind::PendingErasure,
        RecordKind::RunTally,
        RecordKind::KeyBinding,
        RecordKind::PendingRecovery,
        RecordKind::KeyChange,
        RecordKind::PendingAction,
        RecordKind::LicenseKey,
    ];

    /// The table (sled tree) its records live in: `records_<name>`.
    pub fn table(self) -> &'static str {
        match self {
            RecordKind::Terms => "records_terms",
            RecordKind::Ballot => "records_ballots",
            RecordKind::Consent => "records_consents",
            RecordKind::LicenseRequest => "records_license_requests",
            RecordKind::License => "records_licenses",
            RecordKind::TrainingUse => "records_training_uses",
            RecordKind::Release => "records_releases",
            RecordKind::Charge => "records_charges",
            RecordKind::Payment => "records_payments",
            RecordKind::Payout => "records_payouts",
            RecordKind::Suspension => "records_suspensions",
            RecordKind::UsageAccount => "records_usage_accounts",
            RecordKind::ChargeShares => "records_charge_shares",
            RecordKind::MemberRelease => "records_member_releases",
            RecordKind::MemberShare => "records_member_shares",
            RecordKind::MemberPayout => "records_member_payouts",
            RecordKind::ActiveTerms => "records_active_terms",
            RecordKind::ChargePaid => "records_charge_paid",
            RecordKind::OpenCharge => "records_open_charges",
            RecordKind::LicenseeLicense => "records_licensee_licenses",
            RecordKind::Guard => "records_guards",
            RecordKind::PendingErasure => "records_pending_erasures",
            RecordKind::RunTally => "records_run_tallies",
            RecordKind::KeyBinding => "records_key_bindings",
            RecordKind::PendingRecovery => "records_pending_recoveries",
            RecordKind::KeyChange => "records_key_changes",
            RecordKind::PendingAction => "records_pending_actions",
            RecordKind::LicenseKey => "records_license_keys",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Terms => "terms",
            RecordKind::Ballot => "ballots",
            RecordKind::Consent => "consents",
            RecordKind::LicenseRequest => "license_requests",
            RecordKind::License => "licenses",
            RecordKind::TrainingUse => "training_uses",
            RecordKind::Release => "releases",
            RecordKind::Charge => "charges",
            RecordKind::Payment => "payments",
            RecordKind::Payout => "payouts",
            RecordKind::Suspension => "suspensions",
            RecordKind::UsageAccount => "usage_accounts",
            RecordKind::ChargeShares => "charge_shares",
            RecordKind::MemberRelease => "member_releases",
            RecordKind::MemberShare => "member_shares",
            RecordKind::MemberPayout => "member_payouts",
            RecordKind::ActiveTerms => "active_terms",
            RecordKind::ChargePaid => "charge_paid",
            RecordKind::OpenCharge => "open_charges",
            RecordKind::LicenseeLicense => "licensee_licenses",
            RecordKind::Guard => "guards",
            RecordKind::PendingErasure => "pending_erasures",
            RecordKind::RunTally => "run_tallies",
            RecordKind::KeyBinding => "key_bindings",
            RecordKind::PendingRecovery => "pending_recoveries",
            RecordKind::KeyChange => "key_changes",
            RecordKind::PendingAction => "pending_actions",
            RecordKind::LicenseKey => "license_keys",
        }
    }
}

/// A stored record: key and value bytes.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A chunk found in the expiry index: its position in the index (to page from) and its key.
pub type IndexedChunk = (Vec<u8>, Vec<u8>);

/// One write of a `RecordStore::write` batch: `None` deletes.
pub type RecordWrite = (RecordKind, Vec<u8>, Option<Vec<u8>>);

/// Governance records (terms, ballots, consents, license requests, licenses, training uses)
/// as keyed byte values per kind. The core encodes them; a backend stores them: in SQL, one
/// table (kind, key, value). `write` is atomic and durable when it returns. State changes
/// are written through the commit path (`commit::StateTables`); `write_records` only builds
/// derived indexes at start, before the trust serves.
pub trait RecordStore: Send + Sync + 'static {
    fn get_record(&self, kind: RecordKind, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every record of `kind` whose key starts with `prefix`, in key order.
    fn scan_records(&self, kind: RecordKind, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError>;
    /// At most `limit` records of `kind` whose key starts with `prefix` and comes strictly
    /// after `after`, in key order: one page of a list, read without the rest.
    fn scan_records_page(
        &self,
        kind: RecordKind,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError>;
    fn write_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError>;
}

/// Everything the trust stores, as one object the server can hold as `Arc<dyn Store>`.
pub trait Store: TrustStore + RecordStore + EventStore {}
impl<T: TrustStore + RecordStore + EventStore> Store for T {}

impl<T: RecordStore + ?Sized> RecordStore for std::sync::Arc<T> {
    fn get_record(&self, kind: RecordKind, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get_record(kind, key)
    }
    fn scan_records(&self, kind: RecordKind, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        (**self).scan_records(kind, prefix)
    }
    fn scan_records_page(
        &self,
        kind: RecordKind,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        (**self).scan_records_page(kind, prefix, after, limit)
    }
    fn write_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        (**self).write_records(writes)
    }
}

/// Events stored for one member, per day and category: what the member's summary shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    pub day: i64,
    pub category: String,
    pub count: u64,
}

/// What storing one uploaded batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkInsert {
    Stored,
    /// This (member, device, sequence) was stored before; nothing changed.
    Duplicate,
}

/// One page of a member's stored events, in storage order.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<crate::events::Event>,
    /// Where the next page starts (pass it as `after`); `None` when this was the last page.
    pub next: Option<Vec<u8>>,
}

/// The tables of members' telemetry as every backend stores them, sealed: a trust moved to
/// another backend (`datatrust admin migrate`) copies them byte for byte
/// (`EventStore::sealed_rows`, `put_sealed_rows`), never decrypting anything. Keys:
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// member(32) -> the member's key, wrapped under the data key.
    MemberKeys,
    /// member(32) || SHA-256(device)[..8] || sequence (u64 BE) -> sealed events.
    Chunks,
    /// member(32) || day (i64 BE) || category -> count (u64 BE).
    Counts,
    /// member(32) || release id || chunk (u32 BE) -> sealed records.
    ReleaseParts,
    /// member(32) || SHA-256(image) -> sealed image.
    Screenshots,
    /// member(32) || SHA-256(image) -> when the image was stored (i64 BE Unix seconds),
    /// which retention counts from; only for images present.
    ScreenshotTimes,
}

impl SealedTable {
    /// In the order a copy must go: keys before what they open, images before their times.
    pub const ALL: [SealedTable; 6] = [
        SealedTable::MemberKeys,
        SealedTable::Chunks,
        SealedTable::Counts,
        SealedTable::ReleaseParts,
        SealedTable::Screenshots,
        SealedTable::ScreenshotTimes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SealedTable::MemberKeys => "member keys",
            SealedTable::Chunks => "event chunks",
            SealedTable::Counts => "event counts",
            SealedTable::ReleaseParts => "release parts",
            SealedTable::Screenshots => "screenshots",
            SealedTable::ScreenshotTimes => "screenshot times",
        }
    }
}

/// Members' telemetry, encrypted at rest under a key per member. Contract: `put_chunk` is
/// atomic with its counts and durable when it returns; after `erase_member` nothing of the
/// member's events can be read back, by anyone, and their key no longer exists.
pub trait EventStore: Send + Sync + 'static {
    fn put_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[crate::events::Event],
    ) -> Result<ChunkInsert, StoreError>;
    /// Takes back a batch `put_chunk` stored (`events`: what it was given): the chunk goes
    /// and its events leave the counts, together. Whether it was there. Durable on return.
    fn remove_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[crate::events::Event],
    ) -> Result<bool, StoreError>;
    /// Takes back an image `put_screenshot` stored; whether it was there. Durable on return.
    fn remove_screenshot(&self, member: &PublicKey, sha256: &[u8; 32]) -> Result<bool, StoreError>;
    fn member_counts(&self, member: &PublicKey) -> Result<Vec<DayCount>, StoreError>;
    /// Every stored event of the member, decrypted, in storage order. Memory grows with the
    /// member's history: readers that serve it use `member_events_page`.
    fn member_events(&self, member: &PublicKey) -> Result<Vec<crate::events::Event>, StoreError> {
        let mut events = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.member_events_page(member, after.as_deref(), 65_536)?;
            events.extend(page.events);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(events),
            }
        }
    }
    /// The member's events after `after` (a `next` from the previous page; `None` to start),
    /// whole stored chunks until at least `max_events` are read or none are left. A member
    /// whose data is stored but whose key is gone is a `DataLoss` error, never an empty page.
    fn member_events_page(
        &self,
        member: &PublicKey,
        after: Option<&[u8]>,
        max_events: usize,
    ) -> Result<EventPage, StoreError>;
    /// Destroys the member's key and deletes their chunks, counts and release parts; returns
    /// the number of chunks deleted.
    fn erase_member(&self, member: &PublicKey) -> Result<u64, StoreError>;
    /// Stores records of a member's part of a release (transformed records), encrypted under
    /// the member's key, so that erasing the member makes it unreadable too: in chunks of
    /// `release::RECORDS_PER_MESSAGE` from chunk `first_chunk` on (a builder streaming a
    /// part stores whole chunks, the last one excepted). Durable on return. False, storing
    /// nothing, when the member has no key (erased, or never had data).
    fn put_release_part(
        &self,
        member: &PublicKey,
        release_id: &str,
        first_chunk: u32,
        records: &[Vec<u8>],
    ) -> Result<bool, StoreError>;
    /// Stores a screenshot image for a member, encrypted under the member's key, keyed by its
    /// SHA-256, with the time it was stored (what retention counts from for an image no
    /// event refers to); false when it was stored before. Durable on return.
    fn put_screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
        image: &[u8],
        stored_at: UnixSeconds,
    ) -> Result<bool, StoreError>;
    /// Members whose telemetry key exists (something of theirs was stored and they are not
    /// erased), in key order strictly after `after`, at most `limit`.
    fn members_with_data(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<PublicKey>, StoreError>;
    /// Replaces one stored chunk of the member (`key`: the `next` of a page read with
    /// `max_events` 1, which is that one chunk) by `kept`, a part of its events, sealed again
    /// under the same key; deletes it when `kept` is empty. Counts are left to
    /// `expire_counts`. Durable on return.
    fn replace_chunk(
        &self,
        member: &PublicKey,
        key: &[u8],
        kept: &[crate::events::Event],
    ) -> Result<(), StoreError>;
    /// Deletes the member's counts of days before `first_kept_day`; returns how many rows.
    /// Durable on return.
    fn expire_counts(&self, member: &PublicKey, first_kept_day: i64) -> Result<u64, StoreError>;
    /// Deletes the member's screenshots that no kept event refers to (`referenced`) and that
    /// either deleted events referred to (`dropped`) or were stored before `stored_before`;
    /// returns how many. An image whose time is unknown (lost in a crash) is given `now`.
    /// Durable on return.
    fn expire_screenshots(
        &self,
        member: &PublicKey,
        stored_before: UnixSeconds,
        now: UnixSeconds,
        referenced: &std::collections::BTreeSet<[u8; 32]>,
        dropped: &std::collections::BTreeSet<[u8; 32]>,
    ) -> Result<u64, StoreError>;
    /// Deletes the member's part of a release; returns how many stored chunks it had.
    /// Durable on return.
    fn delete_release_part(&self, member: &PublicKey, release_id: &str) -> Result<u64, StoreError>;
    /// Whether this store keeps the expiry index: each chunk's earliest day and each
    /// image's latest referencing day, written with the chunk. With it the retention sweep
    /// reads only the chunks that hold expired days (`chunks_with_days_before`,
    /// `chunk_events`) and expires images without reading any history
    /// (`expire_unreferenced_screenshots`); without it, it reads a member's whole history.
    fn keeps_expiry_index(&self) -> bool {
        false
    }
    /// With the expiry index: keys of the member's chunks whose earliest event is of a day
    /// before `day`, in the index's order strictly after `after` (a position this
    /// returned), at most `limit`; and the position of the last.
    fn chunks_with_days_before(
        &self,
        _member: &PublicKey,
        _day: i64,
        _after: Option<&[u8]>,
        _limit: usize,
    ) -> Result<Vec<IndexedChunk>, StoreError> {
        Err(StoreError::new("this store keeps no expiry index"))
    }
    /// With the expiry index: the events of one of the member's chunks (`key` as
    /// `chunks_with_days_before` gave it); `None` if it is gone.
    fn chunk_events(
        &self,
        _member: &PublicKey,
        _key: &[u8],
    ) -> Result<Option<Vec<crate::events::Event>>, StoreError> {
        Err(StoreError::new("this store keeps no expiry index"))
    }
    /// With the expiry index: deletes the member's images whose every referencing event is
    /// of a day before `first_kept_day` (they are deleted), and those no event refers to
    /// that were stored before `stored_before`; and the index entries of references that
    /// all expired. Returns how many images. The same rule as `expire_screenshots`, from
    /// the index instead of the history.
    fn expire_unreferenced_screenshots(
        &self,
        _member: &PublicKey,
        _first_kept_day: i64,
        _stored_before: UnixSeconds,
        _now: UnixSeconds,
    ) -> Result<u64, StoreError> {
        Err(StoreError::new("this store keeps no expiry index"))
    }
    /// Gives back the disk space of deleted values where the store does not do so itself
    /// (the embedded store's segment files); returns (files removed, bytes freed).
    fn reclaim_space(&self) -> Result<(u64, u64), StoreError> {
        Ok((0, 0))
    }
    /// A member's screenshot, decrypted; `None` if absent or erased.
    fn screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// The SHA-256 of the screenshot images stored for the member, in hash order, strictly
    /// after `after`, at most `limit` of them.
    fn member_screenshots(
        &self,
        member: &PublicKey,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, StoreError>;
    /// One chunk (in order from 0) of a member's part of a release; `None` past the last
    /// chunk, and for every chunk once the member is erased.
    fn release_part_chunk(
        &self,
        member: &PublicKey,
        release_id: &str,
        chunk: u32,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError>;
    /// The rows of `table` as stored (sealed), in key order, strictly after `after`, at most
    /// `limit`: what moving the trust to another backend copies.
    fn sealed_rows(
        &self,
        table: SealedTable,
        _after: Option<&[u8]>,
        _limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        Err(StoreError::new(format!(
            "this store cannot export its {}",
            table.name()
        )))
    }
    /// Stores rows `sealed_rows` gave (from a store sealed under the same data key), durably.
    fn put_sealed_rows(&self, table: SealedTable, _rows: &[KeyValue]) -> Result<(), StoreError> {
        Err(StoreError::new(format!(
            "this store cannot import {}",
            table.name()
        )))
    }
    /// A member's whole part of a release; `None` once the member is erased. Memory grows
    /// with the part: streams read `release_part_chunk`.
    fn release_part(
        &self,
        member: &PublicKey,
        release_id: &str,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let mut records = Vec::new();
        for chunk in 0.. {
            match self.release_part_chunk(member, release_id, chunk)? {
                Some(part) => records.extend(part),
                None if chunk == 0 => return Ok(None),
                None => break,
            }
        }
        Ok(Some(records))
    }
}

impl<T: EventStore + ?Sized> EventStore for std::sync::Arc<T> {
    fn put_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[crate::events::Event],
    ) -> Result<ChunkInsert, StoreError> {
        (**self).put_chunk(member, device_id, sequence, events)
    }
    fn remove_chunk(
        &self,
        member: &PublicKey,
        device_id: &str,
        sequence: u64,
        events: &[crate::events::Event],
    ) -> Result<bool, StoreError> {
        (**self).remove_chunk(member, device_id, sequence, events)
    }
    fn remove_screenshot(&self, member: &PublicKey, sha256: &[u8; 32]) -> Result<bool, StoreError> {
        (**self).remove_screenshot(member, sha256)
    }
    fn member_counts(&self, member: &PublicKey) -> Result<Vec<DayCount>, StoreError> {
        (**self).member_counts(member)
    }
    fn member_events(&self, member: &PublicKey) -> Result<Vec<crate::events::Event>, StoreError> {
        (**self).member_events(member)
    }
    fn erase_member(&self, member: &PublicKey) -> Result<u64, StoreError> {
        (**self).erase_member(member)
    }
    fn put_release_part(
        &self,
        member: &PublicKey,
        release_id: &str,
        first_chunk: u32,
        records: &[Vec<u8>],
    ) -> Result<bool, StoreError> {
        (**self).put_release_part(member, release_id, first_chunk, records)
    }
    fn member_events_page(
        &self,
        member: &PublicKey,
        after: Option<&[u8]>,
        max_events: usize,
    ) -> Result<EventPage, StoreError> {
        (**self).member_events_page(member, after, max_events)
    }
    fn member_screenshots(
        &self,
        member: &PublicKey,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        (**self).member_screenshots(member, after, limit)
    }
    fn release_part_chunk(
        &self,
        member: &PublicKey,
        release_id: &str,
        chunk: u32,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        (**self).release_part_chunk(member, release_id, chunk)
    }
    fn sealed_rows(
        &self,
        table: SealedTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        (**self).sealed_rows(table, after, limit)
    }
    fn put_sealed_rows(&self, table: SealedTable, rows: &[KeyValue]) -> Result<(), StoreError> {
        (**self).put_sealed_rows(table, rows)
    }
    fn put_screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
        image: &[u8],
        stored_at: UnixSeconds,
    ) -> Result<bool, StoreError> {
        (**self).put_screenshot(member, sha256, image, stored_at)
    }
    fn members_with_data(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<PublicKey>, StoreError> {
        (**self).members_with_data(after, limit)
    }
    fn replace_chunk(
        &self,
        member: &PublicKey,
        key: &[u8],
        kept: &[crate::events::Event],
    ) -> Result<(), StoreError> {
        (**self).replace_chunk(member, key, kept)
    }
    fn expire_counts(&self, member: &PublicKey, first_kept_day: i64) -> Result<u64, StoreError> {
        (**self).expire_counts(member, first_kept_day)
    }
    fn expire_screenshots(
        &self,
        member: &PublicKey,
        stored_before: UnixSeconds,
        now: UnixSeconds,
        referenced: &std::collections::BTreeSet<[u8; 32]>,
        dropped: &std::collections::BTreeSet<[u8; 32]>,
    ) -> Result<u64, StoreError> {
        (**self).expire_screenshots(member, stored_before, now, referenced, dropped)
    }
    fn delete_release_part(&self, member: &PublicKey, release_id: &str) -> Result<u64, StoreError> {
        (**self).delete_release_part(member, release_id)
    }
    fn reclaim_space(&self) -> Result<(u64, u64), StoreError> {
        (**self).reclaim_space()
    }
    fn keeps_expiry_index(&self) -> bool {
        (**self).keeps_expiry_index()
    }
    fn chunks_with_days_before(
        &self,
        member: &PublicKey,
        day: i64,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<IndexedChunk>, StoreError> {
        (**self).chunks_with_days_before(member, day, after, limit)
    }
    fn chunk_events(
        &self,
        member: &PublicKey,
        key: &[u8],
    ) -> Result<Option<Vec<crate::events::Event>>, StoreError> {
        (**self).chunk_events(member, key)
    }
    fn expire_unreferenced_screenshots(
        &self,
        member: &PublicKey,
        first_kept_day: i64,
        stored_before: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<u64, StoreError> {
        (**self).expire_unreferenced_screenshots(member, first_kept_day, stored_before, now)
    }
    fn screenshot(
        &self,
        member: &PublicKey,
        sha256: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).screenshot(member, sha256)
    }
}

#[cfg(test)]
mod record_kind_tests {
    use super::RecordKind;

    #[test]
    fn each_kind_has_its_own_table_named_after_it() {
        let mut tables: Vec<&str> = RecordKind::ALL.iter().map(|kind| kind.table()).collect();
        for kind in RecordKind::ALL {
            assert_eq!(kind.table(), format!("records_{}", kind.name()));
        }
        tables.sort_unstable();
        tables.dedup();
        assert_eq!(tables.len(), RecordKind::ALL.len());
    }
}

/// A signed-in session as stored: it survives a restart, and on a database that several
/// nodes share, every node reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredSession {
    pub public_key: PublicKey,
    pub role: Role,
    /// Unix seconds.
    pub expires: i64,
}

/// Where sign-ins are kept: the challenge secret, challenges used, sessions (by the
/// SHA-256 of their token, never the token). Every call re-reads the principal, so a
/// stored session never outlives a deactivation.
pub trait SignInStore: Send + Sync + 'static {
    /// The secret named `name`: the stored one, or `fresh` stored now if there is none.
    fn secret(&self, name: &str, fresh: [u8; 32]) -> Result<[u8; 32], StoreError>;
    /// Marks a challenge used until `expires` (Unix seconds); false when it was used
    /// before. Forgets challenges expired by `now`.
    fn use_challenge(&self, challenge: &[u8], expires: i64, now: i64) -> Result<bool, StoreError>;
    /// Stores a session under its token's hash, ends the key's oldest beyond `keep`, and
    /// forgets sessions expired by `now`.
    fn start_session(
        &self,
        token_hash: &[u8; 32],
        session: StoredSession,
        keep: usize,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The unexpired session stored under a token's hash.
    fn session(&self, token_hash: &[u8; 32], now: i64)
    -> Result<Option<StoredSession>, StoreError>;
}
