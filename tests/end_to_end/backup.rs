//! Backups: a copy of a running trust taken while a collector uploads, restored into a new
//! data directory by `datatrust admin restore` (the log recomputed in full), served again:
//! every batch acknowledged before the backup is there and nothing that was not uploaded,
//! `log verify --full` passes, and a member who erased her data after the backup is erased
//! again from the journal. A restore refuses a backup older than a checkpoint seen since.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use datatrust_core::{NoteSigner, Role};
use datatrust_proto::v1;
use datatrust_server::ServeOptions;
use datatrust_tests::{TestTrust, authorize, datatrust_binary, http_get, new_signer};

fn batch(member: &NoteSigner, sequence: u64) -> v1::UploadRequest {
    let now_ms = datatrust_server::now().0 * 1000;
    v1::UploadRequest {
        member_public_key: member.public_key().as_bytes().to_vec(),
        device_id: "laptop".into(),
        sequence,
        events: (0..50)
            .map(|index| v1::Event {
                time_ms: now_ms - 60_000 + index,
                application: format!("app-{sequence}"),
                kind: Some(v1::event::Kind::Pointer(v1::PointerMove {
                    x: sequence as i32,
                    y: index as i32,
                })),
            })
            .collect(),
    }
}

fn run(arguments: &[&str]) -> std::process::Output {
    std::process::Command::new(datatrust_binary())
        .args(arguments)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_ingest_restores_whole_and_keeps_later_erasures() {
    if datatrust_tests::skip_in_postgres_run(
        "a_backup_under_ingest_restores_whole_and_keeps_later_erasures",
        "backups copy the embedded store; PostgreSQL is backed up with its own tools",
    ) {
        return;
    }
    let place = tempfile::tempdir().unwrap();
    let backups = place.path().join("backups");
    let trust = TestTrust::open(
        &place.path().join("data"),
        ServeOptions {
            backup_dir: Some(backups.clone()),
            ..ServeOptions::default()
        },
    )
    .await;
    let trustee = trust.trustee_session().await;
    let (laptop, collector) = trust.new_principal(Role::Collector, "Laptop").await;
    let (ada, bea) = (new_signer(), new_signer());
    for (member, name) in [(&ada, "Ada"), (&bea, "Bea")] {
        trustee
            .principals()
            .register_principal(v1::RegisterPrincipalRequest {
                public_key: member.public_key().as_bytes().to_vec(),
                role: v1::Role::Member.into(),
                display_name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        authorize(&trust.sign_in(member).await.unwrap(), &laptop).await;
    }
    datatrust_tests::upload_events(&collector, &bea, batch(&bea, 1).events).await;

    // The collector uploads Ada's batches one after another throughout the backup.
    let (stop, acknowledged) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let uploading = {
        let (stop, acknowledged, collector, ada) = (
            Arc::clone(&stop),
            Arc::clone(&acknowledged),
            collector.clone(),
            ada.clone(),
        );
        tokio::spawn(async move {
            let mut sequence = 1;
            while !stop.load(Ordering::SeqCst) {
                let mut answers = collector
                    .ingest()
                    .upload(tokio_stream::iter(vec![batch(&ada, sequence)]))
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(answers.message().await.unwrap().unwrap().outcome, "stored");
                acknowledged.store(sequence, Ordering::SeqCst);
                sequence += 1;
            }
        })
    };
    while acknowledged.load(Ordering::SeqCst) < 20 {
        tokio::task::yield_now().await;
    }
    let before_backup = acknowledged.load(Ordering::SeqCst);
    let key_file = place.path().join("trustee.key");
    std::fs::write(&key_file, trust.trustee.to_private_text()).unwrap();
    let (grpc, key) = (trust.grpc_url.clone(), key_file.clone());
    let backed_up = tokio::task::spawn_blocking(move || {
        run(&[
            "admin",
            "backup",
            "--server",
            &grpc,
            "--key",
            key.to_str().unwrap(),
            "--json",
        ])
    })
    .await
    .unwrap();
    assert!(
        backed_up.status.success(),
        "{}",
        String::from_utf8_lossy(&backed_up.stderr)
    );
    while acknowledged.load(Ordering::SeqCst) < before_backup + 20 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::SeqCst);
    uploading.await.unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&backed_up.stdout).unwrap();
    let data_path = answer["data_path"].as_str().unwrap().to_owned();
    let backup_size = answer["log_size"].as_u64().unwrap();
    assert!(std::path::Path::new(&format!("{data_path}-keys/data.key")).exists());

    // After the backup point: Bea erases her data.
    trust
        .sign_in(&bea)
        .await
        .unwrap()
        .member_data()
        .erase_my_data(v1::EraseMyDataRequest {
            confirm: "erase all my data".into(),
        })
        .await
        .unwrap();
    let ada_then = datatrust_tests::export_text(&trust.sign_in(&ada).await.unwrap()).await;
    let (_, _, latest) = http_get(trust.http_addr, "/log/checkpoint").await;
    let seen = place.path().join("seen.checkpoint");
    std::fs::write(&seen, &latest).unwrap();
    let mut trust = trust;
    trust.stop().await;

    // A checkpoint seen after the backup point: the restore refuses to roll the log back.
    let refused_dir = place.path().join("refused");
    let refused = run(&[
        "admin",
        "restore",
        "--from",
        &data_path,
        "--data-dir",
        refused_dir.to_str().unwrap(),
        "--seen-checkpoint",
        seen.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("roll the log back"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        TestTrust::try_open(&refused_dir).await.is_err(),
        "a refused restore is left unservable"
    );

    let restored_dir = place.path().join("restored");
    let restored = run(&[
        "admin",
        "restore",
        "--from",
        &data_path,
        "--data-dir",
        restored_dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&restored.stdout).unwrap();
    assert_eq!(report["log_size"].as_u64(), Some(backup_size));
    assert_eq!(report["erasures_replayed"].as_u64(), Some(1), "{report}");

    // The first trustee's key is the trustee's, not the trust's: not in a backup. The test
    // helper signs in with it.
    std::fs::copy(
        place.path().join("data/initial-trustee.key"),
        restored_dir.join("initial-trustee.key"),
    )
    .unwrap();
    let restored = TestTrust::open(&restored_dir, ServeOptions::default()).await;
    // Ada: every batch acknowledged before the backup, and only what was uploaded.
    let ada_now = datatrust_tests::export_text(&restored.sign_in(&ada).await.unwrap()).await;
    for sequence in 1..=before_backup {
        assert!(
            ada_now.contains(&format!("\"app-{sequence}\"")),
            "batch {sequence} was acknowledged before the backup"
        );
    }
    for line in ada_now.lines() {
        assert!(ada_then.contains(line), "{line} was never uploaded");
    }
    // Bea stays erased.
    assert!(
        datatrust_tests::export_text(&restored.sign_in(&bea).await.unwrap())
            .await
            .is_empty()
    );
    let log_url = format!("http://{}/log", restored.http_addr);
    let info = datatrust_cli::client::trust_info(&restored.channel)
        .await
        .unwrap();
    let state = place.path().join("monitor");
    let verified = restored
        .cli(
            &restored.trustee,
            &[
                "log",
                "verify",
                "--full",
                "--vkey",
                &info.log_vkey,
                "--state",
                state.to_str().unwrap(),
                "--log-url",
                &log_url,
            ],
        )
        .await;
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let mut restored = restored;
    restored.stop().await;
    let check = datatrust_tests::admin_check(&restored_dir).await;
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("no difference"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
