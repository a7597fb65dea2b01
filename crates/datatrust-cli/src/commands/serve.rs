//! `datatrust serve`: resolve configuration, set up logging, open (or create) the trust,
//! bind, serve until SIGINT or SIGTERM.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use datatrust_core::Origin;
use datatrust_tlog::SequencerOptions;
use tracing_subscriber::EnvFilter;

use crate::config::{DEFAULT_ORIGIN, LogFormat, ServeArgs};

pub async fn run(arguments: ServeArgs) -> anyhow::Result<()> {
    let mut config = arguments.resolve()?;
    init_tracing(config.log_format);
    config.options.check(config.grpc_addr)?;
    fit_connections_to_descriptors(&mut config.options);

    let data_dir = config.data_dir.clone();
    let database = config.database.clone();
    let requested_origin = config.origin.clone();
    datatrust_store::set_cache_capacity(config.cache_bytes);
    let token_lifetime = config.options.token_lifetime;
    // Bound before the trust opens, so that a long start (indexes built for an older trust,
    // interrupted erasures finished) answers health checks as alive but not ready.
    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| {
            format!(
                "listening for gRPC on {}; pass another --grpc-addr",
                config.grpc_addr
            )
        })?;
    let http_listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| {
            format!(
                "listening for HTTP on {}; pass another --http-addr",
                config.http_addr
            )
        })?;
    // Plaintext only: an HTTPS listener stays silent until the trust serves.
    let http_listener = if config.options.tls.is_none() {
        HttpListener::Starting(datatrust_server::answer_while_starting(http_listener))
    } else {
        HttpListener::Silent(http_listener)
    };
    let opened = tokio::task::spawn_blocking(move || {
        let default_origin = Origin::parse(DEFAULT_ORIGIN).expect("the default origin is valid");
        datatrust_server::open_trust(
            &data_dir,
            requested_origin.as_ref(),
            &default_origin,
            token_lifetime,
            SequencerOptions::default(),
            database
                .as_ref()
                .map(|(url, schema)| (url.as_str(), schema.as_str())),
        )
    })
    .await??;
    let origin = opened.origin.clone();
    let http_listener = match http_listener {
        HttpListener::Starting(starting) => starting.finish().await?,
        HttpListener::Silent(listener) => listener,
    };
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    let scheme = if config.options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if let Some(format) = opened.migrated_from {
        println!(
            "Migrated {} from data format {format} to {}: older versions of datatrust will refuse it now.",
            config.data_dir.display(),
            datatrust_store::FORMAT_VERSION
        );
    }
    if let Some(trustee_key) = &opened.created_trustee_key {
        let key = trustee_key.display();
        println!(
            "Created the trust {origin} in {}.",
            config.data_dir.display()
        );
        println!("The first trustee's key is {key} (keep it secret; move it off this machine).");
        println!(
            "Try it: datatrust whoami --key {key} --server {scheme}://{}",
            grpc_addr
        );
    }

    // The handlers are in place before the ports are announced: a SIGTERM sent as soon as
    // a script has read them stops the trust cleanly instead of killing it.
    let shutdown = shutdown_signal()?;
    // Scripts and tests read these two lines to learn the bound ports.
    println!("grpc listening on {scheme}://{grpc_addr}");
    println!("http listening on {scheme}://{http_addr}");
    tracing::info!(%origin, %grpc_addr, %http_addr, data_dir = %config.data_dir.display(), "serving");

    let state = opened.state;
    tracing::info!(
        tree_size = state.log_reader().size(),
        "transparency log open"
    );
    datatrust_server::serve(
        state,
        config.options,
        grpc_listener,
        http_listener,
        shutdown,
    )
    .await?;
    // The lock is released only now, after the final flush.
    drop(opened.directory);
    Ok(())
}

/// The HTTP listener while the trust opens: answered as starting, or (with TLS) silent.
enum HttpListener {
    Starting(datatrust_server::Starting),
    Silent(tokio::net::TcpListener),
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

/// SIGINT or SIGTERM, whichever comes first; both handlers are installed when this returns.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

/// Raises the process's open-file limit to its hard limit, and keeps the connection caps
/// of both listeners (and a reserve for the database and key files) within it: a flood of
/// connections is then refused by the caps, never by running out of descriptors.
fn fit_connections_to_descriptors(options: &mut datatrust_server::ServeOptions) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    const RESERVE: u64 = 256;
    let limit = getrlimit(Resource::Nofile);
    let available = match limit.maximum {
        Some(hard) if limit.current != Some(hard) => {
            match setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                },
            ) {
                Ok(()) => hard,
                Err(_) => limit.current.unwrap_or(hard),
            }
        }
        Some(hard) => hard,
        None => limit.current.unwrap_or(u64::MAX),
    };
    let per_listener = usize::try_from(available.saturating_sub(RESERVE) / 2).unwrap_or(usize::MAX);
    if options.connections.total > per_listener {
        tracing::warn!(
            open_file_limit = available,
            connections = per_listener,
            "the open-file limit is low: each listener takes at most this many connections; raise LimitNOFILE"
        );
        options.connections.total = per_listener.max(1);
        options.connections.per_source = options
            .connections
            .per_source
            .min(options.connections.total);
    }
}
