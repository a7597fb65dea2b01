//! The core loop: terms proposed, voted on by members, countersigned by a quorum of
//! trustees; consent per purpose; license requests checked against the active terms and
//! approved by a trustee quorum; signed licenses; revocation; training uses reported against
//! licenses. Every change is logged before it takes effect (see `registry`).

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::license::License;
use crate::log_entry::LogEntry;
use crate::registry::{DomainError, Journal, Logged, Refusal, Registry, Subject, require_role};
use crate::store::{EventStore, RecordKind, RecordStore, StoreError, TrustStore};
use std::sync::Arc;

use crate::commit::{Decision, TableRead};
use crate::ratification::{ACTIVE_TERMS, PROPOSALS_GUARD};

use crate::terms::{LicenseRequestTerms, Terms};
use crate::{FieldError, NoteSigner, Principal, PublicKey, Role, UnixSeconds, note};

/// Longest free-text reason (denial, revocation), in characters.
pub const MAXIMUM_REASON_CHARACTERS: usize = 500;
/// How far in the future a training run may claim to have ended (clock skew).
const CLOCK_SKEW_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermsStatus {
    Voting,
    AwaitingCountersignatures,
    Ratified,
    Superseded,
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub yes: u64,
    pub no: u64,
    /// Active members when the vote closed.
    pub eligible: u64,
}

impl Tally {
    /// Whether these ballots pass under `rule`: turnout at least the quorum (and someone
    /// voted), and yes at least the threshold of the votes cast.
    pub fn passes(&self, rule: &crate::terms::Ratification) -> bool {
        let cast = self.yes + self.no;
        let turnout_met =
            cast > 0 && cast * 100 >= u64::from(rule.member_quorum_percent) * self.eligible;
        let majority_met = self.yes * 100 >= u64::from(rule.member_vote_threshold_percent) * cast;
        turnout_met && majority_met
    }

    /// Whether the members who have not voted yet could still change the outcome (ballots
    /// already cast are counted as cast). Passing is settled when turnout is met already
    /// and the yes share holds even if everyone else votes no; rejection is settled when
    /// it fails even if everyone else votes yes.
    pub fn undecided(&self, rule: &crate::terms::Ratification) -> bool {
        let remaining = self.eligible.saturating_sub(self.yes + self.no);
        let all_no = Tally {
            no: self.no + remaining,
            ..*self
        };
        let all_yes = Tally {
            yes: self.yes + remaining,
            ..*self
        };
        let settled_pass = self.passes(rule) && all_no.passes(rule);
        let settled_reject = !all_yes.passes(rule);
        !(settled_pass || settled_reject)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Countersignature {
    pub trustee: PublicKey,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsRecord {
    pub version: u32,
    pub hash: String,
    pub document: String,
    pub status: TermsStatus,
    pub proposed_by: PublicKey,
    pub proposed_at: UnixSeconds,
    pub tally: Option<Tally>,
    pub countersignatures: Vec<Countersignature>,
    pub ratified_at: Option<UnixSeconds>,
    /// When the vote closes by itself (proposal + the terms' `voting_days`). Absent on
    /// terms proposed before votes had deadlines: those close when a trustee closes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voting_closes_at: Option<UnixSeconds>,
    /// The vote is being closed: its ballots are being counted, and no ballot is taken.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closing: bool,
}

impl TermsRecord {
    pub fn terms(&self) -> Terms {
        Terms::parse(&self.document).expect("stored terms were validated before storing")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    pub approve: bool,
    pub cast_at: UnixSeconds,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub purpose: String,
    pub granted: bool,
    pub changed_at: UnixSeconds,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedTerms {
    pub purpose: String,
    pub categories: Vec<String>,
    pub data_from: UnixSeconds,
    pub data_to: UnixSeconds,
    pub model_family: String,
    pub max_training_runs: u32,
    pub duration_days: u32,
}

impl From<&RequestedTerms> for LicenseRequestTerms {
    fn from(requested: &RequestedTerms) -> LicenseRequestTerms {
        LicenseRequestTerms {
            purpose: requested.purpose.clone(),
            categories: requested.categories.clone(),
            data_from: requested.data_from,
            data_to: requested.data_to,
            model_family: requested.model_family.clone(),
            max_training_runs: requested.max_training_runs,
            duration_days: requested.duration_days,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RequestStatus {
    Pending,
    Approved { license_id: String },
    Denied { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub trustee: PublicKey,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseRequestRecord {
    pub id: String,
    pub licensee: PublicKey,
    pub requested: RequestedTerms,
    /// The active terms when the request was made.
    pub terms_hash: String,
    pub status: RequestStatus,
    pub approvals: Vec<Approval>,
    pub created_at: UnixSeconds,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LicenseStatus {
    Active,
    Revoked {
        reason: String,
        at: UnixSeconds,
        log_index: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseRecord {
    pub id: String,
    pub licensee: PublicKey,
    pub request_id: String,
    /// The signed license note, verbatim.
    pub note: String,
    pub status: LicenseStatus,
    pub issued_log_index: u64,
}

impl LicenseRecord {
    pub fn license(&self) -> License {
        let text = note::Note::parse(&self.note)
            .expect("stored notes are well formed")
            .text;
        License::parse(&text).expect("stored licenses were validated before storing")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingUseRecord {
    pub license_id: String,
    pub run_id: String,
    pub report: String,
    pub report_sha256: String,
    pub signature: String,
    pub log_index: u64,
    /// False for a refused report: it is logged too, members must see attempts.
    pub accepted: bool,
    pub refusal: Option<String>,
    pub reported_at: UnixSeconds,
}

/// A parsed training-use report (the text the licensee signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingReport {
    pub trust: String,
    pub license_id: String,
    pub run_id: String,
    pub model_id: String,
    pub model_version: String,
    pub model_family: String,
    pub purpose: String,
    pub data: Vec<String>,
    pub started: UnixSeconds,
    pub ended: UnixSeconds,
    pub accelerator_seconds: u64,
}

pub const REPORT_FORMAT_LINE: &str = "datatrust training use v1";

impl TrainingReport {
    pub fn to_text(&self) -> String {
        format!(
            "{REPORT_FORMAT_LINE}\ntrust: {}\nlicense: {}\nrun: {}\nmodel: {}\nmodel-version: {}\nmodel-family: {}\npurpose: {}\ndata: {}\nstarted: {}\nended: {}\naccelerator-seconds: {}\n",
            self.trust,
            self.license_id,
            self.run_id,
            self.model_id,
            self.model_version,
            self.model_family,
            self.purpose,
            if self.data.is_empty() {
                "none".to_owned()
            } else {
                self.data.join(",")
            },
            self.started,
            self.ended,
            self.accelerator_seconds
        )
    }

    /// Parses report text strictly; every identifier is a short printable token.
    pub fn parse(text: &str) -> Result<TrainingReport, FieldError> {
        let mut lines = text
            .strip_suffix('\n')
            .ok_or_else(|| FieldError::new("report", "must end in a newline"))?
            .split('\n');
        if lines.next() != Some(REPORT_FORMAT_LINE) {
            return Err(FieldError::new(
                "report",
                format!("the first line must be {REPORT_FORMAT_LINE:?}"),
            ));
        }
        let mut next = |key: &'static str| -> Result<String, FieldError> {
            let line = lines
                .next()
                .ok_or_else(|| FieldError::new(key, "missing"))?;
            let value = line.strip_prefix(&format!("{key}: ")).ok_or_else(|| {
                FieldError::new(
                    key,
                    format!(
                        "expected the {key} line, found {}",
                        crate::validation::quoted(line)
                    ),
                )
            })?;
            if value.is_empty()
                || value.len() > 128
                || !value.bytes().all(|byte| byte.is_ascii_graphic())
            {
                return Err(FieldError::new(
                    key,
                    "must be 1 to 128 printable ASCII characters",
                ));
            }
            Ok(value.to_owned())
        };
        let number = |key: &'static str, value: String| -> Result<i64, FieldError> {
            value
                .parse()
                .map_err(|_| FieldError::new(key, "not a number"))
        };
        let report = TrainingReport {
            trust: next("trust")?,
            license_id: next("license")?,
            run_id: next("run")?,
            model_id: next("model")?,
            model_version: next("model-version")?,
            model_family: next("model-family")?,
            purpose: next("purpose")?,
            data: match next("data")?.as_str() {
                "none" => Vec::new(),
                list => list.split(',').map(str::to_owned).collect(),
            },
            started: UnixSeconds(number("started", next("started")?)?),
            ended: UnixSeconds(number("ended", next("ended")?)?),
            accelerator_seconds: next("accelerator-seconds")?
                .parse()
                .map_err(|_| FieldError::new("accelerator-seconds", "not a number"))?,
        };
        if lines.next().is_some() {
            return Err(FieldError::new(
                "report",
                "unexpected lines after accelerator-seconds",
            ));
        }
        Ok(report)
    }
}

/// What a member signs to vote.
pub fn ballot_message(origin: &str, terms_hash: &str, approve: bool) -> Vec<u8> {
    format!(
        "datatrust ballot v1\n{origin}\n{terms_hash}\n{}\n",
        if approve { "yes" } else { "no" }
    )
    .into_bytes()
}

/// What a trustee signs to countersign ratified terms.
pub fn countersign_message(origin: &str, terms_hash: &str) -> Vec<u8> {
    format!("datatrust countersign terms v1\n{origin}\n{terms_hash}\n").into_bytes()
}

/// What a trustee signs to approve a license request.
pub fn approval_message(origin: &str, request_id: &str, terms_hash: &str) -> Vec<u8> {
    format!("datatrust approve license request v1\n{origin}\n{request_id}\n{terms_hash}\n")
        .into_bytes()
}

/// The key that marks an index as built. Index entries start with a 32-byte member key and
/// are read by that prefix, so this shorter key is never one of them.
const INDEX_BUILT: &[u8] = b"\0index built v1";

/// A stored record's bytes (JSON).
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, DomainError> {
    serde_json::to_vec(value)
        .map_err(|error| DomainError::Store(StoreError::new(format!("encoding a record: {error}"))))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DomainError> {
    serde_json::from_slice(bytes).map_err(|error| {
        DomainError::Store(StoreError::new(format!(
            "a stored record does not decode: {error}"
        )))
    })
}

fn reason(text: &str, field: &str) -> Result<String, FieldError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "give a reason"));
    }
    if trimmed.chars().count() > MAXIMUM_REASON_CHARACTERS || trimmed.chars().any(char::is_control)
    {
        return Err(FieldError::new(
            field,
            format!("at most {MAXIMUM_REASON_CHARACTERS} characters, no control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn signature_hex(signature: &[u8]) -> String {
    hex::encode(signature)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl<S: TrustStore + RecordStore + EventStore + Clone, J: Journal> Registry<S, J> {
    /// Every record of `kind` whose key starts with `prefix`, decoded.
    pub(crate) fn records<T: DeserializeOwned>(
        &self,
        kind: RecordKind,
        prefix: &[u8],
    ) -> Result<Vec<T>, DomainError> {
        self.store
            .scan_records(kind, prefix)?
            .iter()
            .map(|(_, value)| decode(value))
            .collect()
    }

    /// One page of records of `kind` under `prefix`, strictly after the key `after`: at
    /// most `limit` of those `keep` accepts, read from the store a bounded batch at a time
    /// (a page never holds the whole list). Returns the records and where the next page
    /// starts (`None` when the list is done).
    pub(crate) fn records_page<T: DeserializeOwned>(
        &self,
        kind: RecordKind,
        prefix: &[u8],
        after: Option<Vec<u8>>,
        limit: usize,
        keep: impl Fn(&T) -> bool,
    ) -> Result<(Vec<T>, Option<Vec<u8>>), DomainError> {
        const BATCH: usize = 256;
        let mut kept = Vec::new();
        let mut position = after;
        loop {
            let batch = self
                .store
                .scan_records_page(kind, prefix, position.as_deref(), BATCH)?;
            let exhausted = batch.len() < BATCH;
            for (key, value) in batch {
                let record: T = decode(&value)?;
                position = Some(key);
                if keep(&record) {
                    kept.push(record);
                    if kept.len() == limit {
                        return Ok((kept, position));
                    }
                }
            }
            if exhausted {
                return Ok((kept, None));
            }
        }
    }

    /// Whether an index kept in `kind` was built for everything stored before it existed
    /// (the start-up migration then has nothing to do, and reads nothing).
    pub(crate) fn index_built(&self, kind: RecordKind) -> Result<bool, DomainError> {
        Ok(self.store.get_record(kind, INDEX_BUILT)?.is_some())
    }

    pub(crate) fn mark_index_built(&self, kind: RecordKind) -> Result<(), DomainError> {
        self.put(kind, INDEX_BUILT, &true)
    }

    pub(crate) fn record<T: DeserializeOwned>(
        &self,
        kind: RecordKind,
        key: &[u8],
    ) -> Result<Option<T>, DomainError> {
        self.store
            .get_record(kind, key)?
            .map(|value| decode(&value))
            .transpose()
    }

    pub(crate) fn put<T: Serialize>(
        &self,
        kind: RecordKind,
        key: &[u8],
        value: &T,
    ) -> Result<(), DomainError> {
        Ok(self
            .store
            .write_records(vec![(kind, key.to_vec(), Some(encode(value)?))])?)
    }

    /// One page of the versions of the terms, in storage order (callers sort by version).
    /// Public.
    pub fn terms_page(
        &self,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(Vec<TermsRecord>, Option<Vec<u8>>), DomainError> {
        self.records_page(RecordKind::Terms, b"", after, limit, |_: &TermsRecord| true)
    }

    /// Every version of the terms, oldest first. Public.
    pub fn terms_history(&self) -> Result<Vec<TermsRecord>, DomainError> {
        let mut history: Vec<TermsRecord> = self.records(RecordKind::Terms, b"")?;
        history.sort_by_key(|record| record.version);
        Ok(history)
    }

    /// The ratified terms in force, if any. Public.
    pub fn active_terms(&self) -> Result<Option<TermsRecord>, DomainError> {
        match self.record::<String>(RecordKind::ActiveTerms, ACTIVE_TERMS)? {
            Some(hash) => Ok(Some(self.terms_by_hash(&hash)?)),
            // Before the first ratification, or a trust from before the pointer (until
            // `ensure_active_terms_pointer` has run).
            None => Ok(self
                .terms_history()?
                .into_iter()
                .find(|record| record.status == TermsStatus::Ratified)),
        }
    }

    /// The terms in force, parsed: one key read, and the document parsed once per version.
    pub(crate) fn active_policy(&self) -> Result<Option<Arc<Terms>>, DomainError> {
        match self.record::<String>(RecordKind::ActiveTerms, ACTIVE_TERMS)? {
            Some(hash) => match self.cached_terms(&hash) {
                Some(terms) => Ok(Some(terms)),
                None => Ok(Some(self.parsed_terms(&self.terms_by_hash(&hash)?))),
            },
            None => Ok(self
                .active_terms()?
                .map(|record| self.parsed_terms(&record))),
        }
    }

    fn cached_terms(&self, hash: &str) -> Option<Arc<Terms>> {
        self.parsed_terms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    /// A version's terms, parsed once and kept (versions are few).
    pub(crate) fn parsed_terms(&self, record: &TermsRecord) -> Arc<Terms> {
        if let Some(terms) = self.cached_terms(&record.hash) {
            return terms;
        }
        let terms = Arc::new(record.terms());
        self.parsed_terms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(record.hash.clone(), Arc::clone(&terms));
        terms
    }

    /// Writes the pointer to the terms in force for a trust from before it, once.
    pub fn ensure_active_terms_pointer(&self) -> Result<(), DomainError> {
        if self
            .record::<String>(RecordKind::ActiveTerms, ACTIVE_TERMS)?
            .is_some()
        {
            return Ok(());
        }
        match self
            .terms_history()?
            .into_iter()
            .find(|record| record.status == TermsStatus::Ratified)
        {
            Some(record) => self.put(RecordKind::ActiveTerms, ACTIVE_TERMS, &record.hash),
            None => Ok(()),
        }
    }

    fn terms_by_hash(&self, hash: &str) -> Result<TermsRecord, DomainError> {
        self.record(RecordKind::Terms, hash.as_bytes())?
            .ok_or_else(|| {
                DomainError::refused(Refusal::NotFound, Subject::Terms, "no terms with this hash")
            })
    }

    fn active_members(&self) -> Result<u64, DomainError> {
        let mut count = 0u64;
        let mut after = None;
        loop {
            let page = self
                .store
                .list_principals(Some(Role::Member), after.as_ref(), 1000)?;
            count += page
                .iter()
                .filter(|principal| principal.is_active())
                .count() as u64;
            match page.last() {
                Some(last) if page.len() == 1000 => after = Some(last.public_key),
                _ => return Ok(count),
            }
        }
    }

    fn active_trustees(&self) -> Result<u64, DomainError> {
        Ok(self
            .store
            .list_principals(Some(Role::Trustee), None, 10_000)?
            .iter()
            .filter(|principal| principal.is_active())
            .count() as u64)
    }

    pub fn propose_terms(
        &self,
        caller: &Principal,
        document: &str,
        now: UnixSeconds,
    ) -> Result<Logged<TermsRecord>, DomainError> {
        require_role(caller, Role::Trustee, "propose terms")?;
        let terms = Terms::parse(document)?;
        let trustees = self.active_trustees()?;
        if u64::from(terms.policy.ratification.trustee_quorum) > trustees {
            return Err(FieldError::new(
                "policy.ratification.trustee_quorum",
                format!(
                    "needs {} countersignatures but the trust has {trustees} active trustees",
                    terms.policy.ratification.trustee_quorum
                ),
            )
            .into());
        }
        // One open vote at a time and version numbers are rules over every version: every
        // proposal reads and bumps the proposals' guard, so two never commit on the same
        // history.
        self.decide(|| {
            let (guard_read, guard_write) = crate::commit::guard(&self.store, PROPOSALS_GUARD)?;
            let history = self.terms_history()?;
            if let Some(open) = history.iter().find(|record| {
                matches!(
                    record.status,
                    TermsStatus::Voting | TermsStatus::AwaitingCountersignatures
                )
            }) {
                return Err(DomainError::FailedPrecondition(format!(
                    "terms: version {} is still being ratified; close its vote first",
                    open.version
                )));
            }
            if history.iter().any(|record| record.hash == terms.hash_hex()) {
                return Err(DomainError::AlreadyExists(
                    "terms: these exact terms were proposed before".into(),
                ));
            }
            let record = TermsRecord {
                version: history.len() as u32 + 1,
                hash: terms.hash_hex(),
                document: document.to_owned(),
                status: TermsStatus::Voting,
                proposed_by: caller.public_key,
                proposed_at: now,
                tally: None,
                countersignatures: Vec::new(),
                ratified_at: None,
                voting_closes_at: Some(
                    now.plus_seconds(i64::from(terms.policy.ratification.voting_days) * 86_400),
                ),
                closing: false,
            };
            let (_, read) = self
                .store
                .read_record(RecordKind::Terms, record.hash.as_bytes())?;
            let mut decision = crate::ratification::propose(&record, read)?;
            decision.reads.push(guard_read);
            decision.writes.push(guard_write);
            Ok((record, Some(decision)))
        })
    }

    /// The terms record under `hash`, with the read it is.
    fn read_terms(&self, hash: &str) -> Result<(TermsRecord, TableRead), DomainError> {
        let (stored, read) = self.store.read_record(RecordKind::Terms, hash.as_bytes())?;
        let stored = stored.ok_or_else(|| {
            DomainError::refused(Refusal::NotFound, Subject::Terms, "no terms with this hash")
        })?;
        Ok((decode(&stored)?, read))
    }

    /// Casts or changes a member's ballot. Ballots are secret: not logged, never shown to
    /// anyone but their caster; only the tally is published. Decided on the terms' record,
    /// so a ballot racing the close of its vote is decided again, and refused.
    pub fn cast_ballot(
        &self,
        caller: &Principal,
        terms_hash: &crate::TermsHash,
        approve: bool,
        signature: &[u8],
        now: UnixSeconds,
    ) -> Result<Ballot, DomainError> {
        require_role(caller, Role::Member, "vote on terms")?;
        if !caller.signing_key().verify(
            &ballot_message(self.origin.as_str(), terms_hash, approve),
            signature,
        ) {
            return Err(FieldError::new(
                "signature",
                "does not verify over the ballot message with your key",
            )
            .into());
        }
        let key = [terms_hash.as_bytes(), caller.public_key.as_bytes()].concat();
        self.decide(|| {
            let (terms, terms_read) = self.read_terms(terms_hash)?;
            if terms.status != TermsStatus::Voting || terms.closing {
                return Err(DomainError::refused(
                    Refusal::FailedPrecondition,
                    Subject::Terms,
                    "the vote on these terms is closed",
                ));
            }
            if let Some(closes_at) = terms.voting_closes_at
                && now >= closes_at
            {
                return Err(DomainError::refused(
                    Refusal::FailedPrecondition,
                    Subject::Terms,
                    format!(
                        "the vote closed at {} (Unix seconds); its tally is being recorded",
                        closes_at.0
                    ),
                ));
            }
            let (_, ballot_read) = self.store.read_record(RecordKind::Ballot, &key)?;
            let ballot = Ballot {
                approve,
                cast_at: now,
                signature: signature_hex(signature),
            };
            let decision = Decision {
                entries: Vec::new(),
                writes: vec![crate::commit::record_write(
                    RecordKind::Ballot,
                    &key,
                    &ballot,
                )?],
                reads: vec![terms_read, ballot_read],
            };
            Ok((ballot, Some(decision)))
        })
        .map(|logged| logged.value)
    }

    pub fn my_ballot(
        &self,
        caller: &Principal,
        terms_hash: &crate::TermsHash,
    ) -> Result<Option<Ballot>, DomainError> {
        require_role(caller, Role::Member, "read their ballot")?;
        let key = [terms_hash.as_bytes(), caller.public_key.as_bytes()].concat();
        self.record(RecordKind::Ballot, &key)
    }

    pub fn close_vote(
        &self,
        caller: &Principal,
        terms_hash: &crate::TermsHash,
        now: UnixSeconds,
    ) -> Result<Logged<TermsRecord>, DomainError> {
        require_role(caller, Role::Trustee, "close votes")?;
        let record = self.terms_by_hash(terms_hash)?;
        if record.status != TermsStatus::Voting {
            return Err(DomainError::refused(
                Refusal::FailedPrecondition,
                Subject::Terms,
                "the vote is not open",
            ));
        }
        let before_deadline = record
            .voting_closes_at
            .is_some_and(|closes_at| now < closes_at);
        self.finish_vote(terms_hash, "trustee", before_deadline, now)
    }

    /// Closes every vote whose deadline has passed, logging each tally; run by the duties
    /// sweep (and when trustees enforce duties). Returns the terms closed.
    pub fn close_due_votes(&self, now: UnixSeconds) -> Result<Vec<TermsRecord>, DomainError> {
        let mut closed = Vec::new();
        for record in self.terms_history()? {
            if record.status == TermsStatus::Voting
                && record
                    .voting_closes_at
                    .is_some_and(|closes_at| now >= closes_at)
            {
                closed.push(
                    self.finish_vote(&record.hash, "deadline", false, now)?
                        .value,
                );
            }
        }
        Ok(closed)
    }

    fn tally(&self, record: &TermsRecord) -> Result<Tally, DomainError> {
        let ballots: Vec<Ballot> = self.records(RecordKind::Ballot, record.hash.as_bytes())?;
        let yes = ballots.iter().filter(|ballot| ballot.approve).count() as u64;
        Ok(Tally {
            yes,
            no: ballots.len() as u64 - yes,
            eligible: self.active_members()?,
        })
    }

    /// Closes a vote in two commits: first the vote is marked as closing, which refuses
    /// every ballot decided from then on (a ballot reads the terms' record); then the
    /// ballots are counted, all of them now, and the tally and the outcome commit with
    /// their entry. A trustee's early close (`early`) needs a tally the members who have
    /// not voted cannot change; if it turns out otherwise, the vote is opened again.
    fn finish_vote(
        &self,
        terms_hash: &str,
        closed_by: &str,
        early: bool,
        now: UnixSeconds,
    ) -> Result<Logged<TermsRecord>, DomainError> {
        let undecided = |record: &TermsRecord, tally: &Tally| {
            DomainError::refused(
                Refusal::FailedPrecondition,
                Subject::Terms,
                format!(
                    "the vote closes by itself at {} (Unix seconds); before then a trustee may close it only once the members who have not voted cannot change the outcome ({} yes, {} no, {} not voted)",
                    record.voting_closes_at.map_or(0, |at| at.0),
                    tally.yes,
                    tally.no,
                    tally.eligible.saturating_sub(tally.yes + tally.no)
                ),
            )
        };
        if early {
            let record = self.terms_by_hash(terms_hash)?;
            let tally = self.tally(&record)?;
            if tally.undecided(&record.terms().policy.ratification) {
                return Err(undecided(&record, &tally));
            }
        }
        self.mark_closing(terms_hash, true)?;
        let record = self.terms_by_hash(terms_hash)?;
        let tally = self.tally(&record)?;
        if early && tally.undecided(&record.terms().policy.ratification) {
            self.mark_closing(terms_hash, false)?;
            return Err(undecided(&record, &tally));
        }
        self.decide(|| {
            let (record, read) = self.read_terms(terms_hash)?;
            let (closed, decision) =
                crate::ratification::close(record, read, tally, closed_by, now)?;
            Ok((closed, Some(decision)))
        })
    }

    /// Marks an open vote as closing (or open again): a change without a log entry.
    fn mark_closing(&self, terms_hash: &str, closing: bool) -> Result<(), DomainError> {
        self.decide(|| {
            let (mut record, read) = self.read_terms(terms_hash)?;
            if record.status != TermsStatus::Voting {
                return Err(DomainError::refused(
                    Refusal::FailedPrecondition,
                    Subject::Terms,
                    "the vote is not open",
                ));
            }
            if record.closing == closing {
                return Ok(((), None));
            }
            record.closing = closing;
            let decision = Decision {
                entries: Vec::new(),
                writes: vec![crate::commit::record_write(
                    RecordKind::Terms,
                    record.hash.as_bytes(),
                    &record,
                )?],
                reads: vec![read],
            };
            Ok(((), Some(decision)))
        })
        .map(drop)
    }

    /// A trustee's countersignature; at the quorum the terms become active and the previous
    /// version is superseded.
    pub fn countersign_terms(
        &self,
        caller: &Principal,
        terms_hash: &crate::TermsHash,
        signature: &[u8],
        now: UnixSeconds,
    ) -> Result<Logged<TermsRecord>, DomainError> {
        require_role(caller, Role::Trustee, "countersign terms")?;
        if !caller.signing_key().verify(
            &countersign_message(self.origin.as_str(), terms_hash),
            signature,
        ) {
            return Err(FieldError::new(
                "signature",
                "does not verify over the countersignature message with your key",
            )
            .into());
        }
        self.decide(|| {
            let (mut record, record_read) = self.read_terms(terms_hash)?;
            if record.status != TermsStatus::AwaitingCountersignatures {
                return Err(DomainError::refused(
                    Refusal::FailedPrecondition,
                    Subject::Terms,
                    "these terms are not awaiting countersignatures",
                ));
            }
            if record
                .countersignatures
                .iter()
                .any(|existing| existing.trustee == caller.public_key)
            {
                return Err(DomainError::AlreadyExists(
                    "signature: this trustee has already countersigned".into(),
                ));
            }
            record.countersignatures.push(Countersignature {
                trustee: caller.public_key,
                signature: signature_hex(signature),
            });
            let quorum = record.terms().policy.ratification.trustee_quorum as usize;
            if record.countersignatures.len() < quorum {
                // Below the quorum a countersignature is kept, not logged.
                let decision = Decision {
                    entries: Vec::new(),
                    writes: vec![crate::commit::record_write(
                        RecordKind::Terms,
                        record.hash.as_bytes(),
                        &record,
                    )?],
                    reads: vec![record_read],
                };
                return Ok((record, Some(decision)));
            }
            let (_, pointer_read) = self
                .store
                .read_record(RecordKind::ActiveTerms, ACTIVE_TERMS)?;
            let previous = self.active_terms()?;
            let (ratified, decision) = crate::ratification::ratify(
                record,
                vec![record_read, pointer_read],
                previous,
                now,
            )?;
            Ok((ratified, Some(decision)))
        })
    }

    /// Grants or withdraws a member's consent to one purpose of the active terms.
    pub fn set_consent(
        &self,
        caller: &Principal,
        purpose: &str,
        granted: bool,
        now: UnixSeconds,
    ) -> Result<Logged<Consent>, DomainError> {
        require_role(caller, Role::Member, "give or withdraw consent")?;
        self.set_consent_as(caller, purpose, granted, now)
    }

    /// Sets a consent on the commit path; after a withdrawal, revokes the licenses the
    /// terms say to (each revocation its own commit).
    pub(crate) fn set_consent_as(
        &self,
        caller: &Principal,
        purpose: &str,
        granted: bool,
        now: UnixSeconds,
    ) -> Result<Logged<Consent>, DomainError> {
        let logged = self.decide(|| {
            let terms = self.active_policy()?.ok_or_else(|| {
                DomainError::FailedPrecondition(
                    "no terms are in force yet; nothing to consent to".into(),
                )
            })?;
            let (current, read) = self.store.read_consent(&caller.public_key, purpose)?;
            Ok(crate::consent::set(
                caller,
                &terms.policy.purposes,
                purpose,
                granted,
                current,
                read,
                now,
            )?)
        })?;
        if !granted && logged.log_index.is_some() {
            self.revoke_licenses_on_withdrawal(caller, purpose, now)?;
        }
        Ok(logged)
    }

    /// After a member withdrew consent to `purpose`: every
    /// active license for that purpose that released the member's data, and whose own
    /// terms say `on_consent_withdrawal = "revoke-affected-licenses"`, is revoked (logged
    /// without naming the member).
    pub(crate) fn revoke_licenses_on_withdrawal(
        &self,
        member: &Principal,
        purpose: &str,
        now: UnixSeconds,
    ) -> Result<(), DomainError> {
        let mut affected = Vec::new();
        for release_id in self.releases_of_member(&member.public_key)? {
            if let Some(release) = self.record::<crate::release::ReleaseRecordMeta>(
                RecordKind::Release,
                release_id.as_bytes(),
            )? {
                affected.push(release.license_id);
            }
        }
        affected.sort();
        affected.dedup();
        for license_id in affected {
            let Some(record) =
                self.record::<LicenseRecord>(RecordKind::License, license_id.as_bytes())?
            else {
                continue;
            };
            let license = record.license();
            if record.status != LicenseStatus::Active || license.purpose != purpose {
                continue;
            }
            let rule = self.terms_of(&license)?.policy.on_consent_withdrawal;
            if rule != crate::terms::WithdrawalRule::RevokeAffectedLicenses {
                continue;
            }
            let why = "a member whose data this license released withdrew consent, and the terms revoke affected licenses".to_owned();
            self.revoke_license_as(
                &record.id,
                &crate::licenses::RevokedBy::ConsentWithdrawal,
                why,
                now,
            )?;
        }
        Ok(())
    }

    pub fn my_consents(&self, caller: &Principal) -> Result<Vec<Consent>, DomainError> {
        require_role(caller, Role::Member, "read their consents")?;
        self.records(RecordKind::Consent, caller.public_key.as_bytes())
    }

    /// Files a license request; refused at once, naming clause and field, if it does not fit
    /// the active terms.
    pub fn request_license(
        &self,
        caller: &Principal,
        requested: RequestedTerms,
        random: [u8; 8],
        now: UnixSeconds,
    ) -> Result<Logged<LicenseRequestRecord>, DomainError> {
        require_role(caller, Role::Licensee, "request licenses")?;
        crate::terms::check_request_shape(&LicenseRequestTerms::from(&requested))?;
        let id = hex::encode(random);
        self.decide(|| {
            // Decided on the terms in force: a ratification in between decides it again.
            let (pointer, terms_read) = self
                .store
                .read_record(RecordKind::ActiveTerms, ACTIVE_TERMS)?;
            let (taken, id_read) = self
                .store
                .read_record(RecordKind::LicenseRequest, id.as_bytes())?;
            if taken.is_some() {
                return Err(DomainError::Contended(
                    "request id: drawn twice; ask again".into(),
                ));
            }
            let no_terms = || {
                DomainError::FailedPrecondition(
                    "no terms are in force; no license can be granted yet".into(),
                )
            };
            let hash: String = decode(&pointer.ok_or_else(no_terms)?)?;
            let record = self.terms_by_hash(&hash)?;
            let terms = self.parsed_terms(&record);
            let (request, decision) = crate::licenses::request(
                caller,
                &terms,
                &hash,
                requested.clone(),
                id.clone(),
                vec![terms_read, id_read],
                now,
            )?;
            Ok((request, Some(decision)))
        })
    }

    /// One page of the license requests a caller may see: trustees all, a licensee its own.
    pub fn license_requests_page(
        &self,
        caller: &Principal,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(Vec<LicenseRequestRecord>, Option<Vec<u8>>), DomainError> {
        match caller.role {
            Role::Trustee => self.records_page(
                RecordKind::LicenseRequest,
                b"",
                after,
                limit,
                |_: &LicenseRequestRecord| true,
            ),
            Role::Licensee => self.records_page(
                RecordKind::LicenseRequest,
                b"",
                after,
                limit,
                |request: &LicenseRequestRecord| request.licensee == caller.public_key,
            ),
            _ => Err(DomainError::PermissionDenied(
                "only trustees and licensees see license requests".into(),
            )),
        }
    }

    fn request_by_id(&self, id: &str) -> Result<LicenseRequestRecord, DomainError> {
        self.record(RecordKind::LicenseRequest, id.as_bytes())?
            .ok_or_else(|| {
                DomainError::refused(
                    Refusal::NotFound,
                    Subject::Request,
                    "no such license request",
                )
            })
    }

    /// A trustee's approval; at the active terms' trustee quorum the license is issued:
    /// signed with the license key, logged with its fee's charge, stored. Decided on the
    /// request, the terms in force, the licensee's suspension and the license's id.
    pub fn approve_license_request(
        &self,
        caller: &Principal,
        request_id: &crate::RequestId,
        signature: &[u8],
        license_signer: &NoteSigner,
        now: UnixSeconds,
    ) -> Result<Logged<(LicenseRequestRecord, Option<LicenseRecord>)>, DomainError> {
        require_role(caller, Role::Trustee, "approve license requests")?;
        let request = self.request_by_id(request_id)?;
        if !caller.signing_key().verify(
            &approval_message(self.origin.as_str(), request_id, &request.terms_hash),
            signature,
        ) {
            return Err(FieldError::new(
                "signature",
                "does not verify over the approval message with your key",
            )
            .into());
        }
        // A licensee late with its duties is suspended first (a change of its own, logged).
        self.enforce_duties_of(&request.licensee, now, true)?;
        let logged = self.decide(|| {
            let (stored, request_read) = self
                .store
                .read_record(RecordKind::LicenseRequest, request_id.as_bytes())?;
            let mut request: LicenseRequestRecord = decode(&stored.ok_or_else(|| {
                DomainError::refused(Refusal::NotFound,Subject::Request,"no such license request")
            })?)?;
            if request.status != RequestStatus::Pending {
                return Err(DomainError::refused(
                    Refusal::FailedPrecondition,
                    Subject::Request,
                    "this request is no longer pending",
                ));
            }
            if request
                .approvals
                .iter()
                .any(|approval| approval.trustee == caller.public_key)
            {
                return Err(DomainError::AlreadyExists(
                    "signature: this trustee has already approved this request".into(),
                ));
            }
            let (pointer, pointer_read) = self
                .store
                .read_record(RecordKind::ActiveTerms, ACTIVE_TERMS)?;
            let no_terms = || DomainError::FailedPrecondition("no terms are in force".into());
            let hash: String = decode(&pointer.ok_or_else(no_terms)?)?;
            if hash != request.terms_hash {
                return Err(DomainError::refused(
                    Refusal::FailedPrecondition,
                    Subject::Request,
                    "the terms changed since this request was made; the licensee must request again",
                ));
            }
            let terms = self.parsed_terms(&self.terms_by_hash(&hash)?);
            terms
                .check_request(&LicenseRequestTerms::from(&request.requested), now)
                .map_err(|refusal| DomainError::FailedPrecondition(refusal.to_string()))?;
            let (suspension, suspension_read) = self
                .store
                .read_record(RecordKind::Suspension, request.licensee.as_bytes())?;
            if let Some(suspension) = suspension {
                let suspension: crate::compensation::SuspensionRecord = decode(&suspension)?;
                return Err(DomainError::refused(Refusal::FailedPrecondition,Subject::Request,format!("the licensee is suspended ({}); lift the suspension first",
                    suspension.reason
                )));
            }
            request.approvals.push(Approval {
                trustee: caller.public_key,
                signature: signature_hex(signature),
            });
            if request.approvals.len() < terms.policy.ratification.trustee_quorum as usize {
                // Below the quorum an approval is kept, not logged.
                let decision = Decision {
                    entries: Vec::new(),
                    writes: vec![crate::commit::record_write(
                        RecordKind::LicenseRequest,
                        request.id.as_bytes(),
                        &request,
                    )?],
                    reads: vec![request_read, pointer_read, suspension_read],
                };
                return Ok(((request, None), Some(decision)));
            }
            let license = License::grant(
                self.origin.as_str(),
                request.licensee,
                &LicenseRequestTerms::from(&request.requested),
                &terms,
                now,
            );
            // A license's id is the hash of its text: the same licensee asking for the same
            // terms twice, approved within one second, would get the same license twice.
            let (existing, license_read) = self
                .store
                .read_record(RecordKind::License, license.id.as_bytes())?;
            if existing.is_some() {
                return Err(DomainError::refused(Refusal::AlreadyExists,Subject::Request,format!("an identical license ({}) was issued this very second; approve again in a moment",
                    license.id
                )));
            }
            let text = license.to_text();
            let signed = note::sign(&text, &[license_signer])
                .map_err(|error| DomainError::Store(StoreError::new(error.to_string())))?;
            let charge = self.license_fee_charge(&license, &terms, now)?;
            let approvers: Vec<String> = request
                .approvals
                .iter()
                .map(|approval| approval.trustee.to_base64())
                .collect();
            let issued = LogEntry::new("license-issued", now)
                .with("license", license.id.clone())
                .with("licensee", license.licensee.to_base64())
                .with("purpose", license.purpose.clone())
                .with("categories", license.categories.join(","))
                .with("model-family", license.model_family.clone())
                .with("not-before", license.not_before.to_string())
                .with("expires", license.expires.to_string())
                .with("terms-sha256", request.terms_hash.clone())
                .with("license-sha256", sha256_hex(text.as_bytes()))
                .with("approved-by", approvers.join(","));
            let record = LicenseRecord {
                id: license.id.clone(),
                licensee: license.licensee,
                request_id: request.id.clone(),
                note: signed,
                status: LicenseStatus::Active,
                issued_log_index: 0,
            };
            request.status = RequestStatus::Approved {
                license_id: license.id.clone(),
            };
            let (kind, key, value) =
                crate::compensation::licensee_license_write(&record.licensee, &record.id)?;
            let mut writes = vec![
                crate::commit::record_write(
                    RecordKind::LicenseRequest,
                    request.id.as_bytes(),
                    &request,
                )?,
                crate::commit::indexed_write(
                    RecordKind::License,
                    record.id.as_bytes(),
                    &record,
                    "/issued_log_index",
                    0,
                )?,
                crate::commit::Write::Record { kind, key, value },
            ];
            writes.extend(charge.decision_writes(1)?);
            let decision = Decision {
                entries: vec![issued, charge.entry.clone()],
                writes,
                reads: vec![request_read, pointer_read, suspension_read, license_read],
            };
            Ok(((request, Some(record)), Some(decision)))
        })?;
        let mut logged = logged;
        if let (Some(record), Some(index)) = (&mut logged.value.1, logged.log_index) {
            record.issued_log_index = index;
        }
        Ok(logged)
    }

    pub fn deny_license_request(
        &self,
        caller: &Principal,
        request_id: &crate::RequestId,
        why: &str,
        now: UnixSeconds,
    ) -> Result<Logged<LicenseRequestRecord>, DomainError> {
        require_role(caller, Role::Trustee, "deny license requests")?;
        let why = reason(why, "reason")?;
        self.decide(|| {
            let (stored, read) = self
                .store
                .read_record(RecordKind::LicenseRequest, request_id.as_bytes())?;
            let request = stored.map(|bytes| decode(&bytes)).transpose()?;
            let (request, decision) =
                crate::licenses::deny(caller, request, read, why.clone(), now)?;
            Ok((request, Some(decision)))
        })
    }

    /// Licenses a caller may see: trustees and members all (licenses are public commitments
    /// of the trust), a licensee its own.
    /// One page of the licenses a caller may see (trustees and members all, a licensee its
    /// own), in id order after `after`.
    pub fn licenses_page(
        &self,
        caller: &Principal,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(Vec<LicenseRecord>, Option<Vec<u8>>), DomainError> {
        match caller.role {
            Role::Trustee | Role::Member => self.records_page(
                RecordKind::License,
                b"",
                after,
                limit,
                |_: &LicenseRecord| true,
            ),
            Role::Licensee => self.records_page(
                RecordKind::License,
                b"",
                after,
                limit,
                |license: &LicenseRecord| license.licensee == caller.public_key,
            ),
            Role::Collector => Err(DomainError::PermissionDenied(
                "collectors do not see licenses".into(),
            )),
        }
    }

    pub fn licenses(&self, caller: &Principal) -> Result<Vec<LicenseRecord>, DomainError> {
        let all: Vec<LicenseRecord> = self.records(RecordKind::License, b"")?;
        match caller.role {
            Role::Trustee | Role::Member => Ok(all),
            Role::Licensee => Ok(all
                .into_iter()
                .filter(|license| license.licensee == caller.public_key)
                .collect()),
            Role::Collector => Err(DomainError::PermissionDenied(
                "collectors do not see licenses".into(),
            )),
        }
    }

    pub fn license(
        &self,
        caller: &Principal,
        license_id: &str,
    ) -> Result<LicenseRecord, DomainError> {
        if caller.role == Role::Collector {
            return Err(DomainError::PermissionDenied(
                "collectors do not see licenses".into(),
            ));
        }
        let not_found =
            || DomainError::refused(Refusal::NotFound, Subject::License, "no such license");
        let record: LicenseRecord = self
            .record(RecordKind::License, license_id.as_bytes())?
            .ok_or_else(not_found)?;
        match caller.role {
            Role::Trustee | Role::Member => Ok(record),
            Role::Licensee if record.licensee == caller.public_key => Ok(record),
            // Another company's license: its existence is not this licensee's business.
            Role::Licensee => Err(not_found()),
            Role::Collector => Err(DomainError::PermissionDenied(
                "collectors do not see licenses".into(),
            )),
        }
    }

    pub fn revoke_license(
        &self,
        caller: &Principal,
        license_id: &crate::LicenseId,
        why: &str,
        now: UnixSeconds,
    ) -> Result<Logged<LicenseRecord>, DomainError> {
        require_role(caller, Role::Trustee, "revoke licenses")?;
        let why = reason(why, "reason")?;
        self.revoke_license_as(
            license_id,
            &crate::licenses::RevokedBy::Trustee(caller),
            why,
            now,
        )
    }

    /// Revokes a license on the one commit path (a trustee's revocation, or a consent
    /// withdrawal's)
    pub(crate) fn revoke_license_as(
        &self,
        license_id: &str,
        by: &crate::licenses::RevokedBy<'_>,
        why: String,
        now: UnixSeconds,
    ) -> Result<Logged<LicenseRecord>, DomainError> {
        self.decide(|| {
            let (stored, read) = self
                .store
                .read_record(RecordKind::License, license_id.as_bytes())?;
            let license = stored.map(|bytes| decode(&bytes)).transpose()?;
            let (record, decision) = crate::licenses::revoke(license, read, by, why.clone(), now)?;
            Ok((record, Some(decision)))
        })
        .map(|mut logged| {
            if let (LicenseStatus::Revoked { log_index, .. }, Some(index)) =
                (&mut logged.value.status, logged.log_index)
            {
                *log_index = index;
            }
            logged
        })
    }

    /// A licensee's signed report of one training run. Fitting reports are logged and
    /// stored; reports that do not fit the license are logged as refused attempts and
    /// refused with the reason. The run id becomes final only when a report is accepted: a
    /// refused run can be reported again, corrected. An identical repeat gets the original
    /// outcome without a second log entry.
    pub fn report_training_use(
        &self,
        caller: &Principal,
        report_text: &str,
        signature: &[u8],
        now: UnixSeconds,
    ) -> Result<TrainingUseRecord, DomainError> {
        require_role(caller, Role::Licensee, "report training uses")?;
        let report = TrainingReport::parse(report_text)?;
        // A run is charged by the records it used: a report must say which releases.
        if report.data.is_empty() {
            return Err(FieldError::new(
                "data",
                "name the releases this run used (the report's data line; `company report-use --data RELEASE_ID[,RELEASE_ID...]`, ids from `company release`)",
            )
            .into());
        }
        if !caller
            .signing_key()
            .verify(report_text.as_bytes(), signature)
        {
            return Err(FieldError::new(
                "signature",
                "does not verify over the report with your key",
            )
            .into());
        }
        if report.trust != self.origin.as_str() {
            return Err(FieldError::new("trust", format!("this trust is {}", self.origin)).into());
        }
        let license_key = report.license_id.as_bytes();
        let owned = self
            .record::<LicenseRecord>(RecordKind::License, license_key)?
            .is_some_and(|record| record.licensee == caller.public_key);
        if !owned {
            // Someone else's license, or none: indistinguishable to the caller.
            return Err(DomainError::NotFound(
                "license: no license of yours has this id".into(),
            ));
        }
        // A licensee late with an invoice is suspended first (a change of its own, logged).
        self.enforce_duties_of(&caller.public_key, now, false)?;
        // A revocation one trustee asked for holds the license until the quorum decides.
        let hold = self.urgent_hold(&report.license_id, now)?;
        // An accepted run is stored under (license, run): the run id is final only once a
        // report is accepted. A refused attempt is stored under (license, run, report hash),
        // so the same run can be reported again, corrected; repeating an identical attempt
        // gets its outcome again without logging it twice.
        let accepted_key = [license_key, &[0], report.run_id.as_bytes()].concat();
        let report_sha256 = sha256_hex(report_text.as_bytes());
        let refused_key = [accepted_key.as_slice(), &[0], report_sha256.as_bytes()].concat();
        // Decided on the license, the run's keys, the license's run tally (the run count)
        // and the licensee's suspension; the outcome, accepted or refused, commits with its
        // entry (and an accepted run's charge).
        let logged = self.decide(|| {
            let (stored, license_read) =
                self.store.read_record(RecordKind::License, license_key)?;
            let license_record: LicenseRecord = decode(&stored.ok_or_else(|| {
                DomainError::NotFound("license: no license of yours has this id".into())
            })?)?;
            let (accepted, accepted_read) = self
                .store
                .read_record(RecordKind::TrainingUse, &accepted_key)?;
            if let Some(existing) = accepted {
                let existing: TrainingUseRecord = decode(&existing)?;
                if existing.report_sha256 == report_sha256 {
                    return Ok((Ok(existing), None));
                }
                return Err(DomainError::AlreadyExists(format!(
                    "run: run {} was already reported and accepted with a different report",
                    crate::validation::quoted(&report.run_id)
                )));
            }
            let (refused, refused_read) = self
                .store
                .read_record(RecordKind::TrainingUse, &refused_key)?;
            if let Some(existing) = refused {
                let existing: TrainingUseRecord = decode(&existing)?;
                if let Some(refusal) = existing.refusal {
                    return Err(DomainError::FailedPrecondition(format!(
                        "{refusal} (this same report was refused before, at log index {})",
                        existing.log_index
                    )));
                }
            }
            let (tally, tally_read) = self.store.read_record(RecordKind::RunTally, license_key)?;
            let tally: crate::compensation::RunTally = tally
                .map(|bytes| decode(&bytes))
                .transpose()?
                .unwrap_or_default();
            let (suspension, suspension_read) = self
                .store
                .read_record(RecordKind::Suspension, caller.public_key.as_bytes())?;
            let license = license_record.license();
            let accepted_runs = tally.accepted;
            let mut refusal = if let LicenseStatus::Revoked { .. } = license_record.status {
                Some("license: the license is revoked".to_owned())
            } else if let Some(hold) = &hold {
                Some(hold.clone())
            } else if now < license.not_before {
                Some("license: the license is not valid yet".to_owned())
            } else if now >= license.expires {
                Some("license: the license has expired".to_owned())
            } else if report.purpose != license.purpose {
                Some(format!("purpose: the license is for {:?}", license.purpose))
            } else if report.model_family != license.model_family {
                Some(format!(
                    "model-family: the license is for {:?}",
                    license.model_family
                ))
            } else if report.started > report.ended {
                Some("started: the run must start before it ends".to_owned())
            } else if report.ended > now.plus_seconds(CLOCK_SKEW_SECONDS) {
                Some("ended: the run cannot end in the future".to_owned())
            } else if report.started < license.not_before {
                Some("started: the run started before the license was valid".to_owned())
            } else if accepted_runs >= license.max_training_runs {
                Some(format!(
                    "run: the license allows {} training runs, all used",
                    license.max_training_runs
                ))
            } else if let Some(suspension) = suspension {
                let suspension: crate::compensation::SuspensionRecord = decode(&suspension)?;
                Some(format!(
                    "license: the licensee's licenses are suspended: {}",
                    suspension.reason
                ))
            } else {
                None
            };
            let mut charge = None;
            if refusal.is_none() {
                match self.releases_used(&license.id, &report)? {
                    Err(why) => refusal = Some(why),
                    Ok(releases) => {
                        match self.training_run_charge(&license, &report.run_id, &releases, now)? {
                            Err(why) => refusal = Some(why),
                            Ok(pending) => charge = Some(pending),
                        }
                    }
                }
            }
            let entry = match &refusal {
                None => LogEntry::new("training-use", now)
                    .with("license", license.id.clone())
                    .with("licensee", caller.public_key.to_base64())
                    .with("run", report.run_id.clone())
                    .with("model", report.model_id.clone())
                    .with("model-version", report.model_version.clone())
                    .with("started", report.started.to_string())
                    .with("ended", report.ended.to_string())
                    .with(
                        "data",
                        if report.data.is_empty() {
                            "none".to_owned()
                        } else {
                            report.data.join(",")
                        },
                    )
                    .with("report-sha256", report_sha256.clone()),
                Some(why) => LogEntry::new("training-use-refused", now)
                    .with("license", license.id.clone())
                    .with("licensee", caller.public_key.to_base64())
                    .with("run", report.run_id.clone())
                    .with("reason", why.clone())
                    .with("report-sha256", report_sha256.clone()),
            };
            let record = TrainingUseRecord {
                license_id: license.id.clone(),
                run_id: report.run_id.clone(),
                report: report_text.to_owned(),
                report_sha256: report_sha256.clone(),
                signature: signature_hex(signature),
                log_index: 0,
                accepted: refusal.is_none(),
                refusal: refusal.clone(),
                reported_at: now,
            };
            let key = if record.accepted {
                &accepted_key
            } else {
                &refused_key
            };
            let mut entries = vec![entry];
            let mut writes = vec![crate::commit::indexed_write(
                RecordKind::TrainingUse,
                key,
                &record,
                "/log_index",
                0,
            )?];
            if record.accepted {
                let tally = crate::compensation::RunTally {
                    accepted: tally.accepted + 1,
                    last_accepted: Some(now),
                };
                writes.push(crate::commit::record_write(
                    RecordKind::RunTally,
                    license_key,
                    &tally,
                )?);
            }
            if let Some(charge) = charge {
                entries.push(charge.entry.clone());
                writes.extend(charge.decision_writes(1)?);
            }
            let decision = Decision {
                entries,
                writes,
                reads: vec![
                    license_read,
                    accepted_read,
                    refused_read,
                    tally_read,
                    suspension_read,
                ],
            };
            Ok((Err(record), Some(decision)))
        })?;
        // `Ok`: an identical repeat of an accepted report; `Err`: the outcome decided now.
        let mut record = match logged.value {
            Ok(existing) => return Ok(existing),
            Err(record) => record,
        };
        let log_index = logged.log_index.unwrap_or_default();
        record.log_index = log_index;
        match record.refusal {
            None => Ok(record),
            Some(why) => Err(DomainError::FailedPrecondition(format!(
                "{why} (this attempt is logged at index {log_index})"
            ))),
        }
    }

    /// One page of the training uses a caller may see (trustees and members all, a licensee
    /// its own), in (license, run) order after `after`. Refused attempts are listed too,
    /// so trustees and members see every attempt a licensee made.
    pub fn training_uses_page(
        &self,
        caller: &Principal,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(Vec<TrainingUseRecord>, Option<Vec<u8>>), DomainError> {
        match caller.role {
            Role::Trustee | Role::Member => self.records_page(
                RecordKind::TrainingUse,
                b"",
                after,
                limit,
                |_: &TrainingUseRecord| true,
            ),
            Role::Licensee => {
                let mine: std::collections::BTreeSet<String> = self
                    .licenses(caller)?
                    .into_iter()
                    .map(|license| license.id)
                    .collect();
                self.records_page(
                    RecordKind::TrainingUse,
                    b"",
                    after,
                    limit,
                    |record: &TrainingUseRecord| mine.contains(&record.license_id),
                )
            }
            Role::Collector => Err(DomainError::PermissionDenied(
                "collectors do not see training uses".into(),
            )),
        }
    }
}
