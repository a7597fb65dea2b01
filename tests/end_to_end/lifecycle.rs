//! The binary as an operator runs it: start, refuse a second server on the same directory,
//! drain on SIGTERM with health NOT_SERVING, flush, restart with everything kept.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use datatrust_core::{NoteSigner, Role};
use datatrust_proto::{convert, v1};
use datatrust_tests::{ServerProcess, datatrust_binary, new_signer};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn trustee_key(data_dir: &Path) -> NoteSigner {
    NoteSigner::parse(&std::fs::read_to_string(data_dir.join("initial-trustee.key")).unwrap())
        .unwrap()
}

async fn health(channel: tonic::transport::Channel) -> ServingStatus {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

#[tokio::test]
async fn a_second_server_on_the_same_directory_is_refused_clearly() {
    if datatrust_tests::skip_in_postgres_run(
        "a_second_server_on_the_same_directory_is_refused_clearly",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let first = ServerProcess::start(&data_dir, &[]);
    let second = Command::new(datatrust_binary())
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("in use by another datatrust process"),
        "{stderr}"
    );
    // The first server is unharmed.
    let channel = datatrust_cli::client::connect(&first.grpc_url, None)
        .await
        .unwrap();
    assert_eq!(health(channel).await, ServingStatus::Serving);
    first.signal("-TERM");
    assert!(first.wait(Duration::from_secs(20)).await.success());
}

#[tokio::test]
async fn sigterm_drains_reports_not_serving_and_keeps_everything_for_the_next_start() {
    if datatrust_tests::skip_in_postgres_run(
        "sigterm_drains_reports_not_serving_and_keeps_everything_for_the_next_start",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let server = ServerProcess::start(&data_dir, &["--drain-seconds", "3"]);
    let channel = datatrust_cli::client::connect(&server.grpc_url, None)
        .await
        .unwrap();
    assert_eq!(health(channel.clone()).await, ServingStatus::Serving);

    let trustee = datatrust_cli::client::sign_in(&channel, &trustee_key(&data_dir))
        .await
        .unwrap();
    let member = new_signer();
    trustee
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: member.public_key().as_bytes().to_vec(),
            role: convert::role_to_wire(Role::Member).into(),
            display_name: "Ada".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    server.signal("-TERM");
    let started = Instant::now();
    loop {
        if health(channel.clone()).await == ServingStatus::NotServing {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "health never reported NOT_SERVING"
        );
        // Sleep: polling another process's health until it drains, bounded.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Calls in flight during the drain still complete.
    trustee.auth().who_am_i(v1::WhoAmIRequest {}).await.unwrap();
    assert!(
        server.wait(Duration::from_secs(20)).await.success(),
        "clean exit after SIGTERM"
    );

    let restarted = ServerProcess::start(&data_dir, &[]);
    let channel = datatrust_cli::client::connect(&restarted.grpc_url, None)
        .await
        .unwrap();
    let session = datatrust_cli::client::sign_in(&channel, &member)
        .await
        .unwrap();
    assert_eq!(session.principal.display_name, "Ada");
    restarted.signal("-INT");
    assert!(
        restarted.wait(Duration::from_secs(20)).await.success(),
        "clean exit after SIGINT"
    );
}

#[test]
fn a_foreign_directory_and_public_plaintext_are_refused_with_what_to_do() {
    if datatrust_tests::skip_in_postgres_run(
        "a_foreign_directory_and_public_plaintext_are_refused_with_what_to_do",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(directory.path().join("thesis.tex"), "do not touch").unwrap();
    let output = Command::new(datatrust_binary())
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(directory.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not a datatrust data directory"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(directory.path()).unwrap().count(),
        1,
        "nothing was written"
    );

    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(datatrust_binary())
        .args([
            "serve",
            "--grpc-addr",
            "0.0.0.0:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--insecure-plaintext"), "{stderr}");
}

#[tokio::test]
async fn json_logs_are_one_json_object_per_line_with_the_rpc_span() {
    if datatrust_tests::skip_in_postgres_run(
        "json_logs_are_one_json_object_per_line_with_the_rpc_span",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let log_path = directory.path().join("server.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let server = ServerProcess::start_logging_to(&data_dir, &["--log-format", "json"], log_file);
    let channel = datatrust_cli::client::connect(&server.grpc_url, None)
        .await
        .unwrap();
    datatrust_cli::client::sign_in(&channel, &trustee_key(&data_dir))
        .await
        .unwrap();
    drop(channel);
    server.signal("-TERM");
    assert!(server.wait(Duration::from_secs(20)).await.success());

    let log = std::fs::read_to_string(&log_path).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect();
    let signed_in = events
        .iter()
        .find(|event| event["message"] == "signed in")
        .expect("a sign-in event");
    assert_eq!(
        signed_in["span"]["method"],
        "/datatrust.v1.AuthService/Login"
    );
    assert_eq!(signed_in["role"], "trustee");
}

/// The trust's key files kept apart from the data directory (a mounted secret): `admin init`
/// writes them there, `serve --keys-dir` reads them there, and a key file others could read
/// is refused, naming it.
#[tokio::test]
async fn keys_kept_outside_the_data_directory_are_used_and_must_be_private() {
    if datatrust_tests::skip_in_postgres_run(
        "keys_kept_outside_the_data_directory_are_used_and_must_be_private",
        "it starts `datatrust serve` processes of its own",
    ) {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let place = tempfile::tempdir().unwrap();
    let (data, keys) = (place.path().join("data"), place.path().join("secrets"));
    let init = Command::new(datatrust_binary())
        .args(["admin", "init", "--data-dir"])
        .arg(&data)
        .env("DATATRUST_KEYS_DIR", &keys)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    for name in ["log.key", "license.key", "data.key"] {
        assert!(keys.join(name).exists(), "{name} is in the key directory");
        assert!(
            !data.join("keys").join(name).exists(),
            "{name} is not in the data directory"
        );
    }
    std::fs::set_permissions(
        keys.join("license.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let refused = Command::new(datatrust_binary())
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--keys-dir")
        .arg(&keys)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("license.key") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    std::fs::set_permissions(
        keys.join("license.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let keys_flag = keys.to_str().unwrap().to_owned();
    let server = ServerProcess::start(&data, &["--keys-dir", &keys_flag]);
    let channel = datatrust_cli::client::connect(&server.grpc_url, None)
        .await
        .unwrap();
    let info = datatrust_cli::client::trust_info(&channel).await.unwrap();
    let license_key =
        NoteSigner::parse(&std::fs::read_to_string(keys.join("license.key")).unwrap()).unwrap();
    assert_eq!(info.license_vkey, license_key.verifier().to_text());
    let trustee = datatrust_cli::client::sign_in(&channel, &trustee_key(&data))
        .await
        .unwrap();
    trustee.auth().who_am_i(v1::WhoAmIRequest {}).await.unwrap();
    server.signal("-TERM");
    assert!(server.wait(Duration::from_secs(20)).await.success());
}

/// A compromised log key, with `deploy/log-key-compromise.sh`: a successor trust under a new
/// origin whose first entry records the old log's final checkpoint; a checkpoint the old key
/// did not sign is refused and creates nothing.
#[tokio::test]
async fn a_compromised_log_key_has_a_successor_that_logs_the_old_final_checkpoint() {
    if datatrust_tests::skip_in_postgres_run(
        "a_compromised_log_key_has_a_successor_that_logs_the_old_final_checkpoint",
        "it starts `datatrust serve` processes of its own",
    ) {
        return;
    }
    let place = tempfile::tempdir().unwrap();
    let (old, new) = (place.path().join("old"), place.path().join("new"));
    let server = ServerProcess::start(&old, &["--origin", "old.example"]);
    let (status, _, checkpoint) =
        datatrust_tests::http_get(server.http_addr, "/log/checkpoint").await;
    assert_eq!(status, 200);
    server.signal("-TERM");
    assert!(server.wait(Duration::from_secs(20)).await.success());
    let seen = place.path().join("seen.checkpoint");
    std::fs::write(&seen, &checkpoint).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/log-key-compromise.sh");
    let run = |checkpoint: &Path, target: &Path| {
        Command::new("bash")
            .arg(&script)
            .arg(&old)
            .arg(checkpoint)
            .arg("new.example")
            .arg(target)
            .env("DATATRUST", datatrust_binary())
            .output()
            .unwrap()
    };

    // A checkpoint the old key did not sign: refused, nothing created.
    let forged = place.path().join("forged.checkpoint");
    let text = String::from_utf8(checkpoint.clone()).unwrap();
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    // Another root: the size the monitors saw, with a history the old key never signed.
    let first = if lines[2].starts_with('A') { "B" } else { "A" };
    lines[2] = format!("{first}{}", &lines[2][1..]);
    std::fs::write(&forged, lines.join("\n")).unwrap();
    let refused = run(&forged, &place.path().join("not-made"));
    assert!(!refused.status.success());
    assert!(!place.path().join("not-made/DATATRUST").exists());

    let made = run(&seen, &new);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(String::from_utf8_lossy(&made.stdout).contains("to be distrusted"));
    let server = ServerProcess::start(&new, &[]);
    let channel = datatrust_cli::client::connect(&server.grpc_url, None)
        .await
        .unwrap();
    let entries = datatrust_tests::decoded_log_entries(&channel).await;
    let first = &entries[0];
    assert_eq!(first.kind, "trust-created");
    assert_eq!(first.field("origin"), Some("new.example"));
    assert_eq!(first.field("predecessor-origin"), Some("old.example"));
    use base64::Engine as _;
    let recorded = base64::engine::general_purpose::STANDARD
        .decode(first.field("predecessor-checkpoint").unwrap())
        .unwrap();
    assert_eq!(
        recorded, checkpoint,
        "the old log's final checkpoint, as signed"
    );
    server.signal("-TERM");
    assert!(server.wait(Duration::from_secs(20)).await.success());
}
