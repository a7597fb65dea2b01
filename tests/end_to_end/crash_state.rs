//! kill -9 during concurrent state changes on the one commit path (principals registered and
//! deactivated, consents granted and withdrawn, collectors authorised and revoked, ballots
//! cast on an open vote, payments recorded against an invoice, license requests and their
//! approvals, training uses reported): after
//! every kill, `datatrust admin check` replays the log against the stored state and finds no
//! difference, and every change the server acknowledged is in the log at the index it gave.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use datatrust_cli::client::{self, SignedIn};
use datatrust_core::NoteSigner;
use datatrust_core::governance::{TrainingReport, approval_message, ballot_message};
use datatrust_core::log_entry::DecodedEntry;
use datatrust_proto::v1;
use datatrust_proto::v1::log_service_client::LogServiceClient;
use datatrust_tests::{EXAMPLE_TERMS, ServerProcess, new_signer};
use rand::Rng as _;
use tonic::Code;

const ROUNDS: usize = 5;
const MEMBERS: usize = 8;
/// Changes each member makes in all: within the burst a member may make at once.
const CHANGES_PER_MEMBER: usize = 100;

/// (log index, entry kind) for every change the server acknowledged.
type Acknowledged = Arc<Mutex<Vec<(u64, &'static str)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_state_changes_leaves_the_state_equal_to_the_log() {
    if datatrust_tests::skip_in_postgres_run(
        "kill_9_during_state_changes_leaves_the_state_equal_to_the_log",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let trustee_key = || {
        NoteSigner::parse(&std::fs::read_to_string(data_dir.join("initial-trustee.key")).unwrap())
            .unwrap()
    };
    let acknowledged: Acknowledged = Arc::default();
    let members: Vec<NoteSigner> = (0..MEMBERS).map(|_| new_signer()).collect();
    let collector = new_signer();
    let made = Arc::new(Mutex::new(vec![0usize; MEMBERS]));
    let licensee = new_signer();
    let invoice: String;
    let origin: String;
    let terms_hash: String;
    let (proposal, busy_license, release): (String, String, String);
    let ballots: Arc<Mutex<Vec<usize>>> = Arc::default();

    // A trust with members, a collector, and terms in force.
    {
        let server = ServerProcess::start(&data_dir, &[]);
        let channel = client::connect(&server.grpc_url, None).await.unwrap();
        let trustee = client::sign_in(&channel, &trustee_key()).await.unwrap();
        register(&trustee, &collector, v1::Role::Collector)
            .await
            .unwrap();
        for member in &members {
            register(&trustee, member, v1::Role::Member).await.unwrap();
        }
        let terms = EXAMPLE_TERMS.replace("trustee_quorum = 2", "trustee_quorum = 1");
        let mut voters = Vec::new();
        for member in &members {
            voters.push((member, client::sign_in(&channel, member).await.unwrap()));
        }
        let voters: Vec<_> = voters
            .iter()
            .map(|(key, session)| (*key, session))
            .collect();
        let first_trustee = trustee_key();
        let hash = client::ratify(&trustee, &terms, &voters, &[(&first_trustee, &trustee)])
            .await
            .unwrap();
        origin = trustee.origin.to_string();
        terms_hash = hash.clone();
        // A license, so an invoice (its fee) to pay against.
        register(&trustee, &licensee, v1::Role::Licensee)
            .await
            .unwrap();
        let company = client::sign_in(&channel, &licensee).await.unwrap();
        let request = request_license(&company, 1)
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        trustee
            .licenses()
            .approve_license_request(v1::ApproveLicenseRequestRequest {
                request_id: request.id.clone(),
                signature: trustee_key()
                    .sign(&approval_message(&origin, &request.id, &hash))
                    .to_vec(),
            })
            .await
            .unwrap();
        invoice = company
            .ledger()
            .list_invoices(v1::ListInvoicesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .invoices
            .remove(0)
            .charge
            .unwrap()
            .id;
        // A license for many runs, with a release, for training uses to report.
        let request = request_license(&company, 100_000)
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        busy_license = approve(&trustee, &trustee_key(), &origin, &request.id, &hash)
            .await
            .unwrap()
            .license
            .expect("the license")
            .id;
        release = company
            .releases()
            .create_release(v1::CreateReleaseRequest {
                license_id: busy_license.clone(),
                in_background: false,
            })
            .await
            .unwrap()
            .into_inner()
            .release
            .unwrap()
            .id;
        // Terms proposed and left open to the members' ballots.
        proposal = trustee
            .terms()
            .propose_terms(v1::ProposeTermsRequest {
                document: format!("{terms}\n# the crash test's second version\n"),
            })
            .await
            .unwrap()
            .into_inner()
            .terms
            .unwrap()
            .sha256;
        server.signal("-TERM");
        let _ = server.wait(Duration::from_secs(20)).await;
    }

    for round in 0..ROUNDS {
        let server = ServerProcess::start(&data_dir, &[]);
        let channel = client::connect(&server.grpc_url, None).await.unwrap();
        all_acknowledged_are_logged(&channel, &acknowledged).await;
        let trustee = client::sign_in(&channel, &trustee_key()).await.unwrap();
        let mut writers = Vec::new();
        for (index, member) in members.iter().enumerate() {
            let session = client::sign_in(&channel, member).await.unwrap();
            let (acknowledged, made) = (Arc::clone(&acknowledged), Arc::clone(&made));
            let collector = collector.public_key().as_bytes().to_vec();
            let ballot = Ballot {
                member: member.clone(),
                origin: origin.clone(),
                terms: proposal.clone(),
                cast: Arc::clone(&ballots),
            };
            writers.push(tokio::spawn(async move {
                member_changes(&session, &collector, index, &made, &acknowledged, &ballot).await;
            }));
        }
        {
            let acknowledged = Arc::clone(&acknowledged);
            let trustee = trustee.clone();
            writers.push(tokio::spawn(async move {
                trustee_changes(&trustee, &acknowledged).await;
            }));
        }
        {
            let acknowledged = Arc::clone(&acknowledged);
            let company = client::sign_in(&channel, &licensee).await.unwrap();
            let (trustee, key) = (trustee.clone(), trustee_key());
            let (origin, terms_hash) = (origin.clone(), terms_hash.clone());
            writers.push(tokio::spawn(async move {
                license_requests(
                    &company,
                    &trustee,
                    &key,
                    &origin,
                    &terms_hash,
                    &acknowledged,
                )
                .await;
            }));
        }
        {
            let acknowledged = Arc::clone(&acknowledged);
            let company = client::sign_in(&channel, &licensee).await.unwrap();
            let report = TrainingReport {
                trust: origin.clone(),
                license_id: busy_license.clone(),
                run_id: String::new(),
                model_id: "crash".into(),
                model_version: "1".into(),
                model_family: "crash".into(),
                purpose: "computer-use-agent-training".into(),
                data: vec![release.clone()],
                started: datatrust_core::UnixSeconds(0),
                ended: datatrust_core::UnixSeconds(0),
                accelerator_seconds: 1,
            };
            let licensee = licensee.clone();
            writers.push(tokio::spawn(async move {
                training_uses(&company, &licensee, report, &acknowledged).await;
            }));
        }
        {
            let acknowledged = Arc::clone(&acknowledged);
            let invoice = invoice.clone();
            writers.push(tokio::spawn(async move {
                payments(&trustee, &invoice, &acknowledged).await;
            }));
        }
        let delay = rand::thread_rng().gen_range(50..400);
        // Sleep: the moment of the kill, chosen at random; nothing waits for time.
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.signal("-KILL");
        let _ = server.wait(Duration::from_secs(10)).await;
        for writer in writers {
            writer.await.unwrap();
        }

        // The server is down: replay the log against the state.
        let check = datatrust_tests::admin_check(&data_dir).await;
        let stdout = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success() && stdout.contains("no difference"),
            "after kill {round}: {stdout}{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let server = ServerProcess::start(&data_dir, &[]);
    let channel = client::connect(&server.grpc_url, None).await.unwrap();
    all_acknowledged_are_logged(&channel, &acknowledged).await;
    // Ballots are secret, never logged: each member's acknowledged ballot is kept.
    let voted: std::collections::BTreeSet<usize> =
        ballots.lock().unwrap().iter().copied().collect();
    assert!(!voted.is_empty(), "no ballot was acknowledged");
    for index in voted {
        let member = client::sign_in(&channel, &members[index]).await.unwrap();
        let ballot = member
            .terms()
            .get_my_ballot(v1::GetMyBallotRequest {
                terms_sha256: proposal.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            ballot.approve.is_some(),
            "member {index}'s acknowledged ballot is gone"
        );
    }
    let acknowledged = acknowledged.lock().unwrap();
    assert!(
        acknowledged.len() > ROUNDS * 10,
        "too few changes to mean anything: {}",
        acknowledged.len()
    );
    for kind in [
        "consent-changed",
        "collector-authorized",
        "collector-revoked",
        "principal-registered",
        "principal-deactivated",
        "payment-received",
        "license-requested",
        "license-issued",
        "training-use",
    ] {
        assert!(
            acknowledged.iter().any(|(_, logged)| *logged == kind),
            "no {kind} was acknowledged"
        );
    }
}

async fn register(
    trustee: &SignedIn,
    key: &NoteSigner,
    role: v1::Role,
) -> Result<Option<u64>, tonic::Status> {
    Ok(trustee
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: key.public_key().as_bytes().to_vec(),
            role: role.into(),
            display_name: "crash test".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .log_index)
}

/// Whether the server is gone (killed): the writer stops. Refusals (a precondition, an
/// identical license issued this second, contention) are not.
fn gone(status: &tonic::Status) -> bool {
    !matches!(
        status.code(),
        Code::ResourceExhausted | Code::Aborted | Code::FailedPrecondition | Code::AlreadyExists
    )
}

/// A member's changes until the server dies: consent and the collector's authorisation,
/// each granted and withdrawn in random order.
async fn member_changes(
    session: &SignedIn,
    collector: &[u8],
    index: usize,
    made: &Mutex<Vec<usize>>,
    acknowledged: &Mutex<Vec<(u64, &'static str)>>,
    ballot: &Ballot,
) {
    loop {
        {
            let mut made = made.lock().unwrap();
            if made[index] >= CHANGES_PER_MEMBER {
                return;
            }
            made[index] += 1;
        }
        let choice = rand::thread_rng().gen_range(0..5);
        if choice == 4 {
            let approve = rand::random::<bool>();
            let cast = session
                .terms()
                .cast_ballot(v1::CastBallotRequest {
                    terms_sha256: ballot.terms.clone(),
                    approve,
                    signature: ballot
                        .member
                        .sign(&ballot_message(&ballot.origin, &ballot.terms, approve))
                        .to_vec(),
                })
                .await;
            match cast {
                Ok(_) => ballot.cast.lock().unwrap().push(index),
                Err(status) if gone(&status) => return,
                Err(_) => {}
            }
            continue;
        }
        let outcome = match choice {
            0 | 1 => session
                .consents()
                .set_consent(v1::SetConsentRequest {
                    purpose: "computer-use-agent-training".into(),
                    granted: choice == 0,
                })
                .await
                .map(|response| (response.into_inner().log_index, "consent-changed")),
            2 => session
                .members()
                .authorize_collector(v1::AuthorizeCollectorRequest {
                    collector_public_key: collector.to_vec(),
                })
                .await
                .map(|response| (response.into_inner().log_index, "collector-authorized")),
            _ => session
                .members()
                .revoke_collector(v1::RevokeCollectorRequest {
                    collector_public_key: collector.to_vec(),
                })
                .await
                .map(|response| (response.into_inner().log_index, "collector-revoked")),
        };
        match outcome {
            Ok((Some(index), kind)) => acknowledged.lock().unwrap().push((index, kind)),
            Ok((None, _)) => {}
            Err(status) if gone(&status) => return,
            Err(_) => {}
        }
    }
}

/// The trustee registers licensees and deactivates each, until the server dies.
async fn trustee_changes(trustee: &SignedIn, acknowledged: &Mutex<Vec<(u64, &'static str)>>) {
    loop {
        let key = new_signer();
        match register(trustee, &key, v1::Role::Licensee).await {
            Ok(Some(index)) => acknowledged
                .lock()
                .unwrap()
                .push((index, "principal-registered")),
            Ok(None) => {}
            Err(status) if gone(&status) => return,
            Err(_) => continue,
        }
        let deactivated = trustee
            .principals()
            .deactivate_principal(v1::DeactivatePrincipalRequest {
                public_key: key.public_key().as_bytes().to_vec(),
                ..Default::default()
            })
            .await;
        match deactivated {
            Ok(response) => {
                if let Some(index) = response.into_inner().log_index {
                    acknowledged
                        .lock()
                        .unwrap()
                        .push((index, "principal-deactivated"));
                }
            }
            Err(status) if gone(&status) => return,
            Err(_) => {}
        }
    }
}

/// What a member needs to vote: the key, the trust, the terms; and where acknowledged
/// ballots are noted (by member).
struct Ballot {
    member: NoteSigner,
    origin: String,
    terms: String,
    cast: Arc<Mutex<Vec<usize>>>,
}

/// The trustee's approval of a request (quorum 1: it issues the license).
async fn approve(
    trustee: &SignedIn,
    key: &NoteSigner,
    origin: &str,
    request_id: &str,
    terms_hash: &str,
) -> Result<v1::ApproveLicenseRequestResponse, tonic::Status> {
    trustee
        .licenses()
        .approve_license_request(v1::ApproveLicenseRequestRequest {
            request_id: request_id.to_owned(),
            signature: key
                .sign(&approval_message(origin, request_id, terms_hash))
                .to_vec(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The licensee reports training runs (each a new run id) until the server dies.
async fn training_uses(
    company: &SignedIn,
    key: &NoteSigner,
    mut report: TrainingReport,
    acknowledged: &Mutex<Vec<(u64, &'static str)>>,
) {
    loop {
        let now = datatrust_server::now();
        report.run_id = format!("run-{}", rand::random::<u64>());
        (report.started, report.ended) = (now, now);
        let text = report.to_text();
        match company
            .training()
            .report_training_use(v1::ReportTrainingUseRequest {
                report: text.clone(),
                signature: key.sign(text.as_bytes()).to_vec(),
            })
            .await
        {
            Ok(response) => {
                let index = response.into_inner().r#use.expect("the use").log_index;
                acknowledged.lock().unwrap().push((index, "training-use"));
            }
            Err(status) if gone(&status) => return,
            Err(_) => {}
        }
    }
}

/// A licensee's request for a month's license over the last day's pointer data.
async fn request_license(
    company: &SignedIn,
    max_training_runs: u32,
) -> Result<tonic::Response<v1::LicenseRequestResponse>, tonic::Status> {
    let now = datatrust_server::now().0;
    company
        .licenses()
        .request_license(v1::RequestLicenseRequest {
            purpose: "computer-use-agent-training".into(),
            categories: vec!["pointer".into()],
            data_from: now - 86_400,
            data_to: now,
            model_family: "crash".into(),
            max_training_runs,
            duration_days: 30,
        })
        .await
}

/// The licensee asks for licenses and the trustee approves each, until the server dies (at
/// most a burst's worth).
async fn license_requests(
    company: &SignedIn,
    trustee: &SignedIn,
    key: &NoteSigner,
    origin: &str,
    terms_hash: &str,
    acknowledged: &Mutex<Vec<(u64, &'static str)>>,
) {
    for _ in 0..20 {
        let request = match request_license(company, 1).await {
            Ok(response) => {
                let response = response.into_inner();
                if let Some(index) = response.log_index {
                    acknowledged
                        .lock()
                        .unwrap()
                        .push((index, "license-requested"));
                }
                response.request.expect("the request")
            }
            Err(status) if gone(&status) => return,
            Err(_) => continue,
        };
        match approve(trustee, key, origin, &request.id, terms_hash).await {
            Ok(response) => {
                if let Some(index) = response.log_index {
                    acknowledged.lock().unwrap().push((index, "license-issued"));
                }
            }
            Err(status) if gone(&status) => return,
            Err(_) => {}
        }
    }
}

/// The trustee records payments of one cent against the invoice, until the server dies.
async fn payments(
    trustee: &SignedIn,
    invoice: &str,
    acknowledged: &Mutex<Vec<(u64, &'static str)>>,
) {
    loop {
        let reference = format!("BANK-{}", rand::random::<u64>());
        match trustee
            .ledger()
            .record_payment(v1::RecordPaymentRequest {
                charge_id: invoice.to_owned(),
                amount: 1,
                currency: "EUR".into(),
                reference,
            })
            .await
        {
            Ok(response) => {
                let index = response
                    .into_inner()
                    .payment
                    .expect("the payment")
                    .log_index;
                acknowledged
                    .lock()
                    .unwrap()
                    .push((index, "payment-received"));
            }
            Err(status) if gone(&status) => return,
            Err(_) => {}
        }
    }
}

/// Every acknowledged change is in the log, at the index the server gave, of its kind.
async fn all_acknowledged_are_logged(
    channel: &tonic::transport::Channel,
    acknowledged: &Mutex<Vec<(u64, &'static str)>>,
) {
    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut log = LogServiceClient::new(channel.clone());
    for (index, kind) in acknowledged {
        let entry = log
            .get_entries(v1::GetEntriesRequest {
                start: index,
                end: index + 1,
            })
            .await
            .unwrap_or_else(|status| panic!("acknowledged entry {index} is gone: {status}"))
            .into_inner()
            .entries
            .pop()
            .expect("the entry");
        assert_eq!(
            DecodedEntry::parse(&entry).map(|entry| entry.kind),
            Some(kind.to_owned()),
            "entry {index}"
        );
    }
}
