//! The datatrust domain: who belongs to the trust, in which role, how they prove it, and the
//! storage the domain needs. Pure code: no I/O, no async runtime, no wire or storage formats.

pub mod auth;
pub mod collectors;
pub mod commit;
pub mod compensation;
pub mod consent;
pub mod events;
pub mod governance;
pub mod ids;
pub mod keys;
pub mod license;
pub mod licenses;
pub mod log_entry;
pub mod membership;
pub mod memory_store;
pub mod merkle;
pub mod note;
pub mod origin;
pub mod principal;
pub mod ratification;
pub mod recovery;
pub mod registry;
pub mod release;
pub mod replay;
pub mod retention;
pub mod safety;
pub mod store;
pub mod table_store;
pub mod telemetry;
pub mod terms;
pub mod time;
pub mod transparency;
pub mod validation;

#[cfg(any(test, feature = "contract-tests"))]
pub mod store_contract;

pub use ids::{Amount, ChargeId, Currency, LicenseId, ReleaseId, RequestId, TermsHash};
pub use keys::{KeyId, NoteSigner, NoteVerifier, PublicKey};
pub use origin::Origin;
pub use principal::{CollectorAuthorization, DisplayName, Principal, PrincipalStatus, Role};
pub use time::UnixSeconds;
pub use validation::FieldError;
