//! `serve`: the gRPC and HTTP listeners, their limits, health, reflection and graceful
//! shutdown. The binary and the end-to-end tests call the same function.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use datatrust_proto::v1::auth_service_server::AuthServiceServer;
use datatrust_proto::v1::collector_service_server::CollectorServiceServer;
use datatrust_proto::v1::consent_service_server::ConsentServiceServer;
use datatrust_proto::v1::ingest_service_server::IngestServiceServer;
use datatrust_proto::v1::ledger_service_server::LedgerServiceServer;
use datatrust_proto::v1::license_service_server::LicenseServiceServer;
use datatrust_proto::v1::log_service_server::LogServiceServer;
use datatrust_proto::v1::member_data_service_server::MemberDataServiceServer;
use datatrust_proto::v1::member_service_server::MemberServiceServer;
use datatrust_proto::v1::principal_service_server::PrincipalServiceServer;
use datatrust_proto::v1::release_service_server::ReleaseServiceServer;
use datatrust_proto::v1::terms_service_server::TermsServiceServer;
use datatrust_proto::v1::training_service_server::TrainingServiceServer;
use datatrust_proto::v1::trust_service_server::TrustServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::services::{
    AuthApi, CollectorApi, ConsentApi, IngestApi, LedgerApi, LicenseApi, LogApi, MemberApi,
    MemberDataApi, PrincipalApi, ReleaseApi, TermsApi, TrainingApi, TrustApi,
};
use crate::{ServeOptions, TrustState};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading TLS files: {0}")]
    Tls(String),
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("flushing storage at shutdown: {0}")]
    Flush(#[from] datatrust_core::store::StoreError),
}

/// Names of the datatrust services, as health checks and reflection know them.
/// How long the node running the periodic duties holds its lease without renewing it (it
/// renews every second): the time another node waits before taking over from a dead one.
pub const DUTIES_LEASE_SECONDS: f64 = 5.0;

pub const SERVICE_NAMES: [&str; 14] = [
    <TrustServiceServer<TrustApi> as NamedService>::NAME,
    <AuthServiceServer<AuthApi> as NamedService>::NAME,
    <PrincipalServiceServer<PrincipalApi> as NamedService>::NAME,
    <MemberServiceServer<MemberApi> as NamedService>::NAME,
    <CollectorServiceServer<CollectorApi> as NamedService>::NAME,
    <LogServiceServer<LogApi> as NamedService>::NAME,
    <TermsServiceServer<TermsApi> as NamedService>::NAME,
    <ConsentServiceServer<ConsentApi> as NamedService>::NAME,
    <LicenseServiceServer<LicenseApi> as NamedService>::NAME,
    <TrainingServiceServer<TrainingApi> as NamedService>::NAME,
    <IngestServiceServer<IngestApi> as NamedService>::NAME,
    <MemberDataServiceServer<MemberDataApi> as NamedService>::NAME,
    <ReleaseServiceServer<ReleaseApi> as NamedService>::NAME,
    <LedgerServiceServer<LedgerApi> as NamedService>::NAME,
];

/// Serves gRPC on `grpc_listener` and HTTP on `http_listener` until `shutdown` completes.
/// Then health turns NOT_SERVING, and after `options.drain_grace` the listeners stop
/// accepting, in-flight calls finish, and storage is flushed before this returns.
pub async fn serve(
    state: TrustState,
    options: ServeOptions,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if let Some(directory) = &options.backup_dir {
        state.set_backup_dir(directory.clone());
    }
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let disk_health = health_reporter.clone();
    for name in SERVICE_NAMES.iter().chain(&[""]) {
        health_reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let draining = Arc::new(AtomicBool::new(false));
    let (stop_sender, stop_receiver) = watch::channel(false);
    let drain_grace = options.drain_grace;
    let draining_flag = Arc::clone(&draining);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(
            drain_grace_ms = drain_grace.as_millis() as u64,
            "shutting down: draining"
        );
        draining_flag.store(true, Ordering::SeqCst);
        for name in SERVICE_NAMES.iter().chain(&[""]) {
            health_reporter
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        tokio::time::sleep(drain_grace).await;
        let _ = stop_sender.send(true);
    });

    let descriptor_sets = [
        datatrust_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ];
    let mut reflection_v1 = tonic_reflection::server::Builder::configure();
    let mut reflection_v1alpha = tonic_reflection::server::Builder::configure();
    for set in descriptor_sets {
        reflection_v1 = reflection_v1.register_encoded_file_descriptor_set(set);
        reflection_v1alpha = reflection_v1alpha.register_encoded_file_descriptor_set(set);
    }

    let mut builder = Server::builder()
        .timeout(options.request_timeout)
        .concurrency_limit_per_connection(options.concurrency_per_connection)
        // Pings keep live connections readable well within the idle limit
        // (`connections.rs`); a peer that stops answering them is dropped.
        .http2_keepalive_interval(Some(options.connections.idle / 3))
        .http2_keepalive_timeout(Some(options.connections.idle / 3))
        .trace_fn(|request| {
            tracing::info_span!(
                "rpc",
                method = %request.uri().path(),
                caller_role = tracing::field::Empty,
                caller_key = tracing::field::Empty,
            )
        });
    if let Some(tls) = &options.tls {
        crate::https::certificates(tls).map_err(ServeError::Tls)?;
        let certificate = std::fs::read(&tls.certificate)
            .map_err(|error| ServeError::Tls(format!("{}: {error}", tls.certificate.display())))?;
        let private_key = std::fs::read(&tls.private_key)
            .map_err(|error| ServeError::Tls(format!("{}: {error}", tls.private_key.display())))?;
        builder = builder.tls_config(
            ServerTlsConfig::new().identity(Identity::from_pem(certificate, private_key)),
        )?;
    }
    let max = options.max_message_bytes;
    let admission = crate::admission::AdmissionLayer::new(
        state.clone(),
        crate::AdmissionLimits {
            authenticated: options.concurrency_total,
            anonymous: options.anonymous_concurrency,
            anonymous_per_source_per_second: options.anonymous_per_source_per_second,
            body_timeout: options.body_timeout,
            // A message and its 5-byte gRPC frame header, plus slack for a second frame.
            max_body_bytes: options.max_message_bytes + 64,
        },
    );
    let router = builder
        .layer(crate::metrics::MetricsLayer::new(Arc::clone(
            state.metrics(),
        )))
        .layer(admission.clone())
        .add_service(health_service)
        .add_service(reflection_v1.build_v1()?)
        .add_service(reflection_v1alpha.build_v1alpha()?)
        .add_service(
            TrustServiceServer::new(TrustApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            AuthServiceServer::new(AuthApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            PrincipalServiceServer::new(PrincipalApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            MemberServiceServer::new(MemberApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            CollectorServiceServer::new(CollectorApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            LogServiceServer::new(LogApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            TermsServiceServer::new(TermsApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            ConsentServiceServer::new(ConsentApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            LicenseServiceServer::new(LicenseApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            TrainingServiceServer::new(TrainingApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            IngestServiceServer::new(IngestApi {
                state: state.clone(),
                idle_upload: options.idle_upload,
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            MemberDataServiceServer::new(MemberDataApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            ReleaseServiceServer::new(ReleaseApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            LedgerServiceServer::new(LedgerApi {
                state: state.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        );

    // The disk's free space, as health reports it: NOT_SERVING (and /healthz 503) while
    // writes are refused for want of space, SERVING again once it returns.
    state.set_minimum_free_disk(options.minimum_free_disk_bytes);
    let disk_full = Arc::new(AtomicBool::new(false));
    {
        let (state, disk_full, draining) =
            (state.clone(), Arc::clone(&disk_full), Arc::clone(&draining));
        let health_reporter = disk_health;
        let mut stop = stop_receiver.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
                let low = state.disk_space_low();
                if disk_full.swap(low, Ordering::SeqCst) == low || draining.load(Ordering::SeqCst) {
                    continue;
                }
                let status = if low {
                    ServingStatus::NotServing
                } else {
                    ServingStatus::Serving
                };
                for name in SERVICE_NAMES.iter().chain(&[""]) {
                    health_reporter.set_service_status(*name, status).await;
                }
            }
        });
    }

    // Nodes on one database: the holder of the `duties` lease runs the periodic duties
    // below; a node that stops renewing (killed, cut off) loses it within
    // `DUTIES_LEASE_SECONDS` and another takes over. Every node reads the log's head each
    // second, so what it serves follows the other nodes' commits.
    let leading = Arc::new(AtomicBool::new(state.shared().is_none()));
    if let Some(shared) = state.shared().cloned() {
        let (state, leading, mut stop) =
            (state.clone(), Arc::clone(&leading), stop_receiver.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stop.wait_for(|stop| *stop) => break,
                }
                let (lease, node) = (shared.clone(), state.node().to_owned());
                let held = tokio::task::spawn_blocking(move || {
                    lease.lease("duties", &node, DUTIES_LEASE_SECONDS)
                })
                .await;
                let held = match held {
                    Ok(Ok(held)) => held,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "renewing the duties lease failed");
                        false
                    }
                    Err(_) => false,
                };
                if leading.swap(held, Ordering::SeqCst) != held {
                    tracing::info!(node = %state.node(), leading = held, "the periodic duties moved");
                }
                let reader = Arc::clone(state.log_reader());
                match tokio::task::spawn_blocking(move || reader.refresh()).await {
                    Ok(Ok(latest)) => state
                        .metrics()
                        .note_log_size(latest.checkpoint.size, state.clock().now().0),
                    Ok(Err(error)) => tracing::warn!(%error, "reading the log's head failed"),
                    Err(_) => {}
                }
            }
            let node = state.node().to_owned();
            let _ =
                tokio::task::spawn_blocking(move || shared.release_lease("duties", &node)).await;
        });
    }

    // Licensees with overdue invoices are suspended even if nobody asks: every
    // `duties_interval`, until shutdown (on one node of several: the lease holder).
    let sweeping = state.clone();
    let mut sweep_stop = stop_receiver.clone();
    let duties_interval = options.duties_interval;
    tokio::spawn(async move {
        // Retention is by the day: swept on the first duties of each day (the trust's
        // clock), not every interval.
        let mut swept_day: Option<i64> = None;
        let mut ticks = tokio::time::interval(duties_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = sweep_stop.wait_for(|stop| *stop) => return,
            }
            if !leading.load(Ordering::SeqCst) {
                continue;
            }
            let today = sweeping.clock().now().0.div_euclid(86_400);
            let retention_due = swept_day != Some(today);
            match sweeping
                .blocking({
                    let now = sweeping.clock().now();
                    // Votes past their deadline close (and are logged) on the same sweep.
                    move |registry| {
                        for closed in registry.close_due_votes(now)? {
                            tracing::info!(terms = %closed.hash, status = ?closed.status, "vote closed at its deadline");
                        }
                        let made = registry.enforce_duties(now)?;
                        // Retention: what outlived the terms' retention_days goes.
                        let swept = if retention_due {
                            registry.sweep_retention(now)?
                        } else {
                            datatrust_core::retention::RetentionSweep::default()
                        };
                        Ok((made, swept))
                    }
                })
                .await
            {
                Ok((made, swept)) => {
                    if retention_due {
                        swept_day = Some(today);
                    }
                    sweeping.metrics().note_retention_sweep(&swept);
                    if swept.deleted_anything() {
                        log_retention_sweep(&swept);
                    }
                    sweeping.metrics().duty_sweeps.inc();
                    sweeping.metrics().licensees_suspended.inc_by(made.len() as u64);
                    for suspension in made {
                        tracing::warn!(licensee = %suspension.licensee, reason = %suspension.reason, log_index = suspension.log_index, "licensee suspended");
                    }
                }
                Err(error) => tracing::error!(%error, "enforcing licensees' duties failed"),
            }
        }
    });

    // Connections come in through the guard: capped in total and per source, closed when
    // idle. The accepting task ends when the server drops the stream at shutdown.
    let grpc_guard = crate::connections::ConnectionGuard::new(options.connections);
    let (accepted_sender, accepted) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = grpc_guard.accept(&grpc_listener) => next,
                () = accepted_sender.closed() => return,
            };
            match next {
                Ok((stream, _)) => {
                    if accepted_sender
                        .send(Ok::<_, std::io::Error>(stream))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(error) => {
                    // Out of descriptors or a transient network error: back off a little.
                    tracing::warn!(%error, "accepting a gRPC connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    let incoming = tokio_stream::wrappers::ReceiverStream::new(accepted);
    let grpc = router.serve_with_incoming_shutdown(incoming, stopped(stop_receiver.clone()));
    let stop_receiver_for_limit = stop_receiver.clone();

    let http_router = Router::new()
        .route("/healthz", get(http_health))
        .with_state((Arc::clone(&draining), Arc::clone(&disk_full)))
        .merge(
            Router::new()
                .route("/readyz", get(http_ready))
                .with_state(Arc::clone(&draining)),
        )
        .merge(
            Router::new()
                .route("/metrics", get(http_metrics))
                .with_state(state.clone()),
        )
        .merge(crate::http_log::router(state.clone()))
        .merge(crate::portal::router(state.clone(), admission))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(state.metrics()),
            count_http,
        ));
    if let Ok(address) = http_listener.local_addr() {
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        state.set_log_url(format!("{scheme}://{address}/log"));
    }
    // With a certificate configured, the HTTP listener speaks HTTPS too.
    let acceptor = match &options.tls {
        Some(files) => Some(crate::https::acceptor(files).map_err(ServeError::Tls)?),
        None => None,
    };
    let http = crate::http_server::serve(
        http_listener,
        crate::connections::ConnectionGuard::new(options.connections),
        acceptor,
        http_router,
        stopped(stop_receiver),
    );
    let listeners = async { tokio::join!(grpc, async { http.await.map_err(ServeError::Http) }) };
    // In-flight calls are bounded by the request timeout; a client that never acknowledges
    // the HTTP/2 GOAWAY must not hold the process up beyond that.
    let shutdown_limit = options.request_timeout + Duration::from_secs(5);
    let forced_stop = async {
        stopped(stop_receiver_for_limit).await;
        tokio::time::sleep(shutdown_limit).await;
    };
    let results = tokio::select! {
        results = listeners => Some(results),
        () = forced_stop => {
            tracing::warn!(limit_seconds = shutdown_limit.as_secs(), "connections still open at the shutdown limit; closing them");
            None
        }
    };
    // Flush even if a listener failed: whatever was acknowledged must be on disk.
    let closing = state.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close_log()).await;
    let flushed = state.flush();
    if let Some((grpc_result, http_result)) = results {
        grpc_result?;
        http_result?;
    }
    flushed?;
    tracing::info!("stopped; storage flushed");
    Ok(())
}

async fn stopped(mut receiver: watch::Receiver<bool>) {
    let _ = receiver.wait_for(|stop| *stop).await;
}

/// Ready to take traffic: the log is open and the keys are loaded (the listener is bound
/// only after both), and the server is not draining. A disk nearly full keeps it ready:
/// reads and erasures go on (`/healthz` says it).
async fn http_ready(State(draining): State<Arc<AtomicBool>>) -> (StatusCode, &'static str) {
    if draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

/// The Prometheus text exposition (`metrics.rs`).
async fn http_metrics(
    State(state): State<TrustState>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    let building = state
        .builds()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len();
    let text = state
        .metrics()
        .render(state.log_reader().size(), building, state.clock().now().0);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// Counts every HTTP request by the first segment of its path and its status.
async fn count_http(
    State(metrics): State<Arc<crate::metrics::Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    metrics.http_request(&path, response.status().as_u16());
    response
}

async fn http_health(
    State((draining, disk_full)): State<(Arc<AtomicBool>, Arc<AtomicBool>)>,
) -> (StatusCode, &'static str) {
    if draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else if disk_full.load(Ordering::SeqCst) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "disk nearly full: writes are refused until space is freed\n",
        )
    } else {
        (StatusCode::OK, "serving\n")
    }
}

/// A retention sweep that deleted something, in the server's log: counts only, no member.
pub(crate) fn log_retention_sweep(swept: &datatrust_core::retention::RetentionSweep) {
    if swept.members_damaged > 0 {
        tracing::error!(
            members_damaged = swept.members_damaged,
            "the retention sweep passed over members whose stored data is damaged (does not decrypt or decode): their data past retention is still kept"
        );
    }
    tracing::info!(
        members = swept.members,
        events = swept.events,
        chunks = swept.chunks,
        chunks_rewritten = swept.chunks_rewritten,
        day_counts = swept.day_counts,
        screenshots = swept.screenshots,
        release_parts = swept.release_parts,
        segments_removed = swept.segments_removed,
        bytes_freed = swept.bytes_freed,
        members_damaged = swept.members_damaged,
        "retention sweep deleted data past its retention"
    );
}
