//! The trust's origin: its public name, which is also the key name of its log key.

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// A validated origin. c2sp.org/tlog-checkpoint: the origin is a unique identifier for the log,
/// recommended to be a schema-less URL; it is also a signed-note key name, so it holds no
/// spaces and no `+`. We also refuse non-ASCII and control characters so that the name reads
/// the same everywhere it is printed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl Origin {
    pub const MAX_LENGTH: usize = 200;

    pub fn parse(text: &str) -> Result<Origin, FieldError> {
        if text.is_empty() {
            return Err(FieldError::new("origin", "must not be empty"));
        }
        if text.len() > Origin::MAX_LENGTH {
            return Err(FieldError::new(
                "origin",
                format!("must be at most {} bytes", Origin::MAX_LENGTH),
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|character| !character.is_ascii_graphic() || *character == '+')
        {
            return Err(FieldError::new(
                "origin",
                format!("must be printable ASCII without spaces or '+', found {bad:?}"),
            ));
        }
        Ok(Origin(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key name of the license key: distinct from the log key's name (FORMATS.md, Licenses).
    pub fn license_key_name(&self) -> String {
        format!("{}/license", self.0)
    }
}

impl TryFrom<String> for Origin {
    type Error = FieldError;
    fn try_from(text: String) -> Result<Origin, FieldError> {
        Origin::parse(&text)
    }
}

impl From<Origin> for String {
    fn from(origin: Origin) -> String {
        origin.0
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_names_and_paths() {
        assert!(Origin::parse("trust.example-union.org").is_ok());
        assert!(Origin::parse("example.com/log/v1").is_ok());
    }

    #[test]
    fn refuses_what_a_key_name_cannot_hold() {
        for bad in ["", "a b", "a+b", "tab\there", "é.org"] {
            let error = Origin::parse(bad).unwrap_err();
            assert_eq!(error.field, "origin", "{bad:?}");
        }
        assert!(Origin::parse(&"a".repeat(201)).is_err());
    }
}
