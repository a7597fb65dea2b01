//! Telemetry events: what a collector uploads for a member, how each is validated, and the
//! redactions the active terms require before anything is stored.

use serde::{Deserialize, Serialize};

use crate::terms::Policy;
use crate::{FieldError, UnixSeconds};

/// Longest text field of an event (application name, window title, click target).
pub const MAXIMUM_TEXT_BYTES: usize = 256;
/// Most events in one uploaded batch.
pub const MAXIMUM_EVENTS_PER_BATCH: usize = 10_000;
/// Largest screenshot a reference may point to, in bytes.
/// Under the default 4 MiB gRPC message limit, with room for the request around it.
pub const MAXIMUM_SCREENSHOT_BYTES: u32 = 3 * 1024 * 1024;
/// How far in the future an event may be stamped (clock skew on the work computer).
pub const FUTURE_TOLERANCE_MS: i64 = 5 * 60 * 1000;
/// Coordinates beyond this are not a screen.
pub const MAXIMUM_COORDINATE: i32 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyClass {
    Letter,
    Digit,
    Punctuation,
    Navigation,
    Modifier,
    Other,
}

/// Externally tagged (`{"pointer": {"x": 1, "y": 2}}`): the export format is the JSON of
/// `Event`, and the storage encoding (postcard) needs a non-self-describing layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Key {
        key_class: KeyClass,
        /// Milliseconds between press and release.
        hold_ms: u32,
        /// The typed character, kept only where the terms allow it.
        character: Option<String>,
        password_field: bool,
    },
    Pointer {
        x: i32,
        y: i32,
    },
    Click {
        button: u8,
        target_role: String,
    },
    Scroll {
        dx: i32,
        dy: i32,
    },
    Focus {
        window_title: Option<String>,
    },
    Screenshot {
        /// Hex SHA-256 of the image, uploaded separately.
        sha256: String,
        size_bytes: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unix milliseconds.
    pub time_ms: i64,
    pub application: String,
    pub kind: EventKind,
}

/// One upload from a collector: idempotent per (member, device, sequence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    pub device_id: String,
    pub sequence: u64,
    pub events: Vec<Event>,
}

impl Event {
    /// The data category (terms' `policy.categories` names) this event belongs to.
    pub fn category(&self) -> &'static str {
        match self.kind {
            EventKind::Key { .. } => "keystrokes",
            EventKind::Pointer { .. } => "pointer",
            EventKind::Click { .. } => "clicks",
            EventKind::Scroll { .. } => "scrolls",
            EventKind::Focus { .. } => "focus",
            EventKind::Screenshot { .. } => "screenshots",
        }
    }

    /// The Unix day the event falls in, for chunking and summaries.
    pub fn day(&self) -> i64 {
        self.time_ms.div_euclid(86_400_000)
    }

    /// Checks ranges and sizes; `field` is the event's position for error messages.
    pub fn validate(
        &self,
        now: UnixSeconds,
        retention_days: u32,
        field: &str,
    ) -> Result<(), FieldError> {
        let now_ms = now.0.saturating_mul(1000);
        let oldest_ms = now_ms.saturating_sub(i64::from(retention_days) * 86_400_000);
        if self.time_ms > now_ms.saturating_add(FUTURE_TOLERANCE_MS) {
            return Err(FieldError::new(
                format!("{field}.time_ms"),
                "is in the future",
            ));
        }
        if self.time_ms < oldest_ms {
            return Err(FieldError::new(
                format!("{field}.time_ms"),
                format!("is older than the {retention_days}-day retention"),
            ));
        }
        check_text(&self.application, &format!("{field}.application"), true)?;
        match &self.kind {
            EventKind::Key {
                hold_ms, character, ..
            } => {
                if *hold_ms > 60_000 {
                    return Err(FieldError::new(
                        format!("{field}.key.hold_ms"),
                        "must be at most 60000",
                    ));
                }
                if let Some(character) = character
                    && (character.chars().count() != 1 || character.chars().any(char::is_control))
                {
                    return Err(FieldError::new(
                        format!("{field}.key.character"),
                        "must be one printable character",
                    ));
                }
            }
            EventKind::Pointer { x, y } | EventKind::Scroll { dx: x, dy: y } => {
                // unsigned_abs: i32::MIN.abs() wraps to i32::MIN in release builds.
                let limit = MAXIMUM_COORDINATE.unsigned_abs();
                if x.unsigned_abs() > limit || y.unsigned_abs() > limit {
                    return Err(FieldError::new(
                        format!("{field}.coordinates"),
                        format!("must be within ±{MAXIMUM_COORDINATE}"),
                    ));
                }
            }
            EventKind::Click {
                button,
                target_role,
            } => {
                if *button > 8 {
                    return Err(FieldError::new(
                        format!("{field}.click.button"),
                        "must be 0 to 8",
                    ));
                }
                check_text(target_role, &format!("{field}.click.target_role"), false)?;
            }
            EventKind::Focus { window_title } => {
                if let Some(title) = window_title {
                    check_text(title, &format!("{field}.focus.window_title"), false)?;
                }
            }
            EventKind::Screenshot { sha256, size_bytes } => {
                if sha256.len() != 64 || !sha256.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                    return Err(FieldError::new(
                        format!("{field}.screenshot.sha256"),
                        "must be 64 hex digits",
                    ));
                }
                if *size_bytes == 0 || *size_bytes > MAXIMUM_SCREENSHOT_BYTES {
                    return Err(FieldError::new(
                        format!("{field}.screenshot.size_bytes"),
                        format!("must be 1 to {MAXIMUM_SCREENSHOT_BYTES} bytes"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_text(text: &str, field: &str, required: bool) -> Result<(), FieldError> {
    if required && text.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    if text.len() > MAXIMUM_TEXT_BYTES || text.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("at most {MAXIMUM_TEXT_BYTES} bytes, no control characters"),
        ));
    }
    Ok(())
}

/// Appends one event as a JSON line: the documented export format.
pub fn write_json_line(out: &mut Vec<u8>, event: &Event) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *out, event)?;
    out.push(b'\n');
    Ok(())
}

/// Applies at ingest the redactions the active terms require; with no terms in force every
/// redaction applies (the safe default). Events typed into password fields are dropped
/// entirely when the terms say so. Returns the events to store.
pub fn redact_at_ingest(events: Vec<Event>, policy: Option<&Policy>) -> Vec<Event> {
    let requires = |category: &str, transformation: &str| match policy {
        None => true,
        Some(policy) => policy
            .categories
            .iter()
            .find(|rule| rule.name == category)
            .is_none_or(|rule| {
                rule.transformations
                    .iter()
                    .any(|name| name == transformation)
            }),
    };
    let drop_characters = requires("keystrokes", "drop-typed-characters");
    let drop_password_fields = requires("keystrokes", "drop-password-fields");
    let drop_titles = requires("focus", "drop-window-titles");
    events
        .into_iter()
        .filter(|event| {
            !(drop_password_fields
                && matches!(
                    event.kind,
                    EventKind::Key {
                        password_field: true,
                        ..
                    }
                ))
        })
        .map(|mut event| {
            match &mut event.kind {
                EventKind::Key { character, .. } if drop_characters => *character = None,
                EventKind::Focus { window_title } if drop_titles => *window_title = None,
                _ => {}
            }
            event
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::Terms;
    use crate::terms::tests::EXAMPLE;

    fn key(character: &str, password_field: bool) -> Event {
        Event {
            time_ms: 1_000_000,
            application: "editor".into(),
            kind: EventKind::Key {
                key_class: KeyClass::Letter,
                hold_ms: 80,
                character: Some(character.into()),
                password_field,
            },
        }
    }

    #[test]
    fn the_example_terms_drop_characters_password_fields_and_titles() {
        let terms = Terms::parse(EXAMPLE).unwrap();
        let focus = Event {
            time_ms: 1,
            application: "mail".into(),
            kind: EventKind::Focus {
                window_title: Some("Salary review - Ada".into()),
            },
        };
        let kept = redact_at_ingest(
            vec![key("a", false), key("s", true), focus],
            Some(&terms.policy),
        );
        assert_eq!(kept.len(), 2, "the password-field key is gone");
        assert!(matches!(
            &kept[0].kind,
            EventKind::Key {
                character: None,
                ..
            }
        ));
        assert!(matches!(
            &kept[1].kind,
            EventKind::Focus { window_title: None }
        ));
    }

    #[test]
    fn without_terms_every_redaction_applies_and_where_terms_allow_characters_they_stay() {
        assert!(matches!(
            &redact_at_ingest(vec![key("a", false)], None)[0].kind,
            EventKind::Key {
                character: None,
                ..
            }
        ));
        let permissive = EXAMPLE.replace(
            "transformations = [\"pseudonymise-members\", \"drop-typed-characters\", \"drop-password-fields\"]",
            "transformations = [\"pseudonymise-members\", \"drop-password-fields\"]",
        );
        let terms = Terms::parse(&permissive).unwrap();
        let kept = redact_at_ingest(vec![key("a", false)], Some(&terms.policy));
        assert!(
            matches!(&kept[0].kind, EventKind::Key { character: Some(text), .. } if text == "a")
        );
    }

    #[test]
    fn bad_events_name_the_field() {
        let now = UnixSeconds(2_000_000);
        let future = Event {
            time_ms: (now.0 + 3600) * 1000,
            ..key("a", false)
        };
        assert_eq!(
            future.validate(now, 730, "events[3]").unwrap_err().field,
            "events[3].time_ms"
        );
        let old = Event {
            time_ms: 0,
            ..key("a", false)
        };
        assert!(
            old.validate(UnixSeconds(800 * 86_400), 730, "events[0]")
                .is_err()
        );
        let huge = Event {
            time_ms: now.0 * 1000,
            application: "x".into(),
            kind: EventKind::Screenshot {
                sha256: "a".repeat(64),
                size_bytes: MAXIMUM_SCREENSHOT_BYTES + 1,
            },
        };
        assert_eq!(
            huge.validate(now, 730, "events[0]").unwrap_err().field,
            "events[0].screenshot.size_bytes"
        );
        let two_characters = Event {
            time_ms: now.0 * 1000,
            ..key("ab", false)
        };
        assert_eq!(
            two_characters
                .validate(now, 730, "events[1]")
                .unwrap_err()
                .field,
            "events[1].key.character"
        );
    }
}
