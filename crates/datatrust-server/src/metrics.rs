//! `GET /metrics`: Prometheus text exposition of the standard gRPC server metrics, under
//! go-grpc-prometheus's names and labels so that existing dashboards work
//! (`grpc_server_started_total`, `grpc_server_handled_total` with `grpc_code`,
//! `grpc_server_handling_seconds`), HTTP requests, and the trust's own counters and gauges.
//! One registry per served trust (`prometheus-client`, no global recorder), so several
//! trusts in one process (the tests) keep their figures apart.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tonic::body::Body;
use tonic::codegen::http::{HeaderMap, Request, Response};

/// go-grpc-prometheus's histogram buckets (Prometheus's default ones), in seconds.
const HANDLING_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    grpc_type: String,
    grpc_service: String,
    grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Handled {
    grpc_type: String,
    grpc_service: String,
    grpc_method: String,
    grpc_code: String,
}

/// The label of `datatrust_retention_deleted_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetentionKind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequest {
    /// The first segment of the path (`/log`, `/healthz`, `/portal`, ...): bounded.
    handler: String,
    code: String,
}

pub struct Metrics {
    registry: Registry,
    started: Family<Call, Counter>,
    handled: Family<Handled, Counter>,
    handling: Family<Call, Histogram>,
    http_requests: Family<HttpRequest, Counter>,
    /// The streaming shape of every method of the trust's services, by path.
    types: HashMap<String, &'static str>,
    pub log_appends: Counter,
    pub ingest_events: Counter,
    pub ingest_bytes: Counter,
    pub duty_sweeps: Counter,
    pub licensees_suspended: Counter,
    /// What retention sweeps deleted, by kind (events, chunks, day_counts, screenshots,
    /// release_parts).
    retention_deleted: Family<RetentionKind, Counter>,
    log_size: Gauge,
    seconds_since_checkpoint: Gauge,
    releases_building: Gauge,
    /// The log's size this node last saw grow, and when (the trust's clock, Unix seconds).
    last_size: AtomicU64,
    last_growth: AtomicI64,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let started = Family::<Call, Counter>::default();
        let handled = Family::<Handled, Counter>::default();
        let handling = Family::<Call, Histogram>::new_with_constructor(
            (|| Histogram::new(HANDLING_BUCKETS)) as fn() -> Histogram,
        );
        let http_requests = Family::<HttpRequest, Counter>::default();
        registry.register(
            "grpc_server_started",
            "RPCs started on the server",
            started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "RPCs completed on the server, whatever their outcome",
            handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Response latency of RPCs handled by the server, in seconds",
            handling.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests served (log, portal, health, metrics)",
            http_requests.clone(),
        );
        let mut metrics = Metrics {
            started,
            handled,
            handling,
            http_requests,
            types: method_types(),
            log_appends: Counter::default(),
            ingest_events: Counter::default(),
            ingest_bytes: Counter::default(),
            duty_sweeps: Counter::default(),
            licensees_suspended: Counter::default(),
            retention_deleted: Family::default(),
            log_size: Gauge::default(),
            seconds_since_checkpoint: Gauge::default(),
            releases_building: Gauge::default(),
            last_size: AtomicU64::new(0),
            last_growth: AtomicI64::new(0),
            registry,
        };
        let trust = metrics.registry.sub_registry_with_prefix("datatrust");
        trust.register(
            "log_appends",
            "Log entries this node committed",
            metrics.log_appends.clone(),
        );
        trust.register(
            "ingest_events",
            "Telemetry events stored",
            metrics.ingest_events.clone(),
        );
        trust.register(
            "ingest_bytes",
            "Telemetry bytes received in stored batches",
            metrics.ingest_bytes.clone(),
        );
        trust.register(
            "duty_sweeps",
            "Sweeps of licensees' duties and votes past their deadline",
            metrics.duty_sweeps.clone(),
        );
        trust.register(
            "licensees_suspended",
            "Licensees suspended by the duty sweeps",
            metrics.licensees_suspended.clone(),
        );
        trust.register(
            "retention_deleted",
            "What retention sweeps deleted, by kind",
            metrics.retention_deleted.clone(),
        );
        trust.register(
            "log_size",
            "Entries in the log, as this node serves it",
            metrics.log_size.clone(),
        );
        trust.register(
            "seconds_since_last_checkpoint",
            "Seconds since this node saw the log grow",
            metrics.seconds_since_checkpoint.clone(),
        );
        trust.register(
            "releases_building",
            "Releases this node is building",
            metrics.releases_building.clone(),
        );
        metrics
    }

    /// Counts what a retention sweep deleted.
    pub fn note_retention_sweep(&self, swept: &datatrust_core::retention::RetentionSweep) {
        for (kind, deleted) in [
            ("events", swept.events),
            ("chunks", swept.chunks),
            ("day_counts", swept.day_counts),
            ("screenshots", swept.screenshots),
            ("release_parts", swept.release_parts),
            ("segments", swept.segments_removed),
        ] {
            self.retention_deleted
                .get_or_create(&RetentionKind { kind })
                .inc_by(deleted);
        }
    }

    /// Notes the log's size as this node serves it at `now` (the trust's clock).
    pub fn note_log_size(&self, size: u64, now: i64) {
        if self.last_size.fetch_max(size, Ordering::Relaxed) < size {
            self.last_growth.store(now, Ordering::Relaxed);
        }
    }

    /// The exposition, with the gauges read at `now`.
    pub fn render(&self, log_size: u64, releases_building: usize, now: i64) -> String {
        self.note_log_size(log_size, now);
        self.log_size.set(log_size as i64);
        self.releases_building.set(releases_building as i64);
        self.seconds_since_checkpoint
            .set(now - self.last_growth.load(Ordering::Relaxed));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }

    pub fn http_request(&self, path: &str, status: u16) {
        let handler = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        let handler = match handler {
            "log" | "healthz" | "readyz" | "metrics" | "portal" | "api" | "" => handler,
            _ => "other",
        };
        self.http_requests
            .get_or_create(&HttpRequest {
                handler: format!("/{handler}"),
                code: status.to_string(),
            })
            .inc();
    }

    fn call(&self, path: &str) -> Call {
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("unknown", "unknown"));
        Call {
            grpc_type: self.types.get(path).copied().unwrap_or("unary").to_owned(),
            grpc_service: service.to_owned(),
            grpc_method: method.to_owned(),
        }
    }

    fn finish(&self, call: &Call, code: tonic::Code, started: Instant) {
        self.handled
            .get_or_create(&Handled {
                grpc_type: call.grpc_type.clone(),
                grpc_service: call.grpc_service.clone(),
                grpc_method: call.grpc_method.clone(),
                grpc_code: code_name(code).to_owned(),
            })
            .inc();
        self.handling
            .get_or_create(call)
            .observe(started.elapsed().as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// go-grpc-prometheus's names for the codes (Go's `codes.Code.String()`).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Every method's streaming shape, read from the services' descriptors.
fn method_types() -> HashMap<String, &'static str> {
    use prost::Message as _;
    let mut types = HashMap::new();
    for set in [
        datatrust_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
            continue;
        };
        for file in set.file {
            for service in &file.service {
                let name = format!("{}.{}", file.package(), service.name());
                for method in &service.method {
                    let kind = match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => "unary",
                        (true, false) => "client_stream",
                        (false, true) => "server_stream",
                        (true, true) => "bidi_stream",
                    };
                    types.insert(format!("/{name}/{}", method.name()), kind);
                }
            }
        }
    }
    types
}

fn status_code(headers: &HeaderMap) -> Option<tonic::Code> {
    let value = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(tonic::Code::from(value))
}

/// Counts every gRPC call: started when it arrives, handled with its code when its status is
/// sent (in the headers of a trailers-only answer, or in the trailers), and Canceled when the
/// caller goes away first.
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> MetricsLayer {
        MetricsLayer { metrics }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Measured<S>;

    fn layer(&self, inner: S) -> Measured<S> {
        Measured {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

#[derive(Clone)]
pub struct Measured<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> tower::Service<Request<Body>> for Measured<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = Arc::clone(&self.metrics);
        let call = metrics.call(request.uri().path());
        metrics.started.get_or_create(&call).inc();
        let started = Instant::now();
        Box::pin(async move {
            let response = inner.call(request).await?;
            if let Some(code) = status_code(response.headers()) {
                metrics.finish(&call, code, started);
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let observed = Observed {
                inner: body,
                pending: Some((metrics, call, started)),
            };
            Ok(Response::from_parts(parts, Body::new(observed)))
        })
    }
}

/// A response body that records its call's code from the trailers.
struct Observed {
    inner: Body,
    pending: Option<(Arc<Metrics>, Call, Instant)>,
}

impl Observed {
    fn record(&mut self, code: tonic::Code) {
        if let Some((metrics, call, started)) = self.pending.take() {
            metrics.finish(&call, code, started);
        }
    }
}

impl http_body::Body for Observed {
    type Data = tonic::codegen::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = status_code(trailers).unwrap_or(tonic::Code::Unknown);
                    self.record(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.record(tonic::Code::Unknown),
            Poll::Ready(None) => self.record(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        // The caller went away before the status was sent.
        self.record(tonic::Code::Cancelled);
    }
}
