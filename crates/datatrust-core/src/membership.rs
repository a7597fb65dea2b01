//! Principals and invitations: trustees register and deactivate principals; a member
//! redeems an invitation with their own key. Pure decisions (see `commit.rs`); the registry
//! reads and commits them.

use crate::commit::{Decision, TableRead, Write};
use crate::log_entry::LogEntry;
use crate::registry::{DomainError, Refusal, Subject};
use crate::store::Invitation;
use crate::{DisplayName, Principal, PrincipalStatus, PublicKey, Role, UnixSeconds};

/// A trustee registers a new key; a key already registered (in any role) is refused.
pub fn register(
    trustee: &Principal,
    existing: Option<Principal>,
    read: TableRead,
    new: NewPrincipal,
    now: UnixSeconds,
) -> Result<(Principal, Decision), DomainError> {
    if let Some(existing) = existing {
        return Err(key_taken(&existing));
    }
    let principal = Principal::new_active(
        new.public_key,
        new.role,
        new.display_name,
        now,
        new.commitment_salt,
    );
    let decision = Decision {
        entries: vec![LogEntry::principal_registered(
            &principal,
            Some(&trustee.public_key),
            now,
        )],
        writes: vec![Write::Principal(principal.clone())],
        reads: vec![read],
    };
    Ok((principal, decision))
}

/// Who a registration or a redemption creates.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub public_key: PublicKey,
    pub role: Role,
    pub display_name: DisplayName,
    pub commitment_salt: [u8; 32],
}

/// A trustee deactivates a principal (not itself); deactivating an inactive one changes
/// nothing.
pub fn deactivate(
    trustee: &Principal,
    target: Option<Principal>,
    read: TableRead,
    now: UnixSeconds,
) -> Result<(Principal, Option<Decision>), DomainError> {
    let Some(mut principal) = target else {
        return Err(DomainError::refused(
            Refusal::NotFound,
            Subject::Principal,
            "no such principal",
        ));
    };
    if principal.public_key == trustee.public_key {
        return Err(DomainError::refused(
            Refusal::FailedPrecondition,
            Subject::Principal,
            "a trustee cannot deactivate itself; ask another trustee",
        ));
    }
    if !principal.is_active() {
        return Ok((principal, None));
    }
    let entry = LogEntry::principal_deactivated(&principal, &trustee.public_key, now);
    principal.status = PrincipalStatus::Deactivated;
    let decision = Decision {
        entries: vec![entry],
        writes: vec![Write::Principal(principal.clone())],
        reads: vec![read],
    };
    Ok((principal, Some(decision)))
}

/// A new member redeems `invitation` with their key. Unknown, used and expired codes are
/// refused alike, so a guesser learns nothing; a key already registered is refused.
pub fn redeem(
    invitation: Option<(Invitation, TableRead)>,
    existing: (Option<Principal>, TableRead),
    public_key: PublicKey,
    commitment_salt: [u8; 32],
    now: UnixSeconds,
) -> Result<(Principal, Decision), DomainError> {
    let unusable = || {
        DomainError::NotFound(
            "invitation_code: no unused, unexpired invitation has this code".into(),
        )
    };
    let (mut invitation, invitation_read) = invitation.ok_or_else(unusable)?;
    if invitation.redeemed_by.is_some() || now > invitation.expires_at {
        return Err(unusable());
    }
    let (existing, principal_read) = existing;
    if existing.is_some() {
        return Err(DomainError::refused(
            Refusal::AlreadyExists,
            Subject::Principal,
            "this key is already registered; generate a new key for this invitation",
        ));
    }
    let principal = Principal::new_active(
        public_key,
        invitation.role,
        invitation.display_name.clone(),
        now,
        commitment_salt,
    );
    invitation.redeemed_by = Some(public_key);
    let decision = Decision {
        entries: vec![LogEntry::invitation_redeemed(&principal, now)],
        writes: vec![
            Write::Principal(principal.clone()),
            Write::Invitation(invitation),
        ],
        reads: vec![invitation_read, principal_read],
    };
    Ok((principal, decision))
}

/// A key already registered, for callers outside the core.
pub fn key_taken_error() -> DomainError {
    DomainError::refused(
        Refusal::AlreadyExists,
        Subject::Principal,
        "this key is already registered",
    )
}

pub(crate) fn key_taken(existing: &Principal) -> DomainError {
    DomainError::refused(
        Refusal::AlreadyExists,
        Subject::Principal,
        format!("already registered as a {}", existing.role),
    )
}
