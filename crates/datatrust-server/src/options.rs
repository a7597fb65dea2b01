//! What `serve` needs to know besides the trust itself: limits, TLS, timing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// PEM files for TLS on the gRPC listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub tls: Option<TlsFiles>,
    /// Serve plaintext gRPC on a non-loopback address anyway (behind a TLS-terminating proxy).
    pub insecure_plaintext: bool,
    /// Largest request or response message, in bytes, each way.
    pub max_message_bytes: usize,
    /// Requests served at once on one connection; further ones wait.
    pub concurrency_per_connection: usize,
    /// Requests served at once across all connections; further ones wait.
    pub concurrency_total: usize,
    /// Longest time a request may take; a shorter grpc-timeout from the client wins.
    pub request_timeout: Duration,
    /// How long a bearer token stays valid.
    pub token_lifetime: Duration,
    /// After a shutdown signal, how long health reports NOT_SERVING before the listeners
    /// close, so load balancers stop sending traffic first.
    pub drain_grace: Duration,
    /// How often licensees with overdue invoices are looked for and suspended.
    pub duties_interval: Duration,
    /// Where `Backup` writes copies of the trust, and the journal of erasures since
    /// (`admin restore` replays it); `None`: backups are refused.
    pub backup_dir: Option<std::path::PathBuf>,
    /// Connections each listener holds at once, in total and per source address, and how
    /// long one may send nothing before it is closed.
    pub connections: crate::ConnectionLimits,
    /// Requests unauthenticated callers may make from one address per second (twice that
    /// in a burst), and how many of theirs are served at once, all sources together.
    pub anonymous_per_source_per_second: u32,
    pub anonymous_concurrency: usize,
    /// A unary request's body must arrive within this; an upload stream may be silent
    /// between batches for `idle_upload` at most.
    pub body_timeout: Duration,
    pub idle_upload: Duration,
    /// Below this much free space on the database's disk, writes are refused (and health
    /// says so) until space returns.
    pub minimum_free_disk_bytes: u64,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            tls: None,
            insecure_plaintext: false,
            max_message_bytes: 4 * 1024 * 1024,
            concurrency_per_connection: 64,
            concurrency_total: 1024,
            request_timeout: Duration::from_secs(30),
            token_lifetime: Duration::from_secs(15 * 60),
            drain_grace: Duration::ZERO,
            backup_dir: None,
            duties_interval: Duration::from_secs(60),
            connections: crate::ConnectionLimits {
                total: 8192,
                per_source: 512,
                idle: Duration::from_secs(60),
            },
            anonymous_per_source_per_second: 200,
            anonymous_concurrency: 256,
            body_timeout: Duration::from_secs(5),
            idle_upload: Duration::from_secs(120),
            minimum_free_disk_bytes: datatrust_store::DEFAULT_MINIMUM_FREE_BYTES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error(
        "refusing plaintext gRPC on the non-loopback address {0}: configure TLS with --tls-cert \
         and --tls-key, or pass --insecure-plaintext if a TLS proxy sits in front"
    )]
    PlaintextOnPublicAddress(SocketAddr),
    #[error("{0}")]
    Invalid(String),
}

impl ServeOptions {
    /// Checks the options against the address gRPC will listen on.
    pub fn check(&self, grpc_address: SocketAddr) -> Result<(), OptionsError> {
        if self.tls.is_none() && !self.insecure_plaintext && !grpc_address.ip().is_loopback() {
            return Err(OptionsError::PlaintextOnPublicAddress(grpc_address));
        }
        if self.max_message_bytes < 1024 {
            return Err(OptionsError::Invalid(
                "max_message_bytes: must be at least 1024".into(),
            ));
        }
        if self.concurrency_per_connection == 0 || self.concurrency_total == 0 {
            return Err(OptionsError::Invalid(
                "concurrency limits must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_refused_off_loopback_unless_explicit() {
        let public: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:50051".parse().unwrap();
        let ipv6_loopback: SocketAddr = "[::1]:50051".parse().unwrap();
        let options = ServeOptions::default();
        assert!(matches!(
            options.check(public),
            Err(OptionsError::PlaintextOnPublicAddress(_))
        ));
        assert!(options.check(loopback).is_ok());
        assert!(options.check(ipv6_loopback).is_ok());
        let explicit = ServeOptions {
            insecure_plaintext: true,
            ..ServeOptions::default()
        };
        assert!(explicit.check(public).is_ok());
        let with_tls = ServeOptions {
            tls: Some(TlsFiles {
                certificate: "cert.pem".into(),
                private_key: "key.pem".into(),
            }),
            ..ServeOptions::default()
        };
        assert!(with_tls.check(public).is_ok());
    }
}
