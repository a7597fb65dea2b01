//! Consent: a member grants or withdraws consent to one purpose of the terms in force.
//! Pure decisions (see `commit.rs`); the registry reads and commits them.

use crate::commit::{Decision, TableRead, Write};
use crate::governance::Consent;
use crate::log_entry::{LogEntry, subject};
use crate::{FieldError, Principal, UnixSeconds};

/// Sets `member`'s consent to `purpose` (one of `purposes`, the active terms'), given the
/// consent stored now. Setting it to what it is changes nothing; so does withdrawing a
/// consent never given (absent consent is no).
pub fn set(
    member: &Principal,
    purposes: &[String],
    purpose: &str,
    granted: bool,
    current: Option<Consent>,
    read: TableRead,
    now: UnixSeconds,
) -> Result<(Consent, Option<Decision>), FieldError> {
    if !purposes.iter().any(|allowed| allowed == purpose) {
        return Err(FieldError::new(
            "purpose",
            format!(
                "{} is not a purpose of the active terms; they name: {}",
                crate::validation::quoted(purpose),
                purposes.join(", ")
            ),
        ));
    }
    let unchanged = match &current {
        Some(consent) => consent.granted == granted,
        None => !granted,
    };
    if unchanged {
        let consent = current.unwrap_or(Consent {
            purpose: purpose.to_owned(),
            granted,
            changed_at: now,
        });
        return Ok((consent, None));
    }
    let consent = Consent {
        purpose: purpose.to_owned(),
        granted,
        changed_at: now,
    };
    let decision = Decision {
        entries: vec![
            LogEntry::new("consent-changed", now)
                .with("subject", subject(member))
                .with("purpose", purpose)
                .with("consent", if granted { "granted" } else { "withdrawn" }),
        ],
        writes: vec![Write::Consent {
            member: member.public_key,
            consent: consent.clone(),
        }],
        reads: vec![read],
    };
    Ok((consent, Some(decision)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DisplayName, NoteSigner, Role};

    fn member() -> Principal {
        Principal::new_active(
            NoteSigner::new("ada", [5; 32]).unwrap().public_key(),
            Role::Member,
            DisplayName::parse("Ada", "name").unwrap(),
            UnixSeconds(0),
            [0; 32],
        )
    }

    fn read() -> TableRead {
        TableRead {
            table: "consents",
            key: b"k".to_vec(),
            version: None,
        }
    }

    #[test]
    fn a_grant_logs_and_writes_and_depends_on_what_it_read() {
        let purposes = ["training".to_owned()];
        let (consent, decision) = set(
            &member(),
            &purposes,
            "training",
            true,
            None,
            read(),
            UnixSeconds(9),
        )
        .unwrap();
        assert!(consent.granted);
        let decision = decision.expect("a change");
        assert_eq!(decision.reads, vec![read()]);
        assert_eq!(decision.entries.len(), 1);
        assert_eq!(decision.entries[0].kind(), "consent-changed");
        assert!(
            matches!(&decision.writes[..], [Write::Consent { consent, .. }] if consent.granted)
        );
    }

    #[test]
    fn setting_what_is_already_so_changes_nothing() {
        let purposes = ["training".to_owned()];
        let (_, withdrawn) = set(
            &member(),
            &purposes,
            "training",
            false,
            None,
            read(),
            UnixSeconds(9),
        )
        .unwrap();
        assert_eq!(withdrawn, None, "absent consent is no already");
        let given = Consent {
            purpose: "training".into(),
            granted: true,
            changed_at: UnixSeconds(1),
        };
        let (kept, again) = set(
            &member(),
            &purposes,
            "training",
            true,
            Some(given.clone()),
            read(),
            UnixSeconds(9),
        )
        .unwrap();
        assert_eq!((kept, again), (given, None));
    }

    #[test]
    fn a_purpose_the_terms_do_not_name_is_refused_with_the_ones_they_do() {
        let purposes = ["training".to_owned(), "research".to_owned()];
        let error = set(
            &member(),
            &purposes,
            "ads",
            true,
            None,
            read(),
            UnixSeconds(9),
        )
        .unwrap_err();
        assert_eq!(error.field, "purpose");
        assert!(
            error.reason.contains("they name: training, research"),
            "{error}"
        );
    }
}
