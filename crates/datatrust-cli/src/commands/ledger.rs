//! Compensation from the command line: invoices, payments, payouts, the union's ledger,
//! suspensions, and `member statement --verify`, which checks each share with nothing but
//! the log's verifier key and the member's own key and salt. Amounts are minor units.

use crate::output;
use anyhow::{Context as _, anyhow, bail};
use datatrust_core::compensation::{no_use_message, share_commitment};
use datatrust_core::log_entry::DecodedEntry;
use datatrust_core::merkle::sum::{self, ShareLeaf, SumNode};
use datatrust_core::{NoteVerifier, PublicKey, UnixSeconds};
use datatrust_proto::v1;
use datatrust_tlog::receipt::Receipt;
use serde_json::json;

use super::common::{key_text, read_key};
use crate::client::SignedIn;
use crate::human;
use crate::{CompanyLedgerCommand, GlobalArgs, MemberLedgerCommand, TrusteeLedgerCommand};

/// One CSV row (RFC 4180 quoting where a field needs it).
fn csv_row(fields: &[String]) -> String {
    fields
        .iter()
        .map(|field| {
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn charge_json(charge: &v1::Charge) -> serde_json::Value {
    json!({
        "id": charge.id, "license": charge.license_id, "licensee": key_text(&charge.licensee),
        "kind": charge.kind, "run": charge.run_id, "currency": charge.currency,
        "amount": charge.amount, "fund": charge.fund, "members": charge.members,
        "share_root": charge.share_root, "share_records": charge.share_records,
        "created_at": charge.created_at, "due_at": charge.due_at, "log_index": charge.log_index,
    })
}

pub async fn invoices(
    global: &GlobalArgs,
    session: &SignedIn,
    licensee: Option<PublicKey>,
    csv: bool,
) -> anyhow::Result<()> {
    let (invoices, suspension) = session.all_invoices(licensee.as_ref()).await?;
    if csv {
        println!(
            "charge,license,licensee,kind,run,currency,amount,paid,due,overdue,created_at,due_at,log_index"
        );
    }
    for invoice in &invoices {
        let charge = invoice.charge.clone().unwrap_or_default();
        if csv {
            println!(
                "{}",
                csv_row(&[
                    charge.id.clone(),
                    charge.license_id.clone(),
                    key_text(&charge.licensee),
                    charge.kind.clone(),
                    charge.run_id.clone(),
                    charge.currency.clone(),
                    charge.amount.to_string(),
                    invoice.paid.to_string(),
                    invoice.due.to_string(),
                    invoice.overdue.to_string(),
                    charge.created_at.to_string(),
                    charge.due_at.to_string(),
                    charge.log_index.to_string(),
                ])
            );
        } else {
            output::show(
                global.json,
                json!({ "charge": charge_json(&charge), "paid": invoice.paid, "due": invoice.due, "overdue": invoice.overdue }),
                || {
                    println!(
                        "invoice {}: {} {}on license {}: {} charged, {} paid, {} due by {}{}",
                        charge.id,
                        charge.kind,
                        if charge.run_id.is_empty() {
                            String::new()
                        } else {
                            format!("(run {}) ", charge.run_id)
                        },
                        charge.license_id,
                        human::money(&charge.currency, charge.amount),
                        human::money(&charge.currency, invoice.paid),
                        human::money(&charge.currency, invoice.due),
                        human::date(charge.due_at),
                        if invoice.overdue { "  OVERDUE" } else { "" }
                    );
                },
            );
        }
    }
    if let Some(suspension) = &suspension
        && !csv
    {
        output::show(
            global.json,
            json!({ "suspended": { "licensee": key_text(&suspension.licensee), "reason": suspension.reason, "since": suspension.since, "log_index": suspension.log_index } }),
            || {
                println!(
                    "SUSPENDED since {}: {} (log index {}); no releases or uses until trustees lift it",
                    suspension.since, suspension.reason, suspension.log_index
                );
            },
        );
    }
    if invoices.is_empty() && !global.json && !csv {
        println!("No invoices.");
    }
    Ok(())
}

pub async fn declare_no_use(
    global: &GlobalArgs,
    session: &SignedIn,
    license: String,
    until: Option<i64>,
) -> anyhow::Result<()> {
    let until = UnixSeconds(until.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs() as i64)
            .unwrap_or_default()
    }));
    let signer = read_key(global)?;
    let signature = signer.sign(&no_use_message(session.origin.as_str(), &license, until));
    let response = session
        .training()
        .declare_no_use(v1::DeclareNoUseRequest {
            license_id: license.clone(),
            until: until.0,
            signature: signature.to_vec(),
        })
        .await?
        .into_inner();
    output::show(
        global.json,
        json!({ "license": license, "accounted_until": response.accounted_until, "log_index": response.log_index }),
        || {
            println!(
                "Declared: no training under license {license} up to {}; logged at index {}.",
                response.accounted_until, response.log_index
            );
        },
    );
    Ok(())
}

pub async fn trustee(
    global: &GlobalArgs,
    session: &SignedIn,
    command: TrusteeLedgerCommand,
) -> anyhow::Result<()> {
    let mut ledger = session.ledger();
    match command {
        TrusteeLedgerCommand::Invoices { licensee, csv } => {
            let licensee = licensee
                .map(|text| super::common::parse_key(&text, "--licensee"))
                .transpose()?;
            invoices(global, session, licensee, csv).await?;
        }
        TrusteeLedgerCommand::RecordPayment {
            charge,
            amount,
            currency,
            reference,
        } => {
            let payment = ledger
                .record_payment(v1::RecordPaymentRequest {
                    reference,
                    charge_id: charge,
                    currency,
                    amount,
                })
                .await?
                .into_inner()
                .payment
                .unwrap_or_default();
            output::show(
                global.json,
                json!({ "reference": payment.reference, "charge": payment.charge_id, "currency": payment.currency, "amount": payment.amount, "log_index": payment.log_index }),
                || {
                    println!(
                        "Payment of {} recorded against invoice {}, logged at index {}.",
                        human::money(&payment.currency, payment.amount),
                        payment.charge_id,
                        payment.log_index
                    );
                },
            );
        }
        TrusteeLedgerCommand::RecordPayout {
            member,
            amount,
            currency,
            reference,
        } => {
            let member = PublicKey::from_base64(&member, "--member")
                .map_err(|error| anyhow!("--member: {}", error.reason))?;
            let payout = ledger
                .record_payout(v1::RecordPayoutRequest {
                    reference,
                    member_public_key: member.as_bytes().to_vec(),
                    currency,
                    amount,
                })
                .await?
                .into_inner()
                .payout
                .unwrap_or_default();
            output::show(
                global.json,
                json!({ "reference": payout.reference, "currency": payout.currency, "amount": payout.amount, "log_index": payout.log_index }),
                || {
                    println!(
                        "Payout of {} recorded, logged at index {}.",
                        human::money(&payout.currency, payout.amount),
                        payout.log_index
                    );
                },
            );
        }
        TrusteeLedgerCommand::Ledger { csv } => {
            let response = ledger
                .get_ledger(v1::GetLedgerRequest {})
                .await?
                .into_inner();
            if csv {
                println!(
                    "currency,charged,received,outstanding,fund,members_earned,paid_out,owed_to_members"
                );
            }
            for totals in &response.totals {
                if csv {
                    println!(
                        "{}",
                        csv_row(&[
                            totals.currency.clone(),
                            totals.charged.to_string(),
                            totals.received.to_string(),
                            totals.outstanding.to_string(),
                            totals.fund.to_string(),
                            totals.members_earned.to_string(),
                            totals.paid_out.to_string(),
                            totals.owed_to_members.to_string(),
                        ])
                    );
                } else {
                    output::show(
                        global.json,
                        json!({ "currency": totals.currency, "charged": totals.charged, "received": totals.received, "outstanding": totals.outstanding, "fund": totals.fund, "members_earned": totals.members_earned, "paid_out": totals.paid_out, "owed_to_members": totals.owed_to_members }),
                        || {
                            let money = |amount| human::money(&totals.currency, amount);
                            println!(
                                "{}: charged {}, received {}, outstanding {}; union fund {}; members earned {}, paid out {}, owed {}",
                                totals.currency,
                                money(totals.charged),
                                money(totals.received),
                                money(totals.outstanding),
                                money(totals.fund),
                                money(totals.members_earned),
                                money(totals.paid_out),
                                money(totals.owed_to_members)
                            );
                        },
                    );
                }
            }
            if !csv {
                for suspension in &response.suspensions {
                    output::show(
                        global.json,
                        json!({ "suspended": key_text(&suspension.licensee), "reason": suspension.reason, "since": suspension.since }),
                        || {
                            println!(
                                "suspended: {} since {}: {}",
                                key_text(&suspension.licensee),
                                human::date(suspension.since),
                                suspension.reason
                            );
                        },
                    );
                }
                if response.totals.is_empty() && !global.json {
                    println!("Nothing charged yet.");
                }
            }
        }
        TrusteeLedgerCommand::EnforceDuties => {
            let response = ledger
                .enforce_duties(v1::EnforceDutiesRequest {})
                .await?
                .into_inner();
            for suspension in &response.suspended {
                output::show(
                    global.json,
                    json!({ "suspended": key_text(&suspension.licensee), "reason": suspension.reason, "log_index": suspension.log_index }),
                    || {
                        println!(
                            "suspended {}: {}",
                            key_text(&suspension.licensee),
                            suspension.reason
                        );
                    },
                );
            }
            if response.suspended.is_empty() && !global.json {
                println!("Nobody newly suspended.");
            }
            let swept = response.retention.unwrap_or_default();
            output::show(
                global.json,
                json!({ "retention": {
                    "members": swept.members, "events": swept.events, "chunks": swept.chunks,
                    "chunks_rewritten": swept.chunks_rewritten, "day_counts": swept.day_counts,
                    "screenshots": swept.screenshots, "release_parts": swept.release_parts,
                    "segments_removed": swept.segments_removed, "bytes_freed": swept.bytes_freed,
                    "members_damaged": swept.members_damaged,
                } }),
                || {
                    println!(
                        "Retention: deleted {} events ({} batches whole, {} in part), {} day counts, {} screenshots, {} release parts; {} bytes freed on disk ({} segment files removed).",
                        swept.events,
                        swept.chunks,
                        swept.chunks_rewritten,
                        swept.day_counts,
                        swept.screenshots,
                        swept.release_parts,
                        swept.bytes_freed,
                        swept.segments_removed
                    );
                    if swept.members_damaged > 0 {
                        println!(
                            "Warning: {} members were passed over: some of their stored data is damaged (see the server's log).",
                            swept.members_damaged
                        );
                    }
                },
            );
        }
        TrusteeLedgerCommand::LiftSuspension { licensee, reason } => {
            let licensee = PublicKey::from_base64(&licensee, "--licensee")
                .map_err(|error| anyhow!("--licensee: {}", error.reason))?;
            let signature = super::common::sign_safety_action(
                global,
                session,
                &datatrust_core::safety::SafetyAction::LiftSuspension { licensee },
            )?;
            let response = ledger
                .lift_suspension(v1::LiftSuspensionRequest {
                    licensee_public_key: licensee.as_bytes().to_vec(),
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
            output::show(
                global.json,
                json!({ "lifted": true, "log_index": response.log_index }),
                || {
                    println!("Suspension lifted, logged at index {}.", response.log_index);
                },
            );
        }
    }
    Ok(())
}

fn node(wire: &v1::SumNode) -> anyhow::Result<SumNode> {
    Ok(SumNode {
        hash: wire
            .hash
            .as_slice()
            .try_into()
            .map_err(|_| anyhow!("a proof node's hash is not 32 bytes"))?,
        records: wire.records,
        amount: wire.amount,
    })
}

/// Checks one statement line offline: the commitment is the member's, the leaf is in the
/// sum tree, the tree's totals are the charge, and the charge is in the signed log.
pub fn verify_statement_line(
    verifier: &NoteVerifier,
    me: &PublicKey,
    salt: &[u8; 32],
    line: &v1::StatementLine,
) -> anyhow::Result<()> {
    let charge = line
        .charge
        .as_ref()
        .ok_or_else(|| anyhow!("the line names no charge"))?;
    let commitment = hex::encode(share_commitment(salt, me, &charge.id));
    if commitment != line.commitment {
        bail!("the share is not committed to your key");
    }
    let leaf = ShareLeaf {
        commitment,
        records: line.my_records,
        amount: line.my_amount,
    };
    let proof: Vec<SumNode> = line.proof.iter().map(node).collect::<Result<_, _>>()?;
    let root = node(
        line.root
            .as_ref()
            .ok_or_else(|| anyhow!("the line has no root"))?,
    )?;
    sum::verify(&leaf, line.leaf_index, charge.share_leaves, &proof, &root)
        .context("your share is not in the distribution's sum tree")?;
    if root.amount != charge.amount {
        bail!(
            "the distribution adds up to {}, not the charge of {}",
            root.amount,
            charge.amount
        );
    }
    let logged = Receipt::parse(&line.receipt)?
        .verify(verifier, None)
        .context("the charge's receipt")?;
    let entry = DecodedEntry::parse(&logged.entry)
        .ok_or_else(|| anyhow!("the charge entry is not a datatrust entry"))?;
    let expected = [
        ("charge", charge.id.clone()),
        ("license", charge.license_id.clone()),
        ("currency", charge.currency.clone()),
        ("amount", charge.amount.to_string()),
        ("share-root", hex::encode(root.hash)),
        ("share-records", root.records.to_string()),
        ("share-amount", root.amount.to_string()),
        ("share-leaves", charge.share_leaves.to_string()),
    ];
    if entry.kind != "charge"
        || expected
            .iter()
            .any(|(key, value)| entry.field(key) != Some(value.as_str()))
    {
        bail!("the logged charge does not match what the trust reported");
    }
    Ok(())
}

pub async fn member(
    global: &GlobalArgs,
    session: &SignedIn,
    command: MemberLedgerCommand,
) -> anyhow::Result<()> {
    let MemberLedgerCommand::Statement { verify, vkey, csv } = command;
    statement(global, session, verify, vkey, csv).await
}

pub async fn company(
    global: &GlobalArgs,
    session: &SignedIn,
    command: CompanyLedgerCommand,
) -> anyhow::Result<()> {
    match command {
        CompanyLedgerCommand::Invoices { csv } => invoices(global, session, None, csv).await,
        CompanyLedgerCommand::DeclareNoUse { license, until } => {
            declare_no_use(global, session, license, until).await
        }
    }
}

async fn statement(
    global: &GlobalArgs,
    session: &SignedIn,
    verify: bool,
    vkey: Option<String>,
    csv: bool,
) -> anyhow::Result<()> {
    let verifier = match (verify, vkey) {
        (true, Some(vkey)) => {
            Some(NoteVerifier::parse(&vkey).map_err(|error| anyhow!("--vkey: {}", error.reason))?)
        }
        (true, None) => {
            bail!("--verify needs --vkey (the log's verifier key from `datatrust trust info`)")
        }
        (false, _) => None,
    };
    let response = session.whole_statement().await?;
    let salt: [u8; 32] = response
        .commitment_salt
        .as_slice()
        .try_into()
        .map_err(|_| anyhow!("the server sent a bad salt"))?;
    // Her identity: her first key, whatever key she signs in with now.
    let me = PublicKey::from_slice(&session.principal.public_key, "public_key")
        .map_err(|error| anyhow!("the server sent a bad key: {}", error.reason))?;
    if csv {
        println!(
            "charge,license,kind,run,currency,charge_amount,my_records,my_amount,charged_at,log_index,verified"
        );
    }
    for line in &response.lines {
        let charge = line.charge.clone().unwrap_or_default();
        if let Some(verifier) = &verifier {
            verify_statement_line(verifier, &me, &salt, line)
                .with_context(|| format!("charge {}", charge.id))?;
        }
        if csv {
            println!(
                "{}",
                csv_row(&[
                    charge.id.clone(),
                    charge.license_id.clone(),
                    charge.kind.clone(),
                    charge.run_id.clone(),
                    charge.currency.clone(),
                    charge.amount.to_string(),
                    line.my_records.to_string(),
                    line.my_amount.to_string(),
                    charge.created_at.to_string(),
                    charge.log_index.to_string(),
                    verifier.is_some().to_string(),
                ])
            );
        } else {
            output::show(
                global.json,
                json!({ "charge": charge_json(&charge), "my_records": line.my_records, "my_amount": line.my_amount, "verified": verifier.is_some() }),
                || {
                    println!(
                        "{} {} {} on {}: {} of {} for your {} records{}",
                        charge.kind,
                        if charge.run_id.is_empty() {
                            "-"
                        } else {
                            charge.run_id.as_str()
                        },
                        charge.license_id,
                        human::date(charge.created_at),
                        human::money(&charge.currency, line.my_amount),
                        human::money(&charge.currency, charge.amount),
                        line.my_records,
                        if verifier.is_some() {
                            "  [verified]"
                        } else {
                            ""
                        }
                    );
                },
            );
        }
    }
    if csv {
        return Ok(());
    }
    for payout in &response.payouts {
        output::show(
            global.json,
            json!({ "payout": payout.reference, "currency": payout.currency, "amount": payout.amount, "paid_at": payout.paid_at, "log_index": payout.log_index }),
            || {
                println!(
                    "paid out {} ({}) on {}",
                    human::money(&payout.currency, payout.amount),
                    payout.reference,
                    human::date(payout.paid_at)
                );
            },
        );
    }
    for totals in &response.totals {
        output::show(
            global.json,
            json!({ "currency": totals.currency, "earned": totals.earned, "paid_out": totals.paid_out, "balance": totals.balance }),
            || {
                println!(
                    "{}: earned {}, paid out {}, balance {}",
                    totals.currency,
                    human::money(&totals.currency, totals.earned),
                    human::money(&totals.currency, totals.paid_out),
                    human::money(&totals.currency, totals.balance)
                );
            },
        );
    }
    if response.lines.is_empty() && !global.json {
        println!("Nothing earned yet: no charge has used your data.");
    }
    Ok(())
}
