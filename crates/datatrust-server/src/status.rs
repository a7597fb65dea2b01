//! The one place domain errors become gRPC statuses. Internal failures are logged with their
//! detail and reach the caller without it.

use datatrust_core::FieldError;
use datatrust_core::registry::DomainError;
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
        DomainError::Store(error) => internal(&error),
        DomainError::Journal(error) => internal(&error),
    }
}

pub fn invalid(error: FieldError) -> Status {
    Status::invalid_argument(error.to_string())
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
