//! Terms: the collective agreement. People write it as a TOML file holding the agreement's
//! text and the machine policy; the trust validates it into `Terms`, whose identity is the
//! SHA-256 of the document's bytes. `check_request` holds a license request against the
//! policy and names the clause and the field that refuse it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{FieldError, UnixSeconds};

/// The prohibited use every agreement carries: the data may never be used to evaluate,
/// discipline or dismiss the workers who contributed it.
pub const ANTI_RETALIATION: &str = "evaluate-discipline-or-dismiss-contributing-workers";
/// Data categories the trust knows how to hold (the telemetry event kinds).
pub const CATEGORIES: [&str; 6] = [
    "keystrokes",
    "pointer",
    "clicks",
    "scrolls",
    "focus",
    "screenshots",
];
/// Transformations the trust knows how to apply before release.
pub const TRANSFORMATIONS: [&str; 6] = [
    "pseudonymise-members",
    "drop-typed-characters",
    "drop-password-fields",
    "drop-window-titles",
    "coarsen-timestamps-to-second",
    "redact-screenshot-text",
];
pub const MAXIMUM_DOCUMENT_BYTES: usize = 256 * 1024;
const SECONDS_PER_DAY: i64 = 86_400;

/// What withdrawing consent means for licenses already granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WithdrawalRule {
    /// The member's data leaves future releases; existing releases stand.
    ExcludeFromFutureReleases,
    /// Licenses that released the member's data are revoked.
    RevokeAffectedLicenses,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DistributionRule {
    /// Shares in proportion to the records each member contributed.
    ProRataRecords,
    /// Equal shares among contributing members.
    EqualShares,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    pub name: String,
    /// Applied, in order, before any record of this category is released.
    pub transformations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Royalties {
    /// ISO 4217 code; every amount is in its minor units.
    pub currency: String,
    pub license_fee: u64,
    pub per_training_run: u64,
    /// Per released record, by category.
    pub per_record: BTreeMap<String, u64>,
    #[serde(default)]
    pub minimum_per_license: u64,
    /// The union fund's share of every charge, in basis points (1/100 of a percent).
    pub union_fund_basis_points: u32,
    pub distribution: DistributionRule,
    /// Days after an invoice before an unpaid one suspends the licensee's licenses.
    pub invoice_grace_days: u32,
    /// Each active license must be accounted for at least this often: a training-use report
    /// or a signed declaration that there was none. 0 (or absent): no periodic duty.
    #[serde(default)]
    pub usage_report_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ratification {
    /// Share of votes cast that must be yes, in percent (more than half is 51).
    pub member_vote_threshold_percent: u32,
    /// Share of members who must vote for the vote to count, in percent.
    pub member_quorum_percent: u32,
    /// Trustees who must countersign the ratified terms (M of the active trustees).
    pub trustee_quorum: u32,
    /// Days a vote stays open after the terms are proposed; at the end it closes by itself.
    #[serde(default = "default_voting_days")]
    pub voting_days: u32,
}

fn default_voting_days() -> u32 {
    14
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub purposes: Vec<String>,
    pub prohibited_uses: Vec<String>,
    pub consent_model: String,
    pub retention_days: u32,
    pub max_license_days: u32,
    pub on_consent_withdrawal: WithdrawalRule,
    pub categories: Vec<CategoryRule>,
    pub royalties: Royalties,
    pub ratification: Ratification,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Agreement {
    title: String,
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    agreement: Agreement,
    policy: Policy,
}

/// A validated terms document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// SHA-256 of `document`: what ballots, countersignatures and licenses name.
    pub hash: [u8; 32],
    pub document: String,
    pub title: String,
    pub text: String,
    pub policy: Policy,
}

/// Why a license request does not fit the terms: the clause and the request field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by the terms, clause {clause}: {field}: {reason}")]
pub struct Refusal {
    pub clause: String,
    pub field: String,
    pub reason: String,
}

/// What a licensee asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRequestTerms {
    pub purpose: String,
    pub categories: Vec<String>,
    pub data_from: UnixSeconds,
    pub data_to: UnixSeconds,
    pub model_family: String,
    pub max_training_runs: u32,
    pub duration_days: u32,
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// Checks what a license request holds that no clause of the terms governs: the run count
/// and the model family's spelling. Errors name the field (not a clause: these are not the
/// terms' refusals).
pub fn check_request_shape(request: &LicenseRequestTerms) -> Result<(), FieldError> {
    if request.max_training_runs == 0 || request.max_training_runs > 100_000 {
        return Err(FieldError::new(
            "max_training_runs",
            "must be between 1 and 100000",
        ));
    }
    if !is_token(&request.model_family) {
        return Err(FieldError::new(
            "model_family",
            "must be 1 to 64 lowercase letters, digits or '-'",
        ));
    }
    Ok(())
}

impl Terms {
    /// Parses and validates a terms document. Errors name the TOML field.
    pub fn parse(document: &str) -> Result<Terms, FieldError> {
        if document.len() > MAXIMUM_DOCUMENT_BYTES {
            return Err(FieldError::new(
                "terms",
                format!("a terms document is at most {MAXIMUM_DOCUMENT_BYTES} bytes"),
            ));
        }
        let parsed: Document = toml::from_str(document).map_err(|error| {
            let at = match error.span() {
                Some(span) => format!(
                    "line {}: ",
                    document[..span.start.min(document.len())]
                        .matches('\n')
                        .count()
                        + 1
                ),
                None => String::new(),
            };
            FieldError::new("terms", format!("{at}{}", error.message()))
        })?;
        let policy = parsed.policy;
        // The agreement is what members vote on: what they read must be what it says.
        if let Some((line, character)) = document.lines().enumerate().find_map(|(index, line)| {
            line.chars()
                .find(|character| crate::validation::is_format_trick(*character))
                .map(|character| (index + 1, character))
        }) {
            return Err(FieldError::new(
                "terms",
                format!(
                    "line {line}: U+{:04X} is not allowed: direction overrides, isolates, marks and byte order marks change what a reader sees",
                    u32::from(character)
                ),
            ));
        }
        crate::validation::check_readable(&parsed.agreement.title, "agreement.title")?;
        crate::validation::check_readable(&parsed.agreement.text, "agreement.text")?;
        if parsed.agreement.title.trim().is_empty() {
            return Err(FieldError::new("agreement.title", "must not be empty"));
        }
        if parsed.agreement.text.trim().is_empty() {
            return Err(FieldError::new(
                "agreement.text",
                "the agreement's text must not be empty",
            ));
        }
        if policy.purposes.is_empty() {
            return Err(FieldError::new(
                "policy.purposes",
                "name at least one purpose",
            ));
        }
        check_tokens(&policy.purposes, "policy.purposes")?;
        check_tokens(&policy.prohibited_uses, "policy.prohibited_uses")?;
        if !policy
            .prohibited_uses
            .iter()
            .any(|name| name == ANTI_RETALIATION)
        {
            return Err(FieldError::new(
                "policy.prohibited_uses",
                format!(
                    "must include {ANTI_RETALIATION:?}: the anti-retaliation clause cannot be removed"
                ),
            ));
        }
        if let Some(purpose) = policy
            .purposes
            .iter()
            .find(|purpose| policy.prohibited_uses.contains(purpose))
        {
            return Err(FieldError::new(
                "policy.purposes",
                format!("{purpose:?} is also a prohibited use"),
            ));
        }
        if policy.consent_model != "opt-in" {
            return Err(FieldError::new(
                "policy.consent_model",
                "must be \"opt-in\": absent consent means no",
            ));
        }
        if policy.retention_days == 0 || policy.retention_days > 3650 {
            return Err(FieldError::new(
                "policy.retention_days",
                "must be between 1 and 3650",
            ));
        }
        if policy.max_license_days == 0 || policy.max_license_days > 1825 {
            return Err(FieldError::new(
                "policy.max_license_days",
                "must be between 1 and 1825",
            ));
        }
        if policy.categories.is_empty() {
            return Err(FieldError::new(
                "policy.categories",
                "allow at least one data category",
            ));
        }
        let mut seen = BTreeSet::new();
        for (index, category) in policy.categories.iter().enumerate() {
            let field = format!("policy.categories[{index}]");
            if !CATEGORIES.contains(&category.name.as_str()) {
                return Err(FieldError::new(
                    format!("{field}.name"),
                    format!(
                        "unknown category {:?}; known: {}",
                        category.name,
                        CATEGORIES.join(", ")
                    ),
                ));
            }
            if !seen.insert(category.name.clone()) {
                return Err(FieldError::new(
                    format!("{field}.name"),
                    format!("{:?} is listed twice", category.name),
                ));
            }
            if !category
                .transformations
                .iter()
                .any(|name| name == "pseudonymise-members")
            {
                return Err(FieldError::new(
                    format!("{field}.transformations"),
                    "must include \"pseudonymise-members\"",
                ));
            }
            for (position, transformation) in category.transformations.iter().enumerate() {
                if !TRANSFORMATIONS.contains(&transformation.as_str()) {
                    return Err(FieldError::new(
                        format!("{field}.transformations[{position}]"),
                        format!(
                            "unknown transformation {transformation:?}; known: {}",
                            TRANSFORMATIONS.join(", ")
                        ),
                    ));
                }
            }
        }
        let royalties = &policy.royalties;
        if royalties.currency.len() != 3
            || !royalties
                .currency
                .bytes()
                .all(|byte| byte.is_ascii_uppercase())
        {
            return Err(FieldError::new(
                "policy.royalties.currency",
                "must be a three-letter ISO 4217 code such as EUR",
            ));
        }
        if royalties.union_fund_basis_points > 10_000 {
            return Err(FieldError::new(
                "policy.royalties.union_fund_basis_points",
                "must be at most 10000 (100%)",
            ));
        }
        if royalties.license_fee == 0
            && royalties.per_training_run == 0
            && royalties.per_record.values().all(|fee| *fee == 0)
        {
            return Err(FieldError::new(
                "policy.royalties",
                "at least one fee must be above zero: the members' data is not free",
            ));
        }
        for category in royalties.per_record.keys() {
            if !seen.contains(category) {
                return Err(FieldError::new(
                    format!("policy.royalties.per_record.{category}"),
                    "is not an allowed category",
                ));
            }
        }
        // Guard the ledger's arithmetic: a single charge must fit comfortably in u64.
        let ceiling = u64::MAX / 1_000_000;
        if [
            royalties.license_fee,
            royalties.per_training_run,
            royalties.minimum_per_license,
        ]
        .iter()
        .chain(royalties.per_record.values())
        .any(|fee| *fee > ceiling)
        {
            return Err(FieldError::new(
                "policy.royalties",
                format!("fees must be at most {ceiling} minor units"),
            ));
        }
        if royalties.invoice_grace_days > 365 {
            return Err(FieldError::new(
                "policy.royalties.invoice_grace_days",
                "must be at most 365",
            ));
        }
        if royalties.usage_report_days > 366 {
            return Err(FieldError::new(
                "policy.royalties.usage_report_days",
                "must be at most 366 (0: no periodic report)",
            ));
        }
        let ratification = &policy.ratification;
        if !(1..=100).contains(&ratification.member_vote_threshold_percent) {
            return Err(FieldError::new(
                "policy.ratification.member_vote_threshold_percent",
                "must be between 1 and 100",
            ));
        }
        if ratification.member_quorum_percent > 100 {
            return Err(FieldError::new(
                "policy.ratification.member_quorum_percent",
                "must be between 0 and 100",
            ));
        }
        if ratification.trustee_quorum == 0 {
            return Err(FieldError::new(
                "policy.ratification.trustee_quorum",
                "must be at least 1",
            ));
        }
        if !(1..=90).contains(&ratification.voting_days) {
            return Err(FieldError::new(
                "policy.ratification.voting_days",
                "must be between 1 and 90",
            ));
        }
        Ok(Terms {
            hash: Sha256::digest(document.as_bytes()).into(),
            document: document.to_owned(),
            title: parsed.agreement.title,
            text: parsed.agreement.text,
            policy,
        })
    }

    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// Holds a license request against the policy; `now` bounds the data window by retention.
    pub fn check_request(
        &self,
        request: &LicenseRequestTerms,
        now: UnixSeconds,
    ) -> Result<(), Refusal> {
        let refuse = |clause: &str, field: &str, reason: String| Refusal {
            clause: clause.to_owned(),
            field: field.to_owned(),
            reason,
        };
        let policy = &self.policy;
        if policy.prohibited_uses.contains(&request.purpose) {
            return Err(refuse(
                "policy.prohibited_uses",
                "purpose",
                format!(
                    "{} is a prohibited use",
                    crate::validation::quoted(&request.purpose)
                ),
            ));
        }
        if !policy.purposes.contains(&request.purpose) {
            return Err(refuse(
                "policy.purposes",
                "purpose",
                format!(
                    "{} is not an allowed purpose; allowed: {}",
                    crate::validation::quoted(&request.purpose),
                    policy.purposes.join(", ")
                ),
            ));
        }
        if request.categories.is_empty() {
            return Err(refuse(
                "policy.categories",
                "categories",
                "name at least one category".into(),
            ));
        }
        for (index, category) in request.categories.iter().enumerate() {
            if !policy.categories.iter().any(|rule| rule.name == *category) {
                return Err(refuse(
                    "policy.categories",
                    &format!("categories[{index}]"),
                    format!(
                        "{} is not an allowed category; allowed: {}",
                        crate::validation::quoted(category),
                        policy
                            .categories
                            .iter()
                            .map(|rule| rule.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if request.categories[..index].contains(category) {
                return Err(refuse(
                    "policy.categories",
                    &format!("categories[{index}]"),
                    format!(
                        "{} is named twice; name each category once",
                        crate::validation::quoted(category)
                    ),
                ));
            }
        }
        if request.duration_days == 0 || request.duration_days > policy.max_license_days {
            return Err(refuse(
                "policy.max_license_days",
                "duration_days",
                format!("must be between 1 and {} days", policy.max_license_days),
            ));
        }
        if request.data_from >= request.data_to {
            return Err(refuse(
                "policy.retention_days",
                "data_to",
                "must be after data_from".into(),
            ));
        }
        // Data after the longest license's last day can never be released under any; a
        // window that reaches further (up to i64::MAX) only invites overflow in its readers.
        let latest = now.plus_seconds(i64::from(policy.max_license_days) * SECONDS_PER_DAY);
        if request.data_to > latest {
            return Err(refuse(
                "policy.max_license_days",
                "data_to",
                format!(
                    "must not be more than {} days from now: no license lasts longer",
                    policy.max_license_days
                ),
            ));
        }
        let oldest = now.plus_seconds(-i64::from(policy.retention_days) * SECONDS_PER_DAY);
        if request.data_from < oldest {
            return Err(refuse(
                "policy.retention_days",
                "data_from",
                format!("data older than {} days is not kept", policy.retention_days),
            ));
        }
        Ok(())
    }
}

fn check_tokens(list: &[String], field: &str) -> Result<(), FieldError> {
    for (index, item) in list.iter().enumerate() {
        if !is_token(item) {
            return Err(FieldError::new(
                format!("{field}[{index}]"),
                "must be 1 to 64 lowercase letters, digits or '-'",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const EXAMPLE: &str = include_str!("../../../terms/example-agreement.toml");

    #[test]
    fn the_shipped_example_agreement_is_valid() {
        let terms = Terms::parse(EXAMPLE).unwrap();
        assert!(
            terms
                .policy
                .prohibited_uses
                .contains(&ANTI_RETALIATION.to_owned())
        );
        assert_eq!(terms.policy.consent_model, "opt-in");
        assert_eq!(terms.hash_hex().len(), 64);
    }

    #[test]
    fn the_anti_retaliation_clause_cannot_be_removed() {
        let removed = EXAMPLE.replace(&format!("\"{ANTI_RETALIATION}\","), "");
        let error = Terms::parse(&removed).unwrap_err();
        assert_eq!(error.field, "policy.prohibited_uses");
    }

    #[test]
    fn bad_documents_name_the_field() {
        for (from, to, field) in [
            (
                "consent_model = \"opt-in\"",
                "consent_model = \"opt-out\"",
                "policy.consent_model",
            ),
            (
                "currency = \"EUR\"",
                "currency = \"euro\"",
                "policy.royalties.currency",
            ),
            (
                "union_fund_basis_points = 1000",
                "union_fund_basis_points = 20000",
                "policy.royalties.union_fund_basis_points",
            ),
            (
                "trustee_quorum = 2",
                "trustee_quorum = 0",
                "policy.ratification.trustee_quorum",
            ),
            (
                "max_license_days = 365",
                "max_license_days = 0",
                "policy.max_license_days",
            ),
        ] {
            assert!(EXAMPLE.contains(from), "{from}");
            let error = Terms::parse(&EXAMPLE.replace(from, to)).unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
        assert_eq!(Terms::parse("not toml = ").unwrap_err().field, "terms");
    }

    #[test]
    fn fees_must_be_whole_non_negative_and_not_all_zero() {
        let negative = Terms::parse(
            &EXAMPLE.replace("per_training_run = 250000", "per_training_run = -250000"),
        )
        .unwrap_err();
        assert_eq!(negative.field, "terms");
        let line = EXAMPLE
            .lines()
            .position(|line| line.starts_with("per_training_run"))
            .unwrap()
            + 1;
        assert!(
            negative.reason.starts_with(&format!("line {line}: ")),
            "{negative}"
        );
        let fractional =
            Terms::parse(&EXAMPLE.replace("pointer = 1\n", "pointer = 0.5\n")).unwrap_err();
        assert_eq!(fractional.field, "terms");
        let mut free = EXAMPLE
            .replace("license_fee = 5000000", "license_fee = 0")
            .replace("per_training_run = 250000", "per_training_run = 0")
            .replace("minimum_per_license = 5000000", "minimum_per_license = 0");
        for category in ["keystrokes = 2", "pointer = 1", "clicks = 1", "scrolls = 1"] {
            free = free.replace(
                category,
                &category.replace(|c: char| c.is_ascii_digit(), "0"),
            );
        }
        free = free
            .replace("focus = 1", "focus = 0")
            .replace("screenshots = 20", "screenshots = 0");
        assert_eq!(Terms::parse(&free).unwrap_err().field, "policy.royalties");
        let huge = Terms::parse(&EXAMPLE.replace(
            "license_fee = 5000000",
            "license_fee = 18446744073709551615",
        ))
        .unwrap_err();
        assert!(
            huge.field.starts_with("policy.royalties") || huge.field == "terms",
            "{huge}"
        );
    }

    fn request() -> LicenseRequestTerms {
        LicenseRequestTerms {
            purpose: "computer-use-agent-training".into(),
            categories: vec!["pointer".into(), "clicks".into()],
            data_from: UnixSeconds(1_000_000),
            data_to: UnixSeconds(2_000_000),
            model_family: "acme-agent".into(),
            max_training_runs: 10,
            duration_days: 90,
        }
    }

    #[test]
    fn requests_are_refused_naming_clause_and_field() {
        let terms = Terms::parse(EXAMPLE).unwrap();
        let now = UnixSeconds(3_000_000);
        terms.check_request(&request(), now).unwrap();
        let refusal = terms
            .check_request(
                &LicenseRequestTerms {
                    purpose: ANTI_RETALIATION.into(),
                    ..request()
                },
                now,
            )
            .unwrap_err();
        assert_eq!(
            (refusal.clause.as_str(), refusal.field.as_str()),
            ("policy.prohibited_uses", "purpose")
        );
        let refusal = terms
            .check_request(
                &LicenseRequestTerms {
                    purpose: "advertising".into(),
                    ..request()
                },
                now,
            )
            .unwrap_err();
        assert_eq!(
            (refusal.clause.as_str(), refusal.field.as_str()),
            ("policy.purposes", "purpose")
        );
        let refusal = terms
            .check_request(
                &LicenseRequestTerms {
                    categories: vec!["pointer".into(), "webcam".into()],
                    ..request()
                },
                now,
            )
            .unwrap_err();
        assert_eq!(
            (refusal.clause.as_str(), refusal.field.as_str()),
            ("policy.categories", "categories[1]")
        );
        let refusal = terms
            .check_request(
                &LicenseRequestTerms {
                    duration_days: 10_000,
                    ..request()
                },
                now,
            )
            .unwrap_err();
        assert_eq!(refusal.clause, "policy.max_license_days");
        let refusal = terms
            .check_request(&request(), UnixSeconds(1_000_000 + 3651 * SECONDS_PER_DAY))
            .unwrap_err();
        assert_eq!(
            (refusal.clause.as_str(), refusal.field.as_str()),
            ("policy.retention_days", "data_from")
        );
    }
}
