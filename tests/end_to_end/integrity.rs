//! Integrity at start and at rest: a trust whose database was rolled back, whose key files
//! were lost or swapped, or whose files others could read refuses to start and names what
//! to do; data it should hold but cannot read is DATA_LOSS, never an empty success.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use datatrust_core::{NoteSigner, Role};
use datatrust_proto::v1;
use datatrust_server::ServeOptions;
use datatrust_tests::{TestTrust, authorize, upload_events};
use tonic::Code;

/// A trust in `data_dir` with `principals` registered after creation, stopped.
async fn stopped_trust(data_dir: &Path, principals: usize) {
    let mut trust = TestTrust::open(data_dir, ServeOptions::default()).await;
    trust.register_many(Role::Licensee, principals).await;
    trust.stop().await;
}

#[tokio::test]
async fn a_database_rolled_back_to_an_older_copy_is_refused_not_forked() {
    // On both backends: sled's directory, or the trust's PostgreSQL schema, put back to an
    // older copy; the checkpoint the trust published is kept outside either.
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    stopped_trust(&data_dir, 3).await;
    datatrust_tests::snapshot_database(&data_dir, "then");
    // The trust goes on and publishes larger checkpoints.
    stopped_trust(&data_dir, 5).await;
    // The database goes back to the older copy, as a bad restore or damage would leave it.
    datatrust_tests::restore_database(&data_dir, "then");
    let refused = TestTrust::try_open(&data_dir).await.err().expect("refused");
    assert!(
        refused.contains("already published a checkpoint of size")
            && refused.contains("published entries are missing")
            && refused.contains("from a backup taken after that checkpoint"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_flipped_byte_in_the_database_never_rolls_the_log_back() {
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    let mut trust = TestTrust::open(&data_dir, ServeOptions::default()).await;
    trust.register_many(Role::Licensee, 20).await;
    let before = trust_checkpoint(&trust).await;
    trust.stop().await;
    // The middle of sled's largest file.
    let mut files: Vec<_> = std::fs::read_dir(data_dir.join("db"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort_by_key(|path| std::fs::metadata(path).unwrap().len());
    let largest = files.last().unwrap();
    let mut bytes = std::fs::read(largest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(largest, bytes).unwrap();
    // Either the start is refused, or the log served is the one published, or larger and
    // consistent with it: never a smaller or different tree.
    if let Ok(trust) = TestTrust::try_open(&data_dir).await {
        let after = trust_checkpoint(&trust).await;
        assert!(
            after.0 >= before.0,
            "rolled back from {before:?} to {after:?}"
        );
        if after.0 == before.0 {
            assert_eq!(after.1, before.1, "a different tree of the same size");
        }
    }
}

async fn trust_checkpoint(trust: &TestTrust) -> (u64, Vec<u8>) {
    let checkpoint =
        datatrust_proto::v1::log_service_client::LogServiceClient::new(trust.channel.clone())
            .get_checkpoint(v1::GetCheckpointRequest {})
            .await
            .unwrap()
            .into_inner();
    (checkpoint.tree_size, checkpoint.root_hash)
}

#[tokio::test]
async fn a_missing_or_changed_data_key_stops_the_start_naming_the_file() {
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    stopped_trust(&data_dir, 1).await;
    let key_path = data_dir.join("keys/data.key");
    let original = std::fs::read(&key_path).unwrap();

    std::fs::remove_file(&key_path).unwrap();
    let refused = TestTrust::try_open(&data_dir).await.err().expect("refused");
    assert!(
        refused.contains("keys/data.key") && refused.contains("missing"),
        "{refused}"
    );
    assert!(!key_path.exists(), "no new data key was made in its place");

    std::fs::write(&key_path, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let refused = TestTrust::try_open(&data_dir).await.err().expect("refused");
    assert!(
        refused.contains("keys/data.key") && refused.contains("not the data key"),
        "{refused}"
    );

    std::fs::write(&key_path, &original).unwrap();
    TestTrust::try_open(&data_dir)
        .await
        .expect("the original key starts");
}

#[tokio::test]
async fn signing_keys_other_than_the_logged_ones_stop_the_start() {
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    stopped_trust(&data_dir, 1).await;
    let origin = "trust.test";
    for (file, name) in [
        ("keys/license.key", format!("{origin}/license")),
        ("keys/log.key", origin.to_owned()),
    ] {
        let path = data_dir.join(file);
        let original = std::fs::read(&path).unwrap();
        // Another valid key under the same name.
        let other = NoteSigner::new(&name, rand::random()).unwrap();
        std::fs::write(&path, format!("{}\n", other.to_private_text())).unwrap();
        let refused = TestTrust::try_open(&data_dir).await.err().expect("refused");
        assert!(refused.contains(file), "{file}: {refused}");
        std::fs::write(&path, original).unwrap();
    }
    TestTrust::try_open(&data_dir)
        .await
        .expect("the original keys start");
}

#[tokio::test]
async fn the_trusts_files_are_its_users_alone() {
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    stopped_trust(&data_dir, 1).await;
    let mut pending = vec![data_dir.clone()];
    while let Some(directory) = pending.pop() {
        let mode = std::fs::metadata(&directory).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", directory.display());
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
            }
        }
    }
    // A key others can read is refused, naming it and the fix.
    let key = data_dir.join("keys/license.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = TestTrust::try_open(&data_dir).await.err().expect("refused");
    assert!(
        refused.contains("keys/license.key") && refused.contains("chmod 600"),
        "{refused}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The database's files loosened by hand are tightened on start.
    let database_file = std::fs::read_dir(data_dir.join("db"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.is_file())
        .unwrap();
    std::fs::set_permissions(&database_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    TestTrust::try_open(&data_dir).await.expect("starts");
    let mode = std::fs::metadata(&database_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test]
async fn a_member_whose_key_file_is_gone_gets_data_loss_not_an_empty_export() {
    if datatrust_tests::skip_in_postgres_run(
        "a_member_whose_key_file_is_gone_gets_data_loss_not_an_empty_export",
        "it is about the embedded store's files on disk",
    ) {
        return;
    }
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    let mut trust = TestTrust::open(&data_dir, ServeOptions::default()).await;
    let (member_key, member) = trust.new_principal(Role::Member, "Ada").await;
    let (collector_key, collector) = trust.new_principal(Role::Collector, "laptop").await;
    authorize(&member, &collector_key).await;
    upload_events(
        &collector,
        &member_key,
        vec![v1::Event {
            time_ms: datatrust_server::now().0 * 1000,
            application: "editor".into(),
            kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x: 1, y: 2 })),
        }],
    )
    .await;
    trust.stop().await;
    for entry in std::fs::read_dir(data_dir.join("member-keys")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let trust = TestTrust::open(&data_dir, ServeOptions::default()).await;
    let member = trust.sign_in(&member_key).await.unwrap();
    let Err(refused) = member
        .member_data()
        .export_my_data(v1::ExportMyDataRequest {})
        .await
    else {
        panic!("refused before the stream starts");
    };
    assert_eq!(refused.code(), Code::DataLoss, "{refused:?}");
}

#[tokio::test]
async fn a_damaged_stored_screenshot_is_data_loss_not_a_shorter_export() {
    if datatrust_tests::skip_in_postgres_run(
        "a_damaged_stored_screenshot_is_data_loss_not_a_shorter_export",
        "it is about the embedded store's files on disk",
    ) {
        return;
    }
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    let mut trust = TestTrust::open(&data_dir, ServeOptions::default()).await;
    let (member_key, member) = trust.new_principal(Role::Member, "Ada").await;
    let (collector_key, collector) = trust.new_principal(Role::Collector, "laptop").await;
    authorize(&member, &collector_key).await;
    collector
        .ingest()
        .upload_screenshot(v1::UploadScreenshotRequest {
            member_public_key: member_key.public_key().as_bytes().to_vec(),
            image: b"an image".to_vec(),
        })
        .await
        .unwrap();
    trust.stop().await;
    // One byte of the sealed image changes on disk, as damage would.
    {
        let database = sled::open(data_dir.join("db")).unwrap();
        let screenshots = database.open_tree("screenshots").unwrap();
        let (key, value) = screenshots.iter().next().unwrap().unwrap();
        let mut damaged = value.to_vec();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        screenshots.insert(key, damaged).unwrap();
        database.flush().unwrap();
    }
    let trust = TestTrust::open(&data_dir, ServeOptions::default()).await;
    let member = trust.sign_in(&member_key).await.unwrap();
    let mut export = member
        .member_data()
        .export_my_data(v1::ExportMyDataRequest::default())
        .await
        .unwrap()
        .into_inner();
    let refused = loop {
        match export.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the export ended as if complete"),
            Err(status) => break status,
        }
    };
    assert_eq!(refused.code(), Code::DataLoss, "{refused:?}");
}

#[tokio::test]
async fn collectors_cannot_upload_for_a_deactivated_member() {
    let trust = TestTrust::start().await;
    let (member_key, member) = trust.new_principal(Role::Member, "Ada").await;
    let (collector_key, collector) = trust.new_principal(Role::Collector, "laptop").await;
    authorize(&member, &collector_key).await;
    trust
        .trustee_session()
        .await
        .principals()
        .deactivate_principal(v1::DeactivatePrincipalRequest {
            public_key: member_key.public_key().as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut answers = collector
        .ingest()
        .upload(tokio_stream::iter(vec![v1::UploadRequest {
            member_public_key: member_key.public_key().as_bytes().to_vec(),
            device_id: "laptop".into(),
            sequence: 1,
            events: vec![v1::Event {
                time_ms: datatrust_server::now().0 * 1000,
                application: "editor".into(),
                kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x: 1, y: 2 })),
            }],
        }]))
        .await
        .unwrap()
        .into_inner();
    let refused = answers.message().await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("no longer active"),
        "{refused:?}"
    );
    let refused = collector
        .ingest()
        .upload_screenshot(v1::UploadScreenshotRequest {
            member_public_key: member_key.public_key().as_bytes().to_vec(),
            image: b"png".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
}

/// Every byte of every file under `directory`.
fn all_bytes(directory: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files
}

#[tokio::test]
async fn ballots_and_commitment_salts_are_sealed_at_rest() {
    let member_key = datatrust_tests::new_signer();
    let mut ratified = datatrust_tests::RatifiedTrust::start(&[(member_key.clone(), "Ada")]).await;
    let member = ratified.trust.sign_in(&member_key).await.unwrap();
    let salt = member
        .member_data()
        .get_my_audit(v1::GetMyAuditRequest::default())
        .await
        .unwrap()
        .into_inner()
        .commitment_salt;
    assert_eq!(salt.len(), 32);
    let data_dir = ratified.trust.data_dir.clone();
    ratified.trust.stop().await;
    // As stored before sealing: hex in the principal's JSON.
    let salt_hex: Vec<u8> = salt
        .iter()
        .flat_map(|byte| format!("{byte:02x}").into_bytes())
        .collect();
    for (path, bytes) in all_bytes(&data_dir) {
        assert!(
            !bytes.windows(32).any(|window| window == salt.as_slice())
                && !bytes
                    .windows(64)
                    .any(|window| window == salt_hex.as_slice()),
            "{} holds a member's commitment salt in the clear",
            path.display()
        );
        assert!(
            !bytes.windows(11).any(|window| window == b"{\"approve\":"),
            "{} holds a ballot in the clear",
            path.display()
        );
    }
}
