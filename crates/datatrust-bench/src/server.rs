//! The real server on loopback, as `datatrust serve` runs it, for the load generators.

use std::path::Path;

use anyhow::Context as _;
use datatrust_cli::client::{self, SignedIn};
use datatrust_core::{NoteSigner, Origin};
use datatrust_server::ServeOptions;
use datatrust_tlog::SequencerOptions;
use tonic::transport::Channel;

pub struct Running {
    pub url: String,
    pub channel: Channel,
    pub trustee_key: NoteSigner,
    pub trustee: SignedIn,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), datatrust_server::ServeError>>,
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
        url,
        channel,
        trustee_key,
        trustee,
        stop,
        server,
    })
}

impl Running {
    /// Stops the server: it drains and flushes.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// This process's resident set size, from /proc (0 where unavailable).
pub fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| {
                    line.strip_prefix("VmRSS:")
                        .map(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
                })
                .flatten()
        })
        .unwrap_or(0)
}
