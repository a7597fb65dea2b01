//! The HTTP listener's connection loop (health, the log's tiles, the member portal), with
//! the limits `axum::serve` does not set: a client must send a request's headers within
//! `HEADER_READ_LIMIT`, finish a request within `REQUEST_LIMIT` (bodies included; a streamed
//! response may take longer), and stay within its connection slots (`connections.rs`).
//! With a certificate, each connection's TLS handshake is bounded too.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::connections::ConnectionGuard;

/// Longest a client may take to send a request's headers.
pub const HEADER_READ_LIMIT: Duration = Duration::from_secs(10);
/// Longest a request may take until its response starts (its body read included).
pub const REQUEST_LIMIT: Duration = Duration::from_secs(30);
/// Longest a client may take over its TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// After the stop signal, how long open connections get to finish.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `stop` completes, then lets open connections finish
/// (bounded by `DRAIN_LIMIT`).
pub async fn serve(
    listener: TcpListener,
    guard: Arc<ConnectionGuard>,
    tls: Option<TlsAcceptor>,
    router: Router,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn(request_limit));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_LIMIT)
        .keep_alive(true);
    tokio::pin!(stop);
    loop {
        let (stream, address) = tokio::select! {
            accepted = guard.accept(&listener) => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a transient network error: back off a little.
                    tracing::warn!(%error, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = router
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(address));
                request
            });
        let service = TowerToHyperService::new(service);
        match &tls {
            None => {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, %address, "HTTP connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let (acceptor, builder, watcher) =
                    (acceptor.clone(), builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, %address, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%address, "TLS handshake timed out");
                            return;
                        }
                    };
                    let connection =
                        watcher.watch(builder.serve_connection(TokioIo::new(tls), service));
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, %address, "HTTPS connection ended with an error");
                    }
                });
            }
        }
    }
    // The port is let go at once; open connections finish their requests.
    drop(listener);
    if tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open at the drain limit; closing them");
    }
    Ok(())
}

/// A request that has not produced its response within `REQUEST_LIMIT` (a body sent too
/// slowly, say) is answered 408 and its work dropped.
async fn request_limit(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match tokio::time::timeout(REQUEST_LIMIT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "the request took too long to arrive\n",
        )
            .into_response(),
    }
}

/// The address a request came from, as the HTTP loop records it.
pub fn source(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address)
}
