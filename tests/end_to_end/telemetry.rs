//! Telemetry in and members' own data: uploads by authorised collectors only, idempotent
//! retries, validation, redaction, summary, export, and erasure that leaves nothing readable.

use std::time::Duration;

use base64::Engine as _;
use datatrust_core::Role;
use datatrust_core::log_entry::DecodedEntry;
use datatrust_proto::v1;
use datatrust_proto::v1::log_service_client::LogServiceClient;
use datatrust_tests::{ServerProcess, TestTrust, new_signer};
use tonic::Code;

fn key_event(time_ms: i64, application: &str, character: &str) -> v1::Event {
    v1::Event {
        time_ms,
        application: application.into(),
        kind: Some(v1::event::Kind::Key(v1::KeyEvent {
            key_class: v1::KeyClass::Letter.into(),
            hold_ms: 90,
            character: character.into(),
            password_field: false,
        })),
    }
}

fn pointer_event(time_ms: i64, application: &str) -> v1::Event {
    v1::Event {
        time_ms,
        application: application.into(),
        kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x: 10, y: 20 })),
    }
}

fn now_ms() -> i64 {
    datatrust_server::now().0 * 1000
}

/// Uploads batches on one stream; returns each answer or the first error.
async fn upload(
    collector: &datatrust_cli::client::SignedIn,
    batches: Vec<v1::UploadRequest>,
) -> Result<Vec<v1::UploadResponse>, tonic::Status> {
    let count = batches.len();
    let mut responses = collector
        .ingest()
        .upload(tokio_stream::iter(batches))
        .await?
        .into_inner();
    let mut answers = Vec::new();
    while answers.len() < count {
        match responses.message().await? {
            Some(answer) => answers.push(answer),
            None => break,
        }
    }
    Ok(answers)
}

fn batch(
    member: &datatrust_core::PublicKey,
    sequence: u64,
    events: Vec<v1::Event>,
) -> v1::UploadRequest {
    v1::UploadRequest {
        member_public_key: member.as_bytes().to_vec(),
        device_id: "laptop-7".into(),
        sequence,
        events,
    }
}

fn files_contain(directory: &std::path::Path, needle: &[u8]) -> bool {
    let mut pending = vec![directory.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path()),
            );
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|window| window == needle)
        {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn uploads_summary_export_and_erasure_that_leaves_nothing_readable() {
    let trust = TestTrust::start().await;
    let (ada_key, ada) = trust.new_principal(Role::Member, "Ada").await;
    let (_, bea) = trust.new_principal(Role::Member, "Bea").await;
    let (collector_key, collector) = trust.new_principal(Role::Collector, "Ada's laptop").await;
    let (_, stranger) = trust
        .new_principal(Role::Collector, "someone else's laptop")
        .await;
    ada.members()
        .authorize_collector(v1::AuthorizeCollectorRequest {
            collector_public_key: collector_key.public_key().as_bytes().to_vec(),
        })
        .await
        .unwrap();
    let member = ada_key.public_key();
    let marker = "MARKER-ada-7f3e9";
    let now = now_ms();

    let first = batch(
        &member,
        1,
        vec![
            key_event(now - 2000, marker, "q"),
            pointer_event(now - 1000, marker),
        ],
    );
    let answers = upload(
        &collector,
        vec![
            first.clone(),
            batch(&member, 2, vec![pointer_event(now, marker)]),
            first,
        ],
    )
    .await
    .unwrap();
    let outcomes: Vec<&str> = answers
        .iter()
        .map(|answer| answer.outcome.as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["stored", "stored", "duplicate"],
        "a replayed batch is acknowledged, not stored twice"
    );

    // Refusals: a collector Ada did not authorise; Bea, who authorised nobody; bad events.
    let refused = upload(
        &stranger,
        vec![batch(&member, 3, vec![pointer_event(now, "x")])],
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let not_for_bea = upload(
        &collector,
        vec![batch(
            &bea.principal_key(),
            1,
            vec![pointer_event(now, "x")],
        )],
    )
    .await
    .unwrap_err();
    assert_eq!(not_for_bea.code(), Code::PermissionDenied);
    let future = upload(
        &collector,
        vec![batch(&member, 4, vec![pointer_event(now + 3_600_000, "x")])],
    )
    .await
    .unwrap_err();
    assert_eq!(future.code(), Code::InvalidArgument);
    assert!(
        future.message().starts_with("events[0].time_ms"),
        "{}",
        future.message()
    );
    let screenshot = v1::Event {
        time_ms: now,
        application: "x".into(),
        kind: Some(v1::event::Kind::Screenshot(v1::ScreenshotRef {
            sha256: "a".repeat(64),
            size_bytes: 50_000_000,
        })),
    };
    let oversized = upload(&collector, vec![batch(&member, 5, vec![screenshot])])
        .await
        .unwrap_err();
    assert!(
        oversized
            .message()
            .starts_with("events[0].screenshot.size_bytes"),
        "{}",
        oversized.message()
    );

    // Screenshots travel separately, encrypted like events; events point at them by hash.
    let image = format!("PNG...{marker}...pixels").into_bytes();
    let uploaded_image = image.clone();
    let stored = collector
        .ingest()
        .upload_screenshot(v1::UploadScreenshotRequest {
            member_public_key: member.as_bytes().to_vec(),
            image: image.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.outcome, "stored");
    let again = collector
        .ingest()
        .upload_screenshot(v1::UploadScreenshotRequest {
            member_public_key: member.as_bytes().to_vec(),
            image,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.outcome.as_str(), again.sha256.as_str()),
        ("duplicate", stored.sha256.as_str())
    );
    let too_big = collector
        .ingest()
        .upload_screenshot(v1::UploadScreenshotRequest {
            member_public_key: member.as_bytes().to_vec(),
            image: vec![0; 3 * 1024 * 1024 + 1],
        })
        .await
        .unwrap_err();
    assert!(
        too_big.message().starts_with("image:"),
        "{}",
        too_big.message()
    );
    let not_theirs = stranger
        .ingest()
        .upload_screenshot(v1::UploadScreenshotRequest {
            member_public_key: member.as_bytes().to_vec(),
            image: b"x".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(not_theirs.code(), Code::PermissionDenied);

    // Summary and export show exactly what was stored, redacted.
    let summary = ada
        .member_data()
        .get_my_data_summary(v1::GetMyDataSummaryRequest {})
        .await
        .unwrap()
        .into_inner();
    let total: u64 = summary.counts.iter().map(|count| count.count).sum();
    assert_eq!(total, 3);
    assert!(
        summary
            .counts
            .iter()
            .any(|count| count.category == "keystrokes" && count.count == 1)
    );
    let mut export = ada
        .member_data()
        .export_my_data(v1::ExportMyDataRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut text = Vec::new();
    while let Some(piece) = export.message().await.unwrap() {
        text.extend(piece.json_lines);
    }
    let lines: Vec<String> = String::from_utf8(text)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 4, "three events and one screenshot image");
    let image_line: serde_json::Value = serde_json::from_str(&lines[3]).unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(image_line["image"]["base64"].as_str().unwrap())
            .unwrap(),
        uploaded_image,
        "the export holds the screenshot images too"
    );
    let first_line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first_line["application"], marker);
    assert!(
        first_line["kind"]["key"]["character"].is_null(),
        "typed characters are dropped without terms allowing them"
    );
    let bea_summary = bea
        .member_data()
        .get_my_data_summary(v1::GetMyDataSummaryRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        bea_summary.counts.is_empty(),
        "a member sees only their own data"
    );

    // At rest, nothing of Ada's events is plaintext.
    let data_dir = trust.data_dir.clone();
    assert!(
        !files_contain(&data_dir, marker.as_bytes()),
        "the marker is stored in plaintext"
    );

    // Erasure: logged, key destroyed, data gone, collection stopped.
    let wrong = ada
        .member_data()
        .erase_my_data(v1::EraseMyDataRequest {
            confirm: "yes".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);
    let erased = ada
        .member_data()
        .erase_my_data(v1::EraseMyDataRequest {
            confirm: "erase all my data".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(erased.chunks_erased, 2);
    assert!(erased.events_erased >= 2, "{erased:?}");
    assert_eq!(
        erased.collectors_withdrawn.len(),
        1,
        "her collector's authorisation is withdrawn, and said so"
    );
    assert!(
        erased.consents_withdrawn.is_empty(),
        "no terms, so no consent was given"
    );
    let index = erased.log_index.unwrap();
    let entry = LogServiceClient::new(trust.channel.clone())
        .get_entries(v1::GetEntriesRequest {
            start: index,
            end: index + 1,
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .remove(0);
    let entry = DecodedEntry::parse(&entry).unwrap();
    assert_eq!(entry.kind, "erasure");
    assert_eq!(
        entry.field("subject"),
        Some(ada.principal.log_subject.as_str())
    );
    let mut export = ada
        .member_data()
        .export_my_data(v1::ExportMyDataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        export.message().await.unwrap().is_none(),
        "nothing left to export"
    );
    let after = upload(
        &collector,
        vec![batch(&member, 6, vec![pointer_event(now, "x")])],
    )
    .await
    .unwrap_err();
    assert_eq!(
        after.code(),
        Code::PermissionDenied,
        "collectors are withdrawn at erasure"
    );
    let mut trust = trust;
    trust.stop().await;
    assert!(!files_contain(&data_dir, marker.as_bytes()));
}

trait PrincipalKey {
    fn principal_key(&self) -> datatrust_core::PublicKey;
}

impl PrincipalKey for datatrust_cli::client::SignedIn {
    fn principal_key(&self) -> datatrust_core::PublicKey {
        datatrust_core::PublicKey::from_slice(&self.principal.public_key, "public_key").unwrap()
    }
}

/// How many events the trust holds for the member, as the member sees it.
async fn stored_events(
    channel: &tonic::transport::Channel,
    member_key: &datatrust_core::NoteSigner,
) -> u64 {
    let member = datatrust_cli::client::sign_in(channel, member_key)
        .await
        .unwrap();
    let summary = member
        .member_data()
        .get_my_data_summary(v1::GetMyDataSummaryRequest {})
        .await
        .unwrap()
        .into_inner();
    summary.counts.iter().map(|count| count.count).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingest_loses_no_acknowledged_batch() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let member_key = new_signer();
    let collector_key = new_signer();
    let mut acknowledged: Vec<u64> = Vec::new();
    for round in 0..3u64 {
        let server = ServerProcess::start(&data_dir, &[]);
        let channel = datatrust_cli::client::connect(&server.grpc_url, None)
            .await
            .unwrap();
        if round == 0 {
            let trustee_key = datatrust_core::NoteSigner::parse(
                &std::fs::read_to_string(data_dir.join("initial-trustee.key")).unwrap(),
            )
            .unwrap();
            let trustee = datatrust_cli::client::sign_in(&channel, &trustee_key)
                .await
                .unwrap();
            for (key, role) in [
                (&member_key, v1::Role::Member),
                (&collector_key, v1::Role::Collector),
            ] {
                trustee
                    .principals()
                    .register_principal(v1::RegisterPrincipalRequest {
                        public_key: key.public_key().as_bytes().to_vec(),
                        role: role.into(),
                        display_name: "crash test".into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            }
            let member = datatrust_cli::client::sign_in(&channel, &member_key)
                .await
                .unwrap();
            member
                .members()
                .authorize_collector(v1::AuthorizeCollectorRequest {
                    collector_public_key: collector_key.public_key().as_bytes().to_vec(),
                })
                .await
                .unwrap();
        }
        // Every batch acknowledged before a crash is there after it.
        let stored = stored_events(&channel, &member_key).await;
        assert!(
            stored >= acknowledged.len() as u64 * 50,
            "round {round}: {stored} events stored, {} batches acknowledged",
            acknowledged.len()
        );

        let collector = datatrust_cli::client::sign_in(&channel, &collector_key)
            .await
            .unwrap();
        let start = 1 + round * 1_000_000;
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let member_public_key = member_key.public_key();
        let producer = tokio::spawn(async move {
            for sequence in start..start + 100_000 {
                let events = (0..50)
                    .map(|offset| pointer_event(now_ms() - offset, "ingest crash test"))
                    .collect();
                if sender
                    .send(batch(&member_public_key, sequence, events))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        let mut responses = collector
            .ingest()
            .upload(stream)
            .await
            .unwrap()
            .into_inner();
        let killer = tokio::spawn(async move {
            // Sleep: the moment of the kill, during the upload.
            tokio::time::sleep(Duration::from_millis(150 + round * 100)).await;
            server.signal("-KILL");
            server
        });
        while let Ok(Some(answer)) = responses.message().await {
            assert_eq!(answer.outcome, "stored");
            acknowledged.push(answer.sequence);
        }
        let server = killer.await.unwrap();
        let _ = server.wait(Duration::from_secs(10)).await;
        producer.abort();
    }
    assert!(
        acknowledged.len() > 3,
        "too few batches acknowledged to mean anything: {}",
        acknowledged.len()
    );
    let server = ServerProcess::start(&data_dir, &[]);
    let channel = datatrust_cli::client::connect(&server.grpc_url, None)
        .await
        .unwrap();
    let stored = stored_events(&channel, &member_key).await;
    assert!(
        stored >= acknowledged.len() as u64 * 50,
        "{stored} events stored, {} batches of 50 acknowledged",
        acknowledged.len()
    );
}

// Multi-threaded: the test runs the CLI as a process against the in-process server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_cli_uploads_the_export_format_once() {
    let trust = TestTrust::start().await;
    let (member_key, member) = trust.new_principal(Role::Member, "Ada Lovelace").await;
    let (collector_key, _) = trust.new_principal(Role::Collector, "Ada's laptop").await;
    member
        .members()
        .authorize_collector(v1::AuthorizeCollectorRequest {
            collector_public_key: collector_key.public_key().as_bytes().to_vec(),
        })
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let key_file = work.path().join("collector.key");
    std::fs::write(&key_file, collector_key.to_private_text()).unwrap();
    let events_file = work.path().join("events.jsonl");
    let now = now_ms();
    std::fs::write(
        &events_file,
        format!(
            "{{\"time_ms\":{},\"application\":\"editor\",\"kind\":{{\"pointer\":{{\"x\":1,\"y\":2}}}}}}\n{{\"time_ms\":{},\"application\":\"editor\",\"kind\":{{\"scroll\":{{\"dx\":0,\"dy\":-3}}}}}}\n",
            now - 1000,
            now
        ),
    )
    .unwrap();
    let upload = || {
        std::process::Command::new(datatrust_tests::datatrust_binary())
            .args([
                "collector",
                "upload",
                "--server",
                &trust.grpc_url,
                "--member",
                &member_key.public_key().to_base64(),
                "--device",
                "laptop-7",
                "--batch",
                "1",
                "--key",
            ])
            .arg(&key_file)
            .arg("--file")
            .arg(&events_file)
            .output()
            .unwrap()
    };
    let first = upload();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("2 events stored"),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let again = upload();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("2 batch(es) already stored"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let summary = member
        .member_data()
        .get_my_data_summary(v1::GetMyDataSummaryRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        summary.counts.iter().map(|count| count.count).sum::<u64>(),
        2,
        "stored once"
    );
}
