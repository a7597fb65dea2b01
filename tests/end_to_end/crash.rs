//! kill -9 at random moments during a stream of appends: after every restart, each index the
//! server acknowledged holds the entry it acknowledged, the tree is consistent with every
//! checkpoint ever served, and appending continues.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use datatrust_core::NoteVerifier;
use datatrust_core::log_entry::DecodedEntry;
use datatrust_proto::v1;
use datatrust_proto::v1::log_service_client::LogServiceClient;
use datatrust_tests::{ServerProcess, new_signer};
use datatrust_tlog::SignedCheckpoint;
use datatrust_tlog::proof::{hash_from_slice, verify_consistency};
use rand::Rng as _;

const ROUNDS: usize = 8;
const WRITERS: usize = 6;

#[derive(Default)]
struct Observed {
    /// (log index, licensee key) for every registration the server acknowledged.
    acknowledged: Vec<(u64, String)>,
    /// Every checkpoint the server served.
    checkpoints: Vec<SignedCheckpoint>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged_and_never_forks_the_log() {
    if datatrust_tests::skip_in_postgres_run(
        "kill_9_loses_nothing_acknowledged_and_never_forks_the_log",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let trustee_key_path = data_dir.join("initial-trustee.key");
    let observed = Arc::new(Mutex::new(Observed::default()));
    let mut verifier: Option<NoteVerifier> = None;

    for round in 0..=ROUNDS {
        let server = ServerProcess::start(&data_dir, &[]);
        let channel = datatrust_cli::client::connect(&server.grpc_url, None)
            .await
            .unwrap();
        let info = datatrust_cli::client::trust_info(&channel).await.unwrap();
        let log_vkey = NoteVerifier::parse(&info.log_vkey).unwrap();
        verifier.get_or_insert_with(|| log_vkey.clone());
        assert_eq!(
            verifier.as_ref(),
            Some(&log_vkey),
            "the log key never changes"
        );
        check_everything_survived(&channel, &log_vkey, &observed).await;
        if round == ROUNDS {
            // Appending continues after the last crash.
            let trustee = datatrust_core::NoteSigner::parse(
                &std::fs::read_to_string(&trustee_key_path).unwrap(),
            )
            .unwrap();
            let session = datatrust_cli::client::sign_in(&channel, &trustee)
                .await
                .unwrap();
            let response = register(&session)
                .await
                .expect("an append after the crashes");
            assert!(response.0 >= observed.lock().unwrap().acknowledged.len() as u64);
            break;
        }

        let trustee =
            datatrust_core::NoteSigner::parse(&std::fs::read_to_string(&trustee_key_path).unwrap())
                .unwrap();
        let session = datatrust_cli::client::sign_in(&channel, &trustee)
            .await
            .unwrap();
        let mut writers = Vec::new();
        for _ in 0..WRITERS {
            let session = session.clone();
            let observed = Arc::clone(&observed);
            writers.push(tokio::spawn(async move {
                while let Ok(acknowledged) = register(&session).await {
                    observed.lock().unwrap().acknowledged.push(acknowledged);
                }
            }));
        }
        let watcher = {
            let channel = channel.clone();
            let observed = Arc::clone(&observed);
            let log_vkey = log_vkey.clone();
            tokio::spawn(async move {
                let mut log = LogServiceClient::new(channel);
                while let Ok(response) = log.get_checkpoint(v1::GetCheckpointRequest {}).await {
                    let checkpoint =
                        SignedCheckpoint::open(&response.into_inner().checkpoint, &log_vkey)
                            .unwrap();
                    observed.lock().unwrap().checkpoints.push(checkpoint);
                    // Sleep: the watcher's pace between checkpoint reads.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let delay = rand::thread_rng().gen_range(30..300);
        // Sleep: the moment of the kill, chosen at random; nothing waits for time.
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.signal("-KILL");
        let _ = server.wait(Duration::from_secs(10)).await;
        for writer in writers {
            writer.await.unwrap();
        }
        watcher.await.unwrap();
    }
    let observed = observed.lock().unwrap();
    assert!(
        observed.acknowledged.len() > ROUNDS * 5,
        "too few appends to mean anything: {}",
        observed.acknowledged.len()
    );
}

/// Registers a new licensee; returns the log index and the key the entry must name.
async fn register(
    session: &datatrust_cli::client::SignedIn,
) -> Result<(u64, String), tonic::Status> {
    let key = new_signer().public_key();
    let response = session
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: key.as_bytes().to_vec(),
            role: v1::Role::Licensee.into(),
            display_name: "crash test company".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok((
        response.log_index.expect("a registration is logged"),
        key.to_base64(),
    ))
}

async fn check_everything_survived(
    channel: &tonic::transport::Channel,
    vkey: &NoteVerifier,
    observed: &Mutex<Observed>,
) {
    let mut log = LogServiceClient::new(channel.clone());
    let latest = log
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    let latest = SignedCheckpoint::open(&latest.checkpoint, vkey).unwrap();
    let (acknowledged, checkpoints) = {
        let observed = observed.lock().unwrap();
        (observed.acknowledged.clone(), observed.checkpoints.clone())
    };
    for (index, key) in &acknowledged {
        assert!(
            *index < latest.checkpoint.size,
            "acknowledged index {index} is gone"
        );
        let entry = log
            .get_entries(v1::GetEntriesRequest {
                start: *index,
                end: index + 1,
            })
            .await
            .unwrap()
            .into_inner()
            .entries
            .pop()
            .unwrap();
        let decoded = DecodedEntry::parse(&entry).unwrap();
        assert_eq!(
            decoded.field("subject"),
            Some(key.as_str()),
            "entry {index} changed"
        );
    }
    for seen in &checkpoints {
        let (old, new) = (&seen.checkpoint, &latest.checkpoint);
        assert!(old.size <= new.size, "the log shrank");
        if old.size == new.size {
            assert_eq!(old.root, new.root, "two trees of one size");
        } else if old.size > 0 {
            let proof: Vec<_> = log
                .get_consistency_proof(v1::GetConsistencyProofRequest {
                    first_size: old.size,
                    second_size: new.size,
                })
                .await
                .unwrap()
                .into_inner()
                .proof
                .iter()
                .map(|hash| hash_from_slice(hash).unwrap())
                .collect();
            verify_consistency(old.size, new.size, &old.root, &new.root, &proof).unwrap();
        }
    }
}
