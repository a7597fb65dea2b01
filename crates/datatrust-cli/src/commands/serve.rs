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
    let traces = init_tracing(config.log_format);
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
    let keys_dir = config.keys_dir.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let default_origin = Origin::parse(DEFAULT_ORIGIN).expect("the default origin is valid");
        datatrust_server::open_trust_with_keys(
            &data_dir,
            keys_dir.as_deref(),
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
    if let Some(traces) = traces {
        // The last batch of spans goes out before the process ends.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    Ok(())
}

/// The HTTP listener while the trust opens: answered as starting, or (with TLS) silent.
enum HttpListener {
    Starting(datatrust_server::Starting),
    Silent(tokio::net::TcpListener),
}

/// Logs to stderr (text or JSON) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, every span (one per RPC, with its method,
/// role and key) exported as OpenTelemetry traces over OTLP/HTTP (protobuf), batched on a
/// thread of its own. Returns the exporter's provider, to flush at shutdown.
fn init_tracing(format: LogFormat) -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = otlp_provider();
    let traces = provider.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(provider.tracer("datatrust"))
    });
    let registry = tracing_subscriber::registry().with(filter).with(traces);
    let ansi = std::io::stderr().is_terminal();
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .init(),
    }
    provider
}

/// The OTLP trace exporter, when the standard variables ask for one; off otherwise.
fn otlp_provider() -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    let wanted = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
    if !wanted {
        return None;
    }
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
    {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT: traces are off: {error}");
            return None;
        }
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("datatrust")
        .build();
    Some(
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
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
