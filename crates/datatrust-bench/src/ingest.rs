//! `datatrust-bench ingest`: the telemetry load generator. It starts the real server on
//! 127.0.0.1:0 with a fresh data directory and drives it over gRPC, client included in the
//! same 2 cores, then prints:
//!
//! 1. durable ingest, events per second (every batch acknowledged only once flushed), with
//!    `--collectors` concurrent upload streams of `--batch`-event batches of ~200-byte events;
//! 2. one member's export (every event with `--collectors 1`), read and discarded as it
//!    arrives, with the server's resident memory before and at its peak;
//! 3. baseline A: the same messages through a no-op streaming RPC on loopback (acknowledged
//!    without storing), and the ratio;
//! 4. release building and streaming: every member consents, one license covers the data,
//!    the release is built and streamed in full; records per second and the server's
//!    resident memory before and after streaming;
//! 5. the server's peak memory (VmHWM) after ingest, after the build and at the end: of the
//!    `datatrust serve` process with `--nodes`, else of this process (server and client);
//! 6. baseline B, last, so that its memory is in none of the figures above: sled batched
//!    insert + flush of the same encoded batches (or PostgreSQL inserts), and the ratio.

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Instant;

use anyhow::Context as _;
use datatrust_core::NoteSigner;
use datatrust_core::governance::approval_message;
use datatrust_proto::v1;
use datatrust_proto::v1::ingest_service_server::{IngestService, IngestServiceServer};
use datatrust_server::ServeOptions;
use prost::Message as _;
use serde_json::json;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use crate::BenchCommand;
use datatrust_cli::client::{self, SignedIn};

pub async fn run(command: BenchCommand, json_output: bool) -> anyhow::Result<()> {
    let BenchCommand::Ingest {
        events,
        collectors,
        batch,
        dir,
        database,
        nodes,
        cache_mb,
    } = command
    else {
        unreachable!("dispatched by kind");
    };
    anyhow::ensure!(
        events > 0 && collectors > 0 && (1..=10_000).contains(&batch),
        "--events, --collectors > 0; --batch 1 to 10000"
    );
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; figures mean little. Use cargo run --release -p datatrust-bench -- ingest"
        );
    }
    let temporary = tempfile::tempdir_in(dir.unwrap_or_else(std::env::temp_dir))?;
    let root: PathBuf = temporary.path().to_path_buf();

    if let Some(megabytes) = cache_mb {
        datatrust_store::set_cache_capacity(megabytes.saturating_mul(1024 * 1024));
    }
    // The real server, on loopback: in this process, or as `--nodes` processes.
    let options = ServeOptions {
        max_message_bytes: 16 * 1024 * 1024,
        ..ServeOptions::default()
    };
    let cache_flag = cache_mb.map(|megabytes| megabytes.to_string());
    let mut flags = vec!["--max-message-bytes", "16777216"];
    if let Some(megabytes) = &cache_flag {
        flags.extend(["--cache-mb", megabytes.as_str()]);
    }
    let (running, database) =
        crate::server::start_trust(&root.join("trust"), options, &flags, database, nodes).await?;
    let channel = running.channel.clone();
    let trustee = running.trustee.clone();
    let mut node_channels = vec![channel.clone()];
    for url in &running.urls[1..] {
        node_channels.push(client::connect(url, None).await?);
    }

    // Members and collectors, one pair per stream; terms that one trustee can ratify.
    let terms = include_str!("../../../terms/example-agreement.toml")
        .replace("trustee_quorum = 2", "trustee_quorum = 1")
        .replace("member_quorum_percent = 20", "member_quorum_percent = 0");
    let mut pairs = Vec::new();
    for index in 0..collectors {
        let member_key = NoteSigner::new("bench", rand::random())?;
        let collector_key = NoteSigner::new("bench", rand::random())?;
        for (key, role) in [
            (&member_key, v1::Role::Member),
            (&collector_key, v1::Role::Collector),
        ] {
            trustee
                .principals()
                .register_principal(v1::RegisterPrincipalRequest {
                    public_key: key.public_key().as_bytes().to_vec(),
                    role: role.into(),
                    display_name: format!("bench {index}"),
                    ..Default::default()
                })
                .await?;
        }
        // Each pair on a node of its own turn.
        let node = &node_channels[index % node_channels.len()];
        let member = client::sign_in(node, &member_key).await?;
        member
            .members()
            .authorize_collector(v1::AuthorizeCollectorRequest {
                collector_public_key: collector_key.public_key().as_bytes().to_vec(),
            })
            .await?;
        let collector = client::sign_in(node, &collector_key).await?;
        pairs.push((member_key, member, collector));
    }

    // The same batches for every measurement: ~200-byte pointer events.
    let per_stream = events.div_ceil(collectors as u64);
    let batches_per_stream = per_stream.div_ceil(batch as u64);
    let now_ms = datatrust_server::now().0 * 1000;
    let make_batch = move |member: &NoteSigner, sequence: u64| {
        synthetic_batch(&member.public_key(), sequence, batch, now_ms)
    };
    let sample = make_batch(&pairs[0].0, 0);
    let event_bytes = sample.encoded_len() / batch;

    // 1. Durable ingest through the real server.
    let started = Instant::now();
    let ingested = upload_all(
        &pairs
            .iter()
            .map(|(key, _, collector)| (key.clone(), collector.clone()))
            .collect::<Vec<_>>(),
        batches_per_stream,
        batch,
        now_ms,
    )
    .await?;
    let ingest_seconds = started.elapsed().as_secs_f64();
    let ingest_rate = ingested as f64 / ingest_seconds;
    let ingest_peak_mib: Vec<u64> = running
        .peak_resident_kib()
        .iter()
        .map(|kib| kib / 1024)
        .collect();
    eprintln!(
        "ingested {ingested} events in {ingest_seconds:.1} s (peak memory so far {ingest_peak_mib:?} MiB); exporting the first member's data"
    );

    // The first member's export, read and discarded as it arrives: the server's memory
    // must not grow with the export (run with --collectors 1 to export every event).
    let export_rss_before = running.resident_kib();
    let started = Instant::now();
    let mut export_stream = pairs[0]
        .1
        .member_data()
        .export_my_data(v1::ExportMyDataRequest {})
        .await?
        .into_inner();
    let (mut export_bytes, mut export_lines, mut export_peak) = (0u64, 0u64, export_rss_before);
    while let Some(piece) = export_stream.message().await? {
        export_bytes += piece.json_lines.len() as u64;
        export_lines += piece
            .json_lines
            .iter()
            .filter(|byte| **byte == b'\n')
            .count() as u64;
        if export_bytes / (16 << 20) != (export_bytes - piece.json_lines.len() as u64) / (16 << 20)
        {
            export_peak = export_peak.max(running.resident_kib());
        }
    }
    let export_seconds = started.elapsed().as_secs_f64();
    export_peak = export_peak.max(running.resident_kib());
    eprintln!(
        "exported {export_lines} events ({export_bytes} bytes) in {export_seconds:.1} s; measuring the baselines"
    );

    // 2. Baseline A: the same messages through a no-op streaming RPC.
    let noop_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let noop_url = format!("http://{}", noop_listener.local_addr()?);
    let noop_server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                IngestServiceServer::new(NoopIngest).max_decoding_message_size(16 * 1024 * 1024),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
                noop_listener,
            )),
    );
    let noop_channel = client::connect(&noop_url, None).await?;
    let started = Instant::now();
    let noop_count = upload_noop(
        &noop_channel,
        &pairs
            .iter()
            .map(|(key, _, _)| key.clone())
            .collect::<Vec<_>>(),
        batches_per_stream,
        batch,
        now_ms,
    )
    .await?;
    let noop_rate = noop_count as f64 / started.elapsed().as_secs_f64();
    noop_server.abort();

    eprintln!("no-op baseline done; building the release");

    // 4. Releases: every member consents; one license; build and stream.
    // Every member votes, so the outcome is settled and the vote may close at once.
    let voters: Vec<_> = pairs
        .iter()
        .map(|(member_key, member, _)| (member_key, member))
        .collect();
    let hash = client::ratify(
        &trustee,
        &terms,
        &voters,
        &[(&running.trustee_key, &trustee)],
    )
    .await?;
    let bench_origin = trustee.origin.to_string();
    for (_, member, _) in &pairs {
        member
            .consents()
            .set_consent(v1::SetConsentRequest {
                purpose: "computer-use-agent-training".into(),
                granted: true,
            })
            .await?;
    }
    let licensee_key = NoteSigner::new("bench", rand::random())?;
    trustee
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: licensee_key.public_key().as_bytes().to_vec(),
            role: v1::Role::Licensee.into(),
            display_name: "bench licensee".into(),
            ..Default::default()
        })
        .await?;
    let licensee = client::sign_in(&channel, &licensee_key).await?;
    let now = datatrust_server::now().0;
    let request = licensee
        .licenses()
        .request_license(v1::RequestLicenseRequest {
            purpose: "computer-use-agent-training".into(),
            categories: vec!["pointer".into()],
            data_from: now - 2 * 86_400,
            data_to: now + 86_400,
            model_family: "bench".into(),
            max_training_runs: 1,
            duration_days: 1,
        })
        .await?
        .into_inner()
        .request
        .unwrap_or_default();
    let license = trustee
        .licenses()
        .approve_license_request(v1::ApproveLicenseRequestRequest {
            request_id: request.id.clone(),
            signature: running
                .trustee_key
                .sign(&approval_message(&bench_origin, &request.id, &hash))
                .to_vec(),
        })
        .await?
        .into_inner()
        .license
        .context("one approval issues the license under these terms")?;
    let started = Instant::now();
    // Built in the background, polled until ready: a build of millions of records can
    // outlast any one request.
    let release = licensee
        .build_release(&license.id, std::time::Duration::from_millis(100), |_| {})
        .await?;
    let build_seconds = started.elapsed().as_secs_f64();
    let build_peak_mib: Vec<u64> = running
        .peak_resident_kib()
        .iter()
        .map(|kib| kib / 1024)
        .collect();
    eprintln!(
        "release built in {build_seconds:.1} s (peak memory so far {build_peak_mib:?} MiB); streaming it"
    );
    let rss_before = running.resident_kib();
    let started = Instant::now();
    let mut stream = licensee
        .releases()
        .stream_release(v1::StreamReleaseRequest {
            release_id: release.id.clone(),
            from: 0,
        })
        .await?
        .into_inner();
    let mut streamed = 0u64;
    let mut peak = rss_before;
    while let Some(batch) = stream.message().await? {
        let before = streamed;
        streamed += batch.records.len() as u64;
        if streamed / 100_000 != before / 100_000 {
            peak = peak.max(running.resident_kib());
        }
    }
    let stream_rate = streamed as f64 / started.elapsed().as_secs_f64();
    let rss_after = running.resident_kib();
    let running_in_process = running.in_process();
    let whose = if running_in_process {
        "the bench's process, server and client"
    } else {
        "the first server's process"
    };
    let peak_mib: Vec<u64> = running
        .peak_resident_kib()
        .iter()
        .map(|kib| kib / 1024)
        .collect();
    running.stop().await;

    // 3. Baseline B, last, so that the raw database's memory is not counted in the trust's
    //    figures above when the server runs in this process.
    eprintln!("measuring the raw baseline");
    // 3. Baseline B: sled batched insert + flush (or a PostgreSQL transaction) of the same
    //    encoded batches, one at a time.
    let members: Vec<NoteSigner> = pairs.iter().map(|(key, _, _)| key.clone()).collect();
    let raw_rate = match &database {
        Some((database, schema)) => {
            let (database, schema) = (database.clone(), format!("{schema}_raw"));
            tokio::task::spawn_blocking(move || {
                postgres_baseline(
                    &database,
                    &schema,
                    &members,
                    batches_per_stream,
                    batch,
                    now_ms,
                )
            })
            .await??
        }
        None => sled_baseline(
            &root.join("raw"),
            &members,
            batches_per_stream,
            batch,
            now_ms,
        )?,
    };
    let raw_name = if database.is_some() {
        "PostgreSQL insert + commit:  "
    } else {
        "sled batch + flush baseline: "
    };

    if json_output {
        println!(
            "{}",
            json!({
                "events": ingested, "event_bytes": event_bytes, "collectors": collectors, "batch": batch,
                "durable_ingest_events_per_second": ingest_rate.round(),
                "noop_stream_events_per_second": noop_rate.round(), "ratio_to_noop": ingest_rate / noop_rate,
                "backend": if database.is_some() { "postgresql" } else { "sled" },
                "nodes": peak_mib.len(), "peak_rss_mib_per_node": peak_mib,
                "peak_rss_mib_after_ingest": ingest_peak_mib, "peak_rss_mib_after_build": build_peak_mib,
                "server_in_process": running_in_process,
                "raw_events_per_second": raw_rate.round(), "ratio_to_raw": ingest_rate / raw_rate,
                "release_records": release.records, "release_build_seconds": build_seconds,
                "release_stream_records_per_second": stream_rate.round(),
                "resident_kib_before_stream": rss_before, "resident_kib_peak_stream": peak, "resident_kib_after_stream": rss_after,
                "export_events": export_lines, "export_bytes": export_bytes, "export_seconds": export_seconds,
                "resident_kib_before_export": export_rss_before, "resident_kib_peak_export": export_peak,
            })
        );
    } else {
        println!(
            "datatrust-bench ingest: {ingested} events of ~{event_bytes} bytes, {collectors} collectors, batches of {batch}, disk at {}",
            root.display()
        );
        println!(
            "  durable ingest (real server):  {ingest_rate:>12.0} events/s  ({ingest_seconds:.2} s)"
        );
        println!(
            "  no-op streaming RPC baseline:  {noop_rate:>12.0} events/s  ratio {:.2}",
            ingest_rate / noop_rate
        );
        println!(
            "  {raw_name}  {raw_rate:>12.0} events/s  ratio {:.2}",
            ingest_rate / raw_rate
        );
        println!(
            "  peak memory per node (the nodes' processes, or the bench's when the server runs in it): {peak_mib:?} MiB; after ingest {ingest_peak_mib:?}, after the build {build_peak_mib:?}"
        );
        println!(
            "  release: {} records built in {build_seconds:.2} s; streamed at {stream_rate:.0} records/s",
            release.records
        );
        println!(
            "  resident memory ({whose}): {rss_before} KiB before streaming, peak {peak} KiB, {rss_after} KiB after"
        );
        println!(
            "  export of one member: {export_lines} events, {export_bytes} bytes in {export_seconds:.2} s; resident memory ({whose}) {export_rss_before} KiB before, peak {export_peak} KiB"
        );
    }
    Ok(())
}

/// Baseline B on sled: each encoded batch inserted and flushed, one at a time. The
/// database is removed afterwards, so that its cache does not count in the release's
/// memory figures.
fn sled_baseline(
    path: &std::path::Path,
    members: &[NoteSigner],
    batches: u64,
    batch: usize,
    now_ms: i64,
) -> anyhow::Result<f64> {
    let raw = sled::Config::new()
        .path(path)
        .flush_every_ms(Some(500))
        .open()?;
    let tree = raw.open_tree("raw")?;
    let started = Instant::now();
    let mut raw_count = 0u64;
    for (stream, member) in members.iter().enumerate() {
        for sequence in 0..batches {
            let encoded =
                synthetic_batch(&member.public_key(), sequence, batch, now_ms).encode_to_vec();
            let mut writes = sled::Batch::default();
            let key = [(stream as u64).to_be_bytes(), sequence.to_be_bytes()].concat();
            writes.insert(key, encoded);
            tree.apply_batch(writes)?;
            raw.flush()?;
            raw_count += batch as u64;
        }
    }
    let rate = raw_count as f64 / started.elapsed().as_secs_f64();
    drop(tree);
    drop(raw);
    std::fs::remove_dir_all(path)?;
    Ok(rate)
}

/// Baseline B on PostgreSQL: each encoded batch inserted as one row and committed, one at a
/// time, in a schema of its own (dropped afterwards).
fn postgres_baseline(
    config: &str,
    schema: &str,
    members: &[NoteSigner],
    batches: u64,
    batch: usize,
    now_ms: i64,
) -> anyhow::Result<f64> {
    let mut client = postgres::Client::connect(config, postgres::NoTls)?;
    client.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.raw (key BYTEA PRIMARY KEY, bytes BYTEA NOT NULL);
         ALTER TABLE {schema}.raw ALTER COLUMN bytes SET STORAGE EXTERNAL;"
    ))?;
    let insert = client.prepare(&format!("INSERT INTO {schema}.raw VALUES ($1, $2)"))?;
    let started = Instant::now();
    let mut raw_count = 0u64;
    for (stream, member) in members.iter().enumerate() {
        for sequence in 0..batches {
            let encoded =
                synthetic_batch(&member.public_key(), sequence, batch, now_ms).encode_to_vec();
            let key = [(stream as u64).to_be_bytes(), sequence.to_be_bytes()].concat();
            // Autocommit: one durable transaction per batch.
            client.execute(&insert, &[&key, &encoded])?;
            raw_count += batch as u64;
        }
    }
    let rate = raw_count as f64 / started.elapsed().as_secs_f64();
    client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))?;
    Ok(rate)
}

/// One batch of ~200-byte pointer events, made on demand so that memory stays flat however
/// many events are sent.
fn synthetic_batch(
    member: &datatrust_core::PublicKey,
    sequence: u64,
    batch: usize,
    now_ms: i64,
) -> v1::UploadRequest {
    v1::UploadRequest {
        member_public_key: member.as_bytes().to_vec(),
        device_id: "bench-device".into(),
        sequence,
        events: (0..batch)
            .map(|offset| v1::Event {
                time_ms: now_ms - (sequence as i64 * batch as i64 + offset as i64) % 86_400_000,
                application: format!("{:-<170}", "com.example.office-suite.spreadsheet"),
                kind: Some(v1::event::Kind::Pointer(v1::PointerMove {
                    x: offset as i32 % 1920,
                    y: offset as i32 % 1080,
                })),
            })
            .collect(),
    }
}

async fn upload_all(
    pairs: &[(NoteSigner, SignedIn)],
    batches: u64,
    batch: usize,
    now_ms: i64,
) -> anyhow::Result<u64> {
    let mut tasks = Vec::new();
    for (member, collector) in pairs {
        let member = member.public_key();
        let requests = tokio_stream::iter(
            (0..batches).map(move |sequence| synthetic_batch(&member, sequence, batch, now_ms)),
        );
        let collector = collector.clone();
        tasks.push(tokio::spawn(async move {
            let mut responses = collector.ingest().upload(requests).await?.into_inner();
            let mut stored = 0u64;
            while let Some(answer) = responses.message().await? {
                stored += u64::from(answer.stored_events);
            }
            Ok::<u64, anyhow::Error>(stored)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total)
}

async fn upload_noop(
    channel: &tonic::transport::Channel,
    members: &[NoteSigner],
    batches: u64,
    batch: usize,
    now_ms: i64,
) -> anyhow::Result<u64> {
    let mut tasks = Vec::new();
    for member in members {
        let member = member.public_key();
        let requests = tokio_stream::iter(
            (0..batches).map(move |sequence| synthetic_batch(&member, sequence, batch, now_ms)),
        );
        let mut client = v1::ingest_service_client::IngestServiceClient::new(channel.clone())
            .max_decoding_message_size(16 * 1024 * 1024);
        tasks.push(tokio::spawn(async move {
            let mut responses = client.upload(requests).await?.into_inner();
            let mut acknowledged = 0u64;
            while let Some(answer) = responses.message().await? {
                acknowledged += u64::from(answer.stored_events);
            }
            Ok::<u64, anyhow::Error>(acknowledged)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total)
}

/// Acknowledges every batch without looking at it: the transport's own cost.
struct NoopIngest;

#[tonic::async_trait]
impl IngestService for NoopIngest {
    type UploadStream = Pin<Box<dyn Stream<Item = Result<v1::UploadResponse, Status>> + Send>>;

    async fn upload(
        &self,
        request: Request<Streaming<v1::UploadRequest>>,
    ) -> Result<Response<Self::UploadStream>, Status> {
        let stream = request.into_inner().map(|batch| {
            batch.map(|batch| v1::UploadResponse {
                sequence: batch.sequence,
                outcome: "stored".into(),
                stored_events: batch.events.len() as u32,
                redacted_events: 0,
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn upload_screenshot(
        &self,
        _request: Request<v1::UploadScreenshotRequest>,
    ) -> Result<Response<v1::UploadScreenshotResponse>, Status> {
        Err(Status::unimplemented(
            "the no-op baseline measures batches only",
        ))
    }
}
