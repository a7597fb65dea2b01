//! `datatrust-bench state`: trust-state changes and authenticated reads through the real
//! server on loopback, client included on the same cores. It prints:
//!
//! 1. state changes per second and their latency (p50, p99): `--members` signed-in members
//!    at once, each granting consent once, then authorising and revoking a collector
//!    `--changes` times, one change at a time; every change is logged and durable before
//!    its answer;
//! 2. the raw baseline: sled batch + flush of the same bytes (each change's log entry and
//!    its state writes), in batches of `--members` changes, and the ratio (with
//!    `--database`: the same rows inserted into PostgreSQL, a transaction per batch; with
//!    `--nodes`, the trust runs as that many `datatrust serve` processes on the database,
//!    and each one's peak memory is printed);
//! 3. authenticated cheap reads (`WhoAmI`) per second from the same members, against a
//!    no-op unary RPC (gRPC health `Check` on a bare tonic server) over the same number of
//!    connections, and the ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datatrust_cli::client::{self, SignedIn};
use datatrust_core::log_entry::LogEntry;
use datatrust_core::{CollectorAuthorization, DisplayName, NoteSigner, Principal, Role};
use datatrust_proto::v1;
use datatrust_server::ServeOptions;
use serde_json::json;
use tonic::transport::Channel;

use crate::BenchCommand;

/// Connections the members' calls are spread over (a real trust's members each have their
/// own; one process here cannot usefully drive more).
const CONNECTIONS: usize = 16;

pub async fn run(command: BenchCommand, json_output: bool) -> anyhow::Result<()> {
    let BenchCommand::State {
        members,
        changes,
        reads,
        dir,
        database,
        nodes,
    } = command
    else {
        unreachable!("dispatched by kind");
    };
    anyhow::ensure!(
        members > 0 && (1..=100).contains(&changes) && reads > 0,
        "--members and --reads must be positive, --changes 1 to 100"
    );
    let temporary = tempfile::tempdir_in(dir.unwrap_or_else(std::env::temp_dir))?;
    let root = temporary.path().to_path_buf();
    // Every member signs in from this one address: lift the per-source limit on callers not
    // yet signed in, which would otherwise (rightly) slow a single source down.
    let options = ServeOptions {
        anonymous_per_source_per_second: 1_000_000,
        ..ServeOptions::default()
    };
    let (running, database) =
        crate::server::start_trust(&root.join("trust"), options, &[], database, nodes).await?;
    let trustee = running.trustee.clone();
    // The connections, spread over the nodes in turn.
    let mut channels = vec![running.channel.clone()];
    while channels.len() < CONNECTIONS.min(members).max(running.urls.len()) {
        let url = &running.urls[channels.len() % running.urls.len()];
        channels.push(client::connect(url, None).await?);
    }

    // The members, a collector, and terms in force (one trustee may countersign here).
    let collector = NoteSigner::new("bench", rand::random())?;
    register(&trustee, &collector, v1::Role::Collector, "bench collector").await?;
    let mut keys = Vec::with_capacity(members);
    for index in 0..members {
        let key = NoteSigner::new("bench", rand::random())?;
        register(&trustee, &key, v1::Role::Member, &format!("member {index}")).await?;
        keys.push(key);
    }
    let mut sessions = Vec::with_capacity(members);
    for (index, key) in keys.iter().enumerate() {
        sessions.push(client::sign_in(&channels[index % channels.len()], key).await?);
    }
    let terms = include_str!("../../../terms/example-agreement.toml")
        .replace("trustee_quorum = 2", "trustee_quorum = 1");
    let voters: Vec<_> = keys.iter().zip(&sessions).collect();
    client::ratify(
        &trustee,
        &terms,
        &voters,
        &[(&running.trustee_key, &trustee)],
    )
    .await?;
    eprintln!("{members} members signed in, terms in force; changing state");

    // 1. State changes, every member at once.
    let collector_key = collector.public_key().as_bytes().to_vec();
    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .iter()
        .cloned()
        .map(|session| {
            let collector_key = collector_key.clone();
            tokio::spawn(async move { change_state(session, collector_key, changes).await })
        })
        .collect();
    let mut latencies = Vec::with_capacity(members * (changes + 1));
    for task in tasks {
        latencies.extend(task.await??);
    }
    let change_seconds = started.elapsed().as_secs_f64();
    let change_count = latencies.len();
    let change_rate = change_count as f64 / change_seconds;
    latencies.sort_unstable();
    let (p50, p99) = (percentile(&latencies, 50), percentile(&latencies, 99));

    // 2. The raw baseline: the same bytes into sled (or PostgreSQL), a batch per `members`
    //    changes, each batch flushed (committed).
    let raw = RawChanges::new(&keys, &collector)?;
    let raw_rate = match &database {
        None => raw.sled(&root.join("raw"), change_count, members)?,
        Some((database, schema)) => {
            let (database, schema) = (database.clone(), format!("{schema}_raw"));
            tokio::task::spawn_blocking(move || {
                raw.postgres(&database, &schema, change_count, members)
            })
            .await??
        }
    };
    let raw_name = if database.is_some() {
        "PostgreSQL transaction"
    } else {
        "sled batch"
    };

    // 3. Authenticated cheap reads, and the no-op unary baseline.
    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .iter()
        .cloned()
        .map(|session| {
            tokio::spawn(async move {
                for _ in 0..reads {
                    session.auth().who_am_i(v1::WhoAmIRequest {}).await?;
                }
                Ok::<_, tonic::Status>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let read_rate = (members * reads) as f64 / started.elapsed().as_secs_f64();
    let noop_rate = noop_unary_rate(members, reads, channels.len()).await?;
    let peak_kib = running.peak_resident_kib();
    running.stop().await;
    let node_count = peak_kib.len();
    let peak_mib: Vec<u64> = peak_kib.iter().map(|kib| kib / 1024).collect();

    if json_output {
        println!(
            "{}",
            json!({
                "members": members, "changes": change_count, "nodes": node_count,
                "backend": if database.is_some() { "postgresql" } else { "sled" },
                "peak_rss_mib_per_node": peak_mib,
                "state_changes_per_second": change_rate.round(),
                "change_p50_ms": p50.as_secs_f64() * 1e3, "change_p99_ms": p99.as_secs_f64() * 1e3,
                "raw_changes_per_second": raw_rate.round(), "ratio_to_raw": change_rate / raw_rate,
                "authenticated_reads_per_second": read_rate.round(),
                "noop_unary_per_second": noop_rate.round(), "ratio_to_noop": read_rate / noop_rate,
            })
        );
    } else {
        println!(
            "state changes: {change_count} from {members} concurrent members on {node_count} node(s) in {change_seconds:.2} s: {change_rate:.0} changes/s, p50 {:.1} ms, p99 {:.1} ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        println!(
            "raw baseline ({raw_name} of {members} changes, durable): {raw_rate:.0} changes/s; ratio {:.2}",
            change_rate / raw_rate
        );
        println!("peak memory per node: {peak_mib:?} MiB");
        println!(
            "authenticated reads (WhoAmI): {read_rate:.0}/s; no-op unary RPC: {noop_rate:.0}/s; ratio {:.2}",
            read_rate / noop_rate
        );
    }
    Ok(())
}

async fn register(
    trustee: &SignedIn,
    key: &NoteSigner,
    role: v1::Role,
    name: &str,
) -> anyhow::Result<()> {
    trustee
        .principals()
        .register_principal(v1::RegisterPrincipalRequest {
            public_key: key.public_key().as_bytes().to_vec(),
            role: role.into(),
            display_name: name.into(),
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// One member's changes, one at a time: consent, then the collector authorised and revoked
/// in turn. Each change's time from request to durable answer.
async fn change_state(
    session: SignedIn,
    collector: Vec<u8>,
    changes: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(changes + 1);
    let started = Instant::now();
    let logged = session
        .consents()
        .set_consent(v1::SetConsentRequest {
            purpose: "computer-use-agent-training".into(),
            granted: true,
        })
        .await?
        .into_inner()
        .log_index;
    anyhow::ensure!(logged.is_some(), "a consent was not logged");
    latencies.push(started.elapsed());
    for change in 0..changes {
        let started = Instant::now();
        let logged = if change % 2 == 0 {
            session
                .members()
                .authorize_collector(v1::AuthorizeCollectorRequest {
                    collector_public_key: collector.clone(),
                })
                .await?
                .into_inner()
                .log_index
        } else {
            session
                .members()
                .revoke_collector(v1::RevokeCollectorRequest {
                    collector_public_key: collector.clone(),
                })
                .await?
                .into_inner()
                .log_index
        };
        anyhow::ensure!(logged.is_some(), "a change was not logged");
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) * percent / 100).min(sorted.len() - 1)]
}

/// What the measured changes store, as plain rows: each change's log entry and its two
/// authorisation rows.
struct RawChanges {
    /// Per change (cycling over the members): the log entry and the authorisation row.
    changes: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
}

impl RawChanges {
    fn new(keys: &[NoteSigner], collector: &NoteSigner) -> anyhow::Result<RawChanges> {
        let name = DisplayName::parse("bench", "name")?;
        let principal = |key: &NoteSigner, role| {
            Principal::new_active(
                key.public_key(),
                role,
                name.clone(),
                datatrust_server::now(),
                [0; 32],
            )
        };
        let collector = principal(collector, Role::Collector);
        let mut changes = Vec::with_capacity(keys.len());
        for key in keys {
            let member = principal(key, Role::Member);
            let now = datatrust_server::now();
            let entry = LogEntry::collector_authorized(&member, &collector, now).encode();
            let row = serde_json::to_vec(&CollectorAuthorization {
                member: member.public_key,
                collector: collector.public_key,
                authorized_at: now,
            })?;
            changes.push((member.public_key.as_bytes().to_vec(), entry, row));
        }
        Ok(RawChanges { changes })
    }

    /// Change `index`: its member key, log entry and row.
    fn change(&self, index: usize) -> &(Vec<u8>, Vec<u8>, Vec<u8>) {
        &self.changes[index % self.changes.len()]
    }

    /// sled batch + flush, `batch` changes a flush.
    fn sled(&self, path: &std::path::Path, count: usize, batch: usize) -> anyhow::Result<f64> {
        let database = sled::Config::new()
            .path(path)
            .flush_every_ms(Some(500))
            .open()?;
        let (log, rows) = (database.open_tree("log")?, database.open_tree("rows")?);
        let started = Instant::now();
        let mut written = 0;
        while written < count {
            let (mut entries, mut writes) = (sled::Batch::default(), sled::Batch::default());
            for index in written..written + batch.min(count - written) {
                let (member, entry, row) = self.change(index);
                entries.insert(&(index as u64).to_be_bytes(), entry.clone());
                let key = [member.as_slice(), &(index as u64).to_be_bytes()].concat();
                writes.insert([b"m".as_slice(), &key].concat(), row.clone());
                writes.insert([b"c".as_slice(), &key].concat(), row.clone());
            }
            log.apply_batch(entries)?;
            rows.apply_batch(writes)?;
            database.flush()?;
            written += batch.min(count - written);
        }
        Ok(count as f64 / started.elapsed().as_secs_f64())
    }

    /// The same rows inserted into PostgreSQL directly: one transaction of `batch` changes
    /// (entries and rows, each table one array insert) per commit, in a schema of its own.
    fn postgres(
        &self,
        config: &str,
        schema: &str,
        count: usize,
        batch: usize,
    ) -> anyhow::Result<f64> {
        let mut client = postgres::Client::connect(config, postgres::NoTls)?;
        client.batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.log (idx BIGINT PRIMARY KEY, entry BYTEA NOT NULL);
             CREATE TABLE {schema}.rows (key BYTEA PRIMARY KEY, value BYTEA NOT NULL);"
        ))?;
        let started = Instant::now();
        let mut written = 0;
        while written < count {
            let range = written..written + batch.min(count - written);
            let (mut indices, mut entries) = (Vec::new(), Vec::new());
            let (mut keys, mut values) = (Vec::new(), Vec::new());
            for index in range.clone() {
                let (member, entry, row) = self.change(index);
                indices.push(index as i64);
                entries.push(entry.as_slice());
                let key = [member.as_slice(), &(index as u64).to_be_bytes()].concat();
                keys.push([b"m".as_slice(), &key].concat());
                keys.push([b"c".as_slice(), &key].concat());
                values.push(row.as_slice());
                values.push(row.as_slice());
            }
            let mut transaction = client.transaction()?;
            transaction.execute(
                &format!("INSERT INTO {schema}.log SELECT * FROM UNNEST($1::int8[], $2::bytea[])"),
                &[&indices, &entries],
            )?;
            transaction.execute(
                &format!(
                    "INSERT INTO {schema}.rows SELECT * FROM UNNEST($1::bytea[], $2::bytea[])"
                ),
                &[&keys, &values],
            )?;
            transaction.commit()?;
            written = range.end;
        }
        let rate = count as f64 / started.elapsed().as_secs_f64();
        client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))?;
        Ok(rate)
    }
}

/// The same number of calls over the same number of connections to a bare tonic server's
/// health `Check`: what a unary RPC costs on this machine with nothing behind it.
async fn noop_unary_rate(callers: usize, calls: usize, connections: usize) -> anyhow::Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (_reporter, service) = tonic_health::server::health_reporter();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut channels: Vec<Channel> = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(client::connect(&url, None).await?);
    }
    let channels = Arc::new(channels);
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let channel = channels[caller % channels.len()].clone();
            tokio::spawn(async move {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                for _ in 0..calls {
                    health
                        .check(tonic_health::pb::HealthCheckRequest {
                            service: String::new(),
                        })
                        .await?;
                }
                Ok::<_, tonic::Status>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let rate = (callers * calls) as f64 / started.elapsed().as_secs_f64();
    server.abort();
    Ok(rate)
}
