//! Who belongs to the trust: the rules for registering, inviting, deactivating principals and
//! for members' collector authorisations. Every operation takes the authenticated caller and
//! checks role and ownership here, so no transport can forget to.
//!
//! Logged before effective (BRIEF.md invariant 3): every state change is decided on
//! versioned reads and committed with its log entries in one durable write by the
//! `Journal` (the log's sequencer), which refuses it if a read changed since; it is then
//! decided again (`Registry::decide`). No lock is held across a decision.

use std::sync::Mutex;

use crate::auth::{InvitationCode, redeem_message};
use crate::commit::{CommitError, Decision, TableRead, TableWrite};
use crate::log_entry::LogEntry;
use crate::store::{Invitation, StoreError, TrustStore};
use crate::{
    CollectorAuthorization, DisplayName, FieldError, Origin, Principal, PublicKey, Role,
    UnixSeconds,
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
    #[error("transparency log: {0}")]
    Journal(#[from] JournalError),
    /// Too many concurrent changes to the same state: nothing was done; try again.
    #[error("contended: {0}")]
    Contended(String),
    /// A refusal about one subject of the command, named in the core's own terms; the
    /// server names the subject by its wire field (`status.rs`).
    #[error("{kind:?}: {}: {reason}", subject.path())]
    Refused {
        kind: Refusal,
        subject: Subject,
        reason: String,
    },
}

impl DomainError {
    pub fn refused(kind: Refusal, subject: Subject, reason: impl Into<String>) -> DomainError {
        DomainError::Refused {
            kind,
            subject,
            reason: reason.into(),
        }
    }
}

/// Why a command about a subject was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
}

/// What a refusal is about: the command's subject, by the core's own field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Terms,
    Request,
    License,
    Licensee,
    Member,
    Release,
    Collector,
    Charge,
    Principal,
}

impl Subject {
    /// The core's name for it (logs, tests); wire names are the server's business.
    pub fn path(self) -> &'static str {
        match self {
            Subject::Terms => "terms",
            Subject::Request => "request",
            Subject::License => "license",
            Subject::Licensee => "licensee",
            Subject::Member => "member",
            Subject::Release => "release",
            Subject::Collector => "collector",
            Subject::Charge => "charge",
            Subject::Principal => "principal",
        }
    }
}

/// The log could not take an entry; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JournalError(pub String);

/// Where state changes are committed: the transparency log's sequencer, in production.
pub trait Journal: Send + Sync {
    /// Appends `entries` and applies `writes` in one durable commit if every read still has
    /// its version (else `CommitError::Conflict`, with nothing done); returns the index of
    /// the first entry (for a decision without entries, the log's size).
    fn commit(
        &self,
        entries: &[LogEntry],
        reads: Vec<TableRead>,
        writes: StateWrites,
    ) -> Result<u64, CommitError>;
}

/// A decision's writes in the store's terms, given the index its first entry gets.
pub type StateWrites = Box<dyn FnOnce(u64) -> Result<Vec<TableWrite>, String> + Send>;

/// How many times a decision is taken again after a conflict before the caller is told to
/// retry (ABORTED).
const DECISION_ATTEMPTS: usize = 64;

/// A state change's result and the index of the log entry that recorded it (`None` when
/// nothing changed, e.g. authorising a collector twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged<T> {
    pub value: T,
    pub log_index: Option<u64>,
}

/// Operations on principals, over any store and journal.
pub struct Registry<S, J> {
    pub(crate) store: S,
    pub(crate) journal: J,
    pub(crate) origin: Origin,
    /// Terms parsed once per version (by hash): the terms in force are read on every
    /// consent and ingest batch.
    pub(crate) parsed_terms:
        Mutex<std::collections::HashMap<String, std::sync::Arc<crate::terms::Terms>>>,
}

impl<S: TrustStore + Clone, J: Journal> Registry<S, J> {
    pub fn new(store: S, journal: J, origin: Origin) -> Registry<S, J> {
        Registry {
            store,
            journal,
            origin,
            parsed_terms: Mutex::default(),
        }
    }

    pub fn journal(&self) -> &J {
        &self.journal
    }

    /// Decides and commits a state change on the one commit path: `decide` reads (with
    /// versions) and returns the result and the decision (`None`: nothing to change); a
    /// conflict means another change got there first, so it is decided again on fresh
    /// state. The log index is the decision's first entry's (`None` for a decision without
    /// entries, such as a secret ballot).
    pub(crate) fn decide<T>(
        &self,
        decide: impl Fn() -> Result<(T, Option<Decision>), DomainError>,
    ) -> Result<Logged<T>, DomainError> {
        for _ in 0..DECISION_ATTEMPTS {
            let (value, decision) = decide()?;
            let Some(decision) = decision else {
                return Ok(Logged {
                    value,
                    log_index: None,
                });
            };
            let logged = !decision.entries.is_empty();
            match self.commit(decision) {
                Ok(log_index) => {
                    return Ok(Logged {
                        value,
                        log_index: logged.then_some(log_index),
                    });
                }
                Err(CommitError::Conflict) => continue,
                Err(error) => return Err(DomainError::Journal(JournalError(error.to_string()))),
            }
        }
        Err(DomainError::Contended(
            "the same state kept changing while this change was decided; nothing was done, try again".into(),
        ))
    }

    /// Hands a decision to the journal, with its writes in the store's terms.
    fn commit(&self, decision: Decision) -> Result<u64, CommitError> {
        let store = self.store.clone();
        let writes = decision.writes;
        let encode: StateWrites = Box::new(move |first_index| {
            let mut encoded = Vec::new();
            for write in &writes {
                encoded.extend(
                    store
                        .encode(write, first_index)
                        .map_err(|error| error.to_string())?,
                );
            }
            Ok(encoded)
        });
        self.journal
            .commit(&decision.entries, decision.reads, encode)
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
        commitment_salt: [u8; 32],
        now: UnixSeconds,
    ) -> Result<Logged<Principal>, DomainError> {
        require_role(caller, Role::Trustee, "register principals")?;
        self.decide(|| {
            let (existing, read) = self.store.read_principal(&public_key)?;
            let new = crate::membership::NewPrincipal {
                public_key,
                role,
                display_name: display_name.clone(),
                commitment_salt,
            };
            let (principal, decision) =
                crate::membership::register(caller, existing, read, new, now)?;
            Ok((principal, Some(decision)))
        })
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
        commitment_salt: [u8; 32],
        now: UnixSeconds,
    ) -> Result<Logged<Principal>, DomainError> {
        if !public_key.verify(&redeem_message(&self.origin, &public_key, code), signature) {
            return Err(FieldError::new(
                "signature",
                "does not verify: sign the redeem message with the key being enrolled",
            )
            .into());
        }
        self.decide(|| {
            let invitation = match self.store.read_invitation(&code.hash())? {
                (Some(invitation), read) => Some((invitation, read)),
                (None, _) => None,
            };
            let existing = self.store.read_principal(&public_key)?;
            let (principal, decision) =
                crate::membership::redeem(invitation, existing, public_key, commitment_salt, now)?;
            Ok((principal, Some(decision)))
        })
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

    /// Invitations, used and unused, a page at a time (trustees only): names and dates,
    /// never the codes.
    pub fn list_invitations(
        &self,
        caller: &Principal,
        after: Option<&[u8; 32]>,
        page_size: usize,
    ) -> Result<(Vec<Invitation>, Option<[u8; 32]>), DomainError> {
        require_role(caller, Role::Trustee, "list invitations")?;
        let page_size = list_page_size(page_size)?;
        let mut invitations = self.store.list_invitations(after, page_size + 1)?;
        let next = if invitations.len() > page_size {
            invitations.truncate(page_size);
            invitations.last().map(|invitation| invitation.code_hash)
        } else {
            None
        };
        Ok((invitations, next))
    }

    pub fn list_principals(
        &self,
        caller: &Principal,
        role: Option<Role>,
        after: Option<&PublicKey>,
        page_size: usize,
    ) -> Result<(Vec<Principal>, Option<PublicKey>), DomainError> {
        require_role(caller, Role::Trustee, "list principals")?;
        let page_size = list_page_size(page_size)?;
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
        now: UnixSeconds,
    ) -> Result<Logged<Principal>, DomainError> {
        require_role(caller, Role::Trustee, "deactivate principals")?;
        self.decide(|| {
            let (target, read) = self.store.read_principal(public_key)?;
            crate::membership::deactivate(caller, target, read, now)
        })
    }

    pub fn authorize_collector(
        &self,
        caller: &Principal,
        collector: &PublicKey,
        now: UnixSeconds,
    ) -> Result<Logged<CollectorAuthorization>, DomainError> {
        require_role(caller, Role::Member, "authorise collectors")?;
        self.decide(|| {
            let (collector, collector_read) = self.store.read_principal(collector)?;
            let collector = match collector {
                Some(principal) if principal.role == Role::Collector && principal.is_active() => {
                    principal
                }
                _ => {
                    return Err(DomainError::refused(
                        Refusal::NotFound,
                        Subject::Collector,
                        "no active collector has this key; ask a trustee to register it",
                    ));
                }
            };
            let (existing, read) = self
                .store
                .read_collector_authorization(&caller.public_key, &collector.public_key)?;
            let (authorization, decision) =
                crate::collectors::authorize(caller, &collector, existing, read, now);
            // Decided on an active collector: a deactivation in between makes it decide again.
            let decision = decision.map(|mut decision| {
                decision.reads.push(collector_read);
                decision
            });
            Ok((authorization, decision))
        })
    }

    pub fn revoke_collector(
        &self,
        caller: &Principal,
        collector: &PublicKey,
        now: UnixSeconds,
    ) -> Result<Logged<bool>, DomainError> {
        require_role(caller, Role::Member, "revoke collectors")?;
        self.revoke_collector_as(caller, collector, now)
    }

    /// Withdraws a collector's authorisation (the member's own request, or her erasure).
    pub(crate) fn revoke_collector_as(
        &self,
        caller: &Principal,
        collector: &PublicKey,
        now: UnixSeconds,
    ) -> Result<Logged<bool>, DomainError> {
        self.decide(|| {
            let (existing, read) = self
                .store
                .read_collector_authorization(&caller.public_key, collector)?;
            if existing.is_none() {
                return Ok((false, None));
            }
            // The collector may since have been deactivated; its record still exists.
            let collector_principal = self
                .store
                .principal(collector)?
                .ok_or_else(not_found_principal)?;
            Ok(crate::collectors::revoke(
                caller,
                &collector_principal,
                existing,
                read,
                now,
            ))
        })
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

pub fn require_role(caller: &Principal, role: Role, action: &str) -> Result<(), DomainError> {
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
    DomainError::refused(Refusal::NotFound, Subject::Principal, "no such principal")
}

/// A list's `page_size`: 0 means the default; more than the maximum is refused.
fn list_page_size(page_size: usize) -> Result<usize, DomainError> {
    match page_size {
        0 => Ok(LIST_PAGE_DEFAULT),
        size if size <= LIST_PAGE_MAXIMUM => Ok(size),
        _ => {
            Err(FieldError::new("page_size", format!("must be at most {LIST_PAGE_MAXIMUM}")).into())
        }
    }
}
