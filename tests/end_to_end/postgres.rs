//! The trust served from PostgreSQL (`datatrust serve --database`): terms ratified, a
//! license requested and issued, a member's consent, all logged; then kill -9 and a restart
//! on the same database: every change is still there and the log goes on from where it was;
//! and a clean stop exits 0 (the database connections close off the runtime).
//!
//! And the database server itself crashing (immediate shutdown) during writes: nothing
//! acknowledged is lost.
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
    datatrust_tests::test_postgres("the trust on PostgreSQL")
}

/// A one-run license for pointer data of the last day, requested by `company` and issued by
/// `trustee` alone (terms whose trustee quorum is 1).
async fn issue_license(
    trustee: &SignedIn,
    trustee_key: &NoteSigner,
    company: &SignedIn,
    terms_hash: &str,
) -> v1::License {
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
    let message = approval_message(trustee.origin.as_str(), &request.id, terms_hash);
    trustee
        .licenses()
        .approve_license_request(v1::ApproveLicenseRequestRequest {
            request_id: request.id.clone(),
            signature: trustee_key.sign(&message).to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .license
        .expect("quorum 1 issues the license")
}

pub(crate) async fn register(trustee: &SignedIn, key: &NoteSigner, role: v1::Role) {
    trustee
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: key.public_key().as_bytes().to_vec(),
            role: role.into(),
            display_name: "on postgres".into(),
            ..Default::default()
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
    if datatrust_tests::skip_in_postgres_run(
        "a_trust_on_postgresql_serves_and_survives_kill_9",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
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
        let license = issue_license(&trustee, &first_trustee, &company, &hash).await;
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

/// A PostgreSQL cluster of this test's own (`.ci/postgres.sh` on a free port), which it can
/// crash and start again without disturbing the tests that share the main one. Stopped and
/// removed on drop.
struct PrivateCluster {
    config: String,
    directory: String,
}

impl PrivateCluster {
    /// `None` (after saying SKIPPED) where a cluster cannot be made: PostgreSQL runs as the
    /// `postgres` user, which needs root to switch to.
    fn start() -> Option<PrivateCluster> {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|output| output.stdout.trim_ascii() == b"0");
        if !root {
            if std::env::var("DATATRUST_REQUIRE_POSTGRES").is_ok_and(|value| value == "1") {
                panic!("a database crash test needs root to run PostgreSQL as `postgres`");
            }
            eprintln!("SKIPPED the database crash test: not root, cannot start a cluster");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let output = std::process::Command::new("bash")
            .arg(Self::script())
            .env("DATATRUST_TEST_POSTGRES_PORT", port.to_string())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed = String::from_utf8(output.stdout).unwrap();
        let value = |name: &str| {
            printed
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}='")))
                .and_then(|rest| rest.strip_suffix('\''))
                .unwrap()
                .to_owned()
        };
        Some(PrivateCluster {
            config: value("DATATRUST_TEST_POSTGRES"),
            directory: value("DATATRUST_TEST_POSTGRES_DIR"),
        })
    }

    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/postgres.sh")
    }

    /// `.ci/postgres.sh crash|start|stop` on the cluster in `directory`.
    fn run(directory: &str, command: &str) {
        let status = std::process::Command::new("bash")
            .arg(Self::script())
            .args([command, directory])
            .status()
            .unwrap();
        assert!(status.success(), "postgres.sh {command}");
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        PrivateCluster::run(&self.directory, "stop");
    }
}

/// The database server dies (immediate shutdown: no checkpoint, recovery from the WAL)
/// while members change their consents; the node's calls fail while it is down, it
/// reconnects once it is back, and every change it acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_loses_no_acknowledged_change() {
    if datatrust_tests::skip_in_postgres_run(
        "a_database_crash_loses_no_acknowledged_change",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
    if database().is_none() {
        return;
    }
    let Some(cluster) = tokio::task::spawn_blocking(PrivateCluster::start)
        .await
        .unwrap()
    else {
        return;
    };
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let arguments = ["--database", &cluster.config, "--database-schema", "crash"];
    let server = ServerProcess::start(&data_dir, &arguments);
    let channel = client::connect(&server.grpc_url, None).await.unwrap();
    let trustee_key =
        NoteSigner::parse(&std::fs::read_to_string(data_dir.join("initial-trustee.key")).unwrap())
            .unwrap();
    let trustee = client::sign_in(&channel, &trustee_key).await.unwrap();
    let members: Vec<NoteSigner> = (0..4).map(|_| new_signer()).collect();
    register(&trustee, &members[0], v1::Role::Member).await;
    let first = client::sign_in(&channel, &members[0]).await.unwrap();
    let terms = EXAMPLE_TERMS.replace("trustee_quorum = 2", "trustee_quorum = 1");
    client::ratify(
        &trustee,
        &terms,
        &[(&members[0], &first)],
        &[(&trustee_key, &trustee)],
    )
    .await
    .unwrap();
    for member in &members[1..] {
        register(&trustee, member, v1::Role::Member).await;
    }
    let mut sessions = Vec::new();
    for member in &members {
        sessions.push(client::sign_in(&channel, member).await.unwrap());
    }

    // Each member toggles her consent; what was acknowledged last is what must be stored.
    // A call that fails waits for the database to be back before it is made again (so
    // the members' rate limits are not spent on calls made while it is down).
    let (progress, mut progress_seen) = tokio::sync::watch::channel(0usize);
    let progress = std::sync::Arc::new(progress);
    let (restarted, restarted_seen) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for session in sessions.clone() {
        let progress = std::sync::Arc::clone(&progress);
        let mut restarted = restarted_seen.clone();
        workers.push(tokio::spawn(async move {
            let mut acknowledged = None;
            let mut failures = 0;
            for step in 0..40 {
                let granted = step % 2 == 0;
                loop {
                    let answer = session
                        .consents()
                        .set_consent(v1::SetConsentRequest {
                            purpose: "computer-use-agent-training".into(),
                            granted,
                        })
                        .await;
                    match answer {
                        Ok(_) => break,
                        Err(status) => {
                            assert_ne!(status.code(), tonic::Code::InvalidArgument, "{status}");
                            failures += 1;
                            assert!(failures < 50, "the node never came back: {status}");
                            restarted.wait_for(|restarted| *restarted).await.unwrap();
                        }
                    }
                }
                acknowledged = Some(granted);
                progress.send_modify(|done| *done += 1);
            }
            (acknowledged, failures)
        }));
    }
    progress_seen.wait_for(|done| *done >= 40).await.unwrap();
    let crashing = cluster.directory.clone();
    tokio::task::spawn_blocking(move || {
        PrivateCluster::run(&crashing, "crash");
        PrivateCluster::run(&crashing, "start");
    })
    .await
    .unwrap();
    restarted.send_replace(true);
    let mut failures = 0;
    let mut expected = Vec::new();
    for worker in workers {
        let (acknowledged, failed) = worker.await.unwrap();
        failures += failed;
        expected.push(acknowledged);
    }
    assert!(
        failures > 0,
        "the crash was felt: calls failed while it lasted"
    );
    server.signal("-KILL");
    let _ = server.wait(Duration::from_secs(10)).await;

    let server = ServerProcess::start(&data_dir, &arguments);
    let channel = client::connect(&server.grpc_url, None).await.unwrap();
    for (member, expected) in members.iter().zip(expected) {
        let session = client::sign_in(&channel, member).await.unwrap();
        let consents = session
            .consents()
            .list_my_consents(v1::ListMyConsentsRequest {})
            .await
            .unwrap()
            .into_inner()
            .consents;
        assert_eq!(
            consents.first().map(|consent| consent.granted),
            expected,
            "the last acknowledged consent is stored"
        );
    }
    server.signal("-TERM");
    assert!(server.wait(Duration::from_secs(20)).await.success());
    let check = std::process::Command::new(datatrust_tests::datatrust_binary())
        .args(["admin", "check", "--data-dir"])
        .arg(&data_dir)
        .args(["--database", &cluster.config, "--database-schema", "crash"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// What members, licensees and monitors see of a trust: compared before and after a move.
#[derive(Debug, PartialEq)]
struct Seen {
    checkpoint: String,
    export: Vec<u8>,
    statement: v1::GetMyStatementResponse,
    audit: v1::GetMyAuditResponse,
    licenses: Vec<v1::License>,
    consents: Vec<v1::Consent>,
}

async fn seen(grpc_url: &str, member: &NoteSigner, licensee: &NoteSigner) -> Seen {
    let channel = client::connect(grpc_url, None).await.unwrap();
    let checkpoint = LogServiceClient::new(channel.clone())
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .checkpoint;
    let member = client::sign_in(&channel, member).await.unwrap();
    let mut export = Vec::new();
    let mut pieces = member
        .member_data()
        .export_my_data(v1::ExportMyDataRequest {})
        .await
        .unwrap()
        .into_inner();
    while let Some(piece) = pieces.message().await.unwrap() {
        export.extend(piece.json_lines);
    }
    let consents = member
        .consents()
        .list_my_consents(v1::ListMyConsentsRequest {})
        .await
        .unwrap()
        .into_inner()
        .consents;
    let licensee = client::sign_in(&channel, licensee).await.unwrap();
    Seen {
        checkpoint,
        export,
        statement: member.whole_statement().await.unwrap(),
        audit: member.whole_audit().await.unwrap(),
        licenses: licensee.all_licenses().await.unwrap(),
        consents,
    }
}

/// `datatrust admin migrate`: a trust with members, consents, telemetry, a license and a
/// release moves from the embedded store into PostgreSQL and back; served from each, the
/// log has the same checkpoint and every member's export, statement, audit and consents and
/// the licensee's licenses are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trust_moves_to_postgresql_and_back_unchanged() {
    if datatrust_tests::skip_in_postgres_run(
        "a_trust_moves_to_postgresql_and_back_unchanged",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
    let Some(database) = database() else {
        return;
    };
    let schema = format!("moved_{:016x}", rand::random::<u64>());
    let work = tempfile::tempdir().unwrap();
    let (seed, on_sled, back) = (
        work.path().join("seed"),
        work.path().join("sled"),
        work.path().join("back"),
    );
    let init = std::process::Command::new(datatrust_tests::datatrust_binary())
        .args(["admin", "init", "--origin", "trust.test", "--data-dir"])
        .arg(&seed)
        .output()
        .unwrap();
    assert!(init.status.success());
    for copy in [&on_sled, &back] {
        datatrust_tests::copy_data_directory(&seed, copy);
    }
    let trustee_key =
        NoteSigner::parse(&std::fs::read_to_string(seed.join("initial-trustee.key")).unwrap())
            .unwrap();
    let (member, collector, licensee) = (new_signer(), new_signer(), new_signer());

    // The trust on sled, with some of everything.
    let before = {
        let server = ServerProcess::start(&on_sled, &[]);
        let channel = client::connect(&server.grpc_url, None).await.unwrap();
        let trustee = client::sign_in(&channel, &trustee_key).await.unwrap();
        register(&trustee, &member, v1::Role::Member).await;
        register(&trustee, &collector, v1::Role::Collector).await;
        register(&trustee, &licensee, v1::Role::Licensee).await;
        let voter = client::sign_in(&channel, &member).await.unwrap();
        let terms = EXAMPLE_TERMS.replace("trustee_quorum = 2", "trustee_quorum = 1");
        let hash = client::ratify(
            &trustee,
            &terms,
            &[(&member, &voter)],
            &[(&trustee_key, &trustee)],
        )
        .await
        .unwrap();
        datatrust_tests::consent(&voter, "computer-use-agent-training").await;
        datatrust_tests::authorize(&voter, &collector).await;
        let collecting = client::sign_in(&channel, &collector).await.unwrap();
        let now_ms = datatrust_server::now().0 * 1000;
        datatrust_tests::upload_events(
            &collecting,
            &member,
            (0..40)
                .map(|offset| v1::Event {
                    time_ms: now_ms - 3_600_000 + offset,
                    application: "editor".into(),
                    kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x: 3, y: 4 })),
                })
                .collect(),
        )
        .await;
        let company = client::sign_in(&channel, &licensee).await.unwrap();
        let license = issue_license(&trustee, &trustee_key, &company, &hash).await;
        company
            .build_release(&license.id, Duration::from_millis(20), |_| {})
            .await
            .unwrap();
        let before = seen(&server.grpc_url, &member, &licensee).await;
        server.signal("-TERM");
        assert!(server.wait(Duration::from_secs(20)).await.success());
        before
    };
    assert!(!before.export.is_empty() && !before.licenses.is_empty());

    let migrate = |data_dir: &std::path::Path, direction: &str| {
        let output = std::process::Command::new(datatrust_tests::datatrust_binary())
            .args(["admin", "migrate", "--data-dir"])
            .arg(data_dir)
            .args([direction, &database, "--database-schema", &schema])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "migrate {direction}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };

    // Into PostgreSQL, served from there.
    let moved = migrate(&on_sled, "--to-database");
    assert!(moved.contains("without a difference"), "{moved}");
    let on_postgres = {
        let arguments = [
            "--database",
            database.as_str(),
            "--database-schema",
            &schema,
        ];
        let server = ServerProcess::start(&on_sled, &arguments);
        let seen = seen(&server.grpc_url, &member, &licensee).await;
        server.signal("-TERM");
        assert!(server.wait(Duration::from_secs(20)).await.success());
        seen
    };
    assert_eq!(on_postgres, before, "the trust on PostgreSQL");

    // And back, into a fresh copy of the seed's embedded store.
    migrate(&back, "--from-database");
    let server = ServerProcess::start(&back, &[]);
    let back_again = seen(&server.grpc_url, &member, &licensee).await;
    assert_eq!(back_again, before, "the trust back on sled");
    // A second move into a store that holds the trust is refused.
    server.signal("-TERM");
    assert!(server.wait(Duration::from_secs(20)).await.success());
    let refused = std::process::Command::new(datatrust_tests::datatrust_binary())
        .args(["admin", "migrate", "--data-dir"])
        .arg(&back)
        .args(["--from-database", &database, "--database-schema", &schema])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already holds a log"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
