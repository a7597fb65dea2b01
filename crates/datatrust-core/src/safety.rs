//! No trustee acts alone on what could hand the trust to an attacker or cut off a licensee:
//! registering or deactivating a trustee, denying a license request, revoking a license and
//! lifting a suspension each need signed approvals from the safety quorum of trustees
//! (`Registry::safety_quorum`: the terms' `trustee_quorum`; before any terms, two trustees,
//! or the only one while the trust has one). Each approval is logged (`safety-approval`);
//! at the quorum the action is taken and logged as it always was.
//!
//! Approvals are of an action's kind and subject (`action_message`); the first approver's
//! reason (and a new trustee's name) is the one the action records. Approvals older than
//! `APPROVALS_VALID_SECONDS` are void: a stale half-approved action starts again.
//!
//! Urgent revocation: from the first approval of a license's revocation, the license is on
//! hold (no release, no stream, no training-use report under it) for `URGENT_HOLD_SECONDS`;
//! the quorum confirms the revocation within that time, or the hold lapses with its
//! approvals.

use serde::{Deserialize, Serialize};

use crate::commit::{Decision, Write};
use crate::governance::decode;
use crate::log_entry::LogEntry;
use crate::registry::{DomainError, Journal, Refusal, Registry, Subject, require_role};
use crate::store::{EventStore, RecordKind, RecordStore, TrustStore};
use crate::{DisplayName, FieldError, Principal, PublicKey, Role, UnixSeconds};

/// How long an approval counts towards its action's quorum.
pub const APPROVALS_VALID_SECONDS: i64 = 7 * 86_400;
/// How long one trustee's approval of a revocation holds the license before the quorum.
pub const URGENT_HOLD_SECONDS: i64 = 72 * 3_600;

/// An action that needs the safety quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SafetyAction {
    RegisterTrustee { public_key: PublicKey },
    DeactivateTrustee { public_key: PublicKey },
    DenyRequest { request_id: String },
    RevokeLicense { license_id: String },
    LiftSuspension { licensee: PublicKey },
}

impl SafetyAction {
    pub fn kind(&self) -> &'static str {
        match self {
            SafetyAction::RegisterTrustee { .. } => "register-trustee",
            SafetyAction::DeactivateTrustee { .. } => "deactivate-trustee",
            SafetyAction::DenyRequest { .. } => "deny-request",
            SafetyAction::RevokeLicense { .. } => "revoke-license",
            SafetyAction::LiftSuspension { .. } => "lift-suspension",
        }
    }

    /// What the action is about, as text.
    pub fn subject(&self) -> String {
        match self {
            SafetyAction::RegisterTrustee { public_key }
            | SafetyAction::DeactivateTrustee { public_key } => public_key.to_base64(),
            SafetyAction::DenyRequest { request_id } => request_id.clone(),
            SafetyAction::RevokeLicense { license_id } => license_id.clone(),
            SafetyAction::LiftSuspension { licensee } => licensee.to_base64(),
        }
    }

    fn key(&self) -> Vec<u8> {
        [self.kind().as_bytes(), &[0], self.subject().as_bytes()].concat()
    }
}

/// What a trustee signs to approve `action`.
pub fn action_message(origin: &str, action: &SafetyAction) -> Vec<u8> {
    format!(
        "datatrust safety action v1\n{origin}\n{}\n{}\n",
        action.kind(),
        action.subject()
    )
    .into_bytes()
}

/// An action's approvals so far, and what its first approver gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAction {
    pub action: SafetyAction,
    /// The reason (or a new trustee's display name) the action records.
    pub detail: String,
    /// Trustee, signature (hex), when.
    pub approvals: Vec<(PublicKey, String, UnixSeconds)>,
}

/// Where an action stands after an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionStatus {
    pub approvals: u32,
    pub required: u32,
    /// Whether the quorum was reached and the action taken by this approval.
    pub done: bool,
}

impl<S: TrustStore + RecordStore + EventStore + Clone, J: Journal> Registry<S, J> {
    /// A trustee approves `action` (signed `action_message`); `detail` is the reason (a new
    /// trustee's name), kept from the first approval. Logged. Returns the status and, when
    /// this approval reached the quorum, the approvals (the caller then takes the action).
    pub fn approve_action(
        &self,
        caller: &Principal,
        action: &SafetyAction,
        detail: &str,
        signature: &[u8],
        now: UnixSeconds,
    ) -> Result<(ActionStatus, Option<PendingAction>), DomainError> {
        require_role(caller, Role::Trustee, "approve safety actions")?;
        if !caller
            .signing_key()
            .verify(&action_message(self.origin.as_str(), action), signature)
        {
            return Err(FieldError::new(
                "signature",
                format!(
                    "does not verify: sign the safety action message for {} {}",
                    action.kind(),
                    action.subject()
                ),
            )
            .into());
        }
        let required = self.safety_quorum()?;
        let key = action.key();
        self.decide(|| {
            let (stored, read) = self.store.read_record(RecordKind::PendingAction, &key)?;
            let mut pending = match stored {
                Some(bytes) => decode::<PendingAction>(&bytes)?,
                None => PendingAction {
                    action: action.clone(),
                    detail: detail.trim().to_owned(),
                    approvals: Vec::new(),
                },
            };
            // Stale approvals are void.
            pending
                .approvals
                .retain(|(_, _, at)| at.0 > now.0 - APPROVALS_VALID_SECONDS);
            if pending.approvals.is_empty() {
                pending.detail = detail.trim().to_owned();
            }
            if pending
                .approvals
                .iter()
                .any(|(trustee, _, _)| *trustee == caller.public_key)
            {
                return Err(DomainError::refused(
                    Refusal::AlreadyExists,
                    Subject::Principal,
                    format!(
                        "you approved this {} already; another trustee must approve it",
                        action.kind()
                    ),
                ));
            }
            pending
                .approvals
                .push((caller.public_key, hex::encode(signature), now));
            let count = pending.approvals.len() as u32;
            let done = count >= required;
            let entry = LogEntry::new("safety-approval", now)
                .with("action", action.kind())
                .with("subject", action.subject())
                .with("trustee", caller.public_key.to_base64())
                .with("approvals", count.to_string())
                .with("required", required.to_string());
            let write = if done {
                Write::Record {
                    kind: RecordKind::PendingAction,
                    key: key.clone(),
                    value: None,
                }
            } else {
                crate::commit::record_write(RecordKind::PendingAction, &key, &pending)?
            };
            let decision = Decision {
                entries: vec![entry],
                writes: vec![write],
                reads: vec![read],
            };
            let status = ActionStatus {
                approvals: count,
                required,
                done,
            };
            Ok(((status, done.then_some(pending)), Some(decision)))
        })
        .map(|logged| logged.value)
    }

    /// A revocation of `license_id` approved by fewer trustees than the quorum, less than
    /// `URGENT_HOLD_SECONDS` ago: the license is on hold meanwhile. Says why.
    pub fn urgent_hold(
        &self,
        license_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<String>, DomainError> {
        let action = SafetyAction::RevokeLicense {
            license_id: license_id.to_owned(),
        };
        let Some(pending) =
            self.record::<PendingAction>(RecordKind::PendingAction, &action.key())?
        else {
            return Ok(None);
        };
        let first = pending.approvals.iter().map(|(_, _, at)| at.0).min();
        Ok(match first {
            Some(at) if at > now.0 - URGENT_HOLD_SECONDS => Some(format!(
                "license: on hold: a trustee asked to revoke it ({}); the trustee quorum confirms it or the hold lapses within 72 hours",
                pending.detail
            )),
            _ => None,
        })
    }

    /// Takes an action whose approvals reached the quorum, as `caller` (the last approver).
    pub fn take_action(
        &self,
        caller: &Principal,
        pending: &PendingAction,
        salt: [u8; 32],
        now: UnixSeconds,
    ) -> Result<Option<u64>, DomainError> {
        Ok(match &pending.action {
            SafetyAction::RegisterTrustee { public_key } => {
                let name = DisplayName::parse(&pending.detail, "display_name")?;
                self.register_principal(caller, *public_key, Role::Trustee, name, salt, now)?
                    .log_index
            }
            SafetyAction::DeactivateTrustee { public_key } => {
                self.deactivate_principal(caller, public_key, now)?
                    .log_index
            }
            SafetyAction::DenyRequest { request_id } => {
                let id = crate::RequestId::parse(request_id, "request_id")?;
                self.deny_license_request(caller, &id, &pending.detail, now)?
                    .log_index
            }
            SafetyAction::RevokeLicense { license_id } => {
                let id = crate::LicenseId::parse(license_id, "license_id")?;
                self.revoke_license(caller, &id, &pending.detail, now)?
                    .log_index
            }
            SafetyAction::LiftSuspension { licensee } => {
                self.lift_suspension(caller, licensee, &pending.detail, now)?
                    .log_index
            }
        })
    }
}

/// An approval waiting for more trustees, as trustees list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub kind: String,
    pub subject: String,
    pub detail: String,
    pub approved_by: Vec<PublicKey>,
    pub first_approved_at: UnixSeconds,
}

impl<S: TrustStore + RecordStore + EventStore + Clone, J: Journal> Registry<S, J> {
    /// What waits for trustees' approvals (safety actions with an approval still valid, then
    /// member recoveries), in key order strictly after `after` (a position this returned),
    /// at most `limit`; and the position to ask from next, `None` when the list is done. A
    /// position is the kind's tag (0 actions, 1 recoveries) and the last key read.
    pub fn pending_approvals(
        &self,
        caller: &Principal,
        now: UnixSeconds,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<Waiting>, Option<Vec<u8>>), DomainError> {
        require_role(caller, Role::Trustee, "list pending approvals")?;
        let limit = limit.max(1);
        let (mut phase, mut position) = match after.and_then(|after| after.split_first()) {
            None => (0u8, None),
            Some((&tag, key)) if tag <= 1 => (tag, Some(key.to_vec())),
            Some(_) => {
                return Err(crate::validation::FieldError::new(
                    "page_token",
                    "not a token this list gave out; start again without one",
                )
                .into());
            }
        };
        let mut waiting = Vec::new();
        loop {
            let kind = if phase == 0 {
                RecordKind::PendingAction
            } else {
                RecordKind::PendingRecovery
            };
            let page = self
                .store
                .scan_records_page(kind, b"", position.as_deref(), limit)?;
            for (key, value) in &page {
                if waiting.len() == limit {
                    let from = position.unwrap_or_default();
                    return Ok((waiting, Some([&[phase][..], &from].concat())));
                }
                position = Some(key.clone());
                if phase == 0 {
                    let pending: PendingAction = decode(value)?;
                    let live: Vec<_> = pending
                        .approvals
                        .iter()
                        .filter(|(_, _, at)| at.0 > now.0 - APPROVALS_VALID_SECONDS)
                        .collect();
                    if live.is_empty() {
                        continue;
                    }
                    waiting.push(Waiting {
                        kind: pending.action.kind().to_owned(),
                        subject: pending.action.subject(),
                        detail: pending.detail.clone(),
                        approved_by: live.iter().map(|(trustee, _, _)| *trustee).collect(),
                        first_approved_at: live.iter().map(|(_, _, at)| *at).min().unwrap_or(now),
                    });
                } else {
                    let pending: crate::recovery::PendingRecovery = decode(value)?;
                    waiting.push(Waiting {
                        kind: "recover-member".to_owned(),
                        subject: pending.member.to_base64(),
                        detail: pending.new_key.to_base64(),
                        approved_by: pending
                            .approvals
                            .iter()
                            .map(|(trustee, _)| *trustee)
                            .collect(),
                        first_approved_at: UnixSeconds(0),
                    });
                }
            }
            if page.len() < limit {
                if phase == 1 {
                    return Ok((waiting, None));
                }
                (phase, position) = (1, None);
            }
        }
    }
}
