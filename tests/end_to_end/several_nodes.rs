//! Three `datatrust serve` nodes on one PostgreSQL database (issue 14): a token from one
//! node works on the others; members change their consents and a collector uploads their
//! telemetry through all three at once, while one node and then another are killed with
//! SIGKILL (their clients go on through the surviving nodes). Afterwards every acknowledged
//! change and upload is there, the log verifies in full, the replay check passes, no two
//! checkpoints of the same size served by any node differ, and an erasure through one node
//! is effective on the others at once.
//!
//! Needs `DATATRUST_TEST_POSTGRES`; says SKIPPED without it (CI requires it).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datatrust_cli::client;
use datatrust_core::NoteSigner;
use datatrust_proto::v1;
use datatrust_proto::v1::auth_service_client::AuthServiceClient;
use datatrust_proto::v1::consent_service_client::ConsentServiceClient;
use datatrust_proto::v1::ingest_service_client::IngestServiceClient;
use datatrust_proto::v1::member_data_service_client::MemberDataServiceClient;
use datatrust_tests::{EXAMPLE_TERMS, ServerProcess, datatrust_binary, new_signer};
use tonic::transport::Channel;

use super::postgres::{database, register};

const PURPOSE: &str = "computer-use-agent-training";
const MEMBERS: usize = 6;
const STEPS: usize = 24;

fn authorised<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a header value"),
    );
    request
}

/// The nodes' addresses as they come and go: `None` while a node is down.
/// A node's gRPC channel and HTTP address.
type Node = (Channel, SocketAddr);

#[derive(Clone, Default)]
struct Nodes {
    grpc: Arc<Mutex<Vec<Option<Node>>>>,
}

impl Nodes {
    fn set(&self, index: usize, node: Option<Node>) {
        let mut nodes = self.grpc.lock().unwrap();
        if nodes.len() <= index {
            nodes.resize(index + 1, None);
        }
        nodes[index] = node;
    }

    /// The live node at `turn` or after it.
    fn pick(&self, turn: usize) -> Channel {
        let nodes = self.grpc.lock().unwrap();
        (0..nodes.len())
            .find_map(|offset| nodes[(turn + offset) % nodes.len()].clone())
            .expect("a node is up")
            .0
    }

    fn http(&self) -> Vec<SocketAddr> {
        self.grpc
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|(_, http)| *http)
            .collect()
    }
}

async fn start(data_dir: &Path, arguments: &[&str]) -> (ServerProcess, Channel) {
    let server = ServerProcess::start(data_dir, arguments);
    let channel = client::connect(&server.grpc_url, None).await.unwrap();
    (server, channel)
}

/// Sets a member's consent through the nodes in turn until one acknowledges it (a node
/// killed mid-call answers nothing; the change is set again elsewhere, which is idempotent).
async fn set_consent(nodes: &Nodes, token: &str, granted: bool, turn: usize) {
    for attempt in 0..20 {
        let channel = nodes.pick(turn + attempt);
        let answer = ConsentServiceClient::new(channel)
            .set_consent(authorised(
                v1::SetConsentRequest {
                    purpose: PURPOSE.into(),
                    granted,
                },
                token,
            ))
            .await;
        match answer {
            Ok(_) => return,
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                panic!("refused: {status}")
            }
            Err(_) => tokio::task::yield_now().await,
        }
    }
    panic!("no node acknowledged a consent change");
}

/// Uploads one batch of `events` pointer events for `member` through the nodes in turn;
/// true once a node says it is stored (or a duplicate of a batch an earlier attempt stored).
async fn upload(nodes: &Nodes, token: &str, member: &NoteSigner, sequence: u64, turn: usize) {
    let now_ms = datatrust_server::now().0 * 1000;
    for attempt in 0..20 {
        let channel = nodes.pick(turn + attempt);
        let batch = v1::UploadRequest {
            member_public_key: member.public_key().as_bytes().to_vec(),
            device_id: "laptop".into(),
            sequence,
            events: (0..5)
                .map(|offset| v1::Event {
                    time_ms: now_ms - 60_000 + offset,
                    application: "editor".into(),
                    kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x: 1, y: 2 })),
                })
                .collect(),
        };
        let answer = IngestServiceClient::new(channel)
            .upload(authorised(tokio_stream::iter(vec![batch]), token))
            .await;
        let outcome = match answer {
            Ok(response) => response.into_inner().message().await,
            Err(status) => Err(status),
        };
        match outcome {
            Ok(Some(answer)) if answer.outcome == "stored" || answer.outcome == "duplicate" => {
                return;
            }
            Ok(other) => panic!("upload answered {other:?}"),
            Err(status) if status.code() == tonic::Code::PermissionDenied => {
                panic!("refused: {status}")
            }
            Err(_) => tokio::task::yield_now().await,
        }
    }
    panic!("no node stored a batch");
}

/// The checkpoint a node serves over HTTP, or `None` if it does not answer in full.
async fn checkpoint_of(http: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(http).await.ok()?;
        let request =
            format!("GET /log/checkpoint HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let response = String::from_utf8(response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// Runs a command to its end off the runtime's workers (the servers' clients stay served).
async fn run(command: &mut std::process::Command) -> std::process::Output {
    let mut command = std::mem::replace(command, std::process::Command::new("true"));
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

async fn events_held(channel: &Channel, token: &str) -> u64 {
    MemberDataServiceClient::new(channel.clone())
        .get_my_data_summary(authorised(v1::GetMyDataSummaryRequest {}, token))
        .await
        .unwrap()
        .into_inner()
        .counts
        .iter()
        .map(|count| count.count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_one_database_and_survive_kill_9() {
    if datatrust_tests::skip_in_postgres_run(
        "three_nodes_share_one_database_and_survive_kill_9",
        "it starts `datatrust serve` processes of its own and ran in the first run",
    ) {
        return;
    }
    let Some(database) = database() else {
        return;
    };
    let schema = format!("nodes_{:016x}", rand::random::<u64>());
    let work = tempfile::tempdir().unwrap();
    let directories: Vec<_> = (0..3)
        .map(|node| work.path().join(format!("node-{node}")))
        .collect();
    let arguments = ["--database", &database, "--database-schema", &schema];

    // The trust's seed (`admin init`): every node starts from a copy of it.
    let seed = work.path().join("seed");
    let init = run(std::process::Command::new(datatrust_binary())
        .args(["admin", "init", "--origin", "nodes.example", "--data-dir"])
        .arg(&seed))
    .await;
    assert!(
        init.status.success() && String::from_utf8_lossy(&init.stdout).contains("Created"),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let again = run(std::process::Command::new(datatrust_binary())
        .args(["admin", "init", "--data-dir"])
        .arg(&seed))
    .await;
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to do"),
        "init leaves a trust as it is"
    );
    for directory in &directories {
        datatrust_tests::copy_data_directory(&seed, directory);
    }
    let trustee_key =
        NoteSigner::parse(&std::fs::read_to_string(seed.join("initial-trustee.key")).unwrap())
            .unwrap();
    let nodes = Nodes::default();
    let mut servers: Vec<Option<ServerProcess>> = Vec::new();
    for (index, directory) in directories.iter().enumerate() {
        let (server, channel) = start(directory, &arguments).await;
        nodes.set(index, Some((channel, server.http_addr)));
        servers.push(Some(server));
    }
    let channel = |index: usize| nodes.grpc.lock().unwrap()[index].clone().unwrap().0;

    // Signed in on one node, the token works on another.
    let trustee = client::sign_in(&channel(0), &trustee_key).await.unwrap();
    let me = AuthServiceClient::new(channel(1))
        .who_am_i(authorised(v1::WhoAmIRequest {}, &trustee.token))
        .await
        .expect("a token from node 0 on node 1")
        .into_inner();
    assert_eq!(
        me.principal.unwrap().public_key,
        trustee_key.public_key().as_bytes().to_vec()
    );

    // Terms in force (ratified through node 2 by the first member), more members, and a
    // collector they authorise.
    let members: Vec<NoteSigner> = (0..MEMBERS).map(|_| new_signer()).collect();
    let collector_key = new_signer();
    register(&trustee, &members[0], v1::Role::Member).await;
    let first_member = client::sign_in(&channel(2), &members[0]).await.unwrap();
    let trustee_on_2 = client::sign_in(&channel(2), &trustee_key).await.unwrap();
    let terms = EXAMPLE_TERMS.replace("trustee_quorum = 2", "trustee_quorum = 1");
    client::ratify(
        &trustee_on_2,
        &terms,
        &[(&members[0], &first_member)],
        &[(&trustee_key, &trustee_on_2)],
    )
    .await
    .unwrap();
    for member in &members[1..] {
        register(&trustee, member, v1::Role::Member).await;
    }
    register(&trustee, &collector_key, v1::Role::Collector).await;
    let mut sessions = Vec::new();
    for (index, member) in members.iter().enumerate() {
        let session = client::sign_in(&channel(index % 3), member).await.unwrap();
        session
            .members()
            .authorize_collector(v1::AuthorizeCollectorRequest {
                collector_public_key: collector_key.public_key().as_bytes().to_vec(),
            })
            .await
            .unwrap();
        sessions.push(session);
    }
    let collector = client::sign_in(&channel(1), &collector_key).await.unwrap();

    // Every node's checkpoint, watched while the work runs: sizes never shrink on a node,
    // and no two nodes ever serve different checkpoints of one size.
    let (stop_watching, watching) = tokio::sync::watch::channel(false);
    let watcher = {
        let nodes = nodes.clone();
        let mut watching = watching.clone();
        tokio::spawn(async move {
            let mut seen = std::collections::HashMap::<u64, String>::new();
            let mut polls = 0u64;
            while !*watching.borrow() {
                for http in nodes.http() {
                    // A node killed mid-request answers nothing: skipped.
                    let Some(note) = checkpoint_of(http).await else {
                        continue;
                    };
                    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
                    if let Some(other) = seen.insert(size, note.clone()) {
                        assert_eq!(other, note, "two checkpoints of size {size}");
                    }
                    polls += 1;
                }
                tokio::select! {
                    _ = watching.changed() => {}
                    () = tokio::task::yield_now() => {}
                }
            }
            (seen.len(), polls)
        })
    };

    // The work: each member toggles her consent and has telemetry uploaded, each step
    // through another node; node 2 is killed a third of the way in, node 0 two thirds in.
    let (progress, progress_seen) = tokio::sync::watch::channel(0usize);
    let progress = Arc::new(progress);
    let mut workers = Vec::new();
    for (index, (member, session)) in members.iter().zip(&sessions).enumerate() {
        let (nodes, progress) = (nodes.clone(), Arc::clone(&progress));
        let (member, token, collector_token) = (
            member.clone(),
            session.token.clone(),
            collector.token.clone(),
        );
        workers.push(tokio::spawn(async move {
            for step in 0..STEPS {
                let turn = index + step;
                set_consent(&nodes, &token, step % 2 == 0, turn).await;
                upload(&nodes, &collector_token, &member, step as u64 + 1, turn + 1).await;
                progress.send_modify(|done| *done += 1);
            }
        }));
    }
    let total = MEMBERS * STEPS;
    let mut progress_seen = progress_seen;
    for (victim, after) in [(2usize, total / 3), (0, 2 * total / 3)] {
        progress_seen.wait_for(|done| *done >= after).await.unwrap();
        nodes.set(victim, None);
        let server = servers[victim].take().unwrap();
        server.signal("-KILL");
        let _ = server.wait(Duration::from_secs(10)).await;
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let _ = stop_watching.send(true);
    let (sizes_seen, polls) = watcher.await.unwrap();
    assert!(polls > 0 && sizes_seen > 1, "the watcher saw the log grow");

    // The killed nodes come back; every acknowledged change is there, on every node.
    for victim in [0usize, 2] {
        let (server, channel) = start(&directories[victim], &arguments).await;
        nodes.set(victim, Some((channel, server.http_addr)));
        servers[victim] = Some(server);
    }
    let last_granted = (STEPS - 1).is_multiple_of(2);
    for node in 0..3 {
        for session in &sessions {
            let consents = ConsentServiceClient::new(channel(node))
                .list_my_consents(authorised(v1::ListMyConsentsRequest {}, &session.token))
                .await
                .unwrap()
                .into_inner()
                .consents;
            let consent = consents.iter().find(|consent| consent.purpose == PURPOSE);
            assert_eq!(consent.map(|consent| consent.granted), Some(last_granted));
            assert_eq!(
                events_held(&channel(node), &session.token).await,
                5 * STEPS as u64,
                "every stored batch is there, on node {node}"
            );
        }
    }

    // The log verifies in full from every node's HTTP side.
    let vkey = client::trust_info(&channel(1)).await.unwrap().log_vkey;
    for (node, server) in servers.iter().enumerate() {
        let state = work.path().join(format!("monitor-{node}"));
        let grpc_url = server.as_ref().unwrap().grpc_url.clone();
        let verify = run(std::process::Command::new(datatrust_binary())
            .args(["log", "verify", "--server", &grpc_url, "--vkey", &vkey])
            .args(["--full", "--state"])
            .arg(&state))
        .await;
        assert!(
            verify.status.success(),
            "log verify --full on node {node}: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }

    // An erasure through node 1 is effective on nodes 0 and 2 at once: nothing held, and
    // the collector's uploads for her refused.
    let erased = MemberDataServiceClient::new(channel(1))
        .erase_my_data(authorised(
            v1::EraseMyDataRequest {
                confirm: "erase all my data".into(),
            },
            &sessions[0].token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(erased.events_erased, 5 * STEPS as u64);
    assert_eq!(events_held(&channel(0), &sessions[0].token).await, 0);
    let refused = IngestServiceClient::new(channel(2))
        .upload(authorised(
            tokio_stream::iter(vec![v1::UploadRequest {
                member_public_key: members[0].public_key().as_bytes().to_vec(),
                device_id: "laptop".into(),
                sequence: 1_000,
                events: vec![v1::Event {
                    time_ms: datatrust_server::now().0 * 1000 - 1_000,
                    application: "editor".into(),
                    kind: Some(v1::event::Kind::Pointer(v1::PointerMove { x: 1, y: 2 })),
                }],
            }]),
            &collector.token,
        ))
        .await;
    let refused = match refused {
        Ok(response) => response.into_inner().message().await.err(),
        Err(status) => Some(status),
    };
    assert!(
        refused
            .as_ref()
            .is_some_and(|status| status.code() == tonic::Code::PermissionDenied),
        "uploads for an erased member are refused on another node: {refused:?}"
    );

    // Stopped, the log replays to exactly the stored state.
    for server in servers.iter_mut() {
        let server = server.take().unwrap();
        server.signal("-TERM");
        assert!(server.wait(Duration::from_secs(20)).await.success());
    }
    let check = run(std::process::Command::new(datatrust_binary())
        .args(["admin", "check", "--data-dir"])
        .arg(&directories[1])
        .args(["--database", &database, "--database-schema", &schema]))
    .await;
    assert!(
        check.status.success(),
        "admin check: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
