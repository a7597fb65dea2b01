//! License requests and licenses: a licensee's request, and the decisions that end them (a
//! trustee's denial, a revocation by a trustee or by a member's consent withdrawal). Pure
//! (see `commit.rs`); the registry reads and commits them. Approval and issuance, which
//! sign the license, are decided in `Registry::approve_license_request`.

use crate::commit::{Decision, TableRead, Write};
use crate::governance::encode;
use crate::governance::{
    LicenseRecord, LicenseRequestRecord, LicenseStatus, RequestStatus, RequestedTerms,
};
use crate::log_entry::LogEntry;
use crate::registry::{DomainError, Refusal, Subject};
use crate::store::RecordKind;
use crate::terms::{LicenseRequestTerms, Terms};
use crate::{Principal, UnixSeconds};

/// A licensee asks for a license under the terms in force (`terms`, whose SHA-256 is
/// `terms_hash`); a request that does not fit them is refused naming the clause.
pub fn request(
    licensee: &Principal,
    terms: &Terms,
    terms_hash: &str,
    requested: RequestedTerms,
    id: String,
    reads: Vec<TableRead>,
    now: UnixSeconds,
) -> Result<(LicenseRequestRecord, Decision), DomainError> {
    terms
        .check_request(&LicenseRequestTerms::from(&requested), now)
        .map_err(|refusal| DomainError::FailedPrecondition(refusal.to_string()))?;
    let record = LicenseRequestRecord {
        id,
        licensee: licensee.public_key,
        requested,
        terms_hash: terms_hash.to_owned(),
        status: RequestStatus::Pending,
        approvals: Vec::new(),
        created_at: now,
    };
    // Members see who asked for their data, and for what, before trustees decide.
    let asked = &record.requested;
    let entry = LogEntry::new("license-requested", now)
        .with("request", record.id.clone())
        .with("licensee", licensee.public_key.to_base64())
        .with("purpose", asked.purpose.clone())
        .with("categories", asked.categories.join(","))
        .with("model-family", asked.model_family.clone())
        .with("data-from", asked.data_from.to_string())
        .with("data-to", asked.data_to.to_string())
        .with("max-training-runs", asked.max_training_runs.to_string())
        .with("duration-days", asked.duration_days.to_string())
        .with("terms-sha256", record.terms_hash.clone());
    let decision = Decision {
        entries: vec![entry],
        writes: vec![Write::Record {
            kind: RecordKind::LicenseRequest,
            key: record.id.as_bytes().to_vec(),
            value: Some(encode(&record)?),
        }],
        reads,
    };
    Ok((record, decision))
}

/// A trustee denies a pending request, with a reason (already checked).
pub fn deny(
    trustee: &Principal,
    request: Option<LicenseRequestRecord>,
    read: TableRead,
    why: String,
    now: UnixSeconds,
) -> Result<(LicenseRequestRecord, Decision), DomainError> {
    let mut request = request.ok_or_else(|| {
        DomainError::refused(
            Refusal::NotFound,
            Subject::Request,
            "no such license request",
        )
    })?;
    if request.status != RequestStatus::Pending {
        return Err(DomainError::refused(
            Refusal::FailedPrecondition,
            Subject::Request,
            "this request is no longer pending",
        ));
    }
    let entry = LogEntry::new("license-denied", now)
        .with("request", request.id.clone())
        .with("licensee", request.licensee.to_base64())
        .with("by", trustee.public_key.to_base64())
        .with("reason", why.clone());
    request.status = RequestStatus::Denied { reason: why };
    let value = encode(&request)?;
    let decision = Decision {
        entries: vec![entry],
        writes: vec![Write::Record {
            kind: RecordKind::LicenseRequest,
            key: request.id.as_bytes().to_vec(),
            value: Some(value),
        }],
        reads: vec![read],
    };
    Ok((request, decision))
}

/// Who revokes a license: a trustee (by key), or a member's consent withdrawal under terms
/// that revoke affected licenses.
pub enum RevokedBy<'a> {
    Trustee(&'a Principal),
    ConsentWithdrawal,
}

/// Revokes an active license; the revocation's `log_index` is its entry's, set at commit.
pub fn revoke(
    license: Option<LicenseRecord>,
    read: TableRead,
    by: &RevokedBy<'_>,
    why: String,
    now: UnixSeconds,
) -> Result<(LicenseRecord, Decision), DomainError> {
    let mut record = license.ok_or_else(|| {
        DomainError::refused(Refusal::NotFound, Subject::License, "no such license")
    })?;
    if record.status != LicenseStatus::Active {
        return Err(DomainError::refused(
            Refusal::FailedPrecondition,
            Subject::License,
            "already revoked",
        ));
    }
    let entry = LogEntry::new("license-revoked", now)
        .with("license", record.id.clone())
        .with(
            "by",
            match by {
                RevokedBy::Trustee(trustee) => trustee.public_key.to_base64(),
                RevokedBy::ConsentWithdrawal => "consent-withdrawal".to_owned(),
            },
        )
        .with("reason", why.clone());
    record.status = LicenseStatus::Revoked {
        reason: why,
        at: now,
        log_index: 0,
    };
    let decision = Decision {
        entries: vec![entry],
        writes: vec![Write::LicenseRevoked(record.clone())],
        reads: vec![read],
    };
    Ok((record, decision))
}
