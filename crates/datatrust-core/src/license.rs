//! Licenses: the text of a license note (FORMATS.md, "Licenses"), its id, and how a license
//! is derived from an approved request under the active terms.
//!
//! ```text
//! datatrust license v1
//! id: <hex, first 16 bytes of SHA-256 of the text without this line>
//! trust: <origin>
//! licensee: <base64 ed25519 key>
//! purpose: <token>
//! categories: <token>,<token>...
//! data-from: <unix seconds>
//! data-to: <unix seconds>
//! model-family: <token>
//! max-training-runs: <n>
//! not-before: <unix seconds>
//! expires: <unix seconds>
//! terms-sha256: <hex>
//! currency: <ISO 4217>
//! license-fee: <minor units>
//! fee-per-run: <minor units>
//! fee-per-record: <category>=<minor units>,...
//! ```
//!
//! Signed as a note by the license key (`<origin>/license`). The id hashes every other line,
//! never the signature, so it is stable however many times the note is re-signed.

use sha2::{Digest, Sha256};

use crate::terms::{LicenseRequestTerms, Terms};
use crate::{FieldError, PublicKey, UnixSeconds};

pub const FORMAT_LINE: &str = "datatrust license v1";
const SECONDS_PER_DAY: i64 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    pub id: String,
    pub trust: String,
    pub licensee: PublicKey,
    pub purpose: String,
    pub categories: Vec<String>,
    pub data_from: UnixSeconds,
    pub data_to: UnixSeconds,
    pub model_family: String,
    pub max_training_runs: u32,
    pub not_before: UnixSeconds,
    pub expires: UnixSeconds,
    pub terms_sha256: [u8; 32],
    pub currency: String,
    pub license_fee: u64,
    pub fee_per_run: u64,
    /// (category, minor units per record), in the terms' order.
    pub fee_per_record: Vec<(String, u64)>,
}

impl License {
    /// The license an approved request yields under `terms`, valid from `now` for the
    /// requested number of days. The request must already have passed `check_request`.
    pub fn grant(
        trust: &str,
        licensee: PublicKey,
        request: &LicenseRequestTerms,
        terms: &Terms,
        now: UnixSeconds,
    ) -> License {
        let royalties = &terms.policy.royalties;
        let fee_per_record = request
            .categories
            .iter()
            .map(|category| {
                (
                    category.clone(),
                    royalties.per_record.get(category).copied().unwrap_or(0),
                )
            })
            .collect();
        let mut license = License {
            id: String::new(),
            trust: trust.to_owned(),
            licensee,
            purpose: request.purpose.clone(),
            categories: request.categories.clone(),
            data_from: request.data_from,
            data_to: request.data_to,
            model_family: request.model_family.clone(),
            max_training_runs: request.max_training_runs,
            not_before: now,
            expires: now.plus_seconds(i64::from(request.duration_days) * SECONDS_PER_DAY),
            terms_sha256: terms.hash,
            currency: royalties.currency.clone(),
            license_fee: royalties.license_fee.max(royalties.minimum_per_license),
            fee_per_run: royalties.per_training_run,
            fee_per_record,
        };
        license.id = license.compute_id();
        license
    }

    fn body(&self) -> String {
        let fee_per_record: Vec<String> = self
            .fee_per_record
            .iter()
            .map(|(category, fee)| format!("{category}={fee}"))
            .collect();
        format!(
            "trust: {}\nlicensee: {}\npurpose: {}\ncategories: {}\ndata-from: {}\ndata-to: {}\nmodel-family: {}\nmax-training-runs: {}\nnot-before: {}\nexpires: {}\nterms-sha256: {}\ncurrency: {}\nlicense-fee: {}\nfee-per-run: {}\nfee-per-record: {}\n",
            self.trust,
            self.licensee.to_base64(),
            self.purpose,
            self.categories.join(","),
            self.data_from,
            self.data_to,
            self.model_family,
            self.max_training_runs,
            self.not_before,
            self.expires,
            hex::encode(self.terms_sha256),
            self.currency,
            self.license_fee,
            self.fee_per_run,
            fee_per_record.join(","),
        )
    }

    fn compute_id(&self) -> String {
        let digest = Sha256::digest(format!("{FORMAT_LINE}\n{}", self.body()).as_bytes());
        hex::encode(&digest[..16])
    }

    /// The note text (before signing).
    pub fn to_text(&self) -> String {
        format!("{FORMAT_LINE}\nid: {}\n{}", self.id, self.body())
    }

    /// Parses license text, checking the format, every field, and that the id is the hash
    /// of the rest.
    pub fn parse(text: &str) -> Result<License, FieldError> {
        let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
        if lines.next() != Some(FORMAT_LINE) {
            return Err(FieldError::new(
                "license",
                format!("the first line must be {FORMAT_LINE:?}"),
            ));
        }
        let mut next = |key: &str| -> Result<String, FieldError> {
            let line = lines
                .next()
                .ok_or_else(|| FieldError::new(key, "missing"))?;
            line.strip_prefix(&format!("{key}: "))
                .map(str::to_owned)
                .ok_or_else(|| {
                    FieldError::new(
                        key,
                        format!(
                            "expected the {key} line here, found {}",
                            crate::validation::quoted(line)
                        ),
                    )
                })
        };
        let number = |key: &str, text: String| -> Result<i64, FieldError> {
            text.parse()
                .map_err(|_| FieldError::new(key, "not a number"))
        };
        let id = next("id")?;
        let trust = next("trust")?;
        let licensee = PublicKey::from_base64(&next("licensee")?, "licensee")?;
        let purpose = next("purpose")?;
        let categories = next("categories")?.split(',').map(str::to_owned).collect();
        let data_from = UnixSeconds(number("data-from", next("data-from")?)?);
        let data_to = UnixSeconds(number("data-to", next("data-to")?)?);
        let model_family = next("model-family")?;
        let max_training_runs = next("max-training-runs")?
            .parse()
            .map_err(|_| FieldError::new("max-training-runs", "not a number"))?;
        let not_before = UnixSeconds(number("not-before", next("not-before")?)?);
        let expires = UnixSeconds(number("expires", next("expires")?)?);
        let terms_sha256 = hex::decode(next("terms-sha256")?)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| FieldError::new("terms-sha256", "must be 64 hex digits"))?;
        let currency = next("currency")?;
        let license_fee = next("license-fee")?
            .parse()
            .map_err(|_| FieldError::new("license-fee", "not a number"))?;
        let fee_per_run = next("fee-per-run")?
            .parse()
            .map_err(|_| FieldError::new("fee-per-run", "not a number"))?;
        let fee_per_record = next("fee-per-record")?
            .split(',')
            .filter(|item| !item.is_empty())
            .map(|item| {
                let (category, fee) = item
                    .split_once('=')
                    .ok_or_else(|| FieldError::new("fee-per-record", "expected category=amount"))?;
                Ok((
                    category.to_owned(),
                    fee.parse()
                        .map_err(|_| FieldError::new("fee-per-record", "not a number"))?,
                ))
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        if lines.next().is_some() {
            return Err(FieldError::new(
                "license",
                "unexpected lines after fee-per-record",
            ));
        }
        let license = License {
            id,
            trust,
            licensee,
            purpose,
            categories,
            data_from,
            data_to,
            model_family,
            max_training_runs,
            not_before,
            expires,
            terms_sha256,
            currency,
            license_fee,
            fee_per_run,
            fee_per_record,
        };
        if license.compute_id() != license.id {
            return Err(FieldError::new("id", "is not the hash of the license text"));
        }
        Ok(license)
    }

    /// Within its validity window at `now`.
    pub fn is_valid_at(&self, now: UnixSeconds) -> bool {
        self.not_before <= now && now < self.expires
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::NoteSigner;
    use crate::terms::tests::EXAMPLE;

    fn licensee() -> PublicKey {
        NoteSigner::new("l", [3; 32]).unwrap().public_key()
    }

    #[test]
    fn text_round_trips_and_the_id_binds_every_field() {
        let terms = Terms::parse(EXAMPLE).unwrap();
        let request = LicenseRequestTerms {
            purpose: "computer-use-agent-training".into(),
            categories: vec!["pointer".into(), "screenshots".into()],
            data_from: UnixSeconds(100),
            data_to: UnixSeconds(200),
            model_family: "acme-agent".into(),
            max_training_runs: 5,
            duration_days: 30,
        };
        let license = License::grant(
            "trust.test",
            licensee(),
            &request,
            &terms,
            UnixSeconds(1_000),
        );
        let text = license.to_text();
        assert_eq!(License::parse(&text).unwrap(), license);
        assert_eq!(
            license.fee_per_record,
            vec![("pointer".into(), 1), ("screenshots".into(), 20)]
        );
        let tampered = text.replace("max-training-runs: 5", "max-training-runs: 50");
        assert_eq!(License::parse(&tampered).unwrap_err().field, "id");
        assert!(license.is_valid_at(UnixSeconds(1_000)));
        assert!(!license.is_valid_at(license.expires));
    }

    /// The example agreement without one category's rule and fee.
    fn without_category(document: &str, category: &str) -> String {
        let block_start = document
            .find(&format!("[[policy.categories]]\nname = \"{category}\"\n"))
            .expect("the category's block");
        let block_end = block_start
            + document[block_start..]
                .find("\n\n")
                .expect("the block's end")
            + 2;
        let mut result = format!("{}{}", &document[..block_start], &document[block_end..]);
        let fee_start = result
            .find(&format!("\n{category} = "))
            .expect("the category's fee")
            + 1;
        let fee_end = fee_start + result[fee_start..].find('\n').expect("the fee line's end") + 1;
        result.replace_range(fee_start..fee_end, "");
        result
    }

    fn arbitrary_token() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "computer-use-agent-training",
            "accessibility-research",
            "advertising",
            "individual-productivity-monitoring",
            "evaluate-discipline-or-dismiss-contributing-workers",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        /// No license the trust grants ever carries a purpose or category the terms do not
        /// allow, or outlives the terms' longest duration.
        #[test]
        fn granted_licenses_never_exceed_the_terms(
            purpose in arbitrary_token(),
            categories in prop::collection::vec(prop::sample::select(vec!["keystrokes", "pointer", "clicks", "webcam", "screenshots", "audio"]), 0..5),
            duration_days in 0u32..2000,
            max_license_days in 1u32..400,
            allowed in prop::collection::btree_set(prop::sample::select(vec!["keystrokes", "pointer", "clicks", "screenshots"]), 1..4),
            data_from in 0i64..100_000_000,
            length in 1i64..10_000_000,
        ) {
            let mut document = EXAMPLE.replace("max_license_days = 365", &format!("max_license_days = {max_license_days}"));
            for category in ["keystrokes", "pointer", "clicks", "screenshots"] {
                if !allowed.contains(category) {
                    document = without_category(&document, category);
                }
            }
            let terms = Terms::parse(&document).unwrap();
            prop_assert_eq!(terms.policy.categories.len(), allowed.len() + 2, "scrolls and focus stay");
            let now = UnixSeconds(100_000_000);
            let request = LicenseRequestTerms {
                purpose,
                categories: categories.into_iter().map(str::to_owned).collect(),
                data_from: UnixSeconds(data_from),
                data_to: UnixSeconds(data_from + length),
                model_family: "acme".into(),
                max_training_runs: 3,
                duration_days,
            };
            if terms.check_request(&request, now).is_ok() {
                let license = License::grant("trust.test", licensee(), &request, &terms, now);
                prop_assert!(terms.policy.purposes.contains(&license.purpose));
                prop_assert!(!terms.policy.prohibited_uses.contains(&license.purpose));
                for category in &license.categories {
                    prop_assert!(terms.policy.categories.iter().any(|rule| &rule.name == category));
                }
                prop_assert!(license.expires.0 - license.not_before.0 <= i64::from(terms.policy.max_license_days) * SECONDS_PER_DAY);
                prop_assert_eq!(license.terms_sha256, terms.hash);
            }
        }
    }
}
