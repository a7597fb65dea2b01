//! The public transparency report: what anyone may know about the trust without signing in.
//! The terms in force, every license granted (licensees are companies, named), training uses
//! per month, and the totals earned by and paid out to members. Nothing about any member.

use std::collections::BTreeMap;

use crate::compensation::{ChargeRecord, PayoutRecord};
use crate::governance::{LicenseRecord, LicenseStatus, TermsRecord, TrainingUseRecord};
use crate::registry::{DomainError, Journal, Registry};
use crate::store::{EventStore, RecordKind, RecordStore, TrustStore};
use crate::{PublicKey, UnixSeconds};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicLicense {
    pub id: String,
    pub licensee: PublicKey,
    pub licensee_name: String,
    pub purpose: String,
    pub categories: Vec<String>,
    pub model_family: String,
    pub not_before: UnixSeconds,
    pub expires: UnixSeconds,
    /// "active", "expired", "revoked" or "suspended".
    pub status: &'static str,
}

/// Per currency: charged to licensees, members' share of that, paid out to members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublicMoney {
    pub charged: u64,
    pub members_earned: u64,
    pub paid_to_members: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyReport {
    pub active_terms: Option<TermsRecord>,
    pub licenses: Vec<PublicLicense>,
    /// ("YYYY-MM", accepted training uses reported that month), oldest first.
    pub uses_per_month: Vec<(String, u64)>,
    pub money: BTreeMap<String, PublicMoney>,
}

impl<S: TrustStore + RecordStore + EventStore + Clone, J: Journal> Registry<S, J> {
    /// Anyone may read this, signed in or not.
    pub fn transparency_report(&self, now: UnixSeconds) -> Result<TransparencyReport, DomainError> {
        let mut licenses = Vec::new();
        for record in self.records::<LicenseRecord>(RecordKind::License, b"")? {
            let license = record.license();
            let status = match record.status {
                LicenseStatus::Revoked { .. } => "revoked",
                LicenseStatus::Active if now >= license.expires => "expired",
                LicenseStatus::Active if self.suspension_of(&record.licensee)?.is_some() => {
                    "suspended"
                }
                LicenseStatus::Active => "active",
            };
            licenses.push(PublicLicense {
                licensee_name: self
                    .store
                    .principal(&record.licensee)?
                    .map(|principal| principal.display_name.as_str().to_owned())
                    .unwrap_or_default(),
                id: license.id,
                licensee: license.licensee,
                purpose: license.purpose,
                categories: license.categories,
                model_family: license.model_family,
                not_before: license.not_before,
                expires: license.expires,
                status,
            });
        }
        licenses.sort_by_key(|license| std::cmp::Reverse(license.not_before));
        let mut months: BTreeMap<String, u64> = BTreeMap::new();
        for record in self.records::<TrainingUseRecord>(RecordKind::TrainingUse, b"")? {
            if record.accepted {
                *months.entry(record.reported_at.month()).or_default() += 1;
            }
        }
        let mut money: BTreeMap<String, PublicMoney> = BTreeMap::new();
        for charge in self.records::<ChargeRecord>(RecordKind::Charge, b"")? {
            let line = money.entry(charge.currency.clone()).or_default();
            line.charged = line.charged.saturating_add(charge.amount);
            line.members_earned = line
                .members_earned
                .saturating_add(charge.amount - charge.fund);
        }
        for payout in self.records::<PayoutRecord>(RecordKind::Payout, b"")? {
            let line = money.entry(payout.currency.clone()).or_default();
            line.paid_to_members = line.paid_to_members.saturating_add(payout.amount);
        }
        Ok(TransparencyReport {
            active_terms: self.active_terms()?,
            licenses,
            uses_per_month: months.into_iter().collect(),
            money,
        })
    }
}
