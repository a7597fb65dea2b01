//! The transparency log as members and auditors meet it: every state change is an entry,
//! entries hold commitments only, and checkpoints, tiles, proofs and receipts verify.

use std::process::Command;

use datatrust_core::log_entry::DecodedEntry;
use datatrust_core::{NoteVerifier, Role};
use datatrust_proto::v1;
use datatrust_proto::v1::log_service_client::LogServiceClient;
use datatrust_tests::{TestTrust, datatrust_binary, http_get, new_signer};
use datatrust_tlog::proof::{hash_from_slice, verify_consistency, verify_inclusion};
use datatrust_tlog::receipt::Receipt;
use datatrust_tlog::tile::{bundle_entries, bytes_to_hashes};
use datatrust_tlog::{SignedCheckpoint, leaf_hash};
use tonic::Code;

async fn log_vkey(trust: &TestTrust) -> NoteVerifier {
    let info = datatrust_cli::client::trust_info(&trust.channel)
        .await
        .unwrap();
    NoteVerifier::parse(&info.log_vkey).unwrap()
}

async fn all_entries(trust: &TestTrust) -> Vec<Vec<u8>> {
    let mut log = LogServiceClient::new(trust.channel.clone());
    let size = log
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .tree_size;
    let mut entries = Vec::new();
    let mut start = 0;
    while start < size {
        let end = (start + 1000).min(size);
        entries.extend(
            log.get_entries(v1::GetEntriesRequest { start, end })
                .await
                .unwrap()
                .into_inner()
                .entries,
        );
        start = end;
    }
    entries
}

#[tokio::test]
async fn every_state_change_is_an_entry_with_commitments_only() {
    let trust = TestTrust::start().await;
    let trustee = trust.trustee_session().await;
    let (member_key, member) = trust.new_principal(Role::Member, "Ada Lovelace").await;
    let (collector_key, _) = trust.new_principal(Role::Collector, "Ada's laptop").await;
    let (licensee_key, _) = trust.new_principal(Role::Licensee, "Acme Robotics").await;
    let authorized = member
        .members()
        .authorize_collector(v1::AuthorizeCollectorRequest {
            collector_public_key: collector_key.public_key().as_bytes().to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        authorized.log_index.is_some(),
        "a change returns its log index"
    );
    let again = member
        .members()
        .authorize_collector(v1::AuthorizeCollectorRequest {
            collector_public_key: collector_key.public_key().as_bytes().to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.log_index, None, "no change, no entry");
    member
        .members()
        .revoke_collector(v1::RevokeCollectorRequest {
            collector_public_key: collector_key.public_key().as_bytes().to_vec(),
        })
        .await
        .unwrap();
    let invitation = trustee
        .principals()
        .create_invitation(v1::CreateInvitationRequest {
            display_name: "Bea Bianchi".into(),
            valid_for_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let invited = new_signer();
    let code = datatrust_core::auth::InvitationCode::parse(&invitation.invitation_code).unwrap();
    datatrust_cli::client::redeem_invitation(&trust.channel, &invited, &code)
        .await
        .unwrap();
    trustee
        .principals()
        .deactivate_principal(v1::DeactivatePrincipalRequest {
            public_key: licensee_key.public_key().as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();

    let entries = all_entries(&trust).await;
    let kinds: Vec<String> = entries
        .iter()
        .map(|entry| DecodedEntry::parse(entry).unwrap().kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "trust-created",
            "principal-registered", // the first trustee
            "principal-registered", // member
            "principal-registered", // collector
            "principal-registered", // licensee
            "collector-authorized",
            "collector-revoked",
            "invitation-redeemed",
            "principal-deactivated",
        ]
    );
    // The member can find their own entries by their commitment, and nobody else can.
    let subject = member.principal.log_subject.clone();
    let mine: Vec<&Vec<u8>> = entries
        .iter()
        .filter(|entry| {
            DecodedEntry::parse(entry)
                .unwrap()
                .fields
                .iter()
                .any(|(_, value)| *value == subject)
        })
        .collect();
    assert_eq!(mine.len(), 3, "registered, authorised, revoked");
    // No personal data: no member or collector key, no name.
    let everything = String::from_utf8(entries.concat()).unwrap();
    for secret in [
        member_key.public_key().to_base64(),
        collector_key.public_key().to_base64(),
        invited.public_key().to_base64(),
        // Whole names, with spaces: base64 and hex never contain one, so a hit is a real leak.
        "Ada Lovelace".to_owned(),
        "Bea Bianchi".to_owned(),
        "Ada's laptop".to_owned(),
    ] {
        assert!(!everything.contains(&secret), "the log holds {secret:?}");
    }
    // Licensees act in the open.
    assert!(everything.contains(&licensee_key.public_key().to_base64()));
}

#[tokio::test]
async fn checkpoint_tiles_proofs_and_receipts_verify_over_http_and_grpc() {
    let trust = TestTrust::start().await;
    let verifier = log_vkey(&trust).await;
    let mut log = LogServiceClient::new(trust.channel.clone());
    let first = log
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = SignedCheckpoint::open(&first.checkpoint, &verifier).unwrap();
    for index in 0..5 {
        trust
            .new_principal(Role::Member, &format!("member {index}"))
            .await;
    }

    let (status, headers, body) = http_get(trust.http_addr, "/log/checkpoint").await;
    assert_eq!(status, 200);
    assert!(
        headers.contains(&("content-type".into(), "text/plain; charset=utf-8".into())),
        "{headers:?}"
    );
    let note = String::from_utf8(body).unwrap();
    let latest = SignedCheckpoint::open(&note, &verifier).unwrap();
    let size = latest.checkpoint.size;
    assert!(size >= 7);

    // Tiles and bundles, as a tlog-tiles client fetches them.
    let partial = format!("/log/tile/0/000.p/{size}");
    let (status, headers, tile) = http_get(trust.http_addr, &partial).await;
    assert_eq!(status, 200);
    assert!(headers.contains(&("content-type".into(), "application/octet-stream".into())));
    assert!(
        headers
            .iter()
            .any(|(name, value)| name == "cache-control" && value.contains("immutable"))
    );
    let hashes = bytes_to_hashes(&tile).unwrap();
    let (_, _, bundle) =
        http_get(trust.http_addr, &format!("/log/tile/entries/000.p/{size}")).await;
    let entries = bundle_entries(&bundle).unwrap();
    assert_eq!(entries.len() as u64, size);
    for (entry, hash) in entries.iter().zip(&hashes) {
        assert_eq!(leaf_hash(entry), *hash);
    }
    assert_eq!(
        datatrust_tlog::hash::root_of(&hashes),
        latest.checkpoint.root
    );
    let (status, _, _) =
        http_get(trust.http_addr, &format!("/log/tile/0/000.p/{}", size + 1)).await;
    assert_eq!(status, 404, "a width beyond the tree is not served");
    let (status, _, _) = http_get(trust.http_addr, "/log/tile/0/000").await;
    assert_eq!(status, 404, "no full tile yet");
    let (status, _, _) = http_get(trust.http_addr, "/log/tile/0/0").await;
    assert_eq!(status, 404, "not a tile path");

    // Inclusion proofs for every entry, by index and by leaf hash.
    for index in 0..size {
        let response = log
            .get_inclusion_proof(v1::GetInclusionProofRequest {
                leaf: Some(v1::get_inclusion_proof_request::Leaf::Index(index)),
                tree_size: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let proof: Vec<_> = response
            .proof
            .iter()
            .map(|hash| hash_from_slice(hash).unwrap())
            .collect();
        verify_inclusion(
            index,
            size,
            &hashes[index as usize],
            &proof,
            &latest.checkpoint.root,
        )
        .unwrap();
    }
    let by_hash = log
        .get_inclusion_proof(v1::GetInclusionProofRequest {
            leaf: Some(v1::get_inclusion_proof_request::Leaf::LeafHash(
                hashes[3].to_vec(),
            )),
            tree_size: size,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_hash.index, 3);

    // Consistency with the first checkpoint this test saw.
    let consistency = log
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            first_size: first.checkpoint.size,
            second_size: size,
        })
        .await
        .unwrap()
        .into_inner();
    let proof: Vec<_> = consistency
        .proof
        .iter()
        .map(|hash| hash_from_slice(hash).unwrap())
        .collect();
    verify_consistency(
        first.checkpoint.size,
        size,
        &first.checkpoint.root,
        &latest.checkpoint.root,
        &proof,
    )
    .unwrap();

    // A receipt verifies offline and carries its entry.
    let receipt = log
        .get_receipt(v1::GetReceiptRequest { index: 4 })
        .await
        .unwrap()
        .into_inner()
        .receipt;
    let verified = Receipt::parse(&receipt)
        .unwrap()
        .verify(&verifier, None)
        .unwrap();
    assert_eq!(verified.entry, entries[4]);
}

#[tokio::test]
async fn bad_proof_requests_get_clear_codes_not_panics() {
    let trust = TestTrust::start().await;
    let mut log = LogServiceClient::new(trust.channel.clone());
    let size = log
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .tree_size;
    let inclusion = |leaf, tree_size| v1::GetInclusionProofRequest {
        leaf: Some(leaf),
        tree_size,
    };
    use v1::get_inclusion_proof_request::Leaf;
    let cases: Vec<(Result<(), tonic::Status>, Code)> = vec![
        (
            log.get_inclusion_proof(inclusion(Leaf::Index(size), 0))
                .await
                .map(drop),
            Code::OutOfRange,
        ),
        (
            log.get_inclusion_proof(inclusion(Leaf::Index(0), size + 1))
                .await
                .map(drop),
            Code::OutOfRange,
        ),
        (
            log.get_inclusion_proof(inclusion(Leaf::Index(u64::MAX), u64::MAX))
                .await
                .map(drop),
            Code::OutOfRange,
        ),
        (
            log.get_inclusion_proof(inclusion(Leaf::LeafHash(vec![1, 2, 3]), 0))
                .await
                .map(drop),
            Code::InvalidArgument,
        ),
        (
            log.get_inclusion_proof(inclusion(Leaf::LeafHash(vec![7; 32]), 0))
                .await
                .map(drop),
            Code::OutOfRange,
        ),
        (
            log.get_inclusion_proof(v1::GetInclusionProofRequest {
                leaf: None,
                tree_size: 0,
            })
            .await
            .map(drop),
            Code::InvalidArgument,
        ),
        (
            log.get_consistency_proof(v1::GetConsistencyProofRequest {
                first_size: 2,
                second_size: 1,
            })
            .await
            .map(drop),
            Code::OutOfRange,
        ),
        (
            log.get_consistency_proof(v1::GetConsistencyProofRequest {
                first_size: 0,
                second_size: 1,
            })
            .await
            .map(drop),
            Code::InvalidArgument,
        ),
        (
            log.get_consistency_proof(v1::GetConsistencyProofRequest {
                first_size: 1,
                second_size: size + 5,
            })
            .await
            .map(drop),
            Code::OutOfRange,
        ),
        (
            log.get_entries(v1::GetEntriesRequest {
                start: 0,
                end: size + 1,
            })
            .await
            .map(drop),
            Code::OutOfRange,
        ),
        (
            log.get_entries(v1::GetEntriesRequest { start: 1, end: 1 })
                .await
                .map(drop),
            Code::OutOfRange,
        ),
        (
            log.get_receipt(v1::GetReceiptRequest { index: size })
                .await
                .map(drop),
            Code::OutOfRange,
        ),
    ];
    for (index, (outcome, code)) in cases.into_iter().enumerate() {
        assert_eq!(
            outcome.map_err(|status| status.code()),
            Err(code),
            "case {index}"
        );
    }
    // The server is fine afterwards.
    log.get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .unwrap();
}

// Multi-threaded: the test blocks on the CLI process while the in-process server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_monitors_the_log_and_verifies_receipts_offline() {
    let trust = TestTrust::start().await;
    let vkey = datatrust_cli::client::trust_info(&trust.channel)
        .await
        .unwrap()
        .log_vkey;
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("monitor.checkpoint");
    let log_url = format!("http://{}/log", trust.http_addr);
    let verify = |full: bool| {
        let mut command = Command::new(datatrust_binary());
        command
            .args([
                "log",
                "verify",
                "--server",
                &trust.grpc_url,
                "--vkey",
                &vkey,
                "--state",
            ])
            .arg(&state);
        if full {
            // No --log-url: the trust says where it serves its log (`trust info`).
            command.arg("--full");
        }
        command.output().unwrap()
    };
    assert_eq!(
        datatrust_cli::client::trust_info(&trust.channel)
            .await
            .unwrap()
            .log_url,
        log_url
    );
    let first = verify(false);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("first checkpoint seen"));
    // Grow past a full tile so --full checks a level-1 tile too.
    trust.register_many(Role::Member, 300).await;
    let second = verify(true);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        stdout.contains("consistent with the checkpoint seen before"),
        "{stdout}"
    );
    assert!(
        stdout.contains("recomputed the tree from 302 entries"),
        "{stdout}"
    );
    // Entries asked for past the end are clamped to the log (302 entries: 300 to 301).
    let entries = Command::new(datatrust_binary())
        .args([
            "log",
            "entries",
            "--server",
            &trust.grpc_url,
            "--start",
            "300",
            "--end",
            "100000",
        ])
        .output()
        .unwrap();
    assert!(
        entries.status.success(),
        "{}",
        String::from_utf8_lossy(&entries.stderr)
    );
    let listed = String::from_utf8_lossy(&entries.stdout);
    assert!(
        listed.contains("301") && !listed.contains("302"),
        "{listed}"
    );

    // A saved checkpoint from another history is an alarm, not a pass.
    let forked = datatrust_tlog::Checkpoint {
        origin: "trust.test".into(),
        size: 2,
        root: [9; 32],
    };
    let signer_key = datatrust_core::NoteSigner::parse(
        &std::fs::read_to_string(trust.data_dir.join("keys/log.key")).unwrap(),
    )
    .unwrap();
    std::fs::write(&state, forked.sign(&signer_key).unwrap().note).unwrap();
    let alarm = verify(false);
    assert!(!alarm.status.success());
    assert!(
        String::from_utf8_lossy(&alarm.stderr).contains("ALERT"),
        "{}",
        String::from_utf8_lossy(&alarm.stderr)
    );

    // Receipts: fetched once, verified offline with only the vkey.
    let receipt_path = work.path().join("entry.tlog-proof");
    let fetched = Command::new(datatrust_binary())
        .args([
            "log",
            "receipt",
            "--index",
            "5",
            "--server",
            &trust.grpc_url,
            "--out",
        ])
        .arg(&receipt_path)
        .output()
        .unwrap();
    assert!(fetched.status.success());
    let checked = Command::new(datatrust_binary())
        .args(["receipt", "verify", "--vkey", &vkey])
        .arg(&receipt_path)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(String::from_utf8_lossy(&checked.stdout).contains("verified: entry 5"));
    let text = std::fs::read_to_string(&receipt_path).unwrap();
    let mut receipt = Receipt::parse(&text).unwrap();
    receipt.entry = Some(b"datatrust/v1 principal-registered\ntime: 1\n".to_vec());
    std::fs::write(&receipt_path, receipt.to_text()).unwrap();
    let tampered = Command::new(datatrust_binary())
        .args(["receipt", "verify", "--vkey", &vkey])
        .arg(&receipt_path)
        .output()
        .unwrap();
    assert!(
        !tampered.status.success(),
        "a changed entry must not verify"
    );
}

#[tokio::test]
async fn a_tile_changed_on_disk_stops_the_start_naming_the_damage() {
    if datatrust_tests::skip_in_postgres_run(
        "a_tile_changed_on_disk_stops_the_start_naming_the_damage",
        "it is about the embedded store's files on disk",
    ) {
        return;
    }
    let trust = TestTrust::start().await;
    trust.register_many(Role::Licensee, 300).await;
    let data_dir = trust.data_dir.clone();
    let mut trust = trust;
    trust.stop().await;
    {
        let data_key = std::fs::read_to_string(data_dir.join("keys/data.key")).unwrap();
        let data_key: [u8; 32] = (0..32)
            .map(|at| u8::from_str_radix(&data_key[at * 2..at * 2 + 2], 16).unwrap())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let store = datatrust_store::SledStore::open(&data_dir.join("db"), data_key).unwrap();
        let log_store = store.log_store().unwrap();
        use datatrust_tlog::LogStore as _;
        let mut tile = log_store.tile(0, 0).unwrap().unwrap();
        tile[100] ^= 0x40;
        log_store.overwrite_tile_for_test(0, 0, &tile).unwrap();
    }
    // The start reads the log's first entry and recomputes the published root over the
    // stored tiles: a damaged tile stops it, naming the damage, rather than serving a log
    // that no longer hashes to what was published. (Reads that meet damage while serving
    // answer DATA_LOSS: `datatrust-tlog`'s sequencer tests.)
    let refused = TestTrust::try_open(&data_dir).await.err().expect("refused");
    assert!(
        refused.contains("does not match the level above"),
        "{refused}"
    );
}

// Multi-threaded: the test reads the CLI's output while the in-process server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_closing_the_pipe_early_does_not_crash_the_cli() {
    use std::io::Read as _;
    let trust = TestTrust::start().await;
    trust.register_many(Role::Licensee, 700).await;
    // Hundreds of kilobytes of entries, far more than a pipe holds: the CLI is still writing
    // when the reader goes away after one byte, as `| head -c 1` would.
    let mut child = Command::new(datatrust_binary())
        .args([
            "log",
            "entries",
            "--start",
            "0",
            "--end",
            "700",
            "--server",
            &trust.grpc_url,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        output.status.code(),
        Some(141),
        "exits as a process stopped by SIGPIPE would"
    );
}
