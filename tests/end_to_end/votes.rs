//! Votes have a deadline: shown with the terms, closed by itself when it passes (the test
//! moves the server's clock there), and closed sooner by a trustee only once the members
//! who have not voted cannot change the outcome.

use datatrust_core::governance::ballot_message;
use datatrust_core::{NoteSigner, Role};
use datatrust_proto::v1;
use datatrust_tests::{EXAMPLE_TERMS, TestTrust};
use tonic::Code;

/// A second trustee (the example terms need two), then the example terms proposed.
async fn proposed_example_terms(trust: &TestTrust) -> v1::Terms {
    trust.new_principal(Role::Trustee, "Second trustee").await;
    trust
        .trustee_session()
        .await
        .terms()
        .propose_terms(v1::ProposeTermsRequest {
            document: EXAMPLE_TERMS.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .terms
        .unwrap()
}

async fn vote(
    trust: &TestTrust,
    key: &NoteSigner,
    hash: &str,
    approve: bool,
) -> Result<(), tonic::Status> {
    let session = trust.sign_in(key).await.unwrap();
    session
        .terms()
        .cast_ballot(v1::CastBallotRequest {
            terms_sha256: hash.to_owned(),
            approve,
            signature: key
                .sign(&ballot_message("trust.test", hash, approve))
                .to_vec(),
        })
        .await
        .map(drop)
}

#[tokio::test]
async fn a_vote_closes_by_itself_at_its_deadline_and_not_early_while_undecided() {
    let trust = TestTrust::start().await;
    let mut members = Vec::new();
    for name in ["Ada", "Bea", "Cy"] {
        members.push(trust.new_principal(Role::Member, name).await.0);
    }
    let proposed = proposed_example_terms(&trust).await;
    let trustee = trust.trustee_session().await;
    // The deadline is the terms' voting_days (14) after the proposal, shown with the terms.
    assert_eq!(
        proposed.voting_closes_at,
        Some(proposed.proposed_at + 14 * 86_400)
    );
    let hash = proposed.sha256.clone();
    vote(&trust, &members[0], &hash, true).await.unwrap();

    // One yes of three: the others could still decide it, so no trustee may close it now.
    let early = trustee
        .terms()
        .close_vote(v1::CloseVoteRequest {
            terms_sha256: hash.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(
        early.message().contains("closes by itself")
            && early.message().contains("1 yes, 0 no, 2 not voted"),
        "{}",
        early.message()
    );

    // Time passes (the server's clock, moved by the test): ballots are refused, and the
    // duties sweep (here asked for by a trustee) closes the vote and logs the tally.
    trust.clock.advance(14 * 86_400 + 1);
    // Sessions expire by the same clock: the trustee signs in again.
    let expired = trustee
        .auth()
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(expired.code(), Code::Unauthenticated);
    let trustee = trust.trustee_session().await;
    let late = vote(&trust, &members[1], &hash, false).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(late.message().contains("vote closed"), "{}", late.message());
    trustee
        .ledger()
        .enforce_duties(v1::EnforceDutiesRequest {})
        .await
        .unwrap();
    let closed = v1::terms_service_client::TermsServiceClient::new(trust.channel.clone())
        .list_terms(v1::ListTermsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .terms
        .into_iter()
        .find(|terms| terms.sha256 == hash)
        .unwrap();
    assert_eq!(
        closed.status,
        v1::TermsStatus::AwaitingCountersignatures as i32,
        "one yes of three meets the 20% turnout and the majority"
    );
    assert_eq!(
        (closed.votes_yes, closed.votes_no, closed.members_eligible),
        (Some(1), Some(0), Some(3))
    );
    let closing = datatrust_tests::decoded_log_entries(&trust.channel)
        .await
        .into_iter()
        .find(|entry| entry.kind == "vote-closed")
        .expect("the tally is logged");
    assert_eq!(closing.field("closed-by"), Some("deadline"));
    assert_eq!(closing.field("outcome"), Some("passed"));
}

#[tokio::test]
async fn a_trustee_may_close_early_once_the_outcome_is_settled() {
    let trust = TestTrust::start().await;
    let mut members = Vec::new();
    for name in ["Ada", "Bea"] {
        members.push(trust.new_principal(Role::Member, name).await.0);
    }
    let hash = proposed_example_terms(&trust).await.sha256;
    let trustee = trust.trustee_session().await;
    // Both vote no: even every remaining vote (none) cannot pass it.
    for member in &members {
        vote(&trust, member, &hash, false).await.unwrap();
    }
    let closed = trustee
        .terms()
        .close_vote(v1::CloseVoteRequest {
            terms_sha256: hash.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .terms
        .unwrap();
    assert_eq!(closed.status, v1::TermsStatus::Rejected as i32);
}
