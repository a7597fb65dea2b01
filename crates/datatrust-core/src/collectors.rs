//! Telemetry authorisation: a member allows a collector to upload for them, or withdraws
//! that. Pure decisions (see `commit.rs`); the registry reads and commits them.

use crate::commit::{Decision, TableRead, Write};
use crate::log_entry::LogEntry;
use crate::{CollectorAuthorization, Principal, UnixSeconds};

/// `member` authorises `collector` (an active collector, checked by the caller), given the
/// authorisation stored now: a second authorisation changes nothing.
pub fn authorize(
    member: &Principal,
    collector: &Principal,
    existing: Option<CollectorAuthorization>,
    read: TableRead,
    now: UnixSeconds,
) -> (CollectorAuthorization, Option<Decision>) {
    if let Some(existing) = existing {
        return (existing, None);
    }
    let authorization = CollectorAuthorization {
        member: member.public_key,
        collector: collector.public_key,
        authorized_at: now,
    };
    let decision = Decision {
        entries: vec![LogEntry::collector_authorized(member, collector, now)],
        writes: vec![Write::CollectorAuthorized(authorization.clone())],
        reads: vec![read],
    };
    (authorization, Some(decision))
}

/// `member` withdraws `collector`'s authorisation; `false` and nothing to do when there was
/// none. `collector` is the collector's record (it may since have been deactivated).
pub fn revoke(
    member: &Principal,
    collector: &Principal,
    existing: Option<CollectorAuthorization>,
    read: TableRead,
    now: UnixSeconds,
) -> (bool, Option<Decision>) {
    if existing.is_none() {
        return (false, None);
    }
    let decision = Decision {
        entries: vec![LogEntry::collector_revoked(member, collector, now)],
        writes: vec![Write::CollectorRevoked {
            member: member.public_key,
            collector: collector.public_key,
        }],
        reads: vec![read],
    };
    (true, Some(decision))
}
