//! `datatrust-bench`: load generators, kept out of the production binary. Each starts what
//! it measures for real (the server on 127.0.0.1:0, the log on disk), client included on the
//! same machine, and prints its figures beside the raw baseline it is measured against.
//! Build with --release: `cargo run --release -p datatrust-bench -- state`.

mod ingest;
mod log;
mod server;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "datatrust-bench",
    version,
    about = "Load generators for datatrust"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Trust-state changes through the real server: signed-in members authorise and revoke a
    /// collector and grant consent concurrently (each change logged and durable before its
    /// answer); then authenticated cheap reads (WhoAmI) against a no-op unary RPC; with the
    /// raw baseline, sled batch + flush of the same bytes.
    State {
        /// Concurrent members, each changing its own state one change at a time.
        #[arg(long, default_value_t = 256)]
        members: usize,
        /// Changes per member (at most 100: a member's logged changes are rate-limited
        /// beyond a burst of 120).
        #[arg(long, default_value_t = 60)]
        changes: usize,
        /// Authenticated reads per member.
        #[arg(long, default_value_t = 400)]
        reads: usize,
        /// Directory on the disk to measure [default: a temporary directory].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the trust in this PostgreSQL (a libpq connection string), in a fresh schema,
        /// instead of the embedded store; the raw baseline is then the same rows inserted
        /// into PostgreSQL directly.
        #[arg(long)]
        database: Option<String>,
        /// With --database: run this many `datatrust serve` processes (the release binary
        /// beside this one) on the one database, the members' calls spread over them, and
        /// print each node's peak memory.
        #[arg(long, requires = "database")]
        nodes: Option<usize>,
    },
    /// Telemetry ingest and release streaming through the real server over gRPC on loopback,
    /// with the raw baselines: a no-op streaming RPC of the same messages, and sled batched
    /// insert + flush of the same bytes.
    Ingest {
        /// Events to upload in all.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Concurrent collectors (one stream each, one member each).
        #[arg(long, default_value_t = 16)]
        collectors: usize,
        /// Events per batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Directory on the disk to measure [default: a temporary directory].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the trust in this PostgreSQL (a libpq connection string), in a fresh schema;
        /// baseline B is then the same batches inserted into PostgreSQL directly.
        #[arg(long)]
        database: Option<String>,
        /// Run the trust as this many `datatrust serve` processes (the release binary beside
        /// this one), the collectors spread over them, and print each node's peak memory.
        /// More than one needs --database; 1 without it measures the embedded store's
        /// server apart from the load generator.
        #[arg(long)]
        nodes: Option<usize>,
        /// The embedded store's page cache, in MiB, as `serve --cache-mb` [default: 1024].
        #[arg(long)]
        cache_mb: Option<u64>,
    },
    /// Durable appends to a log on disk from many concurrent callers, append-to-checkpoint
    /// latency, inclusion proofs at the final size, and the raw sled baseline.
    Log {
        /// Entries to append (the proof benchmark runs at this size).
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Appends in flight at once (concurrent callers).
        #[arg(long, default_value_t = 2048)]
        callers: usize,
        /// Bytes per entry.
        #[arg(long, default_value_t = 200)]
        entry_bytes: usize,
        /// Inclusion proofs to generate.
        #[arg(long, default_value_t = 200_000)]
        proofs: u64,
        /// Directory on the disk to measure [default: a temporary directory].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; figures mean little. Use cargo run --release -p datatrust-bench -- ..."
        );
    }
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async move {
                match cli.command {
                    command @ BenchCommand::Ingest { .. } => ingest::run(command, cli.json).await,
                    command @ BenchCommand::State { .. } => state::run(command, cli.json).await,
                    command @ BenchCommand::Log { .. } => {
                        let json = cli.json;
                        tokio::task::spawn_blocking(move || log::run(command, json)).await?
                    }
                }
            })
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
