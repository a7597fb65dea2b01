//! Keys that change: a principal rotates its own key (the request signed by the old key and
//! the new), and a member who lost hers is re-bound to a new key by a quorum of trustees.
//!
//! A principal's first key stays its identity (`Principal::public_key`): consents, earnings,
//! payouts, releases, votes and commitments are keyed by it, so nothing moves. The key it
//! signs with now is `Principal::signing_key`; a `KeyBinding` record maps a later key to the
//! identity, so that signing in with it finds the principal. The key it replaced stops
//! working at once: sign-ins and sessions are checked against `signing_key`. Each change is
//! logged (a member's and a collector's by commitment only, as every entry about them) and
//! kept as a `KeyChange` record that the principal's audit lists, so that a member whose key
//! was taken over by a hostile recovery sees it, with the trustees who approved it.
//!
//! Quorum: a recovery needs the approvals of the terms' `trustee_quorum` trustees, each
//! signed (`recovery_message`). Before any terms are ratified the bootstrap rule applies: two
//! trustees, or the only trustee while the trust has one.

use serde::{Deserialize, Serialize};

use crate::commit::{Decision, Write};
use crate::governance::decode;
use crate::log_entry::{LogEntry, subject};
use crate::registry::{DomainError, Journal, Logged, Refusal, Registry, Subject, require_role};
use crate::store::{EventStore, RecordKind, RecordStore, TrustStore};
use crate::{FieldError, Principal, PublicKey, Role, UnixSeconds};

/// What a principal signs, with its old key and with its new one, to rotate.
pub fn rotation_message(
    origin: &str,
    identity: &PublicKey,
    old: &PublicKey,
    new: &PublicKey,
) -> Vec<u8> {
    format!(
        "datatrust key rotation v1\n{origin}\n{}\n{}\n{}\n",
        identity.to_base64(),
        old.to_base64(),
        new.to_base64()
    )
    .into_bytes()
}

/// What each trustee signs to approve re-binding `member` to `new_key`.
pub fn recovery_message(origin: &str, member: &PublicKey, new_key: &PublicKey) -> Vec<u8> {
    format!(
        "datatrust member recovery v1\n{origin}\n{}\n{}\n",
        member.to_base64(),
        new_key.to_base64()
    )
    .into_bytes()
}

/// A change of a principal's key, as its audit lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChange {
    /// "rotated" (by the principal) or "recovered" (by trustees).
    pub kind: String,
    pub at: UnixSeconds,
    pub log_index: u64,
    /// The trustees who approved a recovery.
    #[serde(default)]
    pub approved_by: Vec<PublicKey>,
}

/// Trustees' approvals of one recovery, below the quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRecovery {
    pub member: PublicKey,
    pub new_key: PublicKey,
    pub approvals: Vec<(PublicKey, String)>,
}

/// Where a recovery stands after an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryStatus {
    pub approvals: u32,
    pub required: u32,
    /// The entry that logged the recovery, once it is done.
    pub log_index: Option<u64>,
}

impl<S: TrustStore + RecordStore + EventStore + Clone, J: Journal> Registry<S, J> {
    /// The active principal that signs with `key` now: found by its first key, or through
    /// the binding of a later one. A key a rotation or recovery replaced finds nobody.
    pub fn principal_signing_with(
        &self,
        key: &PublicKey,
    ) -> Result<Option<Principal>, DomainError> {
        let principal = match self.store.principal(key)? {
            Some(principal) => Some(principal),
            None => match self.record::<PublicKey>(RecordKind::KeyBinding, key.as_bytes())? {
                Some(identity) => self.store.principal(&identity)?,
                None => None,
            },
        };
        Ok(principal.filter(|principal| principal.is_active() && principal.signing_key() == *key))
    }

    /// Whether `key` is taken: a principal's first key, or a key one signs with now.
    pub fn key_in_use(&self, key: &PublicKey) -> Result<bool, DomainError> {
        Ok(self.store.principal(key)?.is_some()
            || self
                .store
                .get_record(RecordKind::KeyBinding, key.as_bytes())?
                .is_some())
    }

    /// The caller replaces the key it signs with by `new_key`, proving it holds both (each
    /// signs `rotation_message`). Logged; the old key's sessions end at once.
    pub fn rotate_key(
        &self,
        caller: &Principal,
        new_key: PublicKey,
        old_signature: &[u8],
        new_signature: &[u8],
        now: UnixSeconds,
    ) -> Result<Logged<Principal>, DomainError> {
        let old = caller.signing_key();
        let message = rotation_message(self.origin.as_str(), &caller.public_key, &old, &new_key);
        if !old.verify(&message, old_signature) {
            return Err(FieldError::new(
                "old_signature",
                "does not verify: sign the rotation message with the key you sign in with now",
            )
            .into());
        }
        if !new_key.verify(&message, new_signature) {
            return Err(FieldError::new(
                "new_signature",
                "does not verify: sign the rotation message with the new key",
            )
            .into());
        }
        self.rebind(caller.public_key, new_key, "rotated", Vec::new(), now)
    }

    /// A trustee approves re-binding `member` to `new_key` (signed `recovery_message`), after
    /// the member proved who she is out of band. Below the quorum the approval is kept, not
    /// logged; at the quorum the member signs with `new_key` from then on, her old key stops
    /// at once, and the recovery is logged and shows in her audit.
    pub fn approve_recovery(
        &self,
        caller: &Principal,
        member: &PublicKey,
        new_key: PublicKey,
        signature: &[u8],
        now: UnixSeconds,
    ) -> Result<RecoveryStatus, DomainError> {
        require_role(caller, Role::Trustee, "approve recoveries")?;
        let message = recovery_message(self.origin.as_str(), member, &new_key);
        if !caller.signing_key().verify(&message, signature) {
            return Err(FieldError::new(
                "signature",
                "does not verify: sign the recovery message for this member and new key",
            )
            .into());
        }
        let target = self
            .store
            .principal(member)?
            .filter(|principal| principal.role == Role::Member && principal.is_active());
        if target.is_none() {
            return Err(DomainError::refused(
                Refusal::NotFound,
                Subject::Member,
                "no active member has this key",
            ));
        }
        if self.key_in_use(&new_key)? {
            return Err(FieldError::new("new_public_key", "is already a key of this trust").into());
        }
        let required = self.safety_quorum()?;
        let pending_key = [member.as_bytes().as_slice(), new_key.as_bytes()].concat();
        let approvals = self
            .decide(|| {
                let (stored, read) = self
                    .store
                    .read_record(RecordKind::PendingRecovery, &pending_key)?;
                let mut pending = match stored {
                    Some(bytes) => decode::<PendingRecovery>(&bytes)?,
                    None => PendingRecovery {
                        member: *member,
                        new_key,
                        approvals: Vec::new(),
                    },
                };
                if pending
                    .approvals
                    .iter()
                    .any(|(trustee, _)| *trustee == caller.public_key)
                {
                    return Err(DomainError::refused(
                        Refusal::AlreadyExists,
                        Subject::Member,
                        "you approved this recovery already; another trustee must approve it",
                    ));
                }
                pending
                    .approvals
                    .push((caller.public_key, hex::encode(signature)));
                let decision = Decision {
                    entries: Vec::new(),
                    writes: vec![crate::commit::record_write(
                        RecordKind::PendingRecovery,
                        &pending_key,
                        &pending,
                    )?],
                    reads: vec![read],
                };
                Ok((pending.approvals, Some(decision)))
            })?
            .value;
        let count = approvals.len() as u32;
        if count < required {
            return Ok(RecoveryStatus {
                approvals: count,
                required,
                log_index: None,
            });
        }
        let approvers: Vec<PublicKey> = approvals.iter().map(|(trustee, _)| *trustee).collect();
        let logged = self.rebind(*member, new_key, "recovered", approvers, now)?;
        // The approvals are spent.
        self.decide(|| {
            let (_, read) = self
                .store
                .read_record(RecordKind::PendingRecovery, &pending_key)?;
            let decision = Decision {
                entries: Vec::new(),
                writes: vec![Write::Record {
                    kind: RecordKind::PendingRecovery,
                    key: pending_key.clone(),
                    value: None,
                }],
                reads: vec![read],
            };
            Ok(((), Some(decision)))
        })?;
        Ok(RecoveryStatus {
            approvals: count,
            required,
            log_index: logged.log_index,
        })
    }

    /// Approvals a safety action needs: the terms' `trustee_quorum`; before any terms, two
    /// trustees, or the only one while the trust has one (the bootstrap rule).
    pub fn safety_quorum(&self) -> Result<u32, DomainError> {
        if let Some(terms) = self.active_policy()? {
            return Ok(terms.policy.ratification.trustee_quorum.max(1));
        }
        let trustees = self
            .store
            .list_principals(Some(Role::Trustee), None, 2)?
            .iter()
            .filter(|trustee| trustee.is_active())
            .count();
        Ok(if trustees >= 2 { 2 } else { 1 })
    }

    /// The changes of a principal's key, oldest first.
    pub fn key_changes(&self, identity: &PublicKey) -> Result<Vec<KeyChange>, DomainError> {
        self.records(RecordKind::KeyChange, identity.as_bytes())
    }

    /// Binds `identity` to `new_key`: the principal signs with it from now on, the key it
    /// replaced finds nobody; logged, and kept for its audit.
    fn rebind(
        &self,
        identity: PublicKey,
        new_key: PublicKey,
        kind: &'static str,
        approved_by: Vec<PublicKey>,
        now: UnixSeconds,
    ) -> Result<Logged<Principal>, DomainError> {
        let logged = self.decide(|| {
            let (stored, principal_read) = self.store.read_principal(&identity)?;
            let mut principal = stored.filter(Principal::is_active).ok_or_else(|| {
                DomainError::refused(
                    Refusal::NotFound,
                    Subject::Principal,
                    "no active principal has this key",
                )
            })?;
            // The new key must be nobody's: no principal's first key, no binding.
            let (taken_first, first_read) = self.store.read_principal(&new_key)?;
            let (taken_bound, bound_read) = self
                .store
                .read_record(RecordKind::KeyBinding, new_key.as_bytes())?;
            if taken_first.is_some() || taken_bound.is_some() {
                return Err(
                    FieldError::new("new_public_key", "is already a key of this trust").into(),
                );
            }
            let old = principal.signing_key();
            let mut writes = Vec::new();
            if old != identity {
                writes.push(Write::Record {
                    kind: RecordKind::KeyBinding,
                    key: old.as_bytes().to_vec(),
                    value: None,
                });
            }
            if new_key != identity {
                writes.push(crate::commit::record_write(
                    RecordKind::KeyBinding,
                    new_key.as_bytes(),
                    &identity,
                )?);
            }
            principal.current_key = (new_key != identity).then_some(new_key);
            writes.push(Write::Principal(principal.clone()));
            let change = KeyChange {
                kind: kind.to_owned(),
                at: now,
                log_index: 0,
                approved_by: approved_by.clone(),
            };
            // Keyed by identity and time; the index is set at commit.
            let change_key = [identity.as_bytes().as_slice(), &now.0.to_be_bytes()].concat();
            writes.push(crate::commit::indexed_write(
                RecordKind::KeyChange,
                &change_key,
                &change,
                "/log_index",
                0,
            )?);
            let entry_kind = if kind == "recovered" {
                "key-recovered"
            } else {
                "key-rotated"
            };
            let mut entry = LogEntry::new(entry_kind, now)
                .with("subject", subject(&principal))
                .with("role", principal.role.as_str());
            // Trustees and licensees act in public; members' and collectors' keys never
            // appear in the log.
            if matches!(principal.role, Role::Trustee | Role::Licensee) {
                entry = entry.with("key", new_key.to_base64());
            }
            if !approved_by.is_empty() {
                entry = entry.with(
                    "approved_by",
                    approved_by
                        .iter()
                        .map(PublicKey::to_base64)
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            let decision = Decision {
                entries: vec![entry],
                writes,
                reads: vec![principal_read, first_read, bound_read],
            };
            Ok((principal, Some(decision)))
        })?;
        Ok(logged)
    }
}

/// A license-signing key that replaced the one before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseKeyRecord {
    /// From 1; 0 is the trust's first key.
    pub generation: u32,
    /// Its verifier key (signed-note vkey text).
    pub vkey: String,
    /// Licenses issued from this time on are signed by it.
    pub valid_from: UnixSeconds,
    pub log_index: u64,
}

impl<S: TrustStore + RecordStore + EventStore + Clone, J: Journal> Registry<S, J> {
    /// The license keys that replaced the first, oldest first.
    pub fn license_keys(&self) -> Result<Vec<LicenseKeyRecord>, DomainError> {
        self.records(RecordKind::LicenseKey, b"")
    }

    /// A trustee records that licenses are signed by `vkey` from now on (the server made the
    /// key and keeps it). Logged with the key, so that anyone can tell which key signed a
    /// license at its issuance.
    pub fn rotate_license_key(
        &self,
        caller: &Principal,
        generation: u32,
        vkey: &str,
        now: UnixSeconds,
    ) -> Result<Logged<LicenseKeyRecord>, DomainError> {
        require_role(caller, Role::Trustee, "rotate the license key")?;
        let logged = self.decide(|| {
            let key = generation.to_be_bytes();
            let (existing, read) = self.store.read_record(RecordKind::LicenseKey, &key)?;
            if existing.is_some() {
                return Err(DomainError::refused(
                    Refusal::AlreadyExists,
                    Subject::License,
                    "another rotation of the license key happened at the same time; try again",
                ));
            }
            let record = LicenseKeyRecord {
                generation,
                vkey: vkey.to_owned(),
                valid_from: now,
                log_index: 0,
            };
            let decision = Decision {
                entries: vec![
                    LogEntry::new("license-key-rotated", now)
                        .with("generation", generation.to_string())
                        .with("vkey", vkey.to_owned())
                        .with("by", caller.public_key.to_base64()),
                ],
                writes: vec![crate::commit::indexed_write(
                    RecordKind::LicenseKey,
                    &key,
                    &record,
                    "/log_index",
                    0,
                )?],
                reads: vec![read],
            };
            Ok((record, Some(decision)))
        })?;
        let mut logged = logged;
        logged.value.log_index = logged.log_index.unwrap_or_default();
        Ok(logged)
    }
}
