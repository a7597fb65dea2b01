//! Log entries: what the trust writes to its transparency log for every state change that
//! matters to a member. Commitments only, never personal data (BRIEF.md invariant 4).
//!
//! Encoding (deterministic, versioned, type-tagged; at most 65,535 bytes):
//!
//! ```text
//! datatrust/v1 <type>\n
//! <key>: <value>\n        one line per field, in the fixed order of the type
//! ```
//!
//! Values are decimal integers, base64 (keys, commitments, hashes) or lowercase ASCII words
//! (roles). Members and collectors appear only as salted commitments
//! `SHA-256("datatrust member commitment v1\n" || salt || public key)` whose salt only the
//! trust holds; trustees and licensees act in an official capacity and appear by public key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::{NoteVerifier, Principal, PublicKey, Role, UnixSeconds};

pub const ENTRY_PREFIX: &str = "datatrust/v1 ";
pub const MAXIMUM_ENTRY_BYTES: usize = 65_535;

/// A log entry before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    kind: &'static str,
    fields: Vec<(&'static str, String)>,
}

/// How a principal appears in the log.
pub fn subject(principal: &Principal) -> String {
    match principal.role {
        Role::Trustee | Role::Licensee => principal.public_key.to_base64(),
        Role::Member | Role::Collector => BASE64.encode(commitment(
            &principal.commitment_salt,
            &principal.public_key,
        )),
    }
}

/// The salted commitment to a member's or collector's key.
pub fn commitment(salt: &[u8; 32], public_key: &PublicKey) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"datatrust member commitment v1\n");
    hasher.update(salt);
    hasher.update(public_key.as_bytes());
    hasher.finalize().into()
}

impl LogEntry {
    pub(crate) fn new(kind: &'static str, time: UnixSeconds) -> LogEntry {
        LogEntry {
            kind,
            fields: vec![("time", time.0.to_string())],
        }
    }

    pub(crate) fn with(mut self, key: &'static str, value: impl Into<String>) -> LogEntry {
        self.fields.push((key, value.into()));
        self
    }

    /// The value of a field, if the entry has it.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.as_str())
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The first entry of every trust: its name and the keys it will sign with.
    pub fn trust_created(
        origin: &str,
        log_key: &NoteVerifier,
        license_key: &NoteVerifier,
        time: UnixSeconds,
    ) -> LogEntry {
        LogEntry::new("trust-created", time)
            .with("origin", origin)
            .with("log-vkey", log_key.to_text())
            .with("license-vkey", license_key.to_text())
    }

    /// The creation of a trust that succeeds a log whose key was compromised: it logs that
    /// log's final checkpoint (its origin, and the signed note in base64).
    pub fn with_predecessor(self, checkpoint_note: &str) -> LogEntry {
        use base64::Engine as _;
        let origin = checkpoint_note
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        self.with("predecessor-origin", origin).with(
            "predecessor-checkpoint",
            base64::engine::general_purpose::STANDARD.encode(checkpoint_note),
        )
    }

    pub fn principal_registered(
        principal: &Principal,
        by: Option<&PublicKey>,
        time: UnixSeconds,
    ) -> LogEntry {
        let entry = LogEntry::new("principal-registered", time)
            .with("role", principal.role.as_str())
            .with("subject", subject(principal));
        match by {
            Some(trustee) => entry.with("by", trustee.to_base64()),
            None => entry.with("by", "bootstrap"),
        }
    }

    pub fn invitation_redeemed(principal: &Principal, time: UnixSeconds) -> LogEntry {
        LogEntry::new("invitation-redeemed", time)
            .with("role", principal.role.as_str())
            .with("subject", subject(principal))
    }

    pub fn principal_deactivated(
        principal: &Principal,
        by: &PublicKey,
        time: UnixSeconds,
    ) -> LogEntry {
        LogEntry::new("principal-deactivated", time)
            .with("role", principal.role.as_str())
            .with("subject", subject(principal))
            .with("by", by.to_base64())
    }

    pub fn collector_authorized(
        member: &Principal,
        collector: &Principal,
        time: UnixSeconds,
    ) -> LogEntry {
        LogEntry::new("collector-authorized", time)
            .with("member", subject(member))
            .with("collector", subject(collector))
    }

    pub fn collector_revoked(
        member: &Principal,
        collector: &Principal,
        time: UnixSeconds,
    ) -> LogEntry {
        LogEntry::new("collector-revoked", time)
            .with("member", subject(member))
            .with("collector", subject(collector))
    }

    /// The entry's bytes: the same entry always encodes to the same bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("{ENTRY_PREFIX}{}\n", self.kind);
        for (key, value) in &self.fields {
            text.push_str(key);
            text.push_str(": ");
            text.push_str(value);
            text.push('\n');
        }
        debug_assert!(text.len() <= MAXIMUM_ENTRY_BYTES);
        text.into_bytes()
    }
}

/// A decoded entry, for readers (audits, monitors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEntry {
    pub kind: String,
    pub fields: Vec<(String, String)>,
}

impl DecodedEntry {
    pub fn parse(bytes: &[u8]) -> Option<DecodedEntry> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.strip_suffix('\n')?.split('\n');
        let kind = lines.next()?.strip_prefix(ENTRY_PREFIX)?.to_owned();
        let fields = lines
            .map(|line| {
                line.split_once(": ")
                    .map(|(key, value)| (key.to_owned(), value.to_owned()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(DecodedEntry { kind, fields })
    }

    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DisplayName, NoteSigner};

    fn member() -> Principal {
        let mut principal = Principal::new_active(
            NoteSigner::new("m", [4; 32]).unwrap().public_key(),
            Role::Member,
            DisplayName::parse("Ada Lovelace", "display_name").unwrap(),
            UnixSeconds(10),
            [9; 32],
        );
        principal.commitment_salt = [9; 32];
        principal
    }

    #[test]
    fn entries_are_deterministic_and_round_trip() {
        let trustee = NoteSigner::new("t", [5; 32]).unwrap().public_key();
        let entry = LogEntry::principal_registered(&member(), Some(&trustee), UnixSeconds(100));
        assert_eq!(entry.encode(), entry.clone().encode());
        let decoded = DecodedEntry::parse(&entry.encode()).unwrap();
        assert_eq!(decoded.kind, "principal-registered");
        assert_eq!(decoded.field("time"), Some("100"));
        assert_eq!(decoded.field("role"), Some("member"));
        assert_eq!(decoded.field("by"), Some(trustee.to_base64().as_str()));
    }

    #[test]
    fn members_appear_only_as_salted_commitments() {
        let member = member();
        let bytes = LogEntry::principal_registered(&member, None, UnixSeconds(1)).encode();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            !text.contains(&member.public_key.to_base64()),
            "the key must not appear"
        );
        assert!(!text.contains("Ada"), "the name must not appear");
        let mut other_salt = member.clone();
        other_salt.commitment_salt = [8; 32];
        assert_ne!(
            subject(&member),
            subject(&other_salt),
            "the salt changes the commitment"
        );
    }
}
