//! `serve` configuration: each setting comes from its flag, else its `DATATRUST_*` environment
//! variable, else the config file (`--config`), else its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use datatrust_core::Origin;
use datatrust_server::{ServeOptions, TlsFiles};
use serde::Deserialize;

pub const DEFAULT_DATA_DIR: &str = "./datatrust-data";
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50051";
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_ORIGIN: &str = "datatrust.localhost";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (keys in snake_case).
    #[arg(long, env = "DATATRUST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the trust keeps its keys and database [default: ./datatrust-data]
    #[arg(long, env = "DATATRUST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep the trust's key files (log.key, license.key, data.key) here instead of
    /// <data-dir>/keys: a directory apart, e.g. a mounted secret. Key files others may read
    /// are refused
    #[arg(long, env = "DATATRUST_KEYS_DIR")]
    pub keys_dir: Option<PathBuf>,
    /// Keep the trust's log and state in PostgreSQL (a libpq connection string or
    /// postgres:// URL) instead of the data directory's embedded store; the keys stay in
    /// the data directory. Several nodes may serve one database: see the README, "Running
    /// on several machines".
    #[arg(long, env = "DATATRUST_DATABASE")]
    pub database: Option<String>,
    /// The PostgreSQL schema that holds the trust [default: datatrust]
    #[arg(long, env = "DATATRUST_DATABASE_SCHEMA")]
    pub database_schema: Option<String>,
    /// gRPC listen address [default: 127.0.0.1:50051]
    #[arg(long, env = "DATATRUST_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// HTTP listen address (health, later the log's tiles and pages) [default: 127.0.0.1:8080]
    #[arg(long, env = "DATATRUST_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// The trust's name, for a new trust; must match an existing one [default: datatrust.localhost]
    #[arg(long, env = "DATATRUST_ORIGIN")]
    pub origin: Option<String>,
    /// Log output format [default: text]
    #[arg(long, env = "DATATRUST_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// PEM certificate chain for TLS on gRPC.
    #[arg(long, env = "DATATRUST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on gRPC.
    #[arg(long, env = "DATATRUST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow plaintext gRPC on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long, env = "DATATRUST_INSECURE_PLAINTEXT", num_args = 0..=1, default_missing_value = "true")]
    pub insecure_plaintext: Option<bool>,
    /// Seconds health reports NOT_SERVING before shutdown closes the listeners [default: 0]
    #[arg(long, env = "DATATRUST_DRAIN_SECONDS")]
    pub drain_seconds: Option<u64>,
    /// Largest gRPC message, each way, in bytes [default: 4194304]
    #[arg(long, env = "DATATRUST_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Longest a request may run, in seconds [default: 30]
    #[arg(long, env = "DATATRUST_REQUEST_TIMEOUT_SECONDS")]
    pub request_timeout_seconds: Option<u64>,
    /// How often licensees with overdue invoices are suspended, in seconds [default: 60]
    #[arg(long, env = "DATATRUST_DUTIES_INTERVAL_SECONDS")]
    pub duties_interval_seconds: Option<u64>,
    /// Connections each listener holds at once [default: 8192]
    #[arg(long, env = "DATATRUST_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connections each listener holds at once from one source address [default: 512]
    #[arg(long, env = "DATATRUST_MAX_CONNECTIONS_PER_SOURCE")]
    pub max_connections_per_source: Option<usize>,
    /// A connection that sends nothing for this many seconds is closed [default: 60]
    #[arg(long, env = "DATATRUST_CONNECTION_IDLE_SECONDS")]
    pub connection_idle_seconds: Option<u64>,
    /// Sign-in calls per second one address may make (twice that in a burst) [default: 200]
    #[arg(long, env = "DATATRUST_ANONYMOUS_REQUESTS_PER_SECOND")]
    pub anonymous_requests_per_second: Option<u32>,
    /// Below this many MiB free on the data directory's disk, writes are refused [default: 256]
    #[arg(long, env = "DATATRUST_MIN_FREE_DISK_MB")]
    pub min_free_disk_mb: Option<u64>,
    /// The embedded store's page cache, in MiB: most of the server's memory on a busy trust
    /// [default: 1024]
    #[arg(long, env = "DATATRUST_CACHE_MB")]
    pub cache_mb: Option<u64>,
    /// Where `datatrust admin backup` has the server write copies of the trust (the data,
    /// and the key files apart), and the journal of erasures since; better another disk
    #[arg(long, env = "DATATRUST_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
}

/// The config file: the same settings, all optional; unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    keys_dir: Option<PathBuf>,
    database: Option<String>,
    database_schema: Option<String>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    origin: Option<String>,
    log_format: Option<LogFormat>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    insecure_plaintext: Option<bool>,
    drain_seconds: Option<u64>,
    max_message_bytes: Option<usize>,
    request_timeout_seconds: Option<u64>,
    duties_interval_seconds: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_source: Option<usize>,
    connection_idle_seconds: Option<u64>,
    anonymous_requests_per_second: Option<u32>,
    min_free_disk_mb: Option<u64>,
    cache_mb: Option<u64>,
    backup_dir: Option<PathBuf>,
}

/// `DATATRUST_KEYS_DIR`: where the trust's key files are when they are not in
/// `<data-dir>/keys` (the `admin` commands and `trust info --data-dir` read it; `serve` also
/// takes `--keys-dir`).
pub fn keys_dir_from_environment() -> Option<PathBuf> {
    std::env::var_os("DATATRUST_KEYS_DIR")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// Everything `serve` needs, resolved.
#[derive(Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// Where the key files are, when not in `<data_dir>/keys`.
    pub keys_dir: Option<PathBuf>,
    /// PostgreSQL to keep the log and state in, and its schema; `None`: the embedded store.
    pub database: Option<(String, String)>,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Only when given explicitly: it must then match an existing trust.
    pub origin: Option<Origin>,
    pub log_format: LogFormat,
    pub options: ServeOptions,
    /// The embedded store's page cache, in bytes.
    pub cache_bytes: u64,
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let file = match &self.config {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        let origin = self
            .origin
            .or(file.origin)
            .map(|text| Origin::parse(&text))
            .transpose()
            .context("--origin")?;
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(certificate), Some(private_key)) => Some(TlsFiles {
                certificate,
                private_key,
            }),
            (None, None) => None,
            _ => anyhow::bail!("TLS needs both --tls-cert and --tls-key"),
        };
        let defaults = ServeOptions::default();
        let options = ServeOptions {
            tls,
            insecure_plaintext: self
                .insecure_plaintext
                .or(file.insecure_plaintext)
                .unwrap_or(false),
            max_message_bytes: self
                .max_message_bytes
                .or(file.max_message_bytes)
                .unwrap_or(defaults.max_message_bytes),
            request_timeout: self
                .request_timeout_seconds
                .or(file.request_timeout_seconds)
                .map(Duration::from_secs)
                .unwrap_or(defaults.request_timeout),
            drain_grace: Duration::from_secs(
                self.drain_seconds.or(file.drain_seconds).unwrap_or(0),
            ),
            duties_interval: match self
                .duties_interval_seconds
                .or(file.duties_interval_seconds)
            {
                Some(0) => anyhow::bail!("--duties-interval-seconds: must be at least 1"),
                Some(seconds) => Duration::from_secs(seconds),
                None => defaults.duties_interval,
            },
            connections: datatrust_server::ConnectionLimits {
                total: match self.max_connections.or(file.max_connections) {
                    Some(0) => anyhow::bail!("--max-connections: must be at least 1"),
                    Some(total) => total,
                    None => defaults.connections.total,
                },
                per_source: match self
                    .max_connections_per_source
                    .or(file.max_connections_per_source)
                {
                    Some(0) => anyhow::bail!("--max-connections-per-source: must be at least 1"),
                    Some(per_source) => per_source,
                    None => defaults.connections.per_source,
                },
                idle: match self
                    .connection_idle_seconds
                    .or(file.connection_idle_seconds)
                {
                    Some(seconds @ 0..3) => anyhow::bail!(
                        "--connection-idle-seconds: must be at least 3 (got {seconds}): clients are pinged every third of it"
                    ),
                    Some(seconds) => Duration::from_secs(seconds),
                    None => defaults.connections.idle,
                },
            },
            anonymous_per_source_per_second: match self
                .anonymous_requests_per_second
                .or(file.anonymous_requests_per_second)
            {
                Some(0) => anyhow::bail!("--anonymous-requests-per-second: must be at least 1"),
                Some(rate) => rate,
                None => defaults.anonymous_per_source_per_second,
            },
            minimum_free_disk_bytes: self
                .min_free_disk_mb
                .or(file.min_free_disk_mb)
                .map_or(defaults.minimum_free_disk_bytes, |megabytes| {
                    megabytes.saturating_mul(1024 * 1024)
                }),
            backup_dir: self.backup_dir.clone().or(file.backup_dir.clone()),
            ..defaults
        };
        let database = self.database.or(file.database).map(|database| {
            let schema = self
                .database_schema
                .clone()
                .or(file.database_schema.clone())
                .unwrap_or_else(|| "datatrust".to_owned());
            (database, schema)
        });
        let cache_bytes = match self.cache_mb.or(file.cache_mb) {
            Some(0) => anyhow::bail!("--cache-mb: must be at least 1"),
            Some(megabytes) => megabytes.saturating_mul(1024 * 1024),
            None => datatrust_store::DEFAULT_CACHE_BYTES,
        };
        Ok(ServeConfig {
            cache_bytes,
            keys_dir: self.keys_dir.clone().or(file.keys_dir.clone()),
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            database,
            grpc_addr: self
                .grpc_addr
                .or(file.grpc_addr)
                .unwrap_or_else(|| DEFAULT_GRPC_ADDR.parse().expect("default address parses")),
            http_addr: self
                .http_addr
                .or(file.http_addr)
                .unwrap_or_else(|| DEFAULT_HTTP_ADDR.parse().expect("default address parses")),
            origin,
            log_format: self
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            options,
        })
    }
}

fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in the config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("datatrust.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/trust\"\ngrpc_addr = \"127.0.0.1:7000\"\norigin = \"file.example\"\n",
        )
        .unwrap();
        let arguments = ServeArgs {
            config: Some(path),
            grpc_addr: Some("127.0.0.1:9000".parse().unwrap()),
            ..ServeArgs::default()
        };
        let config = arguments.resolve().unwrap();
        assert_eq!(config.grpc_addr.port(), 9000);
        assert_eq!(config.data_dir, PathBuf::from("/srv/trust"));
        assert_eq!(config.origin.unwrap().as_str(), "file.example");
        assert_eq!(config.http_addr.port(), 8080);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn unknown_keys_and_bad_origins_are_refused() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("datatrust.toml");
        std::fs::write(&path, "grpc_adress = \"127.0.0.1:7000\"\n").unwrap();
        let error = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{error:#}").contains("grpc_adress"), "{error:#}");
        let error = ServeArgs {
            origin: Some("has space".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{error:#}").contains("origin"), "{error:#}");
    }

    #[test]
    fn the_example_config_in_deploy_is_valid() {
        let example = include_str!("../../../deploy/datatrust.toml");
        let parsed: FileConfig = toml::from_str(example).unwrap();
        assert_eq!(parsed.origin.as_deref(), Some("trust.example-union.org"));
        assert!(parsed.tls_cert.is_some() && parsed.tls_key.is_some());
    }
}
