//! What every handler shares: the registry over the store, the trust's keys, the sessions.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datatrust_core::registry::{DomainError, Registry};
use datatrust_core::store::TrustStore;
use datatrust_core::{NoteSigner, Origin, Principal, UnixSeconds};
use tonic::Status;
use tonic::metadata::MetadataMap;
use tracing::Span;

use crate::auth::{Session, Sessions};
use crate::status;

/// The running trust. Cheap to clone.
#[derive(Clone)]
pub struct TrustState {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry<Arc<dyn TrustStore>>,
    log_signer: NoteSigner,
    license_signer: NoteSigner,
    sessions: Sessions,
}

impl TrustState {
    pub fn new(
        store: Arc<dyn TrustStore>,
        origin: Origin,
        log_signer: NoteSigner,
        license_signer: NoteSigner,
        token_lifetime: Duration,
    ) -> TrustState {
        TrustState {
            inner: Arc::new(Inner {
                registry: Registry::new(store, origin),
                log_signer,
                license_signer,
                sessions: Sessions::new(token_lifetime),
            }),
        }
    }

    pub fn origin(&self) -> &Origin {
        self.inner.registry.origin()
    }

    pub fn log_signer(&self) -> &NoteSigner {
        &self.inner.log_signer
    }

    pub fn license_signer(&self) -> &NoteSigner {
        &self.inner.license_signer
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Makes all stored state durable; called once more at shutdown.
    pub fn flush(&self) -> Result<(), datatrust_core::store::StoreError> {
        self.inner.registry.store().flush()
    }

    /// Runs `operation` on a blocking thread (storage work blocks on disk), in the RPC's span.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Registry<Arc<dyn TrustStore>>) -> Result<T, DomainError>
        + Send
        + 'static,
    ) -> Result<T, Status> {
        let state = self.clone();
        let span = Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| operation(&state.inner.registry)))
            .await
            .map_err(|error| status::internal(&error))?
            .map_err(status::from_domain)
    }

    /// Authenticates the caller from its bearer token, then runs `operation` as that caller.
    pub(crate) async fn as_caller<T: Send + 'static>(
        &self,
        metadata: &MetadataMap,
        operation: impl FnOnce(&Registry<Arc<dyn TrustStore>>, &Principal) -> Result<T, DomainError>
        + Send
        + 'static,
    ) -> Result<T, Status> {
        let session = self.session(metadata)?;
        self.blocking(move |registry| {
            let caller = current_principal(registry, &session)?;
            let span = Span::current();
            span.record("caller_role", caller.role.as_str());
            span.record("caller_key", tracing::field::display(&caller.public_key));
            operation(registry, &caller)
        })
        .await
    }

    /// The session behind the request's bearer token, checked in memory only.
    pub(crate) fn session(&self, metadata: &MetadataMap) -> Result<Session, Status> {
        let header = metadata.get("authorization").ok_or_else(|| {
            Status::unauthenticated(
                "authorization: missing; sign in (CreateChallenge, Login) and send \"authorization: Bearer <token>\"",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization: expected \"Bearer <token>\""))?;
        self.inner.sessions.session(token.trim()).ok_or_else(|| {
            Status::unauthenticated("authorization: token unknown or expired; sign in again")
        })
    }
}

/// The caller's principal as stored now: deactivated keys and changed roles end the session.
fn current_principal(
    registry: &Registry<Arc<dyn TrustStore>>,
    session: &Session,
) -> Result<Principal, DomainError> {
    match registry.active_principal(&session.public_key)? {
        Some(principal) if principal.role == session.role => Ok(principal),
        _ => Err(DomainError::Unauthenticated(
            "authorization: this key is no longer active in that role; sign in again".into(),
        )),
    }
}

/// The wall clock in Unix seconds; the core never reads a clock itself.
pub fn now() -> UnixSeconds {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    UnixSeconds(i64::try_from(seconds).unwrap_or(i64::MAX))
}
