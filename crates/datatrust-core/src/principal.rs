//! Principals: an ed25519 key, one role, a display name. There are no passwords anywhere.

use serde::{Deserialize, Serialize};

use crate::{FieldError, PublicKey, UnixSeconds};

/// What a principal may do. A key holds exactly one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Administers the trust for the union.
    Trustee,
    /// A worker whose data the trust holds.
    Member,
    /// A company that licenses data.
    Licensee,
    /// A telemetry agent that uploads for the members who authorised it.
    Collector,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Trustee, Role::Member, Role::Licensee, Role::Collector];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Trustee => "trustee",
            Role::Member => "member",
            Role::Licensee => "licensee",
            Role::Collector => "collector",
        }
    }

    pub fn parse(text: &str) -> Result<Role, FieldError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| {
                FieldError::new(
                    "role",
                    format!(
                        "expected trustee, member, licensee or collector, got {}",
                        crate::validation::quoted(text)
                    ),
                )
            })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A human-readable name: 1 to 100 characters, no control characters, no surrounding space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARACTERS: usize = 100;

    pub fn parse(text: &str, field: &str) -> Result<DisplayName, FieldError> {
        if text.trim().is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if text.trim() != text {
            return Err(FieldError::new(
                field,
                "must not start or end with whitespace",
            ));
        }
        if text.chars().count() > DisplayName::MAX_CHARACTERS {
            return Err(FieldError::new(
                field,
                format!("must be at most {} characters", DisplayName::MAX_CHARACTERS),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        crate::validation::check_readable(text, field)?;
        Ok(DisplayName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = FieldError;
    fn try_from(text: String) -> Result<DisplayName, FieldError> {
        DisplayName::parse(&text, "display_name")
    }
}

impl From<DisplayName> for String {
    fn from(name: DisplayName) -> String {
        name.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalStatus {
    Active,
    /// Can no longer sign in; what it did stays on record.
    Deactivated,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub public_key: PublicKey,
    pub role: Role,
    pub display_name: DisplayName,
    pub created_at: UnixSeconds,
    pub status: PrincipalStatus,
    /// Secret salt of this principal's log commitment (`log_entry::commitment`). Only the
    /// trust holds it; destroying it makes the principal's log entries unlinkable.
    #[serde(with = "salt_hex")]
    pub commitment_salt: [u8; 32],
    /// The key it signs with now, when a rotation or a recovery replaced its first key
    /// (`public_key`, which stays its identity: everything it did and holds is keyed by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_key: Option<PublicKey>,
}

mod salt_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(salt: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(salt))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = hex::decode(text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("salt must be 32 bytes"))
    }
}

impl Principal {
    /// The key this principal signs with now: its first, or the one it was rotated or
    /// recovered to.
    pub fn signing_key(&self) -> PublicKey {
        self.current_key.unwrap_or(self.public_key)
    }

    pub fn new_active(
        public_key: PublicKey,
        role: Role,
        display_name: DisplayName,
        created_at: UnixSeconds,
        commitment_salt: [u8; 32],
    ) -> Principal {
        Principal {
            public_key,
            role,
            display_name,
            created_at,
            status: PrincipalStatus::Active,
            commitment_salt,
            current_key: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == PrincipalStatus::Active
    }
}

/// A member's permission for a collector to upload telemetry on the member's behalf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorAuthorization {
    pub member: PublicKey,
    pub collector: PublicKey,
    pub authorized_at: UnixSeconds,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        assert_eq!(Role::parse("admin").unwrap_err().field, "role");
    }

    #[test]
    fn display_names_are_validated() {
        assert!(DisplayName::parse("Ada Lovelace", "display_name").is_ok());
        assert!(DisplayName::parse("Łucja Żółć", "display_name").is_ok());
        for bad in ["", "   ", " padded", "line\nbreak"] {
            assert_eq!(
                DisplayName::parse(bad, "display_name").unwrap_err().field,
                "display_name",
                "{bad:?}"
            );
        }
        assert!(DisplayName::parse(&"x".repeat(101), "display_name").is_err());
        assert!(DisplayName::parse(&"x".repeat(100), "display_name").is_ok());
    }
}
