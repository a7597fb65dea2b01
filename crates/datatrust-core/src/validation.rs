//! The one error type for input that fails validation at the boundary: it names the field.

/// A value that was refused, with the field it came from and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error, reported under another field name (a wire name, a flag name).
    pub fn in_field(self, field: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: self.reason,
        }
    }
}
