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
        signing_key: principal.signing_key().as_bytes().to_vec(),
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

/// Wire forms of the governance records.
pub mod governance {
    use datatrust_core::governance::{
        LicenseRecord, LicenseRequestRecord, LicenseStatus, RequestStatus, TermsRecord,
        TermsStatus, TrainingUseRecord,
    };

    use crate::v1;

    pub fn terms(record: &TermsRecord) -> v1::Terms {
        let terms = record.terms();
        v1::Terms {
            version: record.version,
            sha256: record.hash.clone(),
            document: record.document.clone(),
            status: match record.status {
                TermsStatus::Voting => v1::TermsStatus::Voting,
                TermsStatus::AwaitingCountersignatures => {
                    v1::TermsStatus::AwaitingCountersignatures
                }
                TermsStatus::Ratified => v1::TermsStatus::Ratified,
                TermsStatus::Superseded => v1::TermsStatus::Superseded,
                TermsStatus::Rejected => v1::TermsStatus::Rejected,
            }
            .into(),
            proposed_at: record.proposed_at.0,
            votes_yes: record.tally.as_ref().map(|tally| tally.yes),
            votes_no: record.tally.as_ref().map(|tally| tally.no),
            members_eligible: record.tally.as_ref().map(|tally| tally.eligible),
            countersigned_by: record
                .countersignatures
                .iter()
                .map(|signature| signature.trustee.as_bytes().to_vec())
                .collect(),
            ratified_at: record.ratified_at.map(|at| at.0),
            voting_closes_at: record.voting_closes_at.map(|at| at.0),
            title: terms.title,
            text: terms.text,
            purposes: terms.policy.purposes,
            prohibited_uses: terms.policy.prohibited_uses,
        }
    }

    pub fn license_request(record: &LicenseRequestRecord) -> v1::LicenseRequest {
        let (status, license_id, denial_reason) = match &record.status {
            RequestStatus::Pending => ("pending", String::new(), String::new()),
            RequestStatus::Approved { license_id } => {
                ("approved", license_id.clone(), String::new())
            }
            RequestStatus::Denied { reason } => ("denied", String::new(), reason.clone()),
        };
        v1::LicenseRequest {
            id: record.id.clone(),
            licensee: record.licensee.as_bytes().to_vec(),
            purpose: record.requested.purpose.clone(),
            categories: record.requested.categories.clone(),
            data_from: record.requested.data_from.0,
            data_to: record.requested.data_to.0,
            model_family: record.requested.model_family.clone(),
            max_training_runs: record.requested.max_training_runs,
            duration_days: record.requested.duration_days,
            terms_sha256: record.terms_hash.clone(),
            status: status.to_owned(),
            license_id,
            denial_reason,
            approvals: record.approvals.len() as u32,
            created_at: record.created_at.0,
        }
    }

    pub fn license(record: &LicenseRecord) -> v1::License {
        let (status, reason, revoked_log_index) = match &record.status {
            LicenseStatus::Active => ("active", String::new(), None),
            LicenseStatus::Revoked {
                reason, log_index, ..
            } => ("revoked", reason.clone(), Some(*log_index)),
        };
        v1::License {
            id: record.id.clone(),
            note: record.note.clone(),
            licensee: record.licensee.as_bytes().to_vec(),
            status: status.to_owned(),
            revocation_reason: reason,
            issued_log_index: record.issued_log_index,
            revoked_log_index,
        }
    }

    pub fn training_use(record: &TrainingUseRecord) -> v1::TrainingUse {
        v1::TrainingUse {
            license_id: record.license_id.clone(),
            run_id: record.run_id.clone(),
            report: record.report.clone(),
            accepted: record.accepted,
            refusal: record.refusal.clone().unwrap_or_default(),
            log_index: record.log_index,
            reported_at: record.reported_at.0,
        }
    }
}

/// Telemetry events: wire to core (validated further by the core) and back.
pub mod telemetry {
    use datatrust_core::FieldError;
    use datatrust_core::events::{Event, EventKind, KeyClass};

    use crate::v1;

    pub fn event(wire: &v1::Event, field: &str) -> Result<Event, FieldError> {
        let kind = match &wire.kind {
            None => return Err(FieldError::new(format!("{field}.kind"), "is required")),
            Some(v1::event::Kind::Key(key)) => EventKind::Key {
                key_class: match v1::KeyClass::try_from(key.key_class) {
                    Ok(v1::KeyClass::Letter) => KeyClass::Letter,
                    Ok(v1::KeyClass::Digit) => KeyClass::Digit,
                    Ok(v1::KeyClass::Punctuation) => KeyClass::Punctuation,
                    Ok(v1::KeyClass::Navigation) => KeyClass::Navigation,
                    Ok(v1::KeyClass::Modifier) => KeyClass::Modifier,
                    Ok(v1::KeyClass::Other) => KeyClass::Other,
                    _ => {
                        return Err(FieldError::new(
                            format!("{field}.key.key_class"),
                            "is required",
                        ));
                    }
                },
                hold_ms: key.hold_ms,
                character: (!key.character.is_empty()).then(|| key.character.clone()),
                password_field: key.password_field,
            },
            Some(v1::event::Kind::Pointer(pointer)) => EventKind::Pointer {
                x: pointer.x,
                y: pointer.y,
            },
            Some(v1::event::Kind::Click(click)) => EventKind::Click {
                button: u8::try_from(click.button).map_err(|_| {
                    FieldError::new(format!("{field}.click.button"), "must be 0 to 8")
                })?,
                target_role: click.target_role.clone(),
            },
            Some(v1::event::Kind::Scroll(scroll)) => EventKind::Scroll {
                dx: scroll.dx,
                dy: scroll.dy,
            },
            Some(v1::event::Kind::Focus(focus)) => EventKind::Focus {
                window_title: (!focus.window_title.is_empty()).then(|| focus.window_title.clone()),
            },
            Some(v1::event::Kind::Screenshot(screenshot)) => EventKind::Screenshot {
                sha256: screenshot.sha256.clone(),
                size_bytes: screenshot.size_bytes,
            },
        };
        Ok(Event {
            time_ms: wire.time_ms,
            application: wire.application.clone(),
            kind,
        })
    }

    pub fn event_to_wire(event: &Event) -> v1::Event {
        let kind = match &event.kind {
            EventKind::Key {
                key_class,
                hold_ms,
                character,
                password_field,
            } => v1::event::Kind::Key(v1::KeyEvent {
                key_class: match key_class {
                    KeyClass::Letter => v1::KeyClass::Letter,
                    KeyClass::Digit => v1::KeyClass::Digit,
                    KeyClass::Punctuation => v1::KeyClass::Punctuation,
                    KeyClass::Navigation => v1::KeyClass::Navigation,
                    KeyClass::Modifier => v1::KeyClass::Modifier,
                    KeyClass::Other => v1::KeyClass::Other,
                }
                .into(),
                hold_ms: *hold_ms,
                character: character.clone().unwrap_or_default(),
                password_field: *password_field,
            }),
            EventKind::Pointer { x, y } => {
                v1::event::Kind::Pointer(v1::PointerMove { x: *x, y: *y })
            }
            EventKind::Click {
                button,
                target_role,
            } => v1::event::Kind::Click(v1::Click {
                button: u32::from(*button),
                target_role: target_role.clone(),
            }),
            EventKind::Scroll { dx, dy } => {
                v1::event::Kind::Scroll(v1::Scroll { dx: *dx, dy: *dy })
            }
            EventKind::Focus { window_title } => v1::event::Kind::Focus(v1::FocusChange {
                window_title: window_title.clone().unwrap_or_default(),
            }),
            EventKind::Screenshot { sha256, size_bytes } => {
                v1::event::Kind::Screenshot(v1::ScreenshotRef {
                    sha256: sha256.clone(),
                    size_bytes: *size_bytes,
                })
            }
        };
        v1::Event {
            time_ms: event.time_ms,
            application: event.application.clone(),
            kind: Some(kind),
        }
    }
}
