//! Terms and votes: a proposal, closing a vote with its tally, and ratifying terms at the
//! trustees' quorum. Pure decisions (see `commit.rs`); ballots and countersignatures below the quorum are
//! changes without log entries (ballots are secret), decided in the registry.

use crate::UnixSeconds;
use crate::commit::{Decision, TableRead, Write};
use crate::governance::encode;
use crate::governance::{Tally, TermsRecord, TermsStatus};
use crate::log_entry::LogEntry;
use crate::registry::{DomainError, Refusal, Subject};
use crate::store::RecordKind;

/// The key of the pointer to the terms in force (`RecordKind::ActiveTerms`).
pub const ACTIVE_TERMS: &[u8] = b"active";

/// The guard every proposal reads and bumps (`RecordKind::Guard`).
pub const PROPOSALS_GUARD: &[u8] = b"proposals";

fn terms_write(record: &TermsRecord) -> Result<Write, DomainError> {
    Ok(Write::Record {
        kind: RecordKind::Terms,
        key: record.hash.as_bytes().to_vec(),
        value: Some(encode(record)?),
    })
}

/// A trustee's proposal (checked by the caller against every version: one open vote at a
/// time, never the same document twice) opens the members' vote.
pub fn propose(record: &TermsRecord, read: TableRead) -> Result<Decision, DomainError> {
    Ok(Decision {
        entries: vec![
            LogEntry::new("terms-proposed", record.proposed_at)
                .with("terms-sha256", record.hash.clone())
                .with("version", record.version.to_string())
                .with("by", record.proposed_by.to_base64()),
        ],
        writes: vec![terms_write(record)?],
        reads: vec![read],
    })
}

/// Closes an open vote with `tally`: passed (awaiting countersignatures) or rejected, logged
/// with who closed it (a trustee, or the deadline).
pub fn close(
    mut record: TermsRecord,
    read: TableRead,
    tally: Tally,
    closed_by: &str,
    now: UnixSeconds,
) -> Result<(TermsRecord, Decision), DomainError> {
    if record.status != TermsStatus::Voting {
        return Err(DomainError::refused(
            Refusal::FailedPrecondition,
            Subject::Terms,
            "the vote is not open",
        ));
    }
    record.closing = false;
    let passed = tally.passes(&record.terms().policy.ratification);
    record.status = if passed {
        TermsStatus::AwaitingCountersignatures
    } else {
        TermsStatus::Rejected
    };
    let entry = LogEntry::new("vote-closed", now)
        .with("terms-sha256", record.hash.clone())
        .with("yes", tally.yes.to_string())
        .with("no", tally.no.to_string())
        .with("eligible", tally.eligible.to_string())
        .with("outcome", if passed { "passed" } else { "rejected" })
        .with("closed-by", closed_by);
    record.tally = Some(tally);
    let decision = Decision {
        entries: vec![entry],
        writes: vec![terms_write(&record)?],
        reads: vec![read],
    };
    Ok((record, decision))
}

/// Ratifies terms whose countersignatures reached the quorum: they come into force, the
/// terms in force before (`previous`) are superseded, and the pointer moves.
pub fn ratify(
    mut record: TermsRecord,
    reads: Vec<TableRead>,
    previous: Option<TermsRecord>,
    now: UnixSeconds,
) -> Result<(TermsRecord, Decision), DomainError> {
    record.status = TermsStatus::Ratified;
    record.ratified_at = Some(now);
    let signers: Vec<String> = record
        .countersignatures
        .iter()
        .map(|signature| signature.trustee.to_base64())
        .collect();
    let mut entry = LogEntry::new("terms-ratified", now)
        .with("terms-sha256", record.hash.clone())
        .with("version", record.version.to_string())
        .with("countersigned-by", signers.join(","));
    if let Some(previous) = &previous {
        entry = entry.with("supersedes", previous.hash.clone());
    }
    let mut writes = vec![
        terms_write(&record)?,
        Write::Record {
            kind: RecordKind::ActiveTerms,
            key: ACTIVE_TERMS.to_vec(),
            value: Some(encode(&record.hash)?),
        },
    ];
    if let Some(mut previous) = previous {
        previous.status = TermsStatus::Superseded;
        writes.push(terms_write(&previous)?);
    }
    let decision = Decision {
        entries: vec![entry],
        writes,
        reads,
    };
    Ok((record, decision))
}
