//! Telemetry in, and members' own data: collectors upload for the members who authorised
//! them; members see a summary, export everything, or erase it.

use crate::events::{EventBatch, MAXIMUM_EVENTS_PER_BATCH, redact_at_ingest};
use crate::governance::decode;
use crate::log_entry::{LogEntry, subject};
use crate::registry::{DomainError, Journal, Logged, Refusal, Registry, Subject, require_role};
use crate::store::{
    ChunkInsert, DayCount, EventPage, EventStore, RecordKind, RecordStore, TrustStore,
};
use crate::{CollectorAuthorization, FieldError, Principal, PublicKey, Role, UnixSeconds};

/// Retention used when no terms are in force.
pub const DEFAULT_RETENTION_DAYS: u32 = 730;

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored `stored` events; `redacted_away` were dropped by the terms' redactions.
    Stored { stored: usize, redacted_away: usize },
    /// This batch was stored before (a retry); nothing was stored twice.
    Duplicate,
}

impl<S: TrustStore + RecordStore + EventStore + Clone, J: Journal> Registry<S, J> {
    /// Stores one batch for `member`, uploaded by the calling collector. Acknowledged only
    /// once durable (the store flushes before it returns).
    pub fn ingest(
        &self,
        caller: &Principal,
        member: &PublicKey,
        batch: EventBatch,
        now: UnixSeconds,
    ) -> Result<IngestOutcome, DomainError> {
        require_role(caller, Role::Collector, "upload telemetry")?;
        if batch.device_id.is_empty()
            || batch.device_id.len() > 64
            || !batch.device_id.bytes().all(|byte| byte.is_ascii_graphic())
        {
            return Err(
                FieldError::new("device_id", "must be 1 to 64 printable ASCII characters").into(),
            );
        }
        if batch.events.is_empty() || batch.events.len() > MAXIMUM_EVENTS_PER_BATCH {
            return Err(FieldError::new(
                "events",
                format!("a batch holds 1 to {MAXIMUM_EVENTS_PER_BATCH} events"),
            )
            .into());
        }
        let authorization = self.check_collection(caller, member)?;
        let terms = self.active_policy()?;
        let retention_days = terms
            .as_ref()
            .map_or(DEFAULT_RETENTION_DAYS, |terms| terms.policy.retention_days);
        for (index, event) in batch.events.iter().enumerate() {
            event.validate(now, retention_days, &format!("events[{index}]"))?;
        }
        let received = batch.events.len();
        let kept = redact_at_ingest(batch.events, terms.as_ref().map(|terms| &terms.policy));
        let redacted_away = received - kept.len();
        if kept.is_empty() {
            return Ok(IngestOutcome::Stored {
                stored: 0,
                redacted_away,
            });
        }
        match self
            .store
            .put_chunk(member, &batch.device_id, batch.sequence, &kept)?
        {
            ChunkInsert::Stored => {
                if !self.still_authorized(caller, member, &authorization)? {
                    self.store
                        .remove_chunk(member, &batch.device_id, batch.sequence, &kept)?;
                    return Err(authorization_ended());
                }
                Ok(IngestOutcome::Stored {
                    stored: kept.len(),
                    redacted_away,
                })
            }
            ChunkInsert::Duplicate => Ok(IngestOutcome::Duplicate),
        }
    }

    /// Whether the authorisation `check_collection` found still stands, after a store: the
    /// member may have withdrawn it, or asked for erasure (which withdraws every
    /// authorisation before deleting her data), while the store ran. What was stored then
    /// is taken back; an erasure that deletes after this check deletes it anyway.
    fn still_authorized(
        &self,
        caller: &Principal,
        member: &PublicKey,
        authorization: &CollectorAuthorization,
    ) -> Result<bool, DomainError> {
        Ok(self
            .store
            .collectors_of_member(member)?
            .iter()
            .any(|standing| {
                standing.collector == caller.public_key
                    && standing.authorized_at == authorization.authorized_at
            }))
    }

    /// A collector may upload for `member` only while the member is active and has
    /// authorised it: data of a deactivated member could be seen, exported or erased by
    /// nobody. Returns the authorisation.
    fn check_collection(
        &self,
        caller: &Principal,
        member: &PublicKey,
    ) -> Result<CollectorAuthorization, DomainError> {
        let Some(authorization) = self
            .store
            .collectors_of_member(member)?
            .into_iter()
            .find(|authorization| authorization.collector == caller.public_key)
        else {
            return Err(DomainError::refused(
                Refusal::PermissionDenied,
                Subject::Member,
                "this member has not authorised this collector",
            ));
        };
        match self.store.principal(member)? {
            Some(principal) if principal.is_active() && principal.role == Role::Member => {
                Ok(authorization)
            }
            _ => Err(DomainError::refused(
                Refusal::FailedPrecondition,
                Subject::Member,
                "this member is no longer active; collection for them has stopped",
            )),
        }
    }

    /// Stores a screenshot image a collector uploads for `member`; returns its SHA-256 (hex)
    /// and whether it was new. Events refer to it by that hash.
    pub fn ingest_screenshot(
        &self,
        caller: &Principal,
        member: &PublicKey,
        image: &[u8],
        now: UnixSeconds,
    ) -> Result<(String, bool), DomainError> {
        require_role(caller, Role::Collector, "upload screenshots")?;
        let limit = crate::events::MAXIMUM_SCREENSHOT_BYTES as usize;
        if image.is_empty() || image.len() > limit {
            return Err(
                FieldError::new("image", format!("a screenshot is 1 to {limit} bytes")).into(),
            );
        }
        let authorization = self.check_collection(caller, member)?;
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(image).into();
        let new = self.store.put_screenshot(member, &digest, image, now)?;
        if new && !self.still_authorized(caller, member, &authorization)? {
            self.store.remove_screenshot(member, &digest)?;
            return Err(authorization_ended());
        }
        Ok((hex::encode(digest), new))
    }

    /// Counts per day and category of what the trust holds about the calling member.
    pub fn my_data_summary(&self, caller: &Principal) -> Result<Vec<DayCount>, DomainError> {
        require_role(caller, Role::Member, "see what the trust holds about them")?;
        Ok(self.store.member_counts(&caller.public_key)?)
    }

    /// A page of what the trust holds about the calling member, decrypted: whole stored
    /// chunks after `after` until at least `max_events` events. The export reads page by
    /// page, so its memory does not grow with the member's history.
    pub fn export_page(
        &self,
        caller: &Principal,
        after: Option<&[u8]>,
        max_events: usize,
    ) -> Result<EventPage, DomainError> {
        require_role(caller, Role::Member, "export their data")?;
        Ok(self
            .store
            .member_events_page(&caller.public_key, after, max_events)?)
    }

    /// The hashes of the calling member's stored screenshot images after `after`, at most
    /// `limit`, for the export.
    pub fn my_screenshots(
        &self,
        caller: &Principal,
        after: Option<[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, DomainError> {
        require_role(caller, Role::Member, "export their data")?;
        Ok(self
            .store
            .member_screenshots(&caller.public_key, after.as_ref(), limit)?)
    }

    /// One of the calling member's screenshot images, decrypted.
    pub fn my_screenshot(
        &self,
        caller: &Principal,
        sha256: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, DomainError> {
        require_role(caller, Role::Member, "export their data")?;
        Ok(self.store.screenshot(&caller.public_key, sha256)?)
    }

    /// Erases the calling member's data: the erasure is logged (with the member's
    /// commitment and the number of events) together with a pending-erasure record, then
    /// every consent they gave is withdrawn and every collector authorisation revoked, each
    /// logged as if they had done it one by one (withdrawals apply each license's own
    /// rule), then their key is destroyed and their chunks, counts, screenshots and release
    /// parts deleted, and the pending record with them. A crash in between leaves the
    /// pending record, and the erasure is finished at the next start (`resume_erasures`)
    /// or when the member asks again. Says what it did.
    pub fn erase_my_data(
        &self,
        caller: &Principal,
        now: UnixSeconds,
    ) -> Result<Logged<Erasure>, DomainError> {
        require_role(caller, Role::Member, "erase their data")?;
        let events: u64 = self
            .store
            .member_counts(&caller.public_key)?
            .iter()
            .map(|count| count.count)
            .sum();
        let key = caller.public_key.as_bytes();
        let logged = self.decide(|| {
            let (pending, read) = self.store.read_record(RecordKind::PendingErasure, key)?;
            if let Some(pending) = pending {
                // An erasure logged before and interrupted: finish it, without logging again.
                return Ok((decode::<PendingErasure>(&pending)?, None));
            }
            let pending = PendingErasure {
                events,
                log_index: 0,
            };
            let decision = crate::commit::Decision {
                entries: vec![
                    LogEntry::new("erasure", now)
                        .with("subject", subject(caller))
                        .with("events", events.to_string()),
                ],
                writes: vec![crate::commit::indexed_write(
                    RecordKind::PendingErasure,
                    key,
                    &pending,
                    "/log_index",
                    0,
                )?],
                reads: vec![read],
            };
            Ok((pending, Some(decision)))
        })?;
        let log_index = logged.log_index.unwrap_or(logged.value.log_index);
        let mut erasure = self.finish_erasure(caller, now)?;
        erasure.events = logged.value.events;
        Ok(Logged {
            value: erasure,
            log_index: Some(log_index),
        })
    }

    /// Finishes the erasures a crash interrupted (each logged, with its pending record);
    /// run at start. Returns how many it finished.
    pub fn resume_erasures(&self, now: UnixSeconds) -> Result<u64, DomainError> {
        let mut finished = 0;
        for (key, _) in self.store.scan_records(RecordKind::PendingErasure, b"")? {
            let member = PublicKey::from_slice(&key, "member")
                .ok()
                .and_then(|key| self.store.principal(&key).ok().flatten())
                .ok_or_else(|| {
                    DomainError::Store(crate::store::StoreError::data_loss(
                        "a pending erasure names no principal the trust knows",
                    ))
                })?;
            self.finish_erasure(&member, now)?;
            finished += 1;
        }
        Ok(finished)
    }

    /// The steps of an erasure after its entry: each idempotent, the pending record last.
    fn finish_erasure(&self, member: &Principal, now: UnixSeconds) -> Result<Erasure, DomainError> {
        let mut consents_withdrawn = Vec::new();
        for consent in self.records::<crate::governance::Consent>(
            RecordKind::Consent,
            member.public_key.as_bytes(),
        )? {
            if !consent.granted {
                continue;
            }
            self.set_consent_as(member, &consent.purpose, false, now)?;
            consents_withdrawn.push(consent.purpose);
        }
        let mut collectors_withdrawn = Vec::new();
        for authorization in self.store.collectors_of_member(&member.public_key)? {
            self.revoke_collector_as(member, &authorization.collector, now)?;
            collectors_withdrawn.push(authorization.collector);
        }
        let chunks = self.store.erase_member(&member.public_key)?;
        let key = member.public_key.as_bytes();
        self.decide(|| {
            let (pending, read) = self.store.read_record(RecordKind::PendingErasure, key)?;
            if pending.is_none() {
                return Ok(((), None));
            }
            let decision = crate::commit::Decision {
                entries: Vec::new(),
                writes: vec![crate::commit::Write::Record {
                    kind: RecordKind::PendingErasure,
                    key: key.to_vec(),
                    value: None,
                }],
                reads: vec![read],
            };
            Ok(((), Some(decision)))
        })?;
        Ok(Erasure {
            events: 0,
            chunks,
            consents_withdrawn,
            collectors_withdrawn,
        })
    }
}

/// An erasure logged and not yet finished (`RecordKind::PendingErasure`, by member key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingErasure {
    /// Events the member had when the erasure was logged.
    pub events: u64,
    /// The erasure's entry.
    pub log_index: u64,
}

/// What an erasure did, to say it in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// Events deleted (from the per-day counts).
    pub events: u64,
    /// Stored chunks deleted.
    pub chunks: u64,
    /// Purposes whose consent was withdrawn (logged).
    pub consents_withdrawn: Vec<String>,
    /// Collectors whose authorisation was revoked (logged).
    pub collectors_withdrawn: Vec<PublicKey>,
}

/// The refusal of an upload whose authorisation ended while it was being stored.
fn authorization_ended() -> DomainError {
    DomainError::refused(
        Refusal::PermissionDenied,
        Subject::Member,
        "this member withdrew this collector's authorisation (or asked for erasure) while the upload was being stored; it was not kept",
    )
}
