//! Retention: what the trust deletes, and when.
//!
//! - **Telemetry.** A day's data (events, the day's counts, and screenshots no kept event
//!   refers to) is kept through the terms' `retention_days` after that day (UTC) and deleted
//!   from the start of the next: day D goes at the start of day D + retention_days + 1. Ingest
//!   already refuses events older than the retention, so nothing accepted is due at once. A
//!   screenshot no event refers to counts from the time it was stored.
//! - **Release parts** (the transformed records a release was built from) are deleted
//!   `RELEASE_GRACE_DAYS` after the license they were built for ended (expired, or revoked);
//!   the release's metadata and its logged root stay, so audits and receipts still verify.
//! - **Releases** are built from kept days only (`first_kept_day`).
//!
//! The sweep (`Registry::sweep_retention`) runs with the periodic duties and on a trustee's
//! `EnforceDuties`; it reads one member's chunks at a time and is idempotent.

use std::collections::BTreeSet;

use crate::governance::{LicenseRecord, LicenseStatus};
use crate::registry::{DomainError, Journal, Registry};
use crate::release::ReleaseRecordMeta;
use crate::store::{EventStore, RecordKind, RecordStore, TrustStore};
use crate::telemetry::DEFAULT_RETENTION_DAYS;
use crate::{PublicKey, UnixSeconds};

const SECONDS_PER_DAY: i64 = 86_400;

/// Days a release's parts are kept after its license ended: time for a late report of a run
/// that used it, never for a new use.
pub const RELEASE_GRACE_DAYS: i64 = 30;

/// The first Unix day whose data is still kept at `now`.
pub fn first_kept_day(now: UnixSeconds, retention_days: u32) -> i64 {
    now.0.div_euclid(SECONDS_PER_DAY) - i64::from(retention_days)
}

/// When day `day`'s data is deleted: the start of day `day + retention_days + 1`.
pub fn kept_until(day: i64, retention_days: u32) -> UnixSeconds {
    UnixSeconds((day + i64::from(retention_days) + 1) * SECONDS_PER_DAY)
}

/// What one sweep deleted (counts only: no member is named).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionSweep {
    /// Members whose data was looked at.
    pub members: u64,
    pub events: u64,
    /// Stored chunks deleted whole; `chunks_rewritten` kept some of their events.
    pub chunks: u64,
    pub chunks_rewritten: u64,
    pub day_counts: u64,
    pub screenshots: u64,
    pub release_parts: u64,
    /// Files of deleted values the store removed afterwards (the embedded store's segments
    /// at least half dead), and the bytes that freed on disk.
    pub segments_removed: u64,
    pub bytes_freed: u64,
    /// Members passed over because some of their stored data is damaged (does not
    /// decrypt or decode): the sweep goes on with the others; an operator must look.
    pub members_damaged: u64,
}

impl RetentionSweep {
    /// Whether anything was deleted (or a member passed over), so worth logging.
    pub fn deleted_anything(&self) -> bool {
        self.events
            + self.day_counts
            + self.screenshots
            + self.release_parts
            + self.segments_removed
            + self.members_damaged
            > 0
    }
}

impl<S: TrustStore + RecordStore + EventStore + Clone, J: Journal> Registry<S, J> {
    /// The retention in force: the terms', or `DEFAULT_RETENTION_DAYS` before any.
    pub fn retention_days(&self) -> Result<u32, DomainError> {
        Ok(self
            .active_policy()?
            .map_or(DEFAULT_RETENTION_DAYS, |terms| terms.policy.retention_days))
    }

    /// Deletes what outlived its retention (see the module's rules); says what it deleted.
    pub fn sweep_retention(&self, now: UnixSeconds) -> Result<RetentionSweep, DomainError> {
        let retention_days = self.retention_days()?;
        let first_day = first_kept_day(now, retention_days);
        let mut sweep = RetentionSweep::default();
        let mut after: Option<PublicKey> = None;
        loop {
            let members = self.store.members_with_data(after.as_ref(), 256)?;
            for member in &members {
                // Damaged data of one member (one bad byte) must not stop retention for
                // everyone: she is counted and passed over.
                match self.expire_member(member, first_day, retention_days, now, &mut sweep) {
                    Err(DomainError::Store(error))
                        if error.kind == crate::store::StoreErrorKind::DataLoss =>
                    {
                        sweep.members_damaged += 1;
                    }
                    other => other?,
                }
            }
            match members.last() {
                Some(last) if members.len() == 256 => after = Some(*last),
                _ => break,
            }
        }
        self.expire_release_parts(now, &mut sweep)?;
        // Also what erasures and earlier sweeps left dead.
        (sweep.segments_removed, sweep.bytes_freed) = self.store.reclaim_space()?;
        Ok(sweep)
    }

    fn expire_member(
        &self,
        member: &PublicKey,
        first_day: i64,
        retention_days: u32,
        now: UnixSeconds,
        sweep: &mut RetentionSweep,
    ) -> Result<(), DomainError> {
        let has_old_days = self
            .store
            .member_counts(member)?
            .iter()
            .any(|count| count.day < first_day);
        let stored_before = now.plus_seconds(-i64::from(retention_days) * SECONDS_PER_DAY);
        if self.store.keeps_expiry_index() {
            return self.expire_member_indexed(member, first_day, stored_before, now, sweep);
        }
        // Nothing to do for a member with no day past retention and no screenshot (the
        // common case): her history is not read.
        if !has_old_days && self.store.member_screenshots(member, None, 1)?.is_empty() {
            return Ok(());
        }
        sweep.members += 1;
        // Chunk by chunk (a one-event page is one chunk); the screenshots kept events refer
        // to are kept.
        let mut referenced = BTreeSet::new();
        let mut dropped = BTreeSet::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.store.member_events_page(member, after.as_deref(), 1)?;
            let Some(key) = page.next else {
                // The last chunk comes with no position: none can be left to look at.
                if !page.events.is_empty() {
                    return Err(DomainError::Store(crate::store::StoreError::new(
                        "a page of one chunk came without its position",
                    )));
                }
                break;
            };
            let total = page.events.len();
            let (kept, expired): (Vec<_>, Vec<_>) = page
                .events
                .into_iter()
                .partition(|event| event.day() >= first_day);
            referenced.extend(kept.iter().filter_map(screenshot_of));
            dropped.extend(expired.iter().filter_map(screenshot_of));
            if kept.len() < total {
                self.store.replace_chunk(member, &key, &kept)?;
                sweep.events += (total - kept.len()) as u64;
                if kept.is_empty() {
                    sweep.chunks += 1;
                } else {
                    sweep.chunks_rewritten += 1;
                }
            }
            after = Some(key);
        }
        sweep.day_counts += self.store.expire_counts(member, first_day)?;
        sweep.screenshots +=
            self.store
                .expire_screenshots(member, stored_before, now, &referenced, &dropped)?;
        Ok(())
    }

    /// `expire_member` on a store with the expiry index: only the chunks holding a day
    /// before `first_day` are read, and images expire by the index of their references.
    fn expire_member_indexed(
        &self,
        member: &PublicKey,
        first_day: i64,
        stored_before: UnixSeconds,
        now: UnixSeconds,
        sweep: &mut RetentionSweep,
    ) -> Result<(), DomainError> {
        let mut looked = false;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page =
                self.store
                    .chunks_with_days_before(member, first_day, after.as_deref(), 256)?;
            for (_, key) in &page {
                looked = true;
                let Some(events) = self.store.chunk_events(member, key)? else {
                    continue;
                };
                let total = events.len();
                let kept: Vec<_> = events
                    .into_iter()
                    .filter(|event| event.day() >= first_day)
                    .collect();
                if kept.len() < total {
                    self.store.replace_chunk(member, key, &kept)?;
                    sweep.events += (total - kept.len()) as u64;
                    if kept.is_empty() {
                        sweep.chunks += 1;
                    } else {
                        sweep.chunks_rewritten += 1;
                    }
                }
            }
            // Rewritten chunks leave the range (their earliest day is kept now): each page
            // still starts after the last position read.
            match page.last() {
                Some((position, _)) if page.len() == 256 => after = Some(position.clone()),
                _ => break,
            }
        }
        let counts = self.store.expire_counts(member, first_day)?;
        let images =
            self.store
                .expire_unreferenced_screenshots(member, first_day, stored_before, now)?;
        if looked || counts > 0 || images > 0 {
            sweep.members += 1;
        }
        sweep.day_counts += counts;
        sweep.screenshots += images;
        Ok(())
    }

    /// Deletes the parts of releases whose license ended more than `RELEASE_GRACE_DAYS` ago.
    fn expire_release_parts(
        &self,
        now: UnixSeconds,
        sweep: &mut RetentionSweep,
    ) -> Result<(), DomainError> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page =
                self.store
                    .scan_records_page(RecordKind::Release, b"", after.as_deref(), 256)?;
            for (_, value) in &page {
                let release: ReleaseRecordMeta = crate::governance::decode(value)?;
                let Some(license) = self
                    .record::<LicenseRecord>(RecordKind::License, release.license_id.as_bytes())?
                else {
                    continue;
                };
                let expires = license.license().expires;
                let ended = match &license.status {
                    LicenseStatus::Revoked { at, .. } if *at < expires => *at,
                    _ => expires,
                };
                if now < ended.plus_seconds(RELEASE_GRACE_DAYS * SECONDS_PER_DAY) {
                    continue;
                }
                for part in &release.parts {
                    sweep.release_parts +=
                        self.store.delete_release_part(&part.member, &release.id)?;
                }
            }
            match page.last() {
                Some((key, _)) if page.len() == 256 => after = Some(key.clone()),
                _ => return Ok(()),
            }
        }
    }
}

/// The image a screenshot event refers to.
fn screenshot_of(event: &crate::events::Event) -> Option<[u8; 32]> {
    match &event.kind {
        crate::events::EventKind::Screenshot { sha256, .. } => {
            hex::decode(sha256).ok()?.try_into().ok()
        }
        _ => None,
    }
}
