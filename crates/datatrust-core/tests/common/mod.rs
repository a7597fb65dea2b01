//! A ratified trust in the core's memory store, driven through the core's registry with the clock
//! in the test's hands: one trustee (quorum 1), members who voted the terms in, a licensee.

#![allow(dead_code)] // each test file uses part of it

use datatrust_core::commit::MemoryJournal;
use datatrust_core::governance::LicenseRecord;
use datatrust_core::governance::{
    RequestedTerms, approval_message, ballot_message, countersign_message,
};
use datatrust_core::memory_store::MemoryStore;
use datatrust_core::registry::{DomainError, Refusal, Registry};
use datatrust_core::store::TrustStore as _;
use datatrust_core::{DisplayName, NoteSigner, Origin, Principal, Role, UnixSeconds};

pub const TERMS: &str = include_str!("../../../../terms/example-agreement.toml");
pub const T0: i64 = 1_800_000_000;
pub const DAY: i64 = 86_400;

pub fn day(days: i64) -> UnixSeconds {
    UnixSeconds(T0 + days * DAY)
}

pub fn precondition<T: std::fmt::Debug>(result: Result<T, DomainError>) -> String {
    match result {
        Err(DomainError::FailedPrecondition(why)) => why,
        Err(DomainError::Refused {
            kind: Refusal::FailedPrecondition,
            subject,
            reason,
        }) => format!("{}: {reason}", subject.path()),
        other => panic!("expected a failed precondition, got {other:?}"),
    }
}

pub struct Trust {
    pub origin: Origin,
    pub registry: Registry<MemoryStore, MemoryJournal<MemoryStore>>,
    pub trustee_key: NoteSigner,
    pub trustee: Principal,
    pub licensee_key: NoteSigner,
    pub licensee: Principal,
    pub members: Vec<(NoteSigner, Principal)>,
    pub terms_hash: String,
    pub license_signer: NoteSigner,
}

impl Trust {
    /// `edit` changes the example agreement (quorums are already lowered for one trustee).
    pub fn ratified(members: usize, edit: impl Fn(String) -> String) -> Trust {
        let origin = Origin::parse("trust.test").unwrap();
        let store = MemoryStore::in_memory();
        let registry = Registry::new(store.clone(), MemoryJournal::new(store), origin.clone());
        let add = |key: &NoteSigner, role: Role| {
            let principal = Principal::new_active(
                key.public_key(),
                role,
                DisplayName::parse("p", "display_name").unwrap(),
                day(0),
                rand::random(),
            );
            registry.store().insert_principal(&principal).unwrap();
            principal
        };
        let trustee_key = NoteSigner::new("t", rand::random()).unwrap();
        let trustee = add(&trustee_key, Role::Trustee);
        let licensee_key = NoteSigner::new("l", rand::random()).unwrap();
        let licensee = add(&licensee_key, Role::Licensee);
        let members: Vec<(NoteSigner, Principal)> = (0..members)
            .map(|_| {
                let key = NoteSigner::new("m", rand::random()).unwrap();
                let principal = add(&key, Role::Member);
                (key, principal)
            })
            .collect();
        let terms = edit(
            TERMS
                .replace("trustee_quorum = 2", "trustee_quorum = 1")
                .replace("member_quorum_percent = 20", "member_quorum_percent = 0"),
        );
        let hash = registry
            .propose_terms(&trustee, &terms, day(0))
            .unwrap()
            .value
            .hash;
        // Every member votes yes, so the outcome is settled and a trustee may close the vote
        // before its deadline.
        for (voter_key, voter) in &members {
            let ballot = voter_key.sign(&ballot_message(origin.as_str(), &hash, true));
            registry
                .cast_ballot(
                    voter,
                    &datatrust_core::TermsHash::parse(&hash, "id").unwrap(),
                    true,
                    &ballot,
                    day(0),
                )
                .unwrap();
        }
        registry
            .close_vote(
                &trustee,
                &datatrust_core::TermsHash::parse(&hash, "id").unwrap(),
                day(0),
            )
            .unwrap();
        let countersignature = trustee_key.sign(&countersign_message(origin.as_str(), &hash));
        registry
            .countersign_terms(
                &trustee,
                &datatrust_core::TermsHash::parse(&hash, "id").unwrap(),
                &countersignature,
                day(0),
            )
            .unwrap();
        Trust {
            origin,
            registry,
            trustee_key,
            trustee,
            licensee_key,
            licensee,
            members,
            terms_hash: hash,
            license_signer: NoteSigner::new("trust.test/license", rand::random()).unwrap(),
        }
    }

    /// A pending license request for `purpose` over pointer data of the 30 days before day 0.
    pub fn request(&self, purpose: &str, now: UnixSeconds) -> String {
        self.registry
            .request_license(
                &self.licensee,
                RequestedTerms {
                    purpose: purpose.into(),
                    categories: vec!["pointer".into()],
                    data_from: day(-30),
                    data_to: day(0),
                    model_family: "acme".into(),
                    max_training_runs: 10,
                    duration_days: 365,
                },
                rand::random(),
                now,
            )
            .unwrap()
            .value
            .id
    }

    pub fn approve(
        &self,
        request_id: &str,
        now: UnixSeconds,
    ) -> Result<LicenseRecord, DomainError> {
        let signature = self.trustee_key.sign(&approval_message(
            self.origin.as_str(),
            request_id,
            &self.terms_hash,
        ));
        self.registry
            .approve_license_request(
                &self.trustee,
                &datatrust_core::RequestId::parse(request_id, "id").unwrap(),
                &signature,
                &self.license_signer,
                now,
            )
            .map(|logged| logged.value.1.expect("quorum 1 issues the license"))
    }
}
