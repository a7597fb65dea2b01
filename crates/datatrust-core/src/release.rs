//! Releases: the dataset a license yields. Built from the records of members who consent to
//! the license's purpose at the moment of release, in the license's categories and window,
//! transformed as the terms require, members pseudonymised per license. Committed by a
//! Merkle root over per-member contribution leaves, logged before it is served.
//!
//! - pseudonym = hex(SHA-256("datatrust pseudonym v1\n" || secret || license id || key))[..32]:
//!   unrelated across licenses without the trust's secret;
//! - a record is one JSON line `{"member": pseudonym, "time_ms", "application", "kind"}`;
//! - a member's records root is the RFC 6962 root over their records (in order);
//! - release commitment = SHA-256("datatrust release commitment v1\n" || salt || key ||
//!   release id): the member, who knows their salt, recognises it; nobody else can link it;
//! - contribution leaf = `datatrust contribution v1\n<commitment hex>\n<count>\n<records root hex>\n`;
//! - the release root is the RFC 6962 root over the contribution leaves, in member-key order.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::{Event, EventKind};
use crate::governance::{LicenseStatus, TrainingUseRecord};
use crate::license::License;
use crate::log_entry::{LogEntry, subject};
use crate::merkle::hash::{Hash, leaf_hash, root_of};
use crate::merkle::proof::{InMemoryTree, inclusion_proof};
use crate::registry::{DomainError, Journal, Logged, Refusal, Registry, Subject, require_role};
use crate::store::{EventStore, RecordKind, RecordStore, StoreError, TrustStore};
use crate::terms::Policy;
use crate::{Principal, PublicKey, Role, UnixSeconds};

/// Most records in one streamed message.
pub const RECORDS_PER_MESSAGE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePart {
    pub member: PublicKey,
    pub commitment: String,
    pub count: u64,
    pub records_root: String,
    /// Records per data category (what per-record fees are charged on).
    #[serde(default)]
    pub categories: std::collections::BTreeMap<String, u64>,
}

impl ReleasePart {
    pub fn leaf(&self) -> Vec<u8> {
        contribution_leaf(&self.commitment, self.count, &self.records_root)
    }
}

/// What anyone may know about a release (the parts name members only to the trust).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecordMeta {
    pub id: String,
    pub license_id: String,
    pub licensee: PublicKey,
    pub parts: Vec<ReleasePart>,
    pub root: String,
    pub records: u64,
    pub created_at: UnixSeconds,
    pub log_index: u64,
}

pub fn contribution_leaf(commitment_hex: &str, count: u64, records_root_hex: &str) -> Vec<u8> {
    format!("datatrust contribution v1\n{commitment_hex}\n{count}\n{records_root_hex}\n")
        .into_bytes()
}

pub fn pseudonym(secret: &[u8; 32], license_id: &str, member: &PublicKey) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"datatrust pseudonym v1\n");
    hasher.update(secret);
    hasher.update(license_id.as_bytes());
    hasher.update(member.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

pub fn release_commitment(salt: &[u8; 32], member: &PublicKey, release_id: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"datatrust release commitment v1\n");
    hasher.update(salt);
    hasher.update(member.as_bytes());
    hasher.update(release_id.as_bytes());
    hasher.finalize().into()
}

#[derive(Serialize)]
struct ReleasedRecord<'a> {
    member: &'a str,
    time_ms: i64,
    application: &'a str,
    kind: &'a EventKind,
}

/// The record an event becomes in a release under `policy`, or `None` if the license does
/// not cover it.
pub fn transform(
    event: &Event,
    license: &License,
    policy: &Policy,
    member_pseudonym: &str,
) -> Option<Vec<u8>> {
    let category = event.category();
    if !license.categories.iter().any(|allowed| allowed == category) {
        return None;
    }
    let seconds = event.time_ms.div_euclid(1000);
    if seconds < license.data_from.0 || seconds >= license.data_to.0 {
        return None;
    }
    let rule = policy
        .categories
        .iter()
        .find(|rule| rule.name == category)?;
    let applies = |name: &str| {
        rule.transformations
            .iter()
            .any(|transformation| transformation == name)
    };
    let mut kind = event.kind.clone();
    match &mut kind {
        EventKind::Key {
            password_field: true,
            ..
        } if applies("drop-password-fields") => return None,
        EventKind::Key { character, .. } if applies("drop-typed-characters") => *character = None,
        EventKind::Focus { window_title } if applies("drop-window-titles") => *window_title = None,
        _ => {}
    }
    let time_ms = if applies("coarsen-timestamps-to-second") {
        seconds * 1000
    } else {
        event.time_ms
    };
    let record = ReleasedRecord {
        member: member_pseudonym,
        time_ms,
        application: &event.application,
        kind: &kind,
    };
    serde_json::to_vec(&record).ok()
}

/// One entry of a member's audit: a release with their records, and the uses that used it.
#[derive(Debug, Clone)]
pub struct AuditItem {
    pub release: ReleaseRecordMeta,
    pub part_index: u64,
    pub part: ReleasePart,
    /// RFC 6962 inclusion proof of the member's contribution leaf in the release root.
    pub proof: Vec<Hash>,
    pub license: License,
    pub uses: Vec<TrainingUseRecord>,
}

impl<S: TrustStore + RecordStore + EventStore + Clone, J: Journal> Registry<S, J> {
    fn release_meta(&self, release_id: &str) -> Result<ReleaseRecordMeta, DomainError> {
        self.record(RecordKind::Release, release_id.as_bytes())?
            .ok_or_else(|| {
                DomainError::refused(Refusal::NotFound, Subject::Release, "no such release")
            })
    }

    /// The ids of every release holding `member`'s records, read from the index a page at
    /// a time.
    pub(crate) fn releases_of_member(
        &self,
        member: &PublicKey,
    ) -> Result<Vec<String>, DomainError> {
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = self.records_page(
                RecordKind::MemberRelease,
                member.as_bytes(),
                after,
                1024,
                |_: &String| true,
            )?;
            ids.extend(page);
            match next {
                Some(next) => after = Some(next),
                None => return Ok(ids),
            }
        }
    }

    /// Builds the member → release index for releases stored before it existed, once (a
    /// marker says so; later starts read nothing). Reads a few releases at a time.
    pub fn ensure_member_release_index(&self) -> Result<(), DomainError> {
        if self.index_built(RecordKind::MemberRelease)? {
            return Ok(());
        }
        let mut after = None;
        loop {
            let (page, next) = self.records_page(
                RecordKind::Release,
                b"",
                after,
                16,
                |_: &ReleaseRecordMeta| true,
            )?;
            for release in &page {
                let Some(first) = release.parts.first() else {
                    continue;
                };
                let key = [first.member.as_bytes().as_slice(), release.id.as_bytes()].concat();
                if self
                    .store
                    .get_record(RecordKind::MemberRelease, &key)?
                    .is_none()
                {
                    self.store.write_records(member_release_index(release)?)?;
                }
            }
            match next {
                Some(next) => after = Some(next),
                None => return self.mark_index_built(RecordKind::MemberRelease),
            }
        }
    }

    /// Builds, logs and stores a release under the caller's active license.
    pub fn create_release(
        &self,
        caller: &Principal,
        license_id: &crate::LicenseId,
        pseudonym_secret: &[u8; 32],
        random: [u8; 8],
        now: UnixSeconds,
    ) -> Result<Logged<ReleaseRecordMeta>, DomainError> {
        self.create_release_reporting(
            caller,
            license_id,
            pseudonym_secret,
            random,
            now,
            &|_, _| {},
        )
    }

    /// Whether the caller may have a release under this license now (the checks
    /// `create_release` makes first), without building anything.
    pub fn check_releasable(
        &self,
        caller: &Principal,
        license_id: &crate::LicenseId,
        now: UnixSeconds,
    ) -> Result<(), DomainError> {
        require_role(caller, Role::Licensee, "request releases")?;
        self.releasable(caller, license_id, now).map(drop)
    }

    /// `create_release`, telling `progress(members done, members to do)` as it goes.
    pub fn create_release_reporting(
        &self,
        caller: &Principal,
        license_id: &crate::LicenseId,
        pseudonym_secret: &[u8; 32],
        random: [u8; 8],
        now: UnixSeconds,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Logged<ReleaseRecordMeta>, DomainError> {
        require_role(caller, Role::Licensee, "request releases")?;
        // Checked, built (other changes to the trust go on meanwhile), then checked again and
        // committed with its entry, decided on the license and the licensee's suspension.
        let (license, terms) = self.releasable(caller, license_id, now)?;
        let release_id = hex::encode(random);
        let mut parts = Vec::new();
        let members = self.consenting_members(&license.purpose)?;
        let total = members.len() as u64;
        progress(0, total);
        // The retention in force, as the sweep applies it: nothing past it is released.
        let first_kept_day = crate::retention::first_kept_day(now, self.retention_days()?);
        for (done, member) in members.iter().enumerate() {
            if let Some(part) = self.build_part(
                member,
                &license,
                &terms,
                pseudonym_secret,
                &release_id,
                first_kept_day,
            )? {
                parts.push(part);
            }
            progress(done as u64 + 1, total);
        }
        let leaves: Vec<Hash> = parts.iter().map(|part| leaf_hash(&part.leaf())).collect();
        let root = hex::encode(root_of(&leaves));
        let total: u64 = parts.iter().map(|part| part.count).sum();
        let logged = self.decide(|| {
            let (_, license_read) = self
                .store
                .read_record(RecordKind::License, license.id.as_bytes())?;
            let (_, suspension_read) = self
                .store
                .read_record(RecordKind::Suspension, caller.public_key.as_bytes())?;
            // A revocation, suspension or expiry while building stops the release here.
            self.releasable(caller, license_id, now)?;
            let entry = LogEntry::new("release-published", now)
                .with("release", release_id.clone())
                .with("license", license.id.clone())
                .with("licensee", caller.public_key.to_base64())
                .with("members", parts.len().to_string())
                .with("records", total.to_string())
                .with("root", root.clone());
            let meta = ReleaseRecordMeta {
                id: release_id.clone(),
                license_id: license.id.clone(),
                licensee: caller.public_key,
                parts: parts.clone(),
                root: root.clone(),
                records: total,
                created_at: now,
                log_index: 0,
            };
            let mut writes = vec![crate::commit::indexed_write(
                RecordKind::Release,
                release_id.as_bytes(),
                &meta,
                "/log_index",
                0,
            )?];
            writes.extend(
                member_release_index(&meta)?
                    .into_iter()
                    .map(|(kind, key, value)| crate::commit::Write::Record { kind, key, value }),
            );
            let decision = crate::commit::Decision {
                entries: vec![entry],
                writes,
                reads: vec![license_read, suspension_read],
            };
            Ok((meta, Some(decision)))
        })?;
        let mut logged = logged;
        logged.value.log_index = logged.log_index.unwrap_or_default();
        Ok(logged)
    }

    /// The caller's license and its terms, if a release may be built under it now.
    fn releasable(
        &self,
        caller: &Principal,
        license_id: &str,
        now: UnixSeconds,
    ) -> Result<(License, std::sync::Arc<crate::terms::Terms>), DomainError> {
        let record = self.license(caller, license_id)?;
        if let LicenseStatus::Revoked { reason, .. } = &record.status {
            return Err(DomainError::refused(
                Refusal::FailedPrecondition,
                Subject::License,
                format!("the license is revoked: {reason}"),
            ));
        }
        if let Some(suspension) = self.enforce_duties_of(&caller.public_key, now, true)? {
            return Err(DomainError::refused(
                Refusal::FailedPrecondition,
                Subject::License,
                format!(
                    "your licenses are suspended: {}; trustees lift the suspension",
                    suspension.reason
                ),
            ));
        }
        if let Some(hold) = self.urgent_hold(license_id, now)? {
            return Err(DomainError::FailedPrecondition(hold));
        }
        let license = record.license();
        if !license.is_valid_at(now) {
            return Err(DomainError::refused(
                Refusal::FailedPrecondition,
                Subject::License,
                "the license is not valid now (expired or not yet valid)",
            ));
        }
        let terms = self.terms_of(&license)?;
        Ok((license, terms))
    }

    /// One member's part: their kept events (`retention::first_kept_day`) in the license's
    /// scope, transformed and stored under their key. `None` if nothing of theirs is in
    /// scope, or they were erased meanwhile. Streamed: a page of events in, whole chunks of
    /// records out, the records' root kept as a compact range, so that building holds one
    /// page and one chunk whatever the member's history.
    fn build_part(
        &self,
        member: &Principal,
        license: &License,
        terms: &crate::terms::Terms,
        pseudonym_secret: &[u8; 32],
        release_id: &str,
        first_kept_day: i64,
    ) -> Result<Option<ReleasePart>, DomainError> {
        let member_pseudonym = pseudonym(pseudonym_secret, &license.id, &member.public_key);
        let mut categories = std::collections::BTreeMap::<String, u64>::new();
        let mut root = crate::merkle::hash::CompactRoot::new();
        let mut count = 0u64;
        let mut pending: Vec<Vec<u8>> = Vec::with_capacity(RECORDS_PER_MESSAGE);
        let mut chunks_stored = 0u32;
        let mut after: Option<Vec<u8>> = None;
        // Stored member by member and chunk by chunk. Nothing is served before the release
        // is logged and its metadata stored; a failure later leaves parts that nothing refers
        // to. An erasure after this deletes the part, and streaming skips it.
        let mut store_pending = |pending: &mut Vec<Vec<u8>>| -> Result<bool, DomainError> {
            let stored = self.store.put_release_part(
                &member.public_key,
                release_id,
                chunks_stored,
                pending,
            )?;
            chunks_stored += 1;
            pending.clear();
            Ok(stored)
        };
        loop {
            let page = self
                .store
                .member_events_page(&member.public_key, after.as_deref(), 4096)?;
            for event in page
                .events
                .iter()
                .filter(|event| event.day() >= first_kept_day)
            {
                let Some(record) = transform(event, license, &terms.policy, &member_pseudonym)
                else {
                    continue;
                };
                *categories.entry(event.category().to_owned()).or_default() += 1;
                root.push(leaf_hash(&record));
                count += 1;
                pending.push(record);
                if pending.len() == RECORDS_PER_MESSAGE && !store_pending(&mut pending)? {
                    return Ok(None);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        if count == 0 {
            return Ok(None);
        }
        if !pending.is_empty() && !store_pending(&mut pending)? {
            return Ok(None);
        }
        Ok(Some(ReleasePart {
            member: member.public_key,
            commitment: hex::encode(release_commitment(
                &member.commitment_salt,
                &member.public_key,
                release_id,
            )),
            count,
            records_root: hex::encode(root.root()),
            categories,
        }))
    }

    /// Active members who consent to `purpose` now, in key order.
    pub(crate) fn consenting_members(&self, purpose: &str) -> Result<Vec<Principal>, DomainError> {
        let mut consenting = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list_principals(Some(Role::Member), after.as_ref(), 1000)?;
            for member in &page {
                if member.is_active() && self.consents_to(member, purpose)? {
                    consenting.push(member.clone());
                }
            }
            match page.last() {
                Some(last) if page.len() == 1000 => after = Some(last.public_key),
                _ => return Ok(consenting),
            }
        }
    }

    pub(crate) fn consents_to(
        &self,
        member: &Principal,
        purpose: &str,
    ) -> Result<bool, DomainError> {
        let key = [member.public_key.as_bytes().as_slice(), purpose.as_bytes()].concat();
        Ok(self
            .store
            .get_record(RecordKind::Consent, &key)?
            .map(|bytes| {
                serde_json::from_slice::<crate::governance::Consent>(&bytes)
                    .map(|consent| consent.granted)
                    .unwrap_or(false)
            })
            .unwrap_or(false))
    }

    /// A release's metadata: its licensee and trustees only.
    pub fn release(
        &self,
        caller: &Principal,
        release_id: &crate::ReleaseId,
    ) -> Result<ReleaseRecordMeta, DomainError> {
        if !matches!(caller.role, Role::Trustee | Role::Licensee) {
            return Err(DomainError::PermissionDenied(
                "only the licensee and trustees read releases".into(),
            ));
        }
        let meta = self.release_meta(release_id)?;
        match caller.role {
            Role::Trustee => Ok(meta),
            Role::Licensee if meta.licensee == caller.public_key => Ok(meta),
            Role::Licensee => Err(DomainError::refused(
                Refusal::NotFound,
                Subject::Release,
                "no such release",
            )),
            _ => Err(DomainError::PermissionDenied(
                "only the licensee and trustees read releases".into(),
            )),
        }
    }

    /// One chunk (from 0, `RECORDS_PER_MESSAGE` records each) of a part of a release, for
    /// its licensee or a trustee; `None` past the part's end or once its member is erased.
    /// The license (for a licensee) must still be active: it is re-checked with every chunk,
    /// so a revocation stops a stream. Nothing of an erased member is released again.
    pub fn release_part_records(
        &self,
        caller: &Principal,
        release_id: &crate::ReleaseId,
        part_index: usize,
        chunk: u32,
    ) -> Result<Option<Vec<Vec<u8>>>, DomainError> {
        let meta = self.release(caller, release_id)?;
        if caller.role == Role::Licensee {
            let license = self.license(caller, &meta.license_id)?;
            if license.status != LicenseStatus::Active {
                return Err(DomainError::FailedPrecondition(
                    "license: revoked; the release can no longer be streamed".into(),
                ));
            }
        }
        let part = meta
            .parts
            .get(part_index)
            .ok_or_else(|| DomainError::NotFound("part: no such part of this release".into()))?;
        Ok(self
            .store
            .release_part_chunk(&part.member, release_id, chunk)?)
    }

    /// Every release holding the calling member's records, with the proof of their
    /// contribution leaf in the release root and the training uses that named the release.
    /// One page of them, in release-id order after `after`, at most `limit`, found through
    /// the member → release index; and where the next page starts.
    pub fn my_audit_page(
        &self,
        caller: &Principal,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(Vec<AuditItem>, Option<Vec<u8>>), DomainError> {
        require_role(caller, Role::Member, "audit the use of their data")?;
        let (release_ids, next) = self.records_page(
            RecordKind::MemberRelease,
            caller.public_key.as_bytes(),
            after,
            limit,
            |_: &String| true,
        )?;
        let mut items = Vec::new();
        for release_id in release_ids {
            let Some(release) =
                self.record::<ReleaseRecordMeta>(RecordKind::Release, release_id.as_bytes())?
            else {
                continue;
            };
            let Some(part_index) = release
                .parts
                .iter()
                .position(|part| part.member == caller.public_key)
            else {
                continue;
            };
            // The uses that named this release are under its license: read those only.
            let uses: Vec<TrainingUseRecord> = self.records(
                RecordKind::TrainingUse,
                &[release.license_id.as_bytes(), &[0]].concat(),
            )?;
            let mut tree = InMemoryTree::new();
            for part in &release.parts {
                tree.push(leaf_hash(&part.leaf()));
            }
            let proof = inclusion_proof(&tree, part_index as u64, release.parts.len() as u64)
                .map_err(|error| DomainError::Store(StoreError::new(error.to_string())))?;
            let license = self.license(caller, &release.license_id)?.license();
            let release_uses = uses
                .into_iter()
                .filter(|record| {
                    record.accepted
                        && crate::governance::TrainingReport::parse(&record.report)
                            .map(|report| report.data.contains(&release.id))
                            .unwrap_or(false)
                })
                .collect();
            items.push(AuditItem {
                part: release.parts[part_index].clone(),
                part_index: part_index as u64,
                proof,
                license,
                uses: release_uses,
                release,
            });
        }
        Ok((items, next))
    }

    /// The caller's log subject and commitment salt: what a member needs to recognise their
    /// own commitments offline.
    pub fn my_commitment_salt(
        &self,
        caller: &Principal,
    ) -> Result<(String, [u8; 32]), DomainError> {
        Ok((subject(caller), caller.commitment_salt))
    }
}

/// The index writes that let each member of `release` find it.
fn member_release_index(
    release: &ReleaseRecordMeta,
) -> Result<Vec<crate::store::RecordWrite>, DomainError> {
    release
        .parts
        .iter()
        .map(|part| {
            Ok((
                RecordKind::MemberRelease,
                [part.member.as_bytes().as_slice(), release.id.as_bytes()].concat(),
                Some(crate::governance::encode(&release.id)?),
            ))
        })
        .collect()
}
