//! Compensation: charges from the royalty schedule of the license, each split at once between
//! the union fund and the members whose records were used, committed in the log as a Merkle
//! sum tree; payments from licensees, payouts to members, and the duty to pay on time.
//!
//! - The schedule is the one signed into the license (fee, fee per run, fee per record by
//!   category, currency); the fund's share, the distribution rule and the grace period come
//!   from the terms the license names. A later version of the terms never changes them.
//! - A license fee is shared by the members who, when the license is issued, consent to its
//!   purpose and hold records in its categories on the days its window covers. A training
//!   run's charge (fee per run + fee per record of every release the run used) is shared by
//!   the members in those releases, in proportion to their records or equally.
//! - [`split`] is integer arithmetic with largest-remainder rounding: the fund's share and
//!   the members' shares add up exactly to the charge.
//! - A member's share commitment = SHA-256("datatrust share commitment v1\n" || salt || key
//!   || charge id): the member recognises it, nobody else can link it.
//! - The union fund's leaf has the commitment `union-fund` and counts no records, so the
//!   root's amount is the whole charge.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::governance::{LicenseRecord, LicenseStatus, TrainingReport, decode, encode};
use crate::license::License;
use crate::log_entry::LogEntry;
use crate::merkle::sum::{self, ShareLeaf, SumNode};
use crate::registry::{DomainError, Journal, Logged, Refusal, Registry, Subject, require_role};
use crate::release::ReleaseRecordMeta;
use crate::store::{EventStore, RecordKind, RecordStore, StoreError, TrustStore};
use crate::terms::{DistributionRule, Terms};
use crate::{FieldError, PublicKey, Role, UnixSeconds};

/// The commitment of the union fund's leaf.
pub const UNION_FUND: &str = "union-fund";
const SECONDS_PER_DAY: i64 = 86_400;
/// Longest payment or payout reference.
const MAXIMUM_REFERENCE_CHARACTERS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("basis points must be at most 10000, found {0}")]
    BasisPoints(u32),
}

/// How one charge is divided: the fund's part and one part per contribution, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub fund: u64,
    pub shares: Vec<u64>,
}

/// Splits `charge`: first the fund's `fund_basis_points` (rounded down), then the rest among
/// `records` (one weight per contributing member) by `rule`, with largest-remainder rounding
/// (ties go to the earlier contribution). With no contributors, or none with a record under
/// pro rata, the whole charge goes to the fund. The parts always add up to `charge`.
pub fn split(
    charge: u64,
    fund_basis_points: u32,
    records: &[u64],
    rule: DistributionRule,
) -> Result<Split, SplitError> {
    if fund_basis_points > 10_000 {
        return Err(SplitError::BasisPoints(fund_basis_points));
    }
    let weights: Vec<u128> = records
        .iter()
        .map(|&count| match rule {
            DistributionRule::ProRataRecords => u128::from(count),
            DistributionRule::EqualShares => 1,
        })
        .collect();
    let total_weight: u128 = weights.iter().sum();
    // u64 × 10000 and u64 × u64 both fit u128: no overflow is possible below.
    let fund_floor = (u128::from(charge) * u128::from(fund_basis_points) / 10_000) as u64;
    if total_weight == 0 {
        return Ok(Split {
            fund: charge,
            shares: vec![0; records.len()],
        });
    }
    let members_total = u128::from(charge - fund_floor);
    let mut shares: Vec<u64> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    let mut given: u128 = 0;
    for (index, weight) in weights.iter().enumerate() {
        let exact = members_total * weight;
        let floor = exact / total_weight;
        given += floor;
        shares.push(floor as u64);
        remainders.push((exact % total_weight, index));
    }
    let left = (members_total - given) as usize;
    // Largest remainders first; equal remainders by position, so the result is deterministic.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, index) in remainders.into_iter().take(left) {
        shares[index] += 1;
    }
    Ok(Split {
        fund: fund_floor,
        shares,
    })
}

pub fn share_commitment(salt: &[u8; 32], member: &PublicKey, charge_id: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"datatrust share commitment v1\n");
    hasher.update(salt);
    hasher.update(member.as_bytes());
    hasher.update(charge_id.as_bytes());
    hasher.finalize().into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ChargeKind {
    LicenseFee,
    TrainingRun { run_id: String },
}

impl ChargeKind {
    pub fn name(&self) -> &'static str {
        match self {
            ChargeKind::LicenseFee => "license-fee",
            ChargeKind::TrainingRun { .. } => "training-run",
        }
    }
}

/// One leaf of a charge's distribution. `member` is known to the trust only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRecord {
    pub member: Option<PublicKey>,
    pub commitment: String,
    pub records: u64,
    pub amount: u64,
}

impl ShareRecord {
    pub fn leaf(&self) -> ShareLeaf {
        ShareLeaf {
            commitment: self.commitment.clone(),
            records: self.records,
            amount: self.amount,
        }
    }
}

/// A charge against a licensee (its invoice), and how it was distributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRecord {
    pub id: String,
    pub license_id: String,
    pub licensee: PublicKey,
    pub kind: ChargeKind,
    pub currency: String,
    pub amount: u64,
    pub fund: u64,
    /// Members who share the charge, and leaves of its sum tree (members and the fund).
    pub members: u64,
    pub share_leaves: u64,
    pub root_hash: String,
    pub root_records: u64,
    pub created_at: UnixSeconds,
    pub due_at: UnixSeconds,
    pub log_index: u64,
}

/// A charge's distribution, stored apart from the charge: invoices and duty checks read
/// every charge, and only statements need the (member-sized) shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeShares {
    pub charge_id: String,
    /// Member leaves in commitment order, then the fund's leaf.
    pub shares: Vec<ShareRecord>,
}

impl ChargeShares {
    pub fn leaves(&self) -> Vec<ShareLeaf> {
        self.shares.iter().map(ShareRecord::leaf).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub reference: String,
    pub charge_id: String,
    pub licensee: PublicKey,
    pub currency: String,
    pub amount: u64,
    pub received_at: UnixSeconds,
    pub recorded_by: PublicKey,
    pub log_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRecord {
    pub reference: String,
    pub member: PublicKey,
    pub currency: String,
    pub amount: u64,
    pub paid_at: UnixSeconds,
    pub recorded_by: PublicKey,
    pub log_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspensionRecord {
    pub licensee: PublicKey,
    pub reason: String,
    pub since: UnixSeconds,
    pub log_index: u64,
}

/// Until when a license's use is accounted for by a declaration (or a lifted suspension);
/// accepted training-use reports count too, from their own records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageAccount {
    pub license_id: String,
    pub accounted_until: UnixSeconds,
    pub log_index: u64,
}

/// What a licensee signs to declare that it ran no training under a license up to `until`.
pub fn no_use_message(origin: &str, license_id: &str, until: UnixSeconds) -> Vec<u8> {
    format!("datatrust no training use v1\n{origin}\n{license_id}\n{until}\n").into_bytes()
}

/// An invoice as its licensee and the trustees see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub charge: ChargeRecord,
    pub paid: u64,
    pub due: u64,
    pub overdue: bool,
}

/// One line of a member's statement: their leaf in one charge, with its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub charge: ChargeRecord,
    pub leaf_index: u64,
    pub share: ShareRecord,
    pub proof: Vec<SumNode>,
    pub root: SumNode,
}

/// Totals in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub earned: u64,
    pub paid_out: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub lines: Vec<StatementLine>,
    pub payouts: Vec<PayoutRecord>,
    pub totals: BTreeMap<String, Totals>,
}

/// The union's ledger in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    pub charged: u64,
    pub received: u64,
    pub fund: u64,
    pub members_earned: u64,
    pub paid_out: u64,
}

impl LedgerTotals {
    /// Owed by licensees.
    pub fn outstanding(&self) -> u64 {
        self.charged.saturating_sub(self.received)
    }
    /// Owed to members.
    pub fn owed_to_members(&self) -> u64 {
        self.members_earned.saturating_sub(self.paid_out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub totals: BTreeMap<String, LedgerTotals>,
    pub suspensions: Vec<SuspensionRecord>,
}

fn charge_id(license_id: &str, kind: &ChargeKind) -> String {
    let text = match kind {
        ChargeKind::LicenseFee => format!("datatrust charge v1\n{license_id}\nlicense-fee\n"),
        ChargeKind::TrainingRun { run_id } => {
            format!("datatrust charge v1\n{license_id}\ntraining-run\n{run_id}\n")
        }
    };
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

fn store_error(error: impl std::fmt::Display) -> DomainError {
    DomainError::Store(StoreError::new(error.to_string()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A payment or payout reference: the bank's or the trustees' own, printable, unique.
fn reference(text: &str) -> Result<String, FieldError> {
    let trimmed = text.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAXIMUM_REFERENCE_CHARACTERS
        || trimmed.chars().any(char::is_control)
    {
        return Err(FieldError::new(
            "reference",
            format!("1 to {MAXIMUM_REFERENCE_CHARACTERS} characters, no control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn currency_matches(expected: &str, given: &str) -> Result<(), FieldError> {
    if expected != given {
        return Err(FieldError::new(
            "currency",
            format!(
                "is {}, but this is owed in {expected}",
                crate::validation::quoted(given)
            ),
        ));
    }
    Ok(())
}

/// A usage account as the commit path writes it: its `log_index` is its entry's, set at
/// commit.
fn usage_account_write(account: &UsageAccount) -> Result<crate::commit::Write, DomainError> {
    Ok(crate::commit::Write::RecordWithIndex {
        kind: RecordKind::UsageAccount,
        key: account.license_id.as_bytes().to_vec(),
        value: serde_json::to_value(account).map_err(|error| {
            DomainError::Store(crate::store::StoreError::new(format!(
                "encoding a usage account: {error}"
            )))
        })?,
        index_at: "/log_index",
        entry: 0,
    })
}

/// What a payment is decided on.
struct ReadPayment {
    /// A payment with this reference is recorded already.
    existing: bool,
    charge: Option<ChargeRecord>,
    /// Paid towards the charge so far.
    paid: u64,
}

/// A payment against a charge: refused if the reference is taken, the charge unknown, the
/// currency not the charge's, or the amount more than is still due. The payment's
/// `log_index` is its entry's, set at commit; the decision's reads are the caller's.
fn decide_payment(
    trustee: &crate::Principal,
    read: ReadPayment,
    reference: &str,
    currency: &str,
    amount: u64,
    now: UnixSeconds,
) -> Result<(PaymentRecord, crate::commit::Decision), DomainError> {
    if read.existing {
        return Err(DomainError::AlreadyExists(format!(
            "reference: a payment with reference {reference:?} is already recorded"
        )));
    }
    let charge = read.charge.ok_or_else(|| {
        DomainError::refused(Refusal::NotFound, Subject::Charge, "no such charge")
    })?;
    currency_matches(&charge.currency, currency)?;
    let due = charge.amount.saturating_sub(read.paid);
    if amount > due {
        return Err(FieldError::new(
            "amount",
            format!(
                "{amount} is more than the {due} {} still due on this invoice",
                charge.currency
            ),
        )
        .into());
    }
    let entry = LogEntry::new("payment-received", now)
        .with("charge", charge.id.clone())
        .with("licensee", charge.licensee.to_base64())
        .with("currency", charge.currency.clone())
        .with("amount", amount.to_string())
        .with("reference-sha256", sha256_hex(reference.as_bytes()));
    let paid_now = read.paid.saturating_add(amount);
    let mut writes = vec![crate::commit::Write::Record {
        kind: RecordKind::ChargePaid,
        key: charge.id.as_bytes().to_vec(),
        value: Some(encode(&paid_now)?),
    }];
    if paid_now >= charge.amount {
        writes.push(crate::commit::Write::Record {
            kind: RecordKind::OpenCharge,
            key: open_charge_key(&charge),
            value: None,
        });
    }
    let record = PaymentRecord {
        reference: reference.to_owned(),
        charge_id: charge.id,
        licensee: charge.licensee,
        currency: charge.currency,
        amount,
        received_at: now,
        recorded_by: trustee.public_key,
        log_index: 0,
    };
    writes.push(crate::commit::Write::Payment(record.clone()));
    let decision = crate::commit::Decision {
        entries: vec![entry],
        writes,
        reads: Vec::new(),
    };
    Ok((record, decision))
}

/// What a charge is built from before it is logged.
pub(crate) struct PendingCharge {
    pub record: ChargeRecord,
    pub shares: ChargeShares,
    pub entry: LogEntry,
}

impl PendingCharge {
    /// The store writes of a charge once logged (`record.log_index` set): charge, shares,
    /// and each member's index entry.
    pub(crate) fn writes(&self) -> Result<Vec<crate::store::RecordWrite>, DomainError> {
        let key = self.record.id.as_bytes().to_vec();
        let mut writes = vec![
            (RecordKind::Charge, key.clone(), Some(encode(&self.record)?)),
            (RecordKind::ChargeShares, key, Some(encode(&self.shares)?)),
        ];
        writes.extend(member_share_index(&self.record, &self.shares)?);
        if self.record.amount > 0 {
            writes.push((
                RecordKind::OpenCharge,
                open_charge_key(&self.record),
                Some(encode(&self.record.id)?),
            ));
        }
        Ok(writes)
    }
}

impl PendingCharge {
    /// The charge's writes in a decision whose entry number `entry` is the charge's own:
    /// the charge (its `log_index` set at commit), its shares and index entries.
    pub(crate) fn decision_writes(
        &self,
        entry: u64,
    ) -> Result<Vec<crate::commit::Write>, DomainError> {
        let key = self.record.id.as_bytes();
        let mut writes = vec![crate::commit::indexed_write(
            RecordKind::Charge,
            key,
            &self.record,
            "/log_index",
            entry,
        )?];
        writes.extend(
            self.writes()?
                .into_iter()
                .filter(|(kind, _, _)| *kind != RecordKind::Charge)
                .map(|(kind, key, value)| crate::commit::Write::Record { kind, key, value }),
        );
        Ok(writes)
    }
}

/// A license's accepted training runs, kept as they commit (`RecordKind::RunTally`): every
/// accepted report reads and bumps it, so run counts and reporting deadlines are decided on
/// the same runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunTally {
    pub accepted: u32,
    /// When the latest accepted run was reported.
    pub last_accepted: Option<UnixSeconds>,
}

/// Where a charge not yet paid in full is listed: by licensee, then by due time.
fn open_charge_key(charge: &ChargeRecord) -> Vec<u8> {
    let due = u64::try_from(charge.due_at.0).unwrap_or(0);
    [
        charge.licensee.as_bytes().as_slice(),
        &due.to_be_bytes(),
        charge.id.as_bytes(),
    ]
    .concat()
}

/// A licensee's index entry for one of its licenses.
pub(crate) fn licensee_license_write(
    licensee: &PublicKey,
    license_id: &str,
) -> Result<crate::store::RecordWrite, DomainError> {
    Ok((
        RecordKind::LicenseeLicense,
        [licensee.as_bytes().as_slice(), license_id.as_bytes()].concat(),
        Some(encode(&license_id)?),
    ))
}

/// A charge as its licensee's invoice: what was paid towards it, what is still due, and
/// whether that is overdue at `now`.
fn invoice(charge: ChargeRecord, paid: u64, now: UnixSeconds) -> Invoice {
    let due = charge.amount.saturating_sub(paid);
    Invoice {
        overdue: due > 0 && now > charge.due_at,
        paid,
        due,
        charge,
    }
}

/// A member's share of one charge, as the member → share index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberShareEntry {
    pub charge_id: String,
    pub currency: String,
    pub amount: u64,
}

/// The index writes that let each member of a charge's distribution find their share.
fn member_share_index(
    charge: &ChargeRecord,
    shares: &ChargeShares,
) -> Result<Vec<crate::store::RecordWrite>, DomainError> {
    shares
        .shares
        .iter()
        .filter_map(|share| share.member.map(|member| (member, share.amount)))
        .map(|(member, amount)| {
            Ok((
                RecordKind::MemberShare,
                [member.as_bytes().as_slice(), charge.id.as_bytes()].concat(),
                Some(encode(&MemberShareEntry {
                    charge_id: charge.id.clone(),
                    currency: charge.currency.clone(),
                    amount,
                })?),
            ))
        })
        .collect()
}

/// Builds a charge and its distribution: `contributions` are (member, salt, records).
pub(crate) fn build_charge(
    license: &License,
    kind: ChargeKind,
    amount: u64,
    terms: &Terms,
    contributions: &[(PublicKey, [u8; 32], u64)],
    now: UnixSeconds,
) -> Result<PendingCharge, DomainError> {
    let royalties = &terms.policy.royalties;
    let id = charge_id(&license.id, &kind);
    let weights: Vec<u64> = contributions
        .iter()
        .map(|(_, _, records)| *records)
        .collect();
    let parts = split(
        amount,
        royalties.union_fund_basis_points,
        &weights,
        royalties.distribution,
    )
    .map_err(|error| DomainError::FailedPrecondition(error.to_string()))?;
    let mut shares: Vec<ShareRecord> = contributions
        .iter()
        .zip(&parts.shares)
        .map(|((member, salt, records), share)| ShareRecord {
            member: Some(*member),
            commitment: hex::encode(share_commitment(salt, member, &id)),
            records: *records,
            amount: *share,
        })
        .collect();
    // Commitment order hides the order of members' keys.
    shares.sort_by(|a, b| a.commitment.cmp(&b.commitment));
    shares.push(ShareRecord {
        member: None,
        commitment: UNION_FUND.to_owned(),
        records: 0,
        amount: parts.fund,
    });
    let leaves: Vec<ShareLeaf> = shares.iter().map(ShareRecord::leaf).collect();
    let root = sum::root(&leaves).map_err(|error| {
        DomainError::FailedPrecondition(format!("the charge cannot be distributed: {error}"))
    })?;
    debug_assert_eq!(root.amount, amount, "a split always adds up to the charge");
    let due_at = now.plus_seconds(i64::from(royalties.invoice_grace_days) * SECONDS_PER_DAY);
    let record = ChargeRecord {
        id: id.clone(),
        license_id: license.id.clone(),
        licensee: license.licensee,
        kind: kind.clone(),
        currency: license.currency.clone(),
        amount,
        fund: parts.fund,
        members: contributions.len() as u64,
        share_leaves: shares.len() as u64,
        root_hash: hex::encode(root.hash),
        root_records: root.records,
        created_at: now,
        due_at,
        log_index: 0,
    };
    let entry = LogEntry::new("charge", now)
        .with("charge", id)
        .with("license", license.id.clone())
        .with("licensee", license.licensee.to_base64())
        .with("kind", kind.name().to_owned())
        .with(
            "run",
            match &kind {
                ChargeKind::LicenseFee => "-".to_owned(),
                ChargeKind::TrainingRun { run_id } => run_id.clone(),
            },
        )
        .with("currency", license.currency.clone())
        .with("amount", amount.to_string())
        .with("fund", parts.fund.to_string())
        .with("members", contributions.len().to_string())
        .with("share-root", record.root_hash.clone())
        .with("share-records", root.records.to_string())
        .with("share-amount", root.amount.to_string())
        .with("share-leaves", record.share_leaves.to_string())
        .with("terms-sha256", hex::encode(license.terms_sha256))
        .with("due", due_at.to_string());
    Ok(PendingCharge {
        shares: ChargeShares {
            charge_id: record.id.clone(),
            shares,
        },
        record,
        entry,
    })
}

/// What a training run owes under `license`: the fee per run plus, for every release it
/// used, each record times its category's fee. Checked arithmetic: an overflow is refused.
pub(crate) fn training_run_amount(
    license: &License,
    releases: &[ReleaseRecordMeta],
) -> Result<u64, String> {
    let overflow = || "the charge for this run overflows 64 bits".to_owned();
    let mut amount = license.fee_per_run;
    for release in releases {
        for part in &release.parts {
            for (category, count) in &part.categories {
                let fee = license
                    .fee_per_record
                    .iter()
                    .find(|(name, _)| name == category)
                    .map(|(_, fee)| *fee)
                    .unwrap_or(0);
                amount = count
                    .checked_mul(fee)
                    .and_then(|owed| amount.checked_add(owed))
                    .ok_or_else(overflow)?;
            }
        }
    }
    Ok(amount)
}

impl<S: TrustStore + RecordStore + EventStore + Clone, J: Journal> Registry<S, J> {
    /// The terms a license was granted under (parsed once per version).
    pub(crate) fn terms_of(&self, license: &License) -> Result<std::sync::Arc<Terms>, DomainError> {
        let hash = hex::encode(license.terms_sha256);
        let record = self
            .record::<crate::governance::TermsRecord>(RecordKind::Terms, hash.as_bytes())?
            .ok_or_else(|| {
                DomainError::FailedPrecondition(
                    "the license's terms are unknown to this trust".into(),
                )
            })?;
        Ok(self.parsed_terms(&record))
    }

    /// The members who share a new license's fee: active, consenting to its purpose, holding
    /// records in its categories on the days its window covers; with their record counts.
    pub(crate) fn license_fee_contributions(
        &self,
        license: &License,
    ) -> Result<Vec<(PublicKey, [u8; 32], u64)>, DomainError> {
        let first_day = license.data_from.0.div_euclid(SECONDS_PER_DAY);
        let last_day = license.data_to.0.div_euclid(SECONDS_PER_DAY);
        let mut contributions = Vec::new();
        for member in self.consenting_members(&license.purpose)? {
            let records: u64 = self
                .store
                .member_counts(&member.public_key)?
                .iter()
                .filter(|count| {
                    (first_day..=last_day).contains(&count.day)
                        && license.categories.contains(&count.category)
                })
                .map(|count| count.count)
                .sum();
            if records > 0 {
                contributions.push((member.public_key, member.commitment_salt, records));
            }
        }
        Ok(contributions)
    }

    /// The charge for a license being issued (not yet logged).
    pub(crate) fn license_fee_charge(
        &self,
        license: &License,
        terms: &Terms,
        now: UnixSeconds,
    ) -> Result<PendingCharge, DomainError> {
        let contributions = self.license_fee_contributions(license)?;
        build_charge(
            license,
            ChargeKind::LicenseFee,
            license.license_fee,
            terms,
            &contributions,
            now,
        )
    }

    /// The releases a report names, each of which must be a release under its license.
    pub(crate) fn releases_used(
        &self,
        license_id: &str,
        report: &TrainingReport,
    ) -> Result<Result<Vec<ReleaseRecordMeta>, String>, DomainError> {
        let mut releases: Vec<ReleaseRecordMeta> = Vec::new();
        for id in &report.data {
            if releases.iter().any(|release| &release.id == id) {
                continue;
            }
            let meta: Option<ReleaseRecordMeta> =
                self.record(RecordKind::Release, id.as_bytes())?;
            match meta {
                Some(meta) if meta.license_id == license_id => releases.push(meta),
                _ => {
                    return Ok(Err(format!(
                        "data: {id} is not a release under this license"
                    )));
                }
            }
        }
        Ok(Ok(releases))
    }

    /// The charge for an accepted training run (not yet logged).
    pub(crate) fn training_run_charge(
        &self,
        license: &License,
        run_id: &str,
        releases: &[ReleaseRecordMeta],
        now: UnixSeconds,
    ) -> Result<Result<PendingCharge, String>, DomainError> {
        let terms = self.terms_of(license)?;
        let amount = match training_run_amount(license, releases) {
            Ok(amount) => amount,
            Err(why) => return Ok(Err(why)),
        };
        let mut by_member: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for release in releases {
            for part in &release.parts {
                let records = by_member.entry(part.member).or_default();
                *records = records.saturating_add(part.count);
            }
        }
        let mut contributions = Vec::new();
        for (member, records) in by_member {
            let salt = self
                .store
                .principal(&member)?
                .map(|principal| principal.commitment_salt)
                .ok_or_else(|| store_error("a release names a member the trust does not know"))?;
            contributions.push((member, salt, records));
        }
        Ok(Ok(build_charge(
            license,
            ChargeKind::TrainingRun {
                run_id: run_id.to_owned(),
            },
            amount,
            &terms,
            &contributions,
            now,
        )?))
    }

    fn charges(&self) -> Result<Vec<ChargeRecord>, DomainError> {
        let mut charges: Vec<ChargeRecord> = self.records(RecordKind::Charge, b"")?;
        charges.sort_by_key(|charge| (charge.log_index, charge.id.clone()));
        Ok(charges)
    }

    fn payments(&self) -> Result<Vec<PaymentRecord>, DomainError> {
        self.records(RecordKind::Payment, b"")
    }

    /// What has been paid towards a charge (derived, one key).
    fn paid_of(&self, charge_id: &str) -> Result<u64, DomainError> {
        Ok(self
            .record::<u64>(RecordKind::ChargePaid, charge_id.as_bytes())?
            .unwrap_or(0))
    }

    fn invoices_of(
        &self,
        licensee: Option<&PublicKey>,
        now: UnixSeconds,
    ) -> Result<Vec<Invoice>, DomainError> {
        self.charges()?
            .into_iter()
            .filter(|charge| licensee.is_none_or(|key| charge.licensee == *key))
            .map(|charge| {
                let paid = self.paid_of(&charge.id)?;
                Ok(invoice(charge, paid, now))
            })
            .collect()
    }

    /// A licensee's overdue invoices, earliest due first: read from its open charges due
    /// before `now`, not from every charge.
    fn overdue_invoices(
        &self,
        licensee: &PublicKey,
        now: UnixSeconds,
    ) -> Result<Vec<Invoice>, DomainError> {
        let mut overdue = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.scan_records_page(
                RecordKind::OpenCharge,
                licensee.as_bytes(),
                after.as_deref(),
                64,
            )?;
            let exhausted = page.len() < 64;
            for (key, value) in page {
                let due = key
                    .get(32..40)
                    .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(u64::MAX);
                if i64::try_from(due).unwrap_or(i64::MAX) >= now.0 {
                    return Ok(overdue);
                }
                let charge_id: String = decode(&value)?;
                let charge: ChargeRecord = self
                    .record(RecordKind::Charge, charge_id.as_bytes())?
                    .ok_or_else(|| {
                    DomainError::Store(crate::store::StoreError::data_loss(format!(
                        "open charge {charge_id} has no charge record"
                    )))
                })?;
                let invoice = invoice(charge, self.paid_of(&charge_id)?, now);
                if invoice.overdue {
                    overdue.push(invoice);
                }
                after = Some(key);
            }
            if exhausted {
                return Ok(overdue);
            }
        }
    }

    /// Builds the derived payment totals, open charges and licensee → license index for a
    /// trust from before them, once (a marker says so; later starts read nothing).
    pub fn ensure_licensee_indexes(&self) -> Result<(), DomainError> {
        if !self.index_built(RecordKind::OpenCharge)? {
            let mut paid: HashMap<String, u64> = HashMap::new();
            for payment in self.records::<PaymentRecord>(RecordKind::Payment, b"")? {
                let total = paid.entry(payment.charge_id).or_default();
                *total = total.saturating_add(payment.amount);
            }
            let mut writes = Vec::new();
            for charge in self.charges()? {
                let paid = paid.get(&charge.id).copied().unwrap_or(0);
                if paid > 0 {
                    writes.push((
                        RecordKind::ChargePaid,
                        charge.id.as_bytes().to_vec(),
                        Some(encode(&paid)?),
                    ));
                }
                if paid < charge.amount {
                    writes.push((
                        RecordKind::OpenCharge,
                        open_charge_key(&charge),
                        Some(encode(&charge.id)?),
                    ));
                }
            }
            for chunk in writes.chunks(1024) {
                self.store.write_records(chunk.to_vec())?;
            }
            self.mark_index_built(RecordKind::OpenCharge)?;
        }
        if !self.index_built(RecordKind::LicenseeLicense)? {
            let mut writes = Vec::new();
            for license in self.records::<LicenseRecord>(RecordKind::License, b"")? {
                writes.push(licensee_license_write(&license.licensee, &license.id)?);
            }
            for chunk in writes.chunks(1024) {
                self.store.write_records(chunk.to_vec())?;
            }
            self.mark_index_built(RecordKind::LicenseeLicense)?;
        }
        if !self.index_built(RecordKind::RunTally)? {
            let mut writes = Vec::new();
            for license in self.records::<LicenseRecord>(RecordKind::License, b"")? {
                let mut tally = RunTally::default();
                for (_, value) in self.store.scan_records(
                    RecordKind::TrainingUse,
                    &[license.id.as_bytes(), &[0]].concat(),
                )? {
                    let record: crate::governance::TrainingUseRecord = decode(&value)?;
                    if record.accepted {
                        tally.accepted += 1;
                        tally.last_accepted = tally.last_accepted.max(Some(record.reported_at));
                    }
                }
                if tally.accepted > 0 {
                    writes.push((
                        RecordKind::RunTally,
                        license.id.as_bytes().to_vec(),
                        Some(encode(&tally)?),
                    ));
                }
            }
            for chunk in writes.chunks(1024) {
                self.store.write_records(chunk.to_vec())?;
            }
            self.mark_index_built(RecordKind::RunTally)?;
        }
        Ok(())
    }

    /// One page of invoices, in charge-id order: a licensee's own; trustees' everyone's (or
    /// one licensee's). Each page is sorted by when its charges were logged.
    pub fn invoices_page(
        &self,
        caller: &crate::Principal,
        licensee: Option<&PublicKey>,
        now: UnixSeconds,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(Vec<Invoice>, Option<Vec<u8>>), DomainError> {
        let whose = match caller.role {
            Role::Trustee => licensee.copied(),
            Role::Licensee => {
                if licensee.is_some_and(|key| *key != caller.public_key) {
                    return Err(DomainError::refused(
                        Refusal::PermissionDenied,
                        Subject::Licensee,
                        "a licensee sees only its own invoices",
                    ));
                }
                Some(caller.public_key)
            }
            _ => {
                return Err(DomainError::PermissionDenied(
                    "only trustees and licensees see invoices".into(),
                ));
            }
        };
        let (mut charges, next) = self.records_page(
            RecordKind::Charge,
            b"",
            after,
            limit,
            |charge: &ChargeRecord| whose.is_none_or(|key| charge.licensee == key),
        )?;
        charges.sort_by_key(|charge| (charge.log_index, charge.id.clone()));
        let invoices = charges
            .into_iter()
            .map(|charge| {
                let paid = self.paid_of(&charge.id)?;
                Ok(invoice(charge, paid, now))
            })
            .collect::<Result<_, DomainError>>()?;
        Ok((invoices, next))
    }

    /// Invoices: a licensee's own; trustees' everyone's (or one licensee's).
    pub fn invoices(
        &self,
        caller: &crate::Principal,
        licensee: Option<&PublicKey>,
        now: UnixSeconds,
    ) -> Result<Vec<Invoice>, DomainError> {
        match caller.role {
            Role::Trustee => self.invoices_of(licensee, now),
            Role::Licensee => {
                if licensee.is_some_and(|key| *key != caller.public_key) {
                    return Err(DomainError::refused(
                        Refusal::PermissionDenied,
                        Subject::Licensee,
                        "a licensee sees only its own invoices",
                    ));
                }
                self.invoices_of(Some(&caller.public_key), now)
            }
            _ => Err(DomainError::PermissionDenied(
                "only trustees and licensees see invoices".into(),
            )),
        }
    }

    /// A trustee records money received from a licensee against one invoice. The reference
    /// is unique: recording it twice is refused. On the one commit path: the payment, the
    /// charge's paid total and its open-charge entry commit with the log entry.
    pub fn record_payment(
        &self,
        caller: &crate::Principal,
        reference_text: &str,
        charge_id: &crate::ChargeId,
        currency: &crate::Currency,
        amount: crate::Amount,
        now: UnixSeconds,
    ) -> Result<Logged<PaymentRecord>, DomainError> {
        let (charge_id, currency) = (charge_id.as_str(), currency.as_str());
        require_role(caller, Role::Trustee, "record payments")?;
        let reference = reference(reference_text)?;
        let amount = amount.minor_units();
        self.decide(|| {
            let (existing, reference_read) = self
                .store
                .read_record(RecordKind::Payment, reference.as_bytes())?;
            let (charge, charge_read) = self
                .store
                .read_record(RecordKind::Charge, charge_id.as_bytes())?;
            let (paid, paid_read) = self
                .store
                .read_record(RecordKind::ChargePaid, charge_id.as_bytes())?;
            let read = ReadPayment {
                existing: existing.is_some(),
                charge: charge.map(|bytes| decode(&bytes)).transpose()?,
                paid: paid.map(|bytes| decode(&bytes)).transpose()?.unwrap_or(0),
            };
            let (record, mut decision) =
                decide_payment(caller, read, &reference, currency, amount, now)?;
            decision.reads = vec![reference_read, charge_read, paid_read];
            Ok((record, Some(decision)))
        })
        .map(|mut logged| {
            // The stored payment holds the index its entry got; so does the answer.
            logged.value.log_index = logged.log_index.unwrap_or_default();
            logged
        })
    }

    /// A member's totals per currency (earned, paid out), from the member's own index
    /// entries, read a page at a time.
    fn member_totals(&self, member: &PublicKey) -> Result<BTreeMap<String, Totals>, DomainError> {
        let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
        let mut after = None;
        loop {
            let (shares, next) = self.records_page(
                RecordKind::MemberShare,
                member.as_bytes(),
                after,
                1024,
                |_: &MemberShareEntry| true,
            )?;
            for share in shares {
                let earned = &mut totals.entry(share.currency).or_default().earned;
                *earned = earned
                    .checked_add(share.amount)
                    .ok_or_else(|| store_error("a member's earnings overflow 64 bits"))?;
            }
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        for payout in self.member_payouts(member)? {
            let paid_out = &mut totals.entry(payout.currency.clone()).or_default().paid_out;
            *paid_out = paid_out.saturating_add(payout.amount);
        }
        Ok(totals)
    }

    /// Every payout to a member, from the member's own index.
    fn member_payouts(&self, member: &PublicKey) -> Result<Vec<PayoutRecord>, DomainError> {
        let mut payouts: Vec<PayoutRecord> =
            self.records(RecordKind::MemberPayout, member.as_bytes())?;
        payouts.sort_by_key(|payout| payout.log_index);
        Ok(payouts)
    }

    /// One page of the calling member's statement: a line per charge that paid them, with
    /// its proof (in charge-id order after `after`, each page sorted by when its charges
    /// were logged); the member's payouts on the first page; totals on every page.
    pub fn my_statement_page(
        &self,
        caller: &crate::Principal,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(Statement, Option<Vec<u8>>), DomainError> {
        require_role(caller, Role::Member, "read their statement")?;
        let member = &caller.public_key;
        let first_page = after.is_none();
        let (entries, next) = self.records_page(
            RecordKind::MemberShare,
            member.as_bytes(),
            after,
            limit,
            |_: &MemberShareEntry| true,
        )?;
        let mut lines = Vec::new();
        for entry in entries {
            let charge: ChargeRecord = self
                .record(RecordKind::Charge, entry.charge_id.as_bytes())?
                .ok_or_else(|| store_error("a member's share names a charge that is not stored"))?;
            let distribution: ChargeShares = self
                .record(RecordKind::ChargeShares, entry.charge_id.as_bytes())?
                .ok_or_else(|| store_error("a charge's shares are not stored"))?;
            let index = distribution
                .shares
                .iter()
                .position(|share| share.member.as_ref() == Some(member))
                .ok_or_else(|| store_error("a member's share is not in its charge"))?;
            let leaves = distribution.leaves();
            let proof = sum::proof(&leaves, index as u64).map_err(store_error)?;
            let root = sum::root(&leaves).map_err(store_error)?;
            lines.push(StatementLine {
                share: distribution.shares[index].clone(),
                leaf_index: index as u64,
                proof,
                root,
                charge,
            });
        }
        lines.sort_by_key(|line| line.charge.log_index);
        let payouts = if first_page {
            self.member_payouts(member)?
        } else {
            Vec::new()
        };
        Ok((
            Statement {
                lines,
                payouts,
                totals: self.member_totals(member)?,
            },
            next,
        ))
    }

    /// Builds the member → share and member → payout indexes for charges and payouts
    /// stored before they existed, once (a marker says so; later starts read nothing).
    /// Reads a page at a time.
    pub fn ensure_member_ledger_index(&self) -> Result<(), DomainError> {
        if self.index_built(RecordKind::MemberShare)? {
            return Ok(());
        }
        let mut after = None;
        loop {
            let (page, next) = self.records_page(
                RecordKind::ChargeShares,
                b"",
                after,
                64,
                |_: &ChargeShares| true,
            )?;
            for distribution in &page {
                let Some(first) = distribution.shares.iter().find_map(|share| share.member) else {
                    continue;
                };
                let key = [
                    first.as_bytes().as_slice(),
                    distribution.charge_id.as_bytes(),
                ]
                .concat();
                if self
                    .store
                    .get_record(RecordKind::MemberShare, &key)?
                    .is_some()
                {
                    continue;
                }
                let charge: ChargeRecord = self
                    .record(RecordKind::Charge, distribution.charge_id.as_bytes())?
                    .ok_or_else(|| store_error("shares of a charge that is not stored"))?;
                self.store
                    .write_records(member_share_index(&charge, distribution)?)?;
            }
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut after = None;
        loop {
            let (page, next) =
                self.records_page(RecordKind::Payout, b"", after, 256, |_: &PayoutRecord| true)?;
            let mut writes = Vec::new();
            for payout in page {
                let key = [
                    payout.member.as_bytes().as_slice(),
                    payout.reference.as_bytes(),
                ]
                .concat();
                if self
                    .store
                    .get_record(RecordKind::MemberPayout, &key)?
                    .is_none()
                {
                    writes.push((RecordKind::MemberPayout, key, Some(encode(&payout)?)));
                }
            }
            if !writes.is_empty() {
                self.store.write_records(writes)?;
            }
            match next {
                Some(next) => after = Some(next),
                None => return self.mark_index_built(RecordKind::MemberShare),
            }
        }
    }

    /// A trustee records money paid out to a member; at most the member's balance in that
    /// currency. Logged with a commitment, never the member's key. Decided on the member's
    /// payouts guard, so two payouts never both spend the same balance (earnings only grow
    /// meanwhile).
    pub fn record_payout(
        &self,
        caller: &crate::Principal,
        reference_text: &str,
        member_key: &PublicKey,
        currency: &crate::Currency,
        amount: crate::Amount,
        now: UnixSeconds,
    ) -> Result<Logged<PayoutRecord>, DomainError> {
        let currency = currency.as_str();
        require_role(caller, Role::Trustee, "record payouts")?;
        let reference = reference(reference_text)?;
        let amount = amount.minor_units();
        let member = self
            .store
            .principal(member_key)?
            .filter(|principal| principal.role == Role::Member)
            .ok_or_else(|| {
                DomainError::refused(Refusal::NotFound, Subject::Member, "no such member")
            })?;
        let guard_key = [b"payouts/".as_slice(), member_key.as_bytes()].concat();
        self.decide(|| {
            let (existing, reference_read) = self
                .store
                .read_record(RecordKind::Payout, reference.as_bytes())?;
            if existing.is_some() {
                return Err(DomainError::AlreadyExists(format!(
                    "reference: a payout with reference {reference:?} is already recorded"
                )));
            }
            let (guard_read, guard_write) = crate::commit::guard(&self.store, &guard_key)?;
            let totals = self.member_totals(member_key)?;
            let Some(totals) = totals.get(currency) else {
                return Err(FieldError::new(
                    "currency",
                    format!(
                        "the member has earned nothing in {}",
                        crate::validation::quoted(currency)
                    ),
                )
                .into());
            };
            let balance = totals.earned.saturating_sub(totals.paid_out);
            if amount > balance {
                return Err(FieldError::new(
                    "amount",
                    format!("{amount} is more than the member's balance of {balance} {currency}"),
                )
                .into());
            }
            let entry = LogEntry::new("payout", now)
                .with(
                    "member",
                    hex::encode(share_commitment(
                        &member.commitment_salt,
                        member_key,
                        &format!("payout\n{reference}"),
                    )),
                )
                .with("currency", currency.to_owned())
                .with("amount", amount.to_string())
                .with("reference-sha256", sha256_hex(reference.as_bytes()));
            let record = PayoutRecord {
                reference: reference.clone(),
                member: *member_key,
                currency: currency.to_owned(),
                amount,
                paid_at: now,
                recorded_by: caller.public_key,
                log_index: 0,
            };
            let decision = crate::commit::Decision {
                entries: vec![entry],
                writes: vec![
                    crate::commit::indexed_write(
                        RecordKind::Payout,
                        reference.as_bytes(),
                        &record,
                        "/log_index",
                        0,
                    )?,
                    crate::commit::indexed_write(
                        RecordKind::MemberPayout,
                        &[member_key.as_bytes().as_slice(), reference.as_bytes()].concat(),
                        &record,
                        "/log_index",
                        0,
                    )?,
                    guard_write,
                ],
                reads: vec![reference_read, guard_read],
            };
            Ok((record, Some(decision)))
        })
        .map(|mut logged| {
            logged.value.log_index = logged.log_index.unwrap_or_default();
            logged
        })
    }

    /// The union's ledger: totals per currency, and the licensees suspended now.
    pub fn ledger(&self, caller: &crate::Principal) -> Result<Ledger, DomainError> {
        require_role(caller, Role::Trustee, "read the union's ledger")?;
        let mut totals: BTreeMap<String, LedgerTotals> = BTreeMap::new();
        for charge in self.charges()? {
            let line = totals.entry(charge.currency.clone()).or_default();
            line.charged = line.charged.saturating_add(charge.amount);
            line.fund = line.fund.saturating_add(charge.fund);
            line.members_earned = line
                .members_earned
                .saturating_add(charge.amount - charge.fund);
        }
        for payment in self.payments()? {
            let line = totals.entry(payment.currency.clone()).or_default();
            line.received = line.received.saturating_add(payment.amount);
        }
        for payout in self.records::<PayoutRecord>(RecordKind::Payout, b"")? {
            let line = totals.entry(payout.currency.clone()).or_default();
            line.paid_out = line.paid_out.saturating_add(payout.amount);
        }
        Ok(Ledger {
            totals,
            suspensions: self.records(RecordKind::Suspension, b"")?,
        })
    }

    /// The licensee's current suspension, if any.
    pub fn suspension_of(
        &self,
        licensee: &PublicKey,
    ) -> Result<Option<SuspensionRecord>, DomainError> {
        self.record(RecordKind::Suspension, licensee.as_bytes())
    }

    /// Suspends `licensee` if one of its invoices is overdue (or, with `counting_reports`,
    /// a license's use is unreported too long) and it is not suspended yet; returns its
    /// suspension, if any. A training-use report is itself what a late reporter owes, so it
    /// is checked without `counting_reports`. The suspension is decided on the overdue
    /// charges it names and the reporting guards of the late licenses: a payment or a
    /// report that lands first decides it again.
    pub(crate) fn enforce_duties_of(
        &self,
        licensee: &PublicKey,
        now: UnixSeconds,
        counting_reports: bool,
    ) -> Result<Option<SuspensionRecord>, DomainError> {
        self.decide(|| {
            let (existing, suspension_read) = self
                .store
                .read_record(RecordKind::Suspension, licensee.as_bytes())?;
            if let Some(existing) = existing {
                return Ok((Some(decode::<SuspensionRecord>(&existing)?), None));
            }
            let Some((reason, mut reads)) = self.breach(licensee, now, counting_reports)? else {
                return Ok((None, None));
            };
            reads.push(suspension_read);
            let licenses: Vec<String> = self
                .records_of_licensee(licensee)?
                .into_iter()
                .filter(|license| license.status == LicenseStatus::Active)
                .map(|license| license.id)
                .collect();
            let entry = LogEntry::new("licensee-suspended", now)
                .with("licensee", licensee.to_base64())
                .with(
                    "licenses",
                    if licenses.is_empty() {
                        "none".to_owned()
                    } else {
                        licenses.join(",")
                    },
                )
                .with("reason", reason.clone());
            let record = SuspensionRecord {
                licensee: *licensee,
                reason,
                since: now,
                log_index: 0,
            };
            let decision = crate::commit::Decision {
                entries: vec![entry],
                writes: vec![crate::commit::indexed_write(
                    RecordKind::Suspension,
                    licensee.as_bytes(),
                    &record,
                    "/log_index",
                    0,
                )?],
                reads,
            };
            Ok((Some(record), Some(decision)))
        })
        .map(|logged| {
            logged.value.map(|mut record| {
                if let Some(index) = logged.log_index {
                    record.log_index = index;
                }
                record
            })
        })
    }

    /// What the licensee is late with now, if anything, and the reads that say so: an
    /// overdue invoice (its open-charge entries), else a license whose use has gone
    /// unreported for longer than its terms allow (its reporting guard and account).
    fn breach(
        &self,
        licensee: &PublicKey,
        now: UnixSeconds,
        counting_reports: bool,
    ) -> Result<Option<(String, Vec<crate::commit::TableRead>)>, DomainError> {
        let overdue = self.overdue_invoices(licensee, now)?;
        if let Some(first) = overdue.first() {
            let mut reads = Vec::new();
            for invoice in &overdue {
                let (_, read) = self
                    .store
                    .read_record(RecordKind::OpenCharge, &open_charge_key(&invoice.charge))?;
                reads.push(read);
            }
            return Ok(Some((
                format!(
                    "invoice {} ({} {} due) overdue since {}{}",
                    first.charge.id,
                    first.due,
                    first.charge.currency,
                    first.charge.due_at,
                    match overdue.len() {
                        1 => String::new(),
                        more => format!(", and {} more", more - 1),
                    }
                ),
                reads,
            )));
        }
        if !counting_reports {
            return Ok(None);
        }
        let late = self.late_reports(licensee, now)?;
        let Some((license, since, days)) = late.first() else {
            return Ok(None);
        };
        let mut reads = Vec::new();
        for (id, _, _) in &late {
            let (_, tally) = self
                .store
                .read_record(RecordKind::RunTally, id.as_bytes())?;
            let (_, account) = self
                .store
                .read_record(RecordKind::UsageAccount, id.as_bytes())?;
            reads.extend([tally, account]);
        }
        Ok(Some((
            format!(
                "license {license}: no usage report or declaration since {since}; the terms require one every {days} days"
            ),
            reads,
        )))
    }

    /// Active licenses of the licensee whose use is unaccounted for too long:
    /// (license id, accounted until, the terms' period in days).
    fn late_reports(
        &self,
        licensee: &PublicKey,
        now: UnixSeconds,
    ) -> Result<Vec<(String, UnixSeconds, u32)>, DomainError> {
        let mut late = Vec::new();
        for record in self.records_of_licensee(licensee)? {
            if record.status != LicenseStatus::Active {
                continue;
            }
            let license = record.license();
            if !license.is_valid_at(now) {
                continue;
            }
            let days = self.terms_of(&license)?.policy.royalties.usage_report_days;
            if days == 0 {
                continue;
            }
            let accounted = self.accounted_until(&license)?;
            if now > accounted.plus_seconds(i64::from(days) * SECONDS_PER_DAY) {
                late.push((license.id, accounted, days));
            }
        }
        Ok(late)
    }

    /// The latest of: the license's start, its latest declaration, its latest accepted
    /// training-use report.
    fn accounted_until(&self, license: &License) -> Result<UnixSeconds, DomainError> {
        let mut until = license.not_before;
        if let Some(account) = self.usage_account(&license.id)? {
            until = until.max(account.accounted_until);
        }
        if let Some(last) = self.run_tally(&license.id)?.last_accepted {
            until = until.max(last);
        }
        Ok(until)
    }

    /// A license's accepted runs (none recorded: none accepted).
    pub(crate) fn run_tally(&self, license_id: &str) -> Result<RunTally, DomainError> {
        Ok(self
            .record(RecordKind::RunTally, license_id.as_bytes())?
            .unwrap_or_default())
    }

    fn usage_account(&self, license_id: &str) -> Result<Option<UsageAccount>, DomainError> {
        self.record(RecordKind::UsageAccount, license_id.as_bytes())
    }

    /// A licensee declares, signed, that it ran no training under a license up to `until`
    /// (at most now). Allowed while suspended: it is how a late licensee catches up. Logged.
    pub fn declare_no_use(
        &self,
        caller: &crate::Principal,
        license_id: &crate::LicenseId,
        until: UnixSeconds,
        signature: &[u8],
        now: UnixSeconds,
    ) -> Result<Logged<UsageAccount>, DomainError> {
        let license_id = license_id.as_str();
        require_role(
            caller,
            Role::Licensee,
            "declare that a license was not used",
        )?;
        if until > now {
            return Err(FieldError::new("until", "cannot be in the future").into());
        }
        if !caller.signing_key().verify(
            &no_use_message(self.origin().as_str(), license_id, until),
            signature,
        ) {
            return Err(FieldError::new(
                "signature",
                "does not verify over the no-use declaration with your key",
            )
            .into());
        }
        let record = self
            .records_of_licensee(&caller.public_key)?
            .into_iter()
            .find(|record| record.id == license_id)
            .ok_or_else(|| {
                DomainError::refused(
                    Refusal::NotFound,
                    Subject::License,
                    "no license of yours has this id",
                )
            })?;
        let license = record.license();
        if until < license.not_before {
            return Err(FieldError::new("until", "is before the license began").into());
        }
        // Decided on the account and the license's runs (what a license is accounted for
        // reads its accepted reports); the declaration and its entry commit together.
        self.decide(|| {
            let (_, read) = self
                .store
                .read_record(RecordKind::UsageAccount, license.id.as_bytes())?;
            let (_, runs) = self
                .store
                .read_record(RecordKind::RunTally, license.id.as_bytes())?;
            if until <= self.accounted_until(&license)? {
                return Err(DomainError::FailedPrecondition(
                    "until: the license is already accounted for up to this time".into(),
                ));
            }
            let account = UsageAccount {
                license_id: license.id.clone(),
                accounted_until: until,
                log_index: 0,
            };

            let decision = crate::commit::Decision {
                entries: vec![
                    LogEntry::new("no-use-declared", now)
                        .with("license", license.id.clone())
                        .with("licensee", caller.public_key.to_base64())
                        .with("until", until.to_string())
                        .with("signature", hex::encode(signature)),
                ],
                writes: vec![usage_account_write(&account)?],
                reads: vec![read, runs],
            };
            Ok((account, Some(decision)))
        })
        .map(|mut logged| {
            logged.value.log_index = logged.log_index.unwrap_or_default();
            logged
        })
    }

    fn records_of_licensee(&self, licensee: &PublicKey) -> Result<Vec<LicenseRecord>, DomainError> {
        self.records::<String>(RecordKind::LicenseeLicense, licensee.as_bytes())?
            .into_iter()
            .map(|id| {
                self.record::<LicenseRecord>(RecordKind::License, id.as_bytes())?
                    .ok_or_else(|| {
                        DomainError::Store(crate::store::StoreError::data_loss(format!(
                            "the licensee index names license {id}, which is not stored"
                        )))
                    })
            })
            .collect()
    }

    /// Suspends every licensee with an overdue invoice; returns the suspensions made now.
    /// The server runs this periodically; trustees may run it at once.
    pub fn enforce_duties(&self, now: UnixSeconds) -> Result<Vec<SuspensionRecord>, DomainError> {
        let mut licensees: Vec<PublicKey> = self
            .records::<LicenseRecord>(RecordKind::License, b"")?
            .into_iter()
            .map(|license| license.licensee)
            .collect();
        licensees.sort();
        licensees.dedup();
        let mut made = Vec::new();
        for licensee in licensees {
            if self.suspension_of(&licensee)?.is_some() {
                continue;
            }
            if let Some(record) = self.enforce_duties_of(&licensee, now, true)? {
                made.push(record);
            }
        }
        Ok(made)
    }

    /// `enforce_duties` at a trustee's request.
    pub fn enforce_duties_now(
        &self,
        caller: &crate::Principal,
        now: UnixSeconds,
    ) -> Result<Vec<SuspensionRecord>, DomainError> {
        require_role(caller, Role::Trustee, "enforce licensees' duties")?;
        self.close_due_votes(now)?;
        self.enforce_duties(now)
    }

    /// Trustees lift a suspension once no invoice is overdue any more (record the payment
    /// first). Logged.
    pub fn lift_suspension(
        &self,
        caller: &crate::Principal,
        licensee: &PublicKey,
        why: &str,
        now: UnixSeconds,
    ) -> Result<Logged<SuspensionRecord>, DomainError> {
        require_role(caller, Role::Trustee, "lift suspensions")?;
        let why = why.trim();
        if why.is_empty() || why.chars().count() > 500 || why.chars().any(char::is_control) {
            return Err(FieldError::new(
                "reason",
                "give a reason: 1 to 500 characters, no control characters",
            )
            .into());
        }
        // The lifting, the restarted clocks and the entry commit together, decided on the
        // suspension (a second lifting is decided again, and refused).
        self.decide(|| {
            let (stored, read) = self
                .store
                .read_record(RecordKind::Suspension, licensee.as_bytes())?;
            let suspension: SuspensionRecord = decode(&stored.ok_or_else(|| {
                DomainError::refused(
                    Refusal::FailedPrecondition,
                    Subject::Licensee,
                    "this licensee is not suspended",
                )
            })?)?;
            if let Some(invoice) = self.overdue_invoices(licensee, now)?.into_iter().next() {
                return Err(DomainError::refused(
                    Refusal::FailedPrecondition,
                    Subject::Licensee,
                    format!(
                        "invoice {} still has {} {} overdue; record the payment first",
                        invoice.charge.id, invoice.due, invoice.charge.currency
                    ),
                ));
            }
            // A licensee late with its reports cannot report runs while suspended; lifting
            // restarts the reporting clock of each license that was late, from now.
            let late = self.late_reports(licensee, now)?;
            let entry = LogEntry::new("licensee-suspension-lifted", now)
                .with("licensee", licensee.to_base64())
                .with("by", caller.public_key.to_base64())
                .with("reason", why.to_owned())
                .with(
                    "reporting-restarted",
                    if late.is_empty() {
                        "none".to_owned()
                    } else {
                        late.iter()
                            .map(|(license, _, _)| license.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    },
                );
            let mut writes = vec![crate::commit::Write::Record {
                kind: RecordKind::Suspension,
                key: licensee.as_bytes().to_vec(),
                value: None,
            }];
            for (license_id, _, _) in &late {
                let account = UsageAccount {
                    license_id: license_id.clone(),
                    accounted_until: now,
                    log_index: 0,
                };
                writes.push(usage_account_write(&account)?);
            }
            let decision = crate::commit::Decision {
                entries: vec![entry],
                writes,
                reads: vec![read],
            };
            Ok((suspension, Some(decision)))
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_example_agreement_split_by_hand() {
        // 2,500.00 EUR, 10 % to the fund; members with 1, 2 and 4 records.
        let parts = split(250_000, 1000, &[1, 2, 4], DistributionRule::ProRataRecords).unwrap();
        assert_eq!(parts.fund, 25_000);
        // 225,000 × 1/7 = 32,142.857…, × 2/7 = 64,285.714…, × 4/7 = 128,571.428…:
        // floors add to 224,998; the two largest remainders (.857, .714) get a unit each.
        assert_eq!(parts.shares, vec![32_143, 64_286, 128_571]);
        let equal = split(100, 0, &[5, 1, 9], DistributionRule::EqualShares).unwrap();
        assert_eq!(equal.shares, vec![34, 33, 33]);
    }

    #[test]
    fn no_contributors_means_everything_goes_to_the_fund() {
        let parts = split(999, 1000, &[], DistributionRule::ProRataRecords).unwrap();
        assert_eq!((parts.fund, parts.shares), (999, vec![]));
        let parts = split(999, 1000, &[0, 0], DistributionRule::ProRataRecords).unwrap();
        assert_eq!((parts.fund, parts.shares), (999, vec![0, 0]));
        assert!(split(1, 10_001, &[1], DistributionRule::EqualShares).is_err());
    }

    #[test]
    fn the_largest_amounts_do_not_overflow() {
        let parts = split(
            u64::MAX,
            9_999,
            &[u64::MAX, u64::MAX, 1],
            DistributionRule::ProRataRecords,
        )
        .unwrap();
        let total: u128 =
            u128::from(parts.fund) + parts.shares.iter().map(|&s| u128::from(s)).sum::<u128>();
        assert_eq!(total, u128::from(u64::MAX));
    }

    fn example_license(terms: &Terms) -> License {
        let request = crate::terms::LicenseRequestTerms {
            purpose: "computer-use-agent-training".into(),
            categories: vec!["pointer".into(), "clicks".into()],
            data_from: UnixSeconds(100),
            data_to: UnixSeconds(200),
            model_family: "acme-agent".into(),
            max_training_runs: 5,
            duration_days: 30,
        };
        let licensee = crate::keys::NoteSigner::new("l", [3; 32])
            .unwrap()
            .public_key();
        License::grant("trust.test", licensee, &request, terms, UnixSeconds(1_000))
    }

    #[test]
    fn a_run_charge_that_would_overflow_is_refused() {
        let terms = Terms::parse(crate::terms::tests::EXAMPLE).unwrap();
        let license = example_license(&terms);
        let release = |pointer: u64, clicks: u64| ReleaseRecordMeta {
            id: "0123456789abcdef".into(),
            license_id: license.id.clone(),
            licensee: license.licensee,
            parts: vec![crate::release::ReleasePart {
                member: license.licensee,
                commitment: String::new(),
                count: pointer.saturating_add(clicks),
                records_root: String::new(),
                categories: [
                    ("pointer".to_owned(), pointer),
                    ("clicks".to_owned(), clicks),
                ]
                .into_iter()
                .collect(),
            }],
            root: String::new(),
            records: 0,
            created_at: UnixSeconds(0),
            log_index: 0,
        };
        // 250,000 per run + 1 per pointer move + 1 per click.
        assert_eq!(
            training_run_amount(&license, &[release(10, 5)]),
            Ok(250_015)
        );
        assert!(training_run_amount(&license, &[release(u64::MAX, 0)]).is_err());
        assert!(
            training_run_amount(&license, &[release(u64::MAX / 2, u64::MAX / 2)]).is_err(),
            "the sum overflows even though each product fits"
        );
    }

    fn rule() -> impl Strategy<Value = DistributionRule> {
        prop_oneof![
            Just(DistributionRule::ProRataRecords),
            Just(DistributionRule::EqualShares)
        ]
    }

    proptest! {
        #[test]
        fn shares_add_up_exactly_and_are_deterministic(
            charge in any::<u64>(),
            basis_points in 0u32..=10_000,
            records in proptest::collection::vec(any::<u64>(), 0..50),
            rule in rule(),
        ) {
            let parts = split(charge, basis_points, &records, rule).unwrap();
            prop_assert_eq!(parts.shares.len(), records.len());
            let total = u128::from(parts.fund) + parts.shares.iter().map(|&s| u128::from(s)).sum::<u128>();
            prop_assert_eq!(total, u128::from(charge));
            prop_assert_eq!(&parts, &split(charge, basis_points, &records, rule).unwrap());
            // Nobody gets more than one unit above their exact share.
            let members = u128::from(charge - parts.fund);
            let weights: Vec<u128> = records.iter().map(|&r| match rule {
                DistributionRule::ProRataRecords => u128::from(r),
                DistributionRule::EqualShares => 1,
            }).collect();
            let total_weight: u128 = weights.iter().sum();
            for (share, weight) in parts.shares.iter().zip(&weights) {
                if let Some(exact_floor) = (members * weight).checked_div(total_weight) {
                    prop_assert!(u128::from(*share) == exact_floor || u128::from(*share) == exact_floor + 1);
                }
            }
        }

        #[test]
        fn every_members_share_verifies_against_the_committed_root(
            charge in 0u64..1_000_000_000_000,
            basis_points in 0u32..=10_000,
            records in proptest::collection::vec(0u64..1_000_000, 0..30),
            rule in rule(),
            tamper in 1u64..1000,
        ) {
            let mut terms = Terms::parse(crate::terms::tests::EXAMPLE).unwrap();
            terms.policy.royalties.union_fund_basis_points = basis_points;
            terms.policy.royalties.distribution = rule;
            let license = example_license(&terms);
            let contributions: Vec<(PublicKey, [u8; 32], u64)> = records
                .iter()
                .enumerate()
                .map(|(index, &count)| {
                    let key = crate::keys::NoteSigner::new("member", [index as u8 + 1; 32]).unwrap().public_key();
                    (key, [index as u8; 32], count)
                })
                .collect();
            let pending = build_charge(&license, ChargeKind::LicenseFee, charge, &terms, &contributions, UnixSeconds(1_800_000_000)).unwrap();
            let (record, distribution) = (pending.record, pending.shares);
            let leaves = distribution.leaves();
            let root = sum::root(&leaves).unwrap();
            prop_assert_eq!(root.amount, charge);
            prop_assert_eq!(hex::encode(root.hash), record.root_hash.clone());
            prop_assert_eq!(pending.entry.field("share-root"), Some(record.root_hash.as_str()));
            for (key, salt, _) in &contributions {
                let index = distribution.shares.iter().position(|share| share.member == Some(*key)).unwrap();
                let share = &distribution.shares[index];
                prop_assert_eq!(&share.commitment, &hex::encode(share_commitment(salt, key, &record.id)));
                let proof = sum::proof(&leaves, index as u64).unwrap();
                prop_assert!(sum::verify(&share.leaf(), index as u64, leaves.len() as u64, &proof, &root).is_ok());
                let mut forged = share.leaf();
                forged.amount += tamper;
                prop_assert!(sum::verify(&forged, index as u64, leaves.len() as u64, &proof, &root).is_err());
            }
        }
    }
}
