//! The only crate that knows gRPC and HTTP. Handlers decode requests into core types, call the
//! core, and encode the answer; `serve` runs both listeners until shutdown, then flushes.

mod admission;
mod auth;
mod connections;
mod http_log;
mod http_server;
mod https;
mod limits;
mod metrics;
mod open;
mod options;
mod paging;
mod portal;
mod serve;
mod services;
mod starting;
mod state;
mod status;

pub use admission::AdmissionLimits;
pub use connections::ConnectionLimits;
pub use open::{
    OpenTrust, OpenTrustError, Storage, open_trust, open_trust_with_keys, postgres_storage,
    published_file,
};
pub use options::{OptionsError, ServeOptions, TlsFiles};
pub use serve::{ServeError, serve};
pub use starting::{Starting, answer_while_starting};
pub use state::{Clock, ERASURE_JOURNAL, REFUSED_REPORTS_PER_HOUR, StartError, TrustState, now};
