//! The one place domain errors become gRPC statuses. Internal failures are logged with their
//! detail and reach the caller without it.

use datatrust_core::FieldError;
use datatrust_core::registry::DomainError;
use tonic::Status;

pub fn from_domain(error: DomainError) -> Status {
    if !matches!(error, DomainError::Store(_)) {
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
    }
}

pub fn invalid(error: FieldError) -> Status {
    Status::invalid_argument(error.to_string())
}

pub fn internal(error: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %error, "internal error");
    Status::internal("internal error; the trust's operators can find the detail in its log")
}
