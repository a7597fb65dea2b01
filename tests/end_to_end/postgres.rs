//! The trust served from PostgreSQL (`datatrust serve --database`): terms ratified, a
//! license requested and issued, a member's consent, all logged; then kill -9 and a restart
//! on the same database: every change is still there and the log goes on from where it was;
//! and a clean stop exits 0 (the database connections close off the runtime).
//!
//! Needs `DATATRUST_TEST_POSTGRES` (`.ci/postgres.sh`); says SKIPPED without it, and fails
//! under `DATATRUST_REQUIRE_POSTGRES=1` (CI).

use std::time::Duration;

use datatrust_cli::client::{self, SignedIn};
use datatrust_core::NoteSigner;
use datatrust_core::governance::approval_message;
use datatrust_proto::v1;
use datatrust_proto::v1::log_service_client::LogServiceClient;
use datatrust_tests::{EXAMPLE_TERMS, ServerProcess, new_signer};

pub(crate) fn database() -> Option<String> {
    match std::env::var("DATATRUST_TEST_POSTGRES") {
        Ok(config) => Some(config),
        Err(_) if std::env::var("DATATRUST_REQUIRE_POSTGRES").is_ok_and(|value| value == "1") => {
            panic!("DATATRUST_TEST_POSTGRES is not set, and DATATRUST_REQUIRE_POSTGRES=1")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED the trust on PostgreSQL: no PostgreSQL (set DATATRUST_TEST_POSTGRES)"
            );
            None
        }
    }
}

pub(crate) async fn register(trustee: &SignedIn, key: &NoteSigner, role: v1::Role) {
    trustee
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: key.public_key().as_bytes().to_vec(),
            role: role.into(),
            display_name: "on postgres".into(),
        })
        .await
        .unwrap();
}

async fn log_size(channel: &tonic::transport::Channel) -> u64 {
    LogServiceClient::new(channel.clone())
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .tree_size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trust_on_postgresql_serves_and_survives_kill_9() {
    let Some(database) = database() else {
        return;
    };
    let schema = format!("e2e_{:016x}", rand::random::<u64>());
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let arguments = ["--database", &database, "--database-schema", &schema];
    let trustee_key = || {
        NoteSigner::parse(&std::fs::read_to_string(data_dir.join("initial-trustee.key")).unwrap())
            .unwrap()
    };
    let (member, company_key) = (new_signer(), new_signer());

    let (size, license_id) = {
        let server = ServerProcess::start(&data_dir, &arguments);
        let channel = client::connect(&server.grpc_url, None).await.unwrap();
        let trustee = client::sign_in(&channel, &trustee_key()).await.unwrap();
        register(&trustee, &member, v1::Role::Member).await;
        register(&trustee, &company_key, v1::Role::Licensee).await;
        let voter = client::sign_in(&channel, &member).await.unwrap();
        let terms = EXAMPLE_TERMS.replace("trustee_quorum = 2", "trustee_quorum = 1");
        let first_trustee = trustee_key();
        let hash = client::ratify(
            &trustee,
            &terms,
            &[(&member, &voter)],
            &[(&first_trustee, &trustee)],
        )
        .await
        .unwrap();
        voter
            .consents()
            .set_consent(v1::SetConsentRequest {
                purpose: "computer-use-agent-training".into(),
                granted: true,
            })
            .await
            .unwrap();
        let company = client::sign_in(&channel, &company_key).await.unwrap();
        let now = datatrust_server::now().0;
        let request = company
            .licenses()
            .request_license(v1::RequestLicenseRequest {
                purpose: "computer-use-agent-training".into(),
                categories: vec!["pointer".into()],
                data_from: now - 86_400,
                data_to: now,
                model_family: "pg".into(),
                max_training_runs: 1,
                duration_days: 30,
            })
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap();
        let issued = trustee
            .licenses()
            .approve_license_request(v1::ApproveLicenseRequestRequest {
                request_id: request.id.clone(),
                signature: first_trustee
                    .sign(&approval_message(
                        trustee.origin.as_str(),
                        &request.id,
                        &hash,
                    ))
                    .to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        let license = issued.license.expect("quorum 1 issues the license");
        let size = log_size(&channel).await;
        assert!(size > 8, "the changes are logged: {size}");
        server.signal("-KILL");
        let _ = server.wait(Duration::from_secs(10)).await;
        (size, license.id)
    };

    // Restarted on the same database: the state and the log are there, and go on.
    let server = ServerProcess::start(&data_dir, &arguments);
    let channel = client::connect(&server.grpc_url, None).await.unwrap();
    assert_eq!(log_size(&channel).await, size);
    let company = client::sign_in(&channel, &company_key).await.unwrap();
    // WhoAmI reads the caller on the async worker itself (no blocking hop): the database
    // call must not stall or panic the worker.
    let me = company
        .auth()
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(me.principal.is_some());
    let licenses = company.all_licenses().await.unwrap();
    assert_eq!(licenses.len(), 1);
    assert_eq!(licenses[0].id, license_id);
    let voter = client::sign_in(&channel, &member).await.unwrap();
    let withdrawn = voter
        .consents()
        .set_consent(v1::SetConsentRequest {
            purpose: "computer-use-agent-training".into(),
            granted: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.log_index, Some(size));
    server.signal("-TERM");
    let status = server.wait(Duration::from_secs(20)).await;
    assert!(status.success(), "a clean stop on PostgreSQL: {status:?}");
}
