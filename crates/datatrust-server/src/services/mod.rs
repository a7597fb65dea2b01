//! The gRPC services. Each handler decodes the request into core types, calls the core through
//! `TrustState`, and encodes the answer; the rules live in the core.

mod auth;
mod governance;
mod ledger;
pub(crate) mod log;
mod members;
mod principals;
mod safety;
mod telemetry;
mod trust;

pub use auth::AuthApi;
pub use governance::{ConsentApi, LicenseApi, TermsApi, TrainingApi};
pub use ledger::LedgerApi;
pub use log::LogApi;
pub use members::{CollectorApi, MemberApi};
pub use principals::PrincipalApi;
pub use telemetry::{IngestApi, MemberDataApi, ReleaseApi};
pub use trust::TrustApi;
