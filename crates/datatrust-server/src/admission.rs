//! Who gets served when the trust is busy. Every gRPC request passes here before any
//! handler, in three separate pools, so that no class of caller can fill another's:
//!
//! - health checks: a small pool of their own (a load balancer must always get an answer);
//! - signed-in callers (a live bearer token): the main pool, and at most
//!   `PER_PRINCIPAL_CONCURRENCY` requests at once per principal;
//! - everyone else (sign-in, invitations, public reads): a smaller pool; sign-in calls also
//!   a rate per source address.
//!
//! A unary request's body must arrive whole within `body_timeout` before it takes a place
//! in any pool: a stranger who sends headers and never a body holds nothing but a stream of
//! their own connection, which the connection limits bound (`connections.rs`). Full pools
//! answer RESOURCE_EXHAUSTED at once rather than queue.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};

use crate::TrustState;

/// Requests one principal may have in progress at once.
pub const PER_PRINCIPAL_CONCURRENCY: usize = 64;
/// Changes a member, licensee or collector may make per second (and save up to
/// `CHANGES_BURST`): each is logged, so this bounds how fast one of them can grow the log.
/// Trustees act for the union and are not limited here.
pub const CHANGES_PER_PRINCIPAL_PER_SECOND: f64 = 1.0;
pub const CHANGES_BURST: f64 = 120.0;
/// The methods that change logged state on behalf of a member, licensee or collector.
const LOGGED_CHANGES: [&str; 9] = [
    "/datatrust.v1.TermsService/CastBallot",
    "/datatrust.v1.ConsentService/SetConsent",
    "/datatrust.v1.LicenseService/RequestLicense",
    "/datatrust.v1.TrainingService/ReportTrainingUse",
    "/datatrust.v1.TrainingService/DeclareNoUse",
    "/datatrust.v1.MemberService/AuthorizeCollector",
    "/datatrust.v1.MemberService/RevokeCollector",
    "/datatrust.v1.ReleaseService/CreateRelease",
    "/datatrust.v1.MemberDataService/EraseMyData",
];
/// Methods whose requests are streams: their bodies are not read whole before admission.
const CLIENT_STREAMING: [&str; 1] = ["/datatrust.v1.IngestService/Upload"];

/// Limits of the admission layer.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionLimits {
    /// Signed-in requests in progress at once, all principals together.
    pub authenticated: usize,
    /// Requests in progress at once from callers who are not signed in.
    pub anonymous: usize,
    /// Requests per second one source address may make without signing in (and the burst
    /// it may save up: twice that).
    pub anonymous_per_source_per_second: u32,
    /// A unary request's whole body must arrive within this.
    pub body_timeout: Duration,
    /// Largest request body read whole (the message limit plus framing).
    pub max_body_bytes: usize,
}

#[derive(Clone)]
pub struct AdmissionLayer {
    shared: Arc<Shared>,
}

struct Shared {
    state: TrustState,
    limits: AdmissionLimits,
    health: Arc<Semaphore>,
    authenticated: Arc<Semaphore>,
    anonymous: Arc<Semaphore>,
    per_principal: Mutex<HashMap<[u8; 32], usize>>,
    per_source: crate::limits::TokenBuckets<IpAddr>,
    changes: crate::limits::TokenBuckets<[u8; 32]>,
}

impl AdmissionLayer {
    pub fn new(state: TrustState, limits: AdmissionLimits) -> AdmissionLayer {
        AdmissionLayer {
            shared: Arc::new(Shared {
                state,
                limits,
                health: Arc::new(Semaphore::new(64)),
                authenticated: Arc::new(Semaphore::new(limits.authenticated)),
                anonymous: Arc::new(Semaphore::new(limits.anonymous)),
                per_principal: Mutex::new(HashMap::new()),
                per_source: crate::limits::TokenBuckets::new(
                    f64::from(limits.anonymous_per_source_per_second),
                    2.0 * f64::from(limits.anonymous_per_source_per_second),
                    65_536,
                ),
                changes: crate::limits::TokenBuckets::new(
                    CHANGES_PER_PRINCIPAL_PER_SECOND,
                    CHANGES_BURST,
                    100_000,
                ),
            }),
        }
    }
}

impl AdmissionLayer {
    /// Admits a call that arrives another way than gRPC (the portal's JSON transport) to
    /// the same pools: hold the ticket while serving it.
    pub(crate) fn admit(
        &self,
        path: &str,
        headers: &tonic::codegen::http::HeaderMap,
        source: Option<IpAddr>,
    ) -> Result<Ticket, Status> {
        self.shared.admit(path, headers, source)
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// What a request holds while it is served: its pool's place and its principal's count.
pub(crate) struct Ticket {
    _permit: OwnedSemaphorePermit,
    _principal: Option<PrincipalCount>,
}

/// One request counted against its principal; uncounted when dropped.
struct PrincipalCount {
    key: [u8; 32],
    shared: Arc<Shared>,
}

impl Drop for PrincipalCount {
    fn drop(&mut self) {
        let mut counts = self
            .shared
            .per_principal
            .lock()
            .expect("principal counts poisoned");
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

impl Shared {
    /// Decides which pool a request for `path` goes to and takes its place there, or
    /// refuses. `source` is the caller's address, where known.
    fn admit(
        self: &Arc<Self>,
        path: &str,
        headers: &tonic::codegen::http::HeaderMap,
        source: Option<IpAddr>,
    ) -> Result<Ticket, Status> {
        if path.starts_with("/grpc.health.") {
            let permit = Arc::clone(&self.health)
                .try_acquire_owned()
                .map_err(|_| busy("health checks"))?;
            return Ok(Ticket {
                _permit: permit,
                _principal: None,
            });
        }
        let session = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .and_then(|token| {
                // A store that cannot answer admits the call as anonymous; its handler then
                // answers UNAVAILABLE.
                self.state
                    .sessions()
                    .session(token.trim(), self.state.clock().now())
                    .ok()
                    .flatten()
            });
        match session {
            Some(session) => {
                let key = *session.public_key.as_bytes();
                if session.role != datatrust_core::Role::Trustee
                    && LOGGED_CHANGES.contains(&path)
                    && !self.changes.take(key)
                {
                    return Err(Status::resource_exhausted(
                        "too many changes from your key in a short time (each is logged); wait a moment",
                    ));
                }
                {
                    let mut counts = self
                        .per_principal
                        .lock()
                        .expect("principal counts poisoned");
                    let count = counts.entry(key).or_default();
                    if *count >= PER_PRINCIPAL_CONCURRENCY {
                        return Err(Status::resource_exhausted(format!(
                            "too many requests of yours in progress (at most {PER_PRINCIPAL_CONCURRENCY}); wait for some to finish"
                        )));
                    }
                    *count += 1;
                }
                // Counted from here: dropped (uncounted) on every way out.
                let counted = PrincipalCount {
                    key,
                    shared: Arc::clone(self),
                };
                let permit = Arc::clone(&self.authenticated)
                    .try_acquire_owned()
                    .map_err(|_| busy("signed-in requests"))?;
                Ok(Ticket {
                    _permit: permit,
                    _principal: Some(counted),
                })
            }
            None => {
                // Sign-in work (challenges, signature checks, invitations) is rated per
                // source; public reads of the log are not (monitors read many entries), and
                // share the anonymous pool.
                if path.starts_with("/datatrust.v1.AuthService/")
                    && let Some(source) = source
                {
                    self.charge_source(source)?;
                }
                let permit = Arc::clone(&self.anonymous)
                    .try_acquire_owned()
                    .map_err(|_| busy("requests from callers who are not signed in"))?;
                Ok(Ticket {
                    _permit: permit,
                    _principal: None,
                })
            }
        }
    }

    /// One request from `source` without signing in: a token bucket per address.
    fn charge_source(&self, source: IpAddr) -> Result<(), Status> {
        if self.per_source.take(source) {
            Ok(())
        } else {
            Err(Status::resource_exhausted(
                "too many requests from your address without signing in; slow down",
            ))
        }
    }
}

fn busy(pool: &str) -> Status {
    Status::resource_exhausted(format!(
        "the trust is at its limit of {pool} in progress; try again shortly"
    ))
}

fn source<B>(request: &Request<B>) -> Option<IpAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
        .map(|address| address.ip())
}

impl<S> tower::Service<Request<Body>> for Admission<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, S::Error>> + Send>,
    >;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The ready clone serves this request; a fresh clone stays for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let streaming = CLIENT_STREAMING.contains(&request.uri().path());
            let request = if streaming {
                request
            } else {
                let (parts, body) = request.into_parts();
                let limited = http_body_util::Limited::new(body, shared.limits.max_body_bytes);
                match tokio::time::timeout(shared.limits.body_timeout, limited.collect()).await {
                    Ok(Ok(collected)) => Request::from_parts(
                        parts,
                        Body::new(http_body_util::Full::new(collected.to_bytes())),
                    ),
                    Ok(Err(error)) => {
                        let status = if error.is::<http_body_util::LengthLimitError>() {
                            Status::resource_exhausted(format!(
                                "the request is larger than the trust's limit of {} bytes",
                                shared.limits.max_body_bytes
                            ))
                        } else {
                            Status::cancelled("the request's body could not be read")
                        };
                        return Ok(status.into_http());
                    }
                    Err(_) => {
                        return Ok(Status::deadline_exceeded(format!(
                            "the request's body did not arrive within {} s",
                            shared.limits.body_timeout.as_secs()
                        ))
                        .into_http());
                    }
                }
            };
            let ticket =
                match shared.admit(request.uri().path(), request.headers(), source(&request)) {
                    Ok(ticket) => ticket,
                    Err(status) => return Ok(status.into_http()),
                };
            let response = inner.call(request).await;
            drop(ticket);
            response
        })
    }
}
