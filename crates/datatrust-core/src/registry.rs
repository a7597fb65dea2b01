//! Who belongs to the trust: the rules for registering, inviting, deactivating principals and
//! for members' collector authorisations. Every operation takes the authenticated caller and
//! checks role and ownership here, so no transport can forget to.

use crate::auth::{InvitationCode, redeem_message};
use crate::store::{Invitation, PrincipalInsert, Redemption, StoreError, TrustStore};
use crate::{
    CollectorAuthorization, DisplayName, FieldError, Origin, Principal, PrincipalStatus, PublicKey,
    Role, UnixSeconds,
};

/// Default and longest validity of an invitation code.
pub const INVITATION_DEFAULT_SECONDS: i64 = 7 * 24 * 3600;
pub const INVITATION_MAXIMUM_SECONDS: i64 = 30 * 24 * 3600;
/// Largest page of a principal listing.
pub const LIST_PAGE_MAXIMUM: usize = 1000;
pub const LIST_PAGE_DEFAULT: usize = 100;

/// Why a domain operation did not happen. Each maps to one gRPC code at the server.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    Invalid(#[from] FieldError),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Operations on principals, over any store.
pub struct Registry<S> {
    store: S,
    origin: Origin,
}

impl<S: TrustStore> Registry<S> {
    pub fn new(store: S, origin: Origin) -> Registry<S> {
        Registry { store, origin }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The active principal behind a key, for authentication. Deactivated keys are refused.
    pub fn active_principal(
        &self,
        public_key: &PublicKey,
    ) -> Result<Option<Principal>, DomainError> {
        Ok(self
            .store
            .principal(public_key)?
            .filter(Principal::is_active))
    }

    pub fn register_principal(
        &self,
        caller: &Principal,
        public_key: PublicKey,
        role: Role,
        display_name: DisplayName,
        now: UnixSeconds,
    ) -> Result<Principal, DomainError> {
        require_role(caller, Role::Trustee, "register principals")?;
        let principal = Principal::new_active(public_key, role, display_name, now);
        match self.store.insert_principal(&principal)? {
            PrincipalInsert::Inserted => Ok(principal),
            PrincipalInsert::KeyTaken(existing) => Err(DomainError::AlreadyExists(format!(
                "public_key: already registered as a {}",
                existing.role
            ))),
        }
    }

    /// Creates a member invitation; returns the code, which is shown once and never stored.
    pub fn create_invitation(
        &self,
        caller: &Principal,
        display_name: DisplayName,
        valid_for_seconds: i64,
        random: [u8; 13],
        now: UnixSeconds,
    ) -> Result<(InvitationCode, Invitation), DomainError> {
        require_role(caller, Role::Trustee, "create invitations")?;
        let valid_for_seconds = match valid_for_seconds {
            0 => INVITATION_DEFAULT_SECONDS,
            seconds if (1..=INVITATION_MAXIMUM_SECONDS).contains(&seconds) => seconds,
            _ => {
                return Err(FieldError::new(
                    "valid_for_seconds",
                    format!("must be between 1 and {INVITATION_MAXIMUM_SECONDS} (30 days), or 0 for 7 days"),
                )
                .into());
            }
        };
        let code = InvitationCode::from_random(random);
        let invitation = Invitation {
            code_hash: code.hash(),
            role: Role::Member,
            display_name,
            created_by: caller.public_key,
            created_at: now,
            expires_at: now.plus_seconds(valid_for_seconds),
            redeemed_by: None,
        };
        self.store.insert_invitation(&invitation)?;
        Ok((code, invitation))
    }

    /// Redeems an invitation with the new member's own key; the signature proves the redeemer
    /// holds that key, so nobody can enrol a key they do not control.
    pub fn redeem_invitation(
        &self,
        code: &InvitationCode,
        public_key: PublicKey,
        signature: &[u8],
        now: UnixSeconds,
    ) -> Result<Principal, DomainError> {
        if !public_key.verify(&redeem_message(&self.origin, &public_key, code), signature) {
            return Err(FieldError::new(
                "signature",
                "does not verify: sign the redeem message with the key being enrolled",
            )
            .into());
        }
        match self.store.redeem_invitation(&code.hash(), &public_key, now)? {
            Redemption::Redeemed(principal) => Ok(principal),
            // Unknown, used and expired codes are reported alike: a guesser learns nothing.
            Redemption::UnknownCode | Redemption::AlreadyRedeemed | Redemption::Expired => {
                Err(DomainError::NotFound(
                    "invitation_code: no unused, unexpired invitation has this code".into(),
                ))
            }
            Redemption::KeyTaken => Err(DomainError::AlreadyExists(
                "public_key: this key is already registered; generate a new key for this invitation".into(),
            )),
        }
    }

    /// Trustees read anyone; everyone else only themselves. Asking for another principal's
    /// record answers NOT_FOUND, so that existence itself does not leak.
    pub fn get_principal(
        &self,
        caller: &Principal,
        public_key: &PublicKey,
    ) -> Result<Principal, DomainError> {
        if caller.role != Role::Trustee && caller.public_key != *public_key {
            return Err(not_found_principal());
        }
        self.store
            .principal(public_key)?
            .ok_or_else(not_found_principal)
    }

    pub fn list_principals(
        &self,
        caller: &Principal,
        role: Option<Role>,
        after: Option<&PublicKey>,
        page_size: usize,
    ) -> Result<(Vec<Principal>, Option<PublicKey>), DomainError> {
        require_role(caller, Role::Trustee, "list principals")?;
        let page_size = match page_size {
            0 => LIST_PAGE_DEFAULT,
            size if size <= LIST_PAGE_MAXIMUM => size,
            _ => {
                return Err(FieldError::new(
                    "page_size",
                    format!("must be at most {LIST_PAGE_MAXIMUM}"),
                )
                .into());
            }
        };
        // One extra row tells whether another page exists.
        let mut principals = self.store.list_principals(role, after, page_size + 1)?;
        let next = if principals.len() > page_size {
            principals.truncate(page_size);
            principals.last().map(|principal| principal.public_key)
        } else {
            None
        };
        Ok((principals, next))
    }

    pub fn deactivate_principal(
        &self,
        caller: &Principal,
        public_key: &PublicKey,
    ) -> Result<Principal, DomainError> {
        require_role(caller, Role::Trustee, "deactivate principals")?;
        if caller.public_key == *public_key {
            return Err(DomainError::FailedPrecondition(
                "public_key: a trustee cannot deactivate itself; ask another trustee".into(),
            ));
        }
        self.store
            .set_principal_status(public_key, PrincipalStatus::Deactivated)?
            .ok_or_else(not_found_principal)
    }

    pub fn authorize_collector(
        &self,
        caller: &Principal,
        collector: &PublicKey,
        now: UnixSeconds,
    ) -> Result<CollectorAuthorization, DomainError> {
        require_role(caller, Role::Member, "authorise collectors")?;
        match self.store.principal(collector)? {
            Some(principal) if principal.role == Role::Collector && principal.is_active() => {}
            _ => {
                return Err(DomainError::NotFound(
                    "collector_public_key: no active collector has this key; ask a trustee to register it".into(),
                ));
            }
        }
        let authorization = CollectorAuthorization {
            member: caller.public_key,
            collector: *collector,
            authorized_at: now,
        };
        Ok(self.store.authorize_collector(&authorization)?)
    }

    pub fn revoke_collector(
        &self,
        caller: &Principal,
        collector: &PublicKey,
    ) -> Result<bool, DomainError> {
        require_role(caller, Role::Member, "revoke collectors")?;
        Ok(self.store.revoke_collector(&caller.public_key, collector)?)
    }

    pub fn my_collectors(
        &self,
        caller: &Principal,
    ) -> Result<Vec<CollectorAuthorization>, DomainError> {
        require_role(caller, Role::Member, "list their collectors")?;
        Ok(self.store.collectors_of_member(&caller.public_key)?)
    }

    pub fn my_members(
        &self,
        caller: &Principal,
    ) -> Result<Vec<CollectorAuthorization>, DomainError> {
        require_role(caller, Role::Collector, "list the members they upload for")?;
        Ok(self.store.members_of_collector(&caller.public_key)?)
    }
}

fn require_role(caller: &Principal, role: Role, action: &str) -> Result<(), DomainError> {
    if caller.role == role {
        Ok(())
    } else {
        Err(DomainError::PermissionDenied(format!(
            "only a {role} may {action}; this key is a {}",
            caller.role
        )))
    }
}

fn not_found_principal() -> DomainError {
    DomainError::NotFound("public_key: no such principal".into())
}
