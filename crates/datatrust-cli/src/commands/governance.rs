//! Client commands of the core loop: terms, votes, consent, licenses, training uses, and
//! `license verify`, which checks a license without trusting the server.

use crate::output;
use anyhow::{Context as _, anyhow, bail};
use datatrust_core::governance::{
    TrainingReport, approval_message, ballot_message, countersign_message,
};
use datatrust_core::license::License;
use datatrust_core::log_entry::DecodedEntry;
use datatrust_core::{NoteVerifier, UnixSeconds, note};
use datatrust_proto::v1;
use datatrust_proto::v1::log_service_client::LogServiceClient;
use datatrust_proto::v1::terms_service_client::TermsServiceClient;
use datatrust_tlog::proof::InMemoryTree;
use datatrust_tlog::{SignedCheckpoint, leaf_hash};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::common::{key_text, read_key};
use crate::client::{self, SignedIn};
use crate::human;
use crate::{
    CompanyGovernanceCommand, GlobalArgs, LicenseCommand, MemberGovernanceCommand, TermsCommand,
    TrusteeGovernanceCommand,
};

fn terms_status(status: i32) -> &'static str {
    match v1::TermsStatus::try_from(status) {
        Ok(v1::TermsStatus::Voting) => "voting",
        Ok(v1::TermsStatus::AwaitingCountersignatures) => "awaiting countersignatures",
        Ok(v1::TermsStatus::Ratified) => "ratified (in force)",
        Ok(v1::TermsStatus::Superseded) => "superseded",
        Ok(v1::TermsStatus::Rejected) => "rejected",
        _ => "unknown",
    }
}

fn print_terms(global: &GlobalArgs, terms: &v1::Terms, log_index: Option<u64>) {
    output::show(
        global.json,
        json!({
            "version": terms.version, "sha256": terms.sha256, "title": terms.title,
            "status": terms_status(terms.status), "votes_yes": terms.votes_yes, "votes_no": terms.votes_no,
            "members_eligible": terms.members_eligible, "countersignatures": terms.countersigned_by.len(),
            "voting_closes_at": terms.voting_closes_at, "log_index": log_index,
        }),
        || {
            println!(
                "terms v{} {}  [{}]  {}",
                terms.version,
                terms.sha256,
                terms_status(terms.status),
                terms.title
            );
            if terms.status == v1::TermsStatus::Voting as i32
                && let Some(closes_at) = terms.voting_closes_at
            {
                println!(
                    "  vote open until {} (then it closes by itself and the tally is logged)",
                    datatrust_core::UnixSeconds(closes_at).rfc3339()
                );
            }
            if let (Some(yes), Some(no), Some(eligible)) =
                (terms.votes_yes, terms.votes_no, terms.members_eligible)
            {
                println!(
                    "  vote: {yes} yes, {no} no, {eligible} members eligible; {} countersignature(s)",
                    terms.countersigned_by.len()
                );
            }
        },
    );
}

fn print_consent(global: &GlobalArgs, consent: &v1::Consent, log_index: Option<u64>) {
    output::show(
        global.json,
        json!({ "purpose": consent.purpose, "granted": consent.granted, "changed_at": consent.changed_at, "log_index": log_index }),
        || {
            let state = if consent.granted {
                "consent given"
            } else {
                "no consent"
            };
            println!("{}: {state}", consent.purpose);
        },
    );
}

fn print_request(global: &GlobalArgs, request: &v1::LicenseRequest) {
    output::show(
        global.json,
        json!({
            "id": request.id, "licensee": key_text(&request.licensee), "purpose": request.purpose,
            "categories": request.categories, "model_family": request.model_family, "status": request.status,
            "approvals": request.approvals, "license_id": request.license_id, "denial_reason": request.denial_reason,
        }),
        || {
            println!(
                "request {}  {}  {} on {} for {}, {} approval(s){}",
                request.id,
                request.status,
                request.purpose,
                request.categories.join(","),
                request.model_family,
                request.approvals,
                if request.license_id.is_empty() {
                    String::new()
                } else {
                    format!(", license {}", request.license_id)
                }
            );
        },
    );
}

fn print_license(global: &GlobalArgs, license: &v1::License) {
    print_license_named(global, license, None);
}

/// A license, with its licensee's name where the caller knows it.
fn print_license_named(global: &GlobalArgs, license: &v1::License, licensee_name: Option<&str>) {
    let body = license
        .note
        .split_once("\n\n")
        .map(|(body, _)| format!("{body}\n"));
    let parsed = body.and_then(|body| datatrust_core::license::License::parse(&body).ok());
    output::show(
        global.json,
        json!({ "id": license.id, "licensee": key_text(&license.licensee), "status": license.status,
                    "issued_log_index": license.issued_log_index, "revocation_reason": license.revocation_reason,
                    "purpose": parsed.as_ref().map(|terms| terms.purpose.clone()),
                    "categories": parsed.as_ref().map(|terms| terms.categories.clone()),
                    "data_from": parsed.as_ref().map(|terms| terms.data_from.0),
                    "data_to": parsed.as_ref().map(|terms| terms.data_to.0),
                    "not_before": parsed.as_ref().map(|terms| terms.not_before.0),
                    "expires": parsed.as_ref().map(|terms| terms.expires.0) }),
        || {
            println!(
                "license {}  {}  licensee {}  issued at log index {}",
                license.id,
                license.status,
                licensee_name
                    .map(str::to_owned)
                    .unwrap_or_else(|| key_text(&license.licensee)),
                license.issued_log_index
            );
            if let Some(terms) = parsed {
                println!(
                    "  {} on {}, data from {} to {}; valid {} to {}; up to {} runs of {} models",
                    terms.purpose,
                    terms.categories.join(", "),
                    human::date(terms.data_from.0),
                    human::date(terms.data_to.0),
                    human::date(terms.not_before.0),
                    human::date(terms.expires.0),
                    terms.max_training_runs,
                    terms.model_family
                );
            }
            if !license.revocation_reason.is_empty() {
                println!("  revoked: {}", license.revocation_reason);
            }
        },
    );
}

/// A license request as trustees see it before approving: who, what, which data, how long,
/// the fees the request's terms would charge, and the approvals so far.
fn print_request_for_trustees(
    global: &GlobalArgs,
    request: &v1::LicenseRequest,
    company: &str,
    policy: Option<&datatrust_core::terms::Policy>,
) {
    let quorum = policy.map(|policy| policy.ratification.trustee_quorum);
    let royalties = policy.map(|policy| &policy.royalties);
    output::show(
        global.json,
        json!({
            "id": request.id, "company": company, "licensee": key_text(&request.licensee),
            "purpose": request.purpose, "categories": request.categories,
            "data_from": request.data_from, "data_to": request.data_to,
            "duration_days": request.duration_days, "max_training_runs": request.max_training_runs,
            "model_family": request.model_family, "status": request.status,
            "approvals": request.approvals, "approvals_needed": quorum,
            "currency": royalties.map(|fees| fees.currency.clone()),
            "license_fee": royalties.map(|fees| fees.license_fee.max(fees.minimum_per_license)),
            "fee_per_run": royalties.map(|fees| fees.per_training_run),
            "fee_per_record": royalties.map(|fees| request.categories.iter().map(|category| (category.clone(), fees.per_record.get(category).copied().unwrap_or(0))).collect::<std::collections::BTreeMap<_, _>>()),
            "license_id": request.license_id, "denial_reason": request.denial_reason,
        }),
        || {
            println!(
                "request {}  {}  {} approval(s){}{}",
                request.id,
                request.status,
                request.approvals,
                quorum.map_or(String::new(), |needed| format!(" of {needed} needed")),
                if request.license_id.is_empty() {
                    String::new()
                } else {
                    format!(", license {}", request.license_id)
                }
            );
            println!("  company:  {company}");
            println!(
                "  purpose:  {}, {} models, up to {} training run(s)",
                request.purpose, request.model_family, request.max_training_runs
            );
            println!(
                "  data:     {} from {} to {}",
                request.categories.join(", "),
                human::date(request.data_from),
                human::date(request.data_to)
            );
            println!("  for:      {} days from approval", request.duration_days);
            if let Some(fees) = royalties {
                let per_record: Vec<String> = request
                    .categories
                    .iter()
                    .map(|category| {
                        format!(
                            "{category} {}",
                            human::money(
                                &fees.currency,
                                fees.per_record.get(category).copied().unwrap_or(0)
                            )
                        )
                    })
                    .collect();
                println!(
                    "  fees:     {} for the license, {} a run, per record: {}",
                    human::money(
                        &fees.currency,
                        fees.license_fee.max(fees.minimum_per_license)
                    ),
                    human::money(&fees.currency, fees.per_training_run),
                    per_record.join(", ")
                );
            }
            if !request.denial_reason.is_empty() {
                println!("  denied:   {}", request.denial_reason);
            }
        },
    );
}

fn print_use(global: &GlobalArgs, record: &v1::TrainingUse) {
    print_use_named(global, record, None);
}

/// A training use, with the licensee's name where the caller knows it.
fn print_use_named(global: &GlobalArgs, record: &v1::TrainingUse, licensee_name: Option<&str>) {
    let by = licensee_name
        .map(|name| format!(" by {name}"))
        .unwrap_or_default();
    output::show(
        global.json,
        json!({ "license_id": record.license_id, "run_id": record.run_id, "accepted": record.accepted,
                    "refusal": record.refusal, "log_index": record.log_index, "reported_at": record.reported_at }),
        || {
            if record.accepted {
                println!(
                    "use {}{by} under {} on {}  logged at {}",
                    record.run_id,
                    record.license_id,
                    human::date(record.reported_at),
                    record.log_index
                );
            } else {
                println!(
                    "REFUSED use {}{by} under {}: {}  (logged at {})",
                    record.run_id, record.license_id, record.refusal, record.log_index
                );
            }
        },
    );
}

pub async fn trustee(
    global: &GlobalArgs,
    session: &SignedIn,
    command: TrusteeGovernanceCommand,
) -> anyhow::Result<()> {
    let signer = read_key(global)?;
    let origin = session.origin.to_string();
    match command {
        TrusteeGovernanceCommand::ProposeTerms { file } => {
            let document = read_terms_document(&file)?;
            let response = session
                .terms()
                .propose_terms(v1::ProposeTermsRequest { document })
                .await?
                .into_inner();
            print_terms(
                global,
                &response.terms.unwrap_or_default(),
                response.log_index,
            );
        }
        TrusteeGovernanceCommand::CloseVote { terms } => {
            let response = session
                .terms()
                .close_vote(v1::CloseVoteRequest {
                    terms_sha256: terms,
                })
                .await?
                .into_inner();
            print_terms(
                global,
                &response.terms.unwrap_or_default(),
                response.log_index,
            );
        }
        TrusteeGovernanceCommand::Countersign { terms } => {
            let signature = signer.sign(&countersign_message(&origin, &terms)).to_vec();
            let response = session
                .terms()
                .countersign_terms(v1::CountersignTermsRequest {
                    terms_sha256: terms,
                    signature,
                })
                .await?
                .into_inner();
            print_terms(
                global,
                &response.terms.unwrap_or_default(),
                response.log_index,
            );
        }
        TrusteeGovernanceCommand::Requests => {
            // What trustees approve, in full: who asks, for what, over which data, for how
            // long, at what price (from the terms the request names), and who approved.
            let requests = session.all_license_requests().await?;
            let terms = client::all_terms(session.channel()).await?;
            let mut names = std::collections::HashMap::new();
            for request in &requests {
                if !names.contains_key(&request.licensee) {
                    let name = session
                        .principals()
                        .get_principal(v1::GetPrincipalRequest {
                            public_key: request.licensee.clone(),
                        })
                        .await
                        .ok()
                        .and_then(|response| response.into_inner().principal)
                        .map(|principal| principal.display_name)
                        .unwrap_or_else(|| key_text(&request.licensee));
                    names.insert(request.licensee.clone(), name);
                }
                let policy = terms
                    .iter()
                    .find(|version| version.sha256 == request.terms_sha256)
                    .and_then(|version| datatrust_core::terms::Terms::parse(&version.document).ok())
                    .map(|parsed| parsed.policy);
                print_request_for_trustees(
                    global,
                    request,
                    &names[&request.licensee],
                    policy.as_ref(),
                );
            }
            if requests.is_empty() && !global.json {
                println!("No license requests.");
            }
        }
        TrusteeGovernanceCommand::Approve { request } => {
            let pending = session
                .all_license_requests()
                .await?
                .into_iter()
                .find(|candidate| candidate.id == request)
                .ok_or_else(|| anyhow!("--request: no license request {request}; `datatrust trustee requests` lists them"))?;
            let signature = signer
                .sign(&approval_message(&origin, &request, &pending.terms_sha256))
                .to_vec();
            let response = session
                .licenses()
                .approve_license_request(v1::ApproveLicenseRequestRequest {
                    request_id: request,
                    signature,
                })
                .await?
                .into_inner();
            print_request(global, &response.request.unwrap_or_default());
            if let Some(license) = response.license {
                let company = principal_name(session, &license.licensee).await;
                print_license_named(global, &license, company.as_deref());
            }
        }
        TrusteeGovernanceCommand::RotateLicenseKey => {
            let key = session
                .trust()
                .rotate_license_key(v1::RotateLicenseKeyRequest {})
                .await?
                .into_inner()
                .license_key
                .unwrap_or_default();
            output::show(
                global.json,
                json!({ "generation": key.generation, "vkey": key.vkey, "valid_from": key.valid_from, "log_index": key.log_index }),
                || {
                    println!(
                        "Licenses are signed by license key {} from now on (logged at {}):",
                        key.generation, key.log_index
                    );
                    println!("  {}", key.vkey);
                    println!(
                        "On PostgreSQL, copy keys/license-{}.key to every node now.",
                        key.generation
                    );
                },
            );
        }
        TrusteeGovernanceCommand::Deny { request, reason } => {
            let signature = super::common::sign_safety_action(
                global,
                session,
                &datatrust_core::safety::SafetyAction::DenyRequest {
                    request_id: request.clone(),
                },
            )?;
            let response = session
                .licenses()
                .deny_license_request(v1::DenyLicenseRequestRequest {
                    request_id: request,
                    reason,
                    signature,
                })
                .await?
                .into_inner();
            if super::common::report_pending(
                global,
                response.pending,
                response.approvals,
                response.approvals_required,
            ) {
                return Ok(());
            }
            print_request(global, &response.request.unwrap_or_default());
        }
        TrusteeGovernanceCommand::Revoke { license, reason } => {
            let signature = super::common::sign_safety_action(
                global,
                session,
                &datatrust_core::safety::SafetyAction::RevokeLicense {
                    license_id: license.clone(),
                },
            )?;
            let response = session
                .licenses()
                .revoke_license(v1::RevokeLicenseRequest {
                    license_id: license,
                    reason,
                    signature,
                })
                .await?
                .into_inner();
            if response.pending && !global.json {
                println!(
                    "The license is on hold from now (no release, stream or reported use) until the trustee quorum confirms the revocation, for at most 72 hours."
                );
            }
            if super::common::report_pending(
                global,
                response.pending,
                response.approvals,
                response.approvals_required,
            ) {
                return Ok(());
            }
            let license = response.license.unwrap_or_default();
            let company = principal_name(session, &license.licensee).await;
            print_license_named(global, &license, company.as_deref());
        }
    }
    Ok(())
}

/// A principal's name, for a trustee's text output (trustees may read any principal).
async fn principal_name(session: &SignedIn, public_key: &[u8]) -> Option<String> {
    session
        .principals()
        .get_principal(v1::GetPrincipalRequest {
            public_key: public_key.to_vec(),
        })
        .await
        .ok()
        .and_then(|response| response.into_inner().principal)
        .map(|principal| principal.display_name)
}

pub async fn member(
    global: &GlobalArgs,
    session: &SignedIn,
    command: MemberGovernanceCommand,
) -> anyhow::Result<()> {
    match command {
        // Clap requires exactly one of --yes and --no, so `yes` alone says the choice.
        MemberGovernanceCommand::Vote { terms, yes, no: _ } => {
            let signer = read_key(global)?;
            let signature = signer
                .sign(&ballot_message(session.origin.as_str(), &terms, yes))
                .to_vec();
            session
                .terms()
                .cast_ballot(v1::CastBallotRequest {
                    terms_sha256: terms.clone(),
                    approve: yes,
                    signature,
                })
                .await?;
            output::show(
                global.json,
                json!({ "terms": terms, "approve": yes }),
                || {
                    println!(
                        "Your ballot on {terms}: {}. You can change it until the vote closes.",
                        if yes { "yes" } else { "no" }
                    );
                },
            );
        }
        MemberGovernanceCommand::Consent { purpose, withdraw } => {
            let response = session
                .consents()
                .set_consent(v1::SetConsentRequest {
                    purpose,
                    granted: !withdraw,
                })
                .await?
                .into_inner();
            print_consent(
                global,
                &response.consent.unwrap_or_default(),
                response.log_index,
            );
        }
        MemberGovernanceCommand::Consents => {
            for consent in session
                .consents()
                .list_my_consents(v1::ListMyConsentsRequest {})
                .await?
                .into_inner()
                .consents
            {
                print_consent(global, &consent, None);
            }
        }
        MemberGovernanceCommand::Uses => {
            // Licensees by name (the public transparency report names them), not by key.
            let names = client::licensee_names(session.channel()).await;
            for license in session.all_licenses().await? {
                print_license_named(global, &license, names.get(&license.id).map(String::as_str));
            }
            for record in session.all_training_uses().await? {
                print_use_named(
                    global,
                    &record,
                    names.get(&record.license_id).map(String::as_str),
                );
            }
        }
    }
    Ok(())
}

pub async fn company(
    global: &GlobalArgs,
    session: &SignedIn,
    command: CompanyGovernanceCommand,
) -> anyhow::Result<()> {
    match command {
        CompanyGovernanceCommand::RequestLicense {
            purpose,
            categories,
            data_from,
            data_to,
            model_family,
            runs,
            days,
        } => {
            let response = session
                .licenses()
                .request_license(v1::RequestLicenseRequest {
                    purpose,
                    categories,
                    data_from,
                    data_to,
                    model_family,
                    max_training_runs: runs,
                    duration_days: days,
                })
                .await?
                .into_inner();
            print_request(global, &response.request.unwrap_or_default());
        }
        CompanyGovernanceCommand::Requests => {
            for request in session.all_license_requests().await? {
                print_request(global, &request);
            }
        }
        CompanyGovernanceCommand::Licenses => {
            for license in session.all_licenses().await? {
                print_license(global, &license);
            }
        }
        CompanyGovernanceCommand::License { id, out } => {
            let license = session
                .licenses()
                .get_license(v1::GetLicenseRequest { license_id: id })
                .await?
                .into_inner()
                .license
                .unwrap_or_default();
            match out {
                Some(path) => {
                    std::fs::write(&path, &license.note)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("license {} written to {}", license.id, path.display());
                }
                None => print!("{}", license.note),
            }
        }
        CompanyGovernanceCommand::ReportUse {
            license,
            run,
            model,
            model_version,
            model_family,
            purpose,
            data,
            started,
            ended,
            accelerator_seconds,
            receipt_out,
        } => {
            let signer = read_key(global)?;
            let text = TrainingReport {
                trust: session.origin.to_string(),
                license_id: license,
                run_id: run,
                model_id: model,
                model_version,
                model_family,
                purpose,
                data,
                started: UnixSeconds(started),
                ended: UnixSeconds(ended),
                accelerator_seconds,
            }
            .to_text();
            let response = session
                .training()
                .report_training_use(v1::ReportTrainingUseRequest {
                    signature: signer.sign(text.as_bytes()).to_vec(),
                    report: text,
                })
                .await?
                .into_inner();
            print_use(global, &response.r#use.unwrap_or_default());
            match receipt_out {
                Some(path) => {
                    std::fs::write(&path, &response.receipt)
                        .with_context(|| format!("writing {}", path.display()))?;
                    if !global.json {
                        println!("receipt written to {}", path.display());
                    }
                }
                None if !global.json => print!("{}", response.receipt),
                None => {}
            }
        }
        CompanyGovernanceCommand::Uses => {
            for record in session.all_training_uses().await? {
                print_use(global, &record);
            }
        }
    }
    Ok(())
}

pub async fn terms(global: &GlobalArgs, command: TermsCommand) -> anyhow::Result<()> {
    let channel = client::connect(&global.server, global.ca_cert.as_deref()).await?;
    let mut terms = TermsServiceClient::new(channel.clone());
    match command {
        TermsCommand::Show => {
            let active = terms
                .get_active_terms(v1::GetActiveTermsRequest {})
                .await?
                .into_inner()
                .terms
                .unwrap_or_default();
            print_terms(global, &active, None);
            if !global.json {
                println!("{}", active.document);
            }
        }
        TermsCommand::History => {
            for version in client::all_terms(&channel).await? {
                print_terms(global, &version, None);
            }
        }
    }
    Ok(())
}

pub async fn license(global: &GlobalArgs, command: LicenseCommand) -> anyhow::Result<()> {
    let LicenseCommand::Verify {
        file,
        license_vkey,
        log_vkey,
    } = command;
    let verifiers: Vec<NoteVerifier> = license_vkey
        .iter()
        .map(|text| {
            NoteVerifier::parse(text).map_err(|error| {
                anyhow!(
                    "--license-vkey: {}; copy the whole license_vkey line from `datatrust trust info`",
                    error.reason
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let note_text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    if note_text.contains('\r') {
        bail!(
            "{} has Windows (CRLF) line endings, so its signature cannot match: the signed text \
             ends its lines with \\n only. Download the license again (`datatrust company \
             license --id ID --out FILE`) or convert the file back (e.g. `dos2unix`)",
            file.display()
        );
    }
    // The key that signed it, among those given.
    let signed_by = verifiers
        .iter()
        .find(|verifier| note::open(&note_text, &[*verifier]).is_ok());
    let verifier = signed_by.unwrap_or(&verifiers[0]);
    let opened = match note::open(&note_text, &[verifier]) {
        Ok(opened) => opened,
        Err(error) => {
            // Which key signed it? The signature lines name it.
            let signers: Vec<&str> = note_text
                .lines()
                .filter_map(|line| line.strip_prefix("\u{2014} "))
                .filter_map(|rest| rest.split(' ').next())
                .collect();
            if !signers.is_empty() && !signers.contains(&verifier.name()) {
                bail!(
                    "{}: --license-vkey is the key {}, but the license is signed by {}: use the \
                     license_vkey line of `datatrust trust info` (not the log_vkey)",
                    file.display(),
                    verifier.name(),
                    signers.join(", ")
                );
            }
            return Err(anyhow!(
                "{}: the signature does not match the text ({error}): the license was changed \
                 after it was signed, or it is not from this trust. Download it again with \
                 `datatrust company license --id ID --out FILE`",
                file.display()
            ));
        }
    };
    let license = License::parse(&opened.text)
        .map_err(|error| anyhow!("{}: not a valid license: {error}", file.display()))?;
    let now = datatrust_server::now();
    if now < license.not_before {
        bail!(
            "license {} is not valid until {}",
            license.id,
            license.not_before
        );
    }
    if now >= license.expires {
        bail!("license {} expired at {}", license.id, license.expires);
    }
    let mut lines = vec![
        format!(
            "license {}: signature verified ({})",
            license.id,
            verifier.name()
        ),
        format!(
            "valid from {} until {} (now {})",
            human::date(license.not_before.0),
            human::date(license.expires.0),
            human::date(now.0)
        ),
        format!(
            "{} may train {} models for {} on {}",
            license.licensee,
            license.model_family,
            license.purpose,
            license.categories.join(",")
        ),
    ];
    let mut logged = None;
    if let Some(log_vkey) = log_vkey {
        let log_verifier = NoteVerifier::parse(&log_vkey)
            .map_err(|error| anyhow!("--log-vkey: {}", error.reason))?;
        let (issued_at, size) =
            check_logged(global, &log_verifier, &license, &opened.text, verifier).await?;
        lines.push(format!(
            "issuance logged at index {issued_at}; no revocation in the log up to size {size}"
        ));
        logged = Some((issued_at, size));
    }
    output::show(
        global.json,
        json!({ "license_id": license.id, "verified": true, "not_before": license.not_before.0, "expires": license.expires.0,
                    "issued_log_index": logged.map(|(index, _)| index), "checked_log_size": logged.map(|(_, size)| size) }),
        || {
            for line in lines {
                println!("{line}");
            }
        },
    );
    Ok(())
}

/// Reads every log entry, checks them against a verified checkpoint by recomputing its root,
/// then finds the license's issuance and makes sure no revocation follows.
async fn check_logged(
    global: &GlobalArgs,
    verifier: &NoteVerifier,
    license: &License,
    text: &str,
    signed_by: &NoteVerifier,
) -> anyhow::Result<(u64, u64)> {
    // The license key in force as the log goes: the creation's, then each rotation's.
    let mut license_key: Option<String> = None;
    let mut key_at_issuance: Option<String> = None;
    let channel = client::connect(&global.server, global.ca_cert.as_deref()).await?;
    let mut log = LogServiceClient::new(channel);
    let checkpoint = log
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await?
        .into_inner()
        .checkpoint;
    let checkpoint = SignedCheckpoint::open(&checkpoint, verifier)
        .context("the log's checkpoint does not verify with --log-vkey")?;
    let size = checkpoint.checkpoint.size;
    let mut tree = InMemoryTree::new();
    let mut issued = None;
    let mut revoked = None;
    let text_hash = hex_of(&Sha256::digest(text.as_bytes()));
    let mut start = 0;
    while start < size {
        let end = (start + 1000).min(size);
        let entries = log
            .get_entries(v1::GetEntriesRequest { start, end })
            .await?
            .into_inner()
            .entries;
        for (offset, entry) in entries.iter().enumerate() {
            tree.push(leaf_hash(entry));
            let Some(decoded) = DecodedEntry::parse(entry) else {
                continue;
            };
            match decoded.kind.as_str() {
                "trust-created" => {
                    license_key = decoded.field("license-vkey").map(str::to_owned);
                }
                "license-key-rotated" => {
                    license_key = decoded.field("vkey").map(str::to_owned);
                }
                _ => {}
            }
            if decoded.field("license") != Some(license.id.as_str()) {
                continue;
            }
            match decoded.kind.as_str() {
                "license-issued" if decoded.field("license-sha256") == Some(text_hash.as_str()) => {
                    issued = Some(start + offset as u64);
                    key_at_issuance = license_key.clone();
                }
                "license-revoked" => {
                    revoked = Some((
                        start + offset as u64,
                        decoded.field("reason").unwrap_or_default().to_owned(),
                    ));
                }
                _ => {}
            }
        }
        start = end;
    }
    if tree.root() != checkpoint.checkpoint.root {
        bail!("ALERT: the entries the server sent do not match its signed checkpoint");
    }
    if let Some((index, reason)) = revoked {
        bail!(
            "license {} was revoked (log index {index}): {reason}",
            license.id
        );
    }
    let issued = issued.ok_or_else(|| {
        anyhow!(
            "license {}: no issuance of this exact license is in the log",
            license.id
        )
    })?;
    if key_at_issuance.as_deref() != Some(signed_by.to_text().as_str()) {
        bail!(
            "ALERT: license {} is signed by {}, but the log says the license key at its issuance was {}",
            license.id,
            signed_by.to_text(),
            key_at_issuance.as_deref().unwrap_or("unknown")
        );
    }
    Ok((issued, size))
}

/// Reads a terms TOML; an `[agreement] text_file` is read (relative to the TOML) and inlined
/// as `text`, so that the document the trust stores and hashes is whole by itself.
fn read_terms_document(path: &std::path::Path) -> anyhow::Result<String> {
    let document =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut value: toml::Table = toml::from_str(&document)
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let Some(agreement) = value
        .get_mut("agreement")
        .and_then(toml::Value::as_table_mut)
    else {
        return Ok(document);
    };
    let Some(text_file) = agreement.remove("text_file") else {
        return Ok(document);
    };
    let text_file = text_file
        .as_str()
        .ok_or_else(|| anyhow!("agreement.text_file: must be a path"))?;
    if agreement.contains_key("text") {
        bail!("agreement: give either text or text_file, not both");
    }
    let text_path = path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(text_file);
    let text = std::fs::read_to_string(&text_path)
        .with_context(|| format!("agreement.text_file: reading {}", text_path.display()))?;
    agreement.insert("text".into(), toml::Value::String(text));
    Ok(toml::to_string(&value)?)
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agreement_text_file_is_inlined_and_the_result_is_valid_terms() {
        let directory = tempfile::tempdir().unwrap();
        let example = include_str!("../../../../terms/example-agreement.toml");
        let start = example.find("text = \"\"\"").unwrap();
        let end = example[start + 10..].find("\"\"\"").unwrap() + start + 13;
        let with_path = format!(
            "{}text_file = \"agreement.md\"{}",
            &example[..start],
            &example[end..]
        );
        std::fs::write(directory.path().join("terms.toml"), with_path).unwrap();
        std::fs::write(
            directory.path().join("agreement.md"),
            "1. The members' data is theirs.\n",
        )
        .unwrap();
        let document = read_terms_document(&directory.path().join("terms.toml")).unwrap();
        let terms = datatrust_core::terms::Terms::parse(&document).unwrap();
        assert_eq!(terms.text, "1. The members' data is theirs.\n");
        // A document with its text inline passes through unchanged.
        std::fs::write(directory.path().join("inline.toml"), example).unwrap();
        assert_eq!(
            read_terms_document(&directory.path().join("inline.toml")).unwrap(),
            example
        );
    }
}
