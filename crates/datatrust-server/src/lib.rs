//! The only crate that knows gRPC and HTTP. Handlers decode requests into core types, call the
//! core, and encode the answer; `serve` runs both listeners until shutdown, then flushes.

mod auth;
mod http_log;
mod https;
mod options;
mod portal;
mod serve;
mod services;
mod state;
mod status;

pub use options::{OptionsError, ServeOptions, TlsFiles};
pub use serve::{ServeError, serve};
pub use state::{StartError, TrustState, now};
