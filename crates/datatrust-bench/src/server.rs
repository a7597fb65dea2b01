//! The real server on loopback, as `datatrust serve` runs it, for the load generators.

use std::path::Path;

use anyhow::Context as _;
use datatrust_cli::client::{self, SignedIn};
use datatrust_core::{NoteSigner, Origin};
use datatrust_server::ServeOptions;
use datatrust_tlog::SequencerOptions;
use tonic::transport::Channel;

pub struct Running {
    /// Every node's gRPC URL (one, unless `start_nodes` started several).
    pub urls: Vec<String>,
    pub channel: Channel,
    pub trustee_key: NoteSigner,
    pub trustee: SignedIn,
    nodes: Nodes,
}

enum Nodes {
    /// The server in this process.
    InProcess {
        stop: tokio::sync::oneshot::Sender<()>,
        server: tokio::task::JoinHandle<Result<(), datatrust_server::ServeError>>,
    },
    /// `datatrust serve` processes sharing one database.
    Processes(Vec<std::process::Child>),
}

/// A new trust in `directory`, served on 127.0.0.1:0, with its first trustee signed in.
/// `database`: PostgreSQL (connection, schema) instead of the embedded store.
pub async fn start(
    directory: &Path,
    options: ServeOptions,
    database: Option<(String, String)>,
) -> anyhow::Result<Running> {
    let origin = Origin::parse("bench.datatrust.localhost")?;
    let data_dir = directory.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || {
        datatrust_server::open_trust(
            &data_dir,
            None,
            &origin,
            std::time::Duration::from_secs(3600),
            SequencerOptions::default(),
            database
                .as_ref()
                .map(|(database, schema)| (database.as_str(), schema.as_str())),
        )
    })
    .await??;
    let trustee_key = NoteSigner::parse(&std::fs::read_to_string(
        opened.created_trustee_key.clone().context("a new trust")?,
    )?)?;
    let (state, directory) = (opened.state, opened.directory);
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", grpc.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let served = datatrust_server::serve(state, options, grpc, http, async {
            let _ = stopped.await;
        })
        .await;
        // The directory's lock, released after the final flush.
        drop(directory);
        served
    });
    let channel = client::connect(&url, None).await?;
    let trustee = client::sign_in(&channel, &trustee_key).await?;
    Ok(Running {
        urls: vec![url],
        channel,
        trustee_key,
        trustee,
        nodes: Nodes::InProcess { stop, server },
    })
}

/// The trust a load generator drives, in a fresh PostgreSQL schema when `database` is
/// given: in this process with `options`, or (`nodes`) as that many `datatrust serve`
/// processes given `flags` (the same settings, as flags). Also returns the database and
/// schema, for the raw baselines.
pub async fn start_trust(
    directory: &Path,
    options: ServeOptions,
    flags: &[&str],
    database: Option<String>,
    nodes: Option<usize>,
) -> anyhow::Result<(Running, Option<(String, String)>)> {
    let database = database.map(|database| {
        let schema = format!("bench_{:016x}", rand::random::<u64>());
        (database, schema)
    });
    let running = match (&database, nodes) {
        (Some((database, schema)), Some(nodes)) => {
            anyhow::ensure!((1..=8).contains(&nodes), "--nodes: 1 to 8");
            start_nodes(directory, Some((database, schema)), nodes, flags).await?
        }
        (None, Some(nodes)) => {
            anyhow::ensure!(
                nodes == 1,
                "--nodes: only 1 without --database (an embedded store is one process's)"
            );
            start_nodes(directory, None, 1, flags).await?
        }
        (database, None) => start(directory, options, database.clone()).await?,
    };
    Ok((running, database))
}

/// `count` `datatrust serve` processes (the release binary beside this one) on one
/// PostgreSQL schema, as an operator runs several nodes: the first creates the trust and
/// stops, the others start from copies of its data directory, then all serve. Without a
/// database, one process on the embedded store, so that its memory is measured apart from
/// the load generator's. `extra`: flags for every node.
async fn start_nodes(
    directory: &Path,
    database: Option<(&str, &str)>,
    count: usize,
    extra: &[&str],
) -> anyhow::Result<Running> {
    let binary = std::env::current_exe()?
        .parent()
        .context("the bench binary's directory")?
        .join("datatrust");
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: cargo build --release -p datatrust-cli -p datatrust-bench",
        binary.display()
    );
    let directories: Vec<_> = (0..count)
        .map(|node| directory.join(format!("node-{node}")))
        .collect();
    let mut arguments: Vec<String> = [
        "serve",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--origin",
        "bench.datatrust.localhost",
        "--anonymous-requests-per-second",
        "1000000",
    ]
    .iter()
    .map(|argument| (*argument).to_owned())
    .collect();
    if let Some((database, schema)) = database {
        for argument in ["--database", database, "--database-schema", schema] {
            arguments.push(argument.to_owned());
        }
    }
    arguments.extend(extra.iter().map(|argument| (*argument).to_owned()));
    let spawn = move |data_dir: std::path::PathBuf| {
        let (binary, arguments) = (binary.clone(), arguments.clone());
        tokio::task::spawn_blocking(move || spawn_node(&binary, &arguments, &data_dir))
    };
    let first = directories[0].clone();
    let (mut creator, _) = spawn(first).await??;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &creator.id().to_string()])
        .status();
    tokio::task::spawn_blocking(move || creator.wait()).await??;
    for other in &directories[1..] {
        copy_directory(&directories[0], other)?;
    }
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for data_dir in directories.clone() {
        let (child, url) = spawn(data_dir).await??;
        children.push(child);
        urls.push(url);
    }
    let trustee_key = NoteSigner::parse(&std::fs::read_to_string(
        directories[0].join("initial-trustee.key"),
    )?)?;
    let channel = client::connect(&urls[0], None).await?;
    let trustee = client::sign_in(&channel, &trustee_key).await?;
    Ok(Running {
        urls,
        channel,
        trustee_key,
        trustee,
        nodes: Nodes::Processes(children),
    })
}

/// Starts one node and reads the gRPC URL it announces.
fn spawn_node(
    binary: &Path,
    arguments: &[String],
    data_dir: &Path,
) -> anyhow::Result<(std::process::Child, String)> {
    let mut child = std::process::Command::new(binary)
        .args(arguments)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("the node's stdout")?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let url = lines
        .find_map(|line| {
            line.ok()?
                .strip_prefix("grpc listening on ")
                .map(str::to_owned)
        })
        .context("the node did not say where it listens")?;
    // Drain the rest of its output so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((child, url))
}

/// A stopped node's data directory, copied for another node (its lock file left out).
fn copy_directory(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_directory(&entry.path(), &target)?;
        } else if entry.file_name() != "lock" {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

impl Running {
    /// True when the server runs in this process (its memory is this process's).
    pub fn in_process(&self) -> bool {
        matches!(self.nodes, Nodes::InProcess { .. })
    }

    /// Each node's peak resident set size so far (KiB): of this process when the server
    /// runs in it.
    pub fn peak_resident_kib(&self) -> Vec<u64> {
        match &self.nodes {
            Nodes::InProcess { .. } => vec![status_kib("self", "VmHWM:")],
            Nodes::Processes(children) => children
                .iter()
                .map(|child| status_kib(&child.id().to_string(), "VmHWM:"))
                .collect(),
        }
    }

    /// The (first) server's resident set size now, in KiB: this process's when the server
    /// runs in it.
    pub fn resident_kib(&self) -> u64 {
        match &self.nodes {
            Nodes::InProcess { .. } => resident_kib(),
            Nodes::Processes(children) => children
                .first()
                .map_or(0, |child| status_kib(&child.id().to_string(), "VmRSS:")),
        }
    }

    /// Stops the servers: they drain and flush.
    pub async fn stop(self) {
        match self.nodes {
            Nodes::InProcess { stop, server } => {
                let _ = stop.send(());
                let _ = server.await;
            }
            Nodes::Processes(children) => {
                for mut child in children {
                    let _ = std::process::Command::new("kill")
                        .args(["-TERM", &child.id().to_string()])
                        .status();
                    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
                }
            }
        }
    }
}

/// A figure from /proc/<pid>/status, in KiB (0 where unavailable).
fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| {
                    line.strip_prefix(field)
                        .map(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
                })
                .flatten()
        })
        .unwrap_or(0)
}

/// This process's resident set size, from /proc (0 where unavailable).
pub fn resident_kib() -> u64 {
    status_kib("self", "VmRSS:")
}
