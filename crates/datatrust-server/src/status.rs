//! The one place domain errors become gRPC statuses. Internal failures are logged with their
//! detail and reach the caller without it.

use datatrust_core::FieldError;
use datatrust_core::registry::{DomainError, Refusal, Subject};
use datatrust_core::store::StoreErrorKind;
use tonic::Status;

pub fn from_domain(error: DomainError) -> Status {
    if !matches!(error, DomainError::Store(_) | DomainError::Journal(_)) {
        tracing::info!(reason = %error, "request refused");
    }
    match error {
        DomainError::Invalid(error) => invalid(error),
        DomainError::Unauthenticated(message) => Status::unauthenticated(message),
        DomainError::PermissionDenied(message) => Status::permission_denied(message),
        DomainError::NotFound(message) => Status::not_found(message),
        DomainError::AlreadyExists(message) => Status::already_exists(message),
        DomainError::FailedPrecondition(message) => Status::failed_precondition(message),
        DomainError::Contended(message) => Status::aborted(message),
        DomainError::Refused {
            kind,
            subject,
            reason,
        } => {
            let message = format!("{}: {reason}", wire_field(subject));
            match kind {
                Refusal::NotFound => Status::not_found(message),
                Refusal::AlreadyExists => Status::already_exists(message),
                Refusal::FailedPrecondition => Status::failed_precondition(message),
                Refusal::PermissionDenied => Status::permission_denied(message),
            }
        }
        DomainError::Store(error) => from_store(&error),
        DomainError::Journal(error) if error.0.contains(datatrust_tlog::DISK_FULL) => {
            from_store(&datatrust_core::store::StoreError::disk_full(error.0))
        }
        DomainError::Journal(error) => internal(&error),
    }
}

/// The request field that names a refusal's subject (`datatrust.v1`'s field names).
fn wire_field(subject: Subject) -> &'static str {
    match subject {
        Subject::Terms => "terms_sha256",
        Subject::Request => "request_id",
        Subject::License => "license_id",
        Subject::Licensee => "licensee_public_key",
        Subject::Member => "member_public_key",
        Subject::Release => "release_id",
        Subject::Collector => "collector_public_key",
        Subject::Charge => "charge_id",
        Subject::Principal => "public_key",
    }
}

pub fn invalid(error: FieldError) -> Status {
    Status::invalid_argument(error.to_string())
}

/// Reads of data the trust should have answered DATA_LOSS (logged and counted, so that
/// operators see it), a full disk RESOURCE_EXHAUSTED, anything else INTERNAL.
pub fn from_store(error: &datatrust_core::store::StoreError) -> Status {
    match error.kind {
        StoreErrorKind::DataLoss => data_loss(&error.message),
        StoreErrorKind::DiskFull => {
            tracing::error!(error = %error.message, "the disk is full: writes are refused until space is freed");
            Status::resource_exhausted(
                "the trust's disk is full: nothing was written; try again once its operators have freed space",
            )
        }
        StoreErrorKind::Failed => internal(error),
    }
}

/// How many reads found data missing or damaged since the process started.
pub static DATA_LOSS_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Data the trust should hold is missing or damaged: never answered as an empty success.
pub fn data_loss(detail: &str) -> Status {
    let count = DATA_LOSS_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    tracing::error!(
        detail,
        data_loss_reads = count,
        "data loss: stored data is missing or damaged"
    );
    Status::data_loss(
        "data the trust should hold is missing or damaged; its operators have been alerted and can restore it from a backup",
    )
}

pub fn internal(error: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %error, "internal error");
    Status::internal("internal error; the trust's operators can find the detail in its log")
}

/// Log reads: a request beyond the tree is the caller's; corrupt storage is data loss.
pub fn from_read(error: datatrust_tlog::ReadError) -> Status {
    match error {
        datatrust_tlog::ReadError::OutOfRange(message) => Status::out_of_range(message),
        datatrust_tlog::ReadError::Corrupt(message) => {
            tracing::error!(reason = %message, "log storage is corrupt");
            Status::data_loss(format!("the log's storage is damaged: {message}"))
        }
        datatrust_tlog::ReadError::Store(error) => internal(&error),
    }
}

/// A sign-in refused: too many (RESOURCE_EXHAUSTED), the shared sign-in store unreachable
/// (UNAVAILABLE), else UNAUTHENTICATED.
pub(crate) fn from_auth(error: crate::auth::AuthError) -> Status {
    match error {
        crate::auth::AuthError::TooManyLogins => Status::resource_exhausted(error.to_string()),
        crate::auth::AuthError::Unavailable => Status::unavailable(error.to_string()),
        _ => Status::unauthenticated(error.to_string()),
    }
}
