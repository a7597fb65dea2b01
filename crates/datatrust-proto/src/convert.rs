//! Conversions between wire messages and core types. Decoding validates: past this point
//! nobody re-checks a key, a role or a name.

use datatrust_core::{
    CollectorAuthorization, FieldError, Principal, PrincipalStatus, PublicKey, Role,
};

use crate::v1;

pub fn public_key(bytes: &[u8], field: &str) -> Result<PublicKey, FieldError> {
    if bytes.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    PublicKey::from_slice(bytes, field)
}

/// A role that must be given.
pub fn role(value: i32, field: &str) -> Result<Role, FieldError> {
    optional_role(value, field)?.ok_or_else(|| FieldError::new(field, "is required"))
}

/// A role filter: `ROLE_UNSPECIFIED` means any.
pub fn optional_role(value: i32, field: &str) -> Result<Option<Role>, FieldError> {
    match v1::Role::try_from(value) {
        Ok(v1::Role::Unspecified) => Ok(None),
        Ok(v1::Role::Trustee) => Ok(Some(Role::Trustee)),
        Ok(v1::Role::Member) => Ok(Some(Role::Member)),
        Ok(v1::Role::Licensee) => Ok(Some(Role::Licensee)),
        Ok(v1::Role::Collector) => Ok(Some(Role::Collector)),
        Err(_) => Err(FieldError::new(field, format!("unknown role {value}"))),
    }
}

pub fn role_to_wire(role: Role) -> v1::Role {
    match role {
        Role::Trustee => v1::Role::Trustee,
        Role::Member => v1::Role::Member,
        Role::Licensee => v1::Role::Licensee,
        Role::Collector => v1::Role::Collector,
    }
}

pub fn principal_to_wire(principal: &Principal) -> v1::Principal {
    v1::Principal {
        public_key: principal.public_key.as_bytes().to_vec(),
        role: role_to_wire(principal.role).into(),
        display_name: principal.display_name.as_str().to_owned(),
        created_at: principal.created_at.0,
        status: match principal.status {
            PrincipalStatus::Active => v1::PrincipalStatus::Active,
            PrincipalStatus::Deactivated => v1::PrincipalStatus::Deactivated,
        }
        .into(),
        log_subject: datatrust_core::log_entry::subject(principal),
    }
}

pub fn authorization_to_wire(authorization: &CollectorAuthorization) -> v1::CollectorAuthorization {
    v1::CollectorAuthorization {
        member_public_key: authorization.member.as_bytes().to_vec(),
        collector_public_key: authorization.collector.as_bytes().to_vec(),
        authorized_at: authorization.authorized_at.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_and_unknown_values_name_the_field() {
        for role in Role::ALL {
            let wire: i32 = role_to_wire(role).into();
            assert_eq!(super::role(wire, "role").unwrap(), role);
        }
        assert_eq!(super::role(0, "role").unwrap_err().reason, "is required");
        assert_eq!(optional_role(0, "role").unwrap(), None);
        assert_eq!(super::role(42, "filter").unwrap_err().field, "filter");
        assert_eq!(
            public_key(&[], "public_key").unwrap_err().reason,
            "is required"
        );
    }
}
