//! The state is the log, replayed: `check` folds the log's entries (principals, consents,
//! collector authorisations, payments and what they add up to per charge, licenses issued
//! and revoked, terms proposed, votes closed and terms ratified, and the records that hold
//! their entry's index: training uses, charges, releases, payouts, suspensions) and
//! compares the result with what the store holds. Every logged change must be applied and
//! every applied change logged; each difference is named. `datatrust admin check` runs it
//! on a stopped trust, and the crash tests after every kill.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::compensation::PaymentRecord;
use crate::governance::{Consent, LicenseRecord, LicenseStatus, TermsRecord, TermsStatus};
use crate::log_entry::{DecodedEntry, subject};
use crate::store::{RecordKind, RecordStore, StoreError, TrustStore};
use crate::{Principal, Role};

/// What the check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub entries: u64,
    pub principals: u64,
    pub consents: u64,
    pub authorizations: u64,
    pub payments: u64,
    pub licenses: u64,
    pub terms: u64,
    /// Training uses, charges, releases, payouts and suspensions.
    pub indexed: u64,
    /// Each difference between the log and the store, in words.
    pub differences: Vec<String>,
}

/// What the log says, folded.
#[derive(Default)]
struct Logged {
    /// subject → (role, active)
    principals: BTreeMap<String, (String, bool)>,
    /// (member subject, purpose) → granted
    consents: BTreeMap<(String, String), bool>,
    /// (member subject, collector subject)
    authorizations: BTreeSet<(String, String)>,
    /// reference SHA-256 → (log index, charge id, amount)
    payments: BTreeMap<String, (u64, String, u64)>,
    /// license id → (issued at, revoked at)
    licenses: BTreeMap<String, (u64, Option<u64>)>,
    /// terms SHA-256 → the status the log leaves them in
    terms: BTreeMap<String, &'static str>,
    /// What → its id → the index of the entry that logged it, for records that hold the
    /// index of their entry (training uses, charges, releases, payouts, suspensions).
    indexed: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// license id → accepted training runs
    runs: BTreeMap<String, u32>,
}

/// Records that hold the index of the entry that logged them: what they are called, their
/// kind, and how to read (id, log index) from one.
type IndexedReader = fn(&[u8]) -> Option<(String, u64)>;
const INDEXED: [(&str, RecordKind, IndexedReader); 5] = [
    ("training use", RecordKind::TrainingUse, |bytes| {
        let record: crate::governance::TrainingUseRecord = serde_json::from_slice(bytes).ok()?;
        Some((record.report_sha256, record.log_index))
    }),
    ("charge", RecordKind::Charge, |bytes| {
        let record: crate::compensation::ChargeRecord = serde_json::from_slice(bytes).ok()?;
        Some((record.id, record.log_index))
    }),
    ("release", RecordKind::Release, |bytes| {
        let record: crate::release::ReleaseRecordMeta = serde_json::from_slice(bytes).ok()?;
        Some((record.id, record.log_index))
    }),
    ("payout", RecordKind::Payout, |bytes| {
        let record: crate::compensation::PayoutRecord = serde_json::from_slice(bytes).ok()?;
        Some((sha256_hex(record.reference.as_bytes()), record.log_index))
    }),
    ("suspension", RecordKind::Suspension, |bytes| {
        let record: crate::compensation::SuspensionRecord = serde_json::from_slice(bytes).ok()?;
        Some((record.licensee.to_base64(), record.log_index))
    }),
];

/// Folds `entries` (the whole log, in order) and compares them with `store`.
pub fn check<S: TrustStore + RecordStore + ?Sized>(
    store: &S,
    entries: impl IntoIterator<Item = Result<Vec<u8>, String>>,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let mut logged = Logged::default();
    for (index, entry) in entries.into_iter().enumerate() {
        report.entries += 1;
        let entry = entry.map_err(StoreError::new)?;
        let Some(entry) = DecodedEntry::parse(&entry) else {
            report
                .differences
                .push(format!("log entry {index} does not decode"));
            continue;
        };
        fold(&mut logged, index as u64, &entry);
    }

    // Principals: every stored one registered in the log, in the state the log left it.
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_principals(None, after.as_ref(), 1000)?;
        let Some(last) = page.last() else { break };
        after = Some(last.public_key);
        stored.extend(page);
    }
    report.principals = stored.len() as u64;
    let by_subject: HashMap<String, &Principal> = stored
        .iter()
        .map(|principal| (subject(principal), principal))
        .collect();
    for principal in &stored {
        let name = format!("{} {}", principal.role, principal.public_key);
        match logged.principals.get(&subject(principal)) {
            None => report.differences.push(format!(
                "{name} is stored, but the log has no registration of it"
            )),
            Some((_, active)) if *active != principal.is_active() => {
                report.differences.push(format!(
                    "{name} is {} in the store, but the log leaves it {}",
                    if principal.is_active() {
                        "active"
                    } else {
                        "deactivated"
                    },
                    if *active { "active" } else { "deactivated" }
                ));
            }
            Some(_) => {}
        }
    }
    for (logged_subject, (role, _)) in &logged.principals {
        if !by_subject.contains_key(logged_subject) {
            report.differences.push(format!(
                "the log registers a {role} {logged_subject} that the store does not hold"
            ));
        }
    }

    // Consents and collector authorisations, member by member.
    let mut stored_consents = BTreeMap::new();
    let mut stored_authorizations = BTreeSet::new();
    for member in stored
        .iter()
        .filter(|principal| principal.role == Role::Member)
    {
        let member_subject = subject(member);
        for (_, value) in store.scan_records(RecordKind::Consent, member.public_key.as_bytes())? {
            let consent: Consent = serde_json::from_slice(&value).map_err(|error| {
                StoreError::data_loss(format!("a stored consent does not decode: {error}"))
            })?;
            stored_consents.insert((member_subject.clone(), consent.purpose), consent.granted);
        }
        for authorization in store.collectors_of_member(&member.public_key)? {
            let collector = store
                .principal(&authorization.collector)?
                .map(|collector| subject(&collector))
                .unwrap_or_else(|| format!("unknown collector {}", authorization.collector));
            stored_authorizations.insert((member_subject.clone(), collector));
        }
    }
    report.consents = stored_consents.len() as u64;
    report.authorizations = stored_authorizations.len() as u64;
    let keys: BTreeSet<&(String, String)> = stored_consents
        .keys()
        .chain(logged.consents.keys())
        .collect();
    for key in keys {
        let (in_store, in_log) = (
            stored_consents.get(key).copied().unwrap_or(false),
            logged.consents.get(key).copied().unwrap_or(false),
        );
        if in_store != in_log {
            report.differences.push(format!(
                "member {}'s consent to {} is {} in the store, but the log leaves it {}",
                key.0,
                key.1,
                if in_store { "granted" } else { "not granted" },
                if in_log { "granted" } else { "not granted" }
            ));
        }
    }
    for (member, collector) in stored_authorizations.difference(&logged.authorizations) {
        report.differences.push(format!(
            "member {member} authorises collector {collector} in the store, but not in the log"
        ));
    }
    for (member, collector) in logged.authorizations.difference(&stored_authorizations) {
        report.differences.push(format!(
            "the log has member {member} authorising collector {collector}, but the store does not"
        ));
    }

    // Payments: each stored one logged at the index it holds, for the same charge and
    // amount; each logged one stored; each charge's paid total the sum of its payments.
    let mut stored_references = BTreeSet::new();
    let mut paid_per_charge: BTreeMap<String, u64> = BTreeMap::new();
    for (_, value) in store.scan_records(RecordKind::Payment, b"")? {
        let payment: PaymentRecord = serde_json::from_slice(&value).map_err(|error| {
            StoreError::data_loss(format!("a stored payment does not decode: {error}"))
        })?;
        report.payments += 1;
        let reference = sha256_hex(payment.reference.as_bytes());
        match logged.payments.get(&reference) {
            None => report.differences.push(format!(
                "payment {reference} (against {}) is stored, but the log has no entry for it",
                payment.charge_id
            )),
            Some((index, charge, amount)) => {
                if (*index, charge, *amount)
                    != (payment.log_index, &payment.charge_id, payment.amount)
                {
                    report.differences.push(format!(
                        "payment {reference} is stored as {} against {} at index {}, but logged as {amount} against {charge} at index {index}",
                        payment.amount, payment.charge_id, payment.log_index
                    ));
                }
            }
        }
        let total = paid_per_charge.entry(payment.charge_id).or_default();
        *total = total.saturating_add(payment.amount);
        stored_references.insert(reference);
    }
    for reference in logged.payments.keys() {
        if !stored_references.contains(reference) {
            report.differences.push(format!(
                "the log has payment {reference}, but the store does not"
            ));
        }
    }
    for (charge, total) in &paid_per_charge {
        let kept: u64 = store
            .get_record(RecordKind::ChargePaid, charge.as_bytes())?
            .map(|bytes| serde_json::from_slice(&bytes).unwrap_or(u64::MAX))
            .unwrap_or(0);
        if kept != *total {
            report.differences.push(format!(
                "charge {charge}: payments add up to {total}, but its paid total says {kept}"
            ));
        }
    }

    // Licenses: each stored one issued in the log at the index it holds; revoked in the
    // store exactly when the log revokes it, at the index that revoked it.
    let mut stored_licenses = BTreeSet::new();
    for (_, value) in store.scan_records(RecordKind::License, b"")? {
        let license: LicenseRecord = serde_json::from_slice(&value).map_err(|error| {
            StoreError::data_loss(format!("a stored license does not decode: {error}"))
        })?;
        report.licenses += 1;
        let revoked = match &license.status {
            LicenseStatus::Active => None,
            LicenseStatus::Revoked { log_index, .. } => Some(*log_index),
        };
        match logged.licenses.get(&license.id) {
            None => report.differences.push(format!(
                "license {} is stored, but the log never issued it",
                license.id
            )),
            Some((issued, logged_revoked)) => {
                if *issued != license.issued_log_index || *logged_revoked != revoked {
                    report.differences.push(format!(
                        "license {} is stored as issued at {} and revoked at {revoked:?}, but the log has {issued} and {logged_revoked:?}",
                        license.id, license.issued_log_index
                    ));
                }
            }
        }
        stored_licenses.insert(license.id);
    }
    for license in logged.licenses.keys() {
        if !stored_licenses.contains(license) {
            report.differences.push(format!(
                "the log issues license {license}, but the store does not hold it"
            ));
        }
    }

    // Terms: each version in the status the log leaves it in.
    let mut stored_terms = BTreeSet::new();
    for (_, value) in store.scan_records(RecordKind::Terms, b"")? {
        let terms: TermsRecord = serde_json::from_slice(&value).map_err(|error| {
            StoreError::data_loss(format!("stored terms do not decode: {error}"))
        })?;
        report.terms += 1;
        let status = match terms.status {
            TermsStatus::Voting => "voting",
            TermsStatus::AwaitingCountersignatures => "awaiting countersignatures",
            TermsStatus::Rejected => "rejected",
            TermsStatus::Ratified => "ratified",
            TermsStatus::Superseded => "superseded",
        };
        match logged.terms.get(&terms.hash) {
            None => report.differences.push(format!(
                "terms {} are stored, but the log never proposed them",
                terms.hash
            )),
            Some(logged_status) if *logged_status != status => report.differences.push(format!(
                "terms {} are {status} in the store, but the log leaves them {logged_status}",
                terms.hash
            )),
            Some(_) => {}
        }
        stored_terms.insert(terms.hash);
    }
    for hash in logged.terms.keys() {
        if !stored_terms.contains(hash) {
            report.differences.push(format!(
                "the log proposes terms {hash}, but the store does not hold them"
            ));
        }
    }
    // Records holding their entry's index: each stored one logged at that index, each
    // logged one stored (a lifted suspension is neither).
    for (what, kind, read) in INDEXED {
        let mut stored = BTreeMap::new();
        for (_, value) in store.scan_records(kind, b"")? {
            let (id, index) = read(&value)
                .ok_or_else(|| StoreError::data_loss(format!("a stored {what} does not decode")))?;
            stored.insert(id, index);
        }
        report.indexed += stored.len() as u64;
        let empty = BTreeMap::new();
        let in_log = logged.indexed.get(what).unwrap_or(&empty);
        for (id, index) in &stored {
            match in_log.get(id) {
                None => report.differences.push(format!(
                    "{what} {id} is stored (at index {index}), but the log has no entry for it"
                )),
                Some(logged_index) if logged_index != index => report.differences.push(format!(
                    "{what} {id} is stored as logged at index {index}, but the log has it at {logged_index}"
                )),
                Some(_) => {}
            }
        }
        for (id, index) in in_log {
            if !stored.contains_key(id) {
                report.differences.push(format!(
                    "the log has {what} {id} at index {index}, but the store does not hold it"
                ));
            }
        }
    }
    // Each license's run tally: as many accepted runs as the log has training uses.
    let mut tallied = BTreeSet::new();
    for (key, value) in store.scan_records(RecordKind::RunTally, b"")? {
        if key.first() == Some(&0) {
            continue; // the marker that the tallies were built
        }
        let license = String::from_utf8_lossy(&key).into_owned();
        let tally: crate::compensation::RunTally =
            serde_json::from_slice(&value).map_err(|error| {
                StoreError::data_loss(format!("a stored run tally does not decode: {error}"))
            })?;
        let in_log = logged.runs.get(&license).copied().unwrap_or(0);
        if tally.accepted != in_log {
            report.differences.push(format!(
                "license {license} has {} accepted runs in its tally, but the log has {in_log}",
                tally.accepted
            ));
        }
        tallied.insert(license);
    }
    for (license, runs) in &logged.runs {
        if !tallied.contains(license) {
            report.differences.push(format!(
                "the log has {runs} accepted runs of license {license}, but it has no run tally"
            ));
        }
    }
    Ok(report)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn fold(logged: &mut Logged, index: u64, entry: &DecodedEntry) {
    let field = |name: &str| entry.field(name).unwrap_or_default().to_owned();
    match entry.kind.as_str() {
        "terms-proposed" => {
            logged.terms.insert(field("terms-sha256"), "voting");
        }
        "vote-closed" => {
            let outcome = if field("outcome") == "passed" {
                "awaiting countersignatures"
            } else {
                "rejected"
            };
            logged.terms.insert(field("terms-sha256"), outcome);
        }
        "terms-ratified" => {
            if let Some(previous) = entry.field("supersedes") {
                logged.terms.insert(previous.to_owned(), "superseded");
            }
            logged.terms.insert(field("terms-sha256"), "ratified");
        }
        "training-use" | "training-use-refused" => {
            if entry.kind == "training-use" {
                *logged.runs.entry(field("license")).or_default() += 1;
            }
            logged
                .indexed
                .entry("training use")
                .or_default()
                .insert(field("report-sha256"), index);
        }
        "charge" => {
            logged
                .indexed
                .entry("charge")
                .or_default()
                .insert(field("charge"), index);
        }
        "release-published" => {
            logged
                .indexed
                .entry("release")
                .or_default()
                .insert(field("release"), index);
        }
        "payout" => {
            logged
                .indexed
                .entry("payout")
                .or_default()
                .insert(field("reference-sha256"), index);
        }
        "licensee-suspended" => {
            logged
                .indexed
                .entry("suspension")
                .or_default()
                .insert(field("licensee"), index);
        }
        "licensee-suspension-lifted" => {
            logged
                .indexed
                .entry("suspension")
                .or_default()
                .remove(&field("licensee"));
        }
        "license-issued" => {
            logged.licenses.insert(field("license"), (index, None));
        }
        "license-revoked" => {
            let license = logged
                .licenses
                .entry(field("license"))
                .or_insert((u64::MAX, None));
            license.1.get_or_insert(index);
        }
        "payment-received" => {
            logged.payments.insert(
                field("reference-sha256"),
                (
                    index,
                    field("charge"),
                    field("amount").parse().unwrap_or(u64::MAX),
                ),
            );
        }
        "principal-registered" | "invitation-redeemed" => {
            logged
                .principals
                .insert(field("subject"), (field("role"), true));
        }
        "principal-deactivated" => {
            logged
                .principals
                .insert(field("subject"), (field("role"), false));
        }
        "consent-changed" => {
            logged.consents.insert(
                (field("subject"), field("purpose")),
                field("consent") == "granted",
            );
        }
        "collector-authorized" => {
            logged
                .authorizations
                .insert((field("member"), field("collector")));
        }
        "collector-revoked" => {
            logged
                .authorizations
                .remove(&(field("member"), field("collector")));
        }
        _ => {}
    }
}
