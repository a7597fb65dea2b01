//! The log over plain HTTP, as c2sp.org/tlog-tiles lays it out under `/log/`:
//! `/log/checkpoint`, `/log/tile/<L>/<N>[.p/<W>]`, `/log/tile/entries/<N>[.p/<W>]`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use datatrust_tlog::tile::{TileKind, TileRequest};
use datatrust_tlog::{LogReader, ReadError};

use crate::TrustState;

/// Tiles and bundles never change once served (a partial tile names its width).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The checkpoint changes with every batch: cache it for a moment at most.
const CHECKPOINT_CACHING: &str = "public, max-age=1";

pub fn router(state: TrustState) -> Router {
    Router::new()
        .route("/log/checkpoint", get(checkpoint))
        .route("/log/tile/{*path}", get(tile))
        .with_state(state)
}

async fn checkpoint(State(state): State<TrustState>) -> Response {
    let latest = state.log_reader().latest();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CHECKPOINT_CACHING),
            ),
        ],
        latest.note.clone(),
    )
        .into_response()
}

async fn tile(State(state): State<TrustState>, Path(path): Path<String>) -> Response {
    let Some(request) = TileRequest::parse(&path) else {
        return (
            StatusCode::NOT_FOUND,
            "not a tile path: see c2sp.org/tlog-tiles\n",
        )
            .into_response();
    };
    let reader: Arc<LogReader> = Arc::clone(state.log_reader());
    let read = tokio::task::spawn_blocking(move || match request.kind {
        TileKind::Hashes { level } => reader.tile(level, request.index, request.width),
        TileKind::Entries => reader.bundle(request.index, request.width),
    })
    .await;
    match read {
        Ok(Ok(bytes)) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(ReadError::OutOfRange(message))) => {
            (StatusCode::NOT_FOUND, format!("{message}\n")).into_response()
        }
        Ok(Err(error)) => {
            tracing::error!(error = %error, path = %path, "log tile not served");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the log's storage is damaged; operators have been told\n",
            )
                .into_response()
        }
        Err(error) => {
            tracing::error!(error = %error, "tile read task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
