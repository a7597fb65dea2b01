//! `LedgerService`: invoices, payments, payouts, members' statements with proofs, the union's
//! ledger, and licensees' suspension. Decode, call the registry as the caller, encode.

use datatrust_core::compensation::{ChargeRecord, Invoice, SuspensionRecord};
use datatrust_core::merkle::sum::SumNode;
use datatrust_core::{Amount, ChargeId, Currency};
use datatrust_proto::convert;
use datatrust_proto::v1;
use datatrust_proto::v1::ledger_service_server::LedgerService;
use tonic::{Request, Response, Status};

use crate::{TrustState, status};

pub struct LedgerApi {
    pub state: TrustState,
}

pub fn charge_to_wire(charge: &ChargeRecord) -> v1::Charge {
    let (kind, run_id) = match &charge.kind {
        datatrust_core::compensation::ChargeKind::LicenseFee => ("license-fee", String::new()),
        datatrust_core::compensation::ChargeKind::TrainingRun { run_id } => {
            ("training-run", run_id.clone())
        }
    };
    v1::Charge {
        id: charge.id.clone(),
        license_id: charge.license_id.clone(),
        licensee: charge.licensee.as_bytes().to_vec(),
        kind: kind.into(),
        run_id,
        currency: charge.currency.clone(),
        amount: charge.amount,
        fund: charge.fund,
        members: charge.members,
        share_root: charge.root_hash.clone(),
        share_records: charge.root_records,
        share_leaves: charge.share_leaves,
        created_at: charge.created_at.0,
        due_at: charge.due_at.0,
        log_index: charge.log_index,
    }
}

fn invoice_to_wire(invoice: &Invoice) -> v1::Invoice {
    v1::Invoice {
        charge: Some(charge_to_wire(&invoice.charge)),
        paid: invoice.paid,
        due: invoice.due,
        overdue: invoice.overdue,
    }
}

fn suspension_to_wire(suspension: &SuspensionRecord) -> v1::Suspension {
    v1::Suspension {
        licensee: suspension.licensee.as_bytes().to_vec(),
        reason: suspension.reason.clone(),
        since: suspension.since.0,
        log_index: suspension.log_index,
    }
}

fn node_to_wire(node: &SumNode) -> v1::SumNode {
    v1::SumNode {
        hash: node.hash.to_vec(),
        records: node.records,
        amount: node.amount,
    }
}

fn currency(text: &str) -> Result<Currency, Status> {
    Currency::parse(text, "currency").map_err(crate::status::invalid)
}

fn charge_id(text: &str) -> Result<ChargeId, Status> {
    ChargeId::parse(text, "charge_id").map_err(crate::status::invalid)
}

fn amount(minor_units: u64) -> Result<Amount, Status> {
    Amount::parse(minor_units, "amount").map_err(crate::status::invalid)
}

#[tonic::async_trait]
impl LedgerService for LedgerApi {
    async fn list_invoices(
        &self,
        request: Request<v1::ListInvoicesRequest>,
    ) -> Result<Response<v1::ListInvoicesResponse>, Status> {
        let now = self.state.clock().now();
        let licensee = match request.get_ref().licensee_public_key.as_slice() {
            [] => None,
            bytes => {
                Some(convert::public_key(bytes, "licensee_public_key").map_err(status::invalid)?)
            }
        };
        let page =
            crate::paging::Page::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
        let ((invoices, next), suspension) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                let invoices = registry.invoices_page(
                    caller,
                    licensee.as_ref(),
                    now,
                    page.after,
                    page.size,
                )?;
                let whose = match caller.role {
                    datatrust_core::Role::Licensee => Some(caller.public_key),
                    _ => licensee,
                };
                let suspension = match whose {
                    Some(key) => registry.suspension_of(&key)?,
                    None => None,
                };
                Ok((invoices, suspension))
            })
            .await?;
        Ok(Response::new(v1::ListInvoicesResponse {
            invoices: invoices.iter().map(invoice_to_wire).collect(),
            suspension: suspension.as_ref().map(suspension_to_wire),
            next_page_token: crate::paging::token(next),
        }))
    }

    async fn record_payment(
        &self,
        request: Request<v1::RecordPaymentRequest>,
    ) -> Result<Response<v1::RecordPaymentResponse>, Status> {
        let now = self.state.clock().now();
        let message = request.get_ref();
        let charge = charge_id(&message.charge_id)?;
        let currency = currency(&message.currency)?;
        let (reference, amount) = (message.reference.clone(), amount(message.amount)?);
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.record_payment(caller, &reference, &charge, &currency, amount, now)
            })
            .await?;
        let payment = logged.value;
        Ok(Response::new(v1::RecordPaymentResponse {
            payment: Some(v1::Payment {
                reference: payment.reference,
                charge_id: payment.charge_id,
                licensee: payment.licensee.as_bytes().to_vec(),
                currency: payment.currency,
                amount: payment.amount,
                received_at: payment.received_at.0,
                log_index: payment.log_index,
            }),
        }))
    }

    async fn record_payout(
        &self,
        request: Request<v1::RecordPayoutRequest>,
    ) -> Result<Response<v1::RecordPayoutResponse>, Status> {
        let now = self.state.clock().now();
        let message = request.get_ref();
        let member = convert::public_key(&message.member_public_key, "member_public_key")
            .map_err(status::invalid)?;
        let currency = currency(&message.currency)?;
        let (reference, amount) = (message.reference.clone(), amount(message.amount)?);
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.record_payout(caller, &reference, &member, &currency, amount, now)
            })
            .await?;
        let payout = logged.value;
        Ok(Response::new(v1::RecordPayoutResponse {
            payout: Some(v1::Payout {
                reference: payout.reference,
                currency: payout.currency,
                amount: payout.amount,
                paid_at: payout.paid_at.0,
                log_index: payout.log_index,
            }),
        }))
    }

    async fn get_my_statement(
        &self,
        request: Request<v1::GetMyStatementRequest>,
    ) -> Result<Response<v1::GetMyStatementResponse>, Status> {
        // Each line carries a proof and a receipt: at most two hundred to a page.
        let page = crate::paging::Page::parse_sized(
            request.get_ref().page_size,
            &request.get_ref().page_token,
            50,
            200,
        )?;
        let ((statement, next), salt) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                Ok((
                    registry.my_statement_page(caller, page.after, page.size)?,
                    registry.my_commitment_salt(caller)?.1,
                ))
            })
            .await?;
        let mut lines = Vec::with_capacity(statement.lines.len());
        for line in &statement.lines {
            lines.push(v1::StatementLine {
                charge: Some(charge_to_wire(&line.charge)),
                commitment: line.share.commitment.clone(),
                my_records: line.share.records,
                my_amount: line.share.amount,
                leaf_index: line.leaf_index,
                proof: line.proof.iter().map(node_to_wire).collect(),
                root: Some(node_to_wire(&line.root)),
                receipt: crate::services::telemetry::receipt(&self.state, line.charge.log_index)
                    .await?,
            });
        }
        Ok(Response::new(v1::GetMyStatementResponse {
            lines,
            payouts: statement
                .payouts
                .iter()
                .map(|payout| v1::Payout {
                    reference: payout.reference.clone(),
                    currency: payout.currency.clone(),
                    amount: payout.amount,
                    paid_at: payout.paid_at.0,
                    log_index: payout.log_index,
                })
                .collect(),
            totals: statement
                .totals
                .iter()
                .map(|(currency, totals)| v1::CurrencyTotals {
                    currency: currency.clone(),
                    earned: totals.earned,
                    paid_out: totals.paid_out,
                    balance: totals.earned.saturating_sub(totals.paid_out),
                })
                .collect(),
            commitment_salt: salt.to_vec(),
            next_page_token: crate::paging::token(next),
        }))
    }

    async fn get_ledger(
        &self,
        request: Request<v1::GetLedgerRequest>,
    ) -> Result<Response<v1::GetLedgerResponse>, Status> {
        let ledger = self
            .state
            .as_caller(request.metadata(), |registry, caller| {
                registry.ledger(caller)
            })
            .await?;
        Ok(Response::new(v1::GetLedgerResponse {
            totals: ledger
                .totals
                .iter()
                .map(|(currency, totals)| v1::LedgerTotals {
                    currency: currency.clone(),
                    charged: totals.charged,
                    received: totals.received,
                    outstanding: totals.outstanding(),
                    fund: totals.fund,
                    members_earned: totals.members_earned,
                    paid_out: totals.paid_out,
                    owed_to_members: totals.owed_to_members(),
                })
                .collect(),
            suspensions: ledger.suspensions.iter().map(suspension_to_wire).collect(),
        }))
    }

    async fn enforce_duties(
        &self,
        request: Request<v1::EnforceDutiesRequest>,
    ) -> Result<Response<v1::EnforceDutiesResponse>, Status> {
        let now = self.state.clock().now();
        let (made, swept) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                let made = registry.enforce_duties_now(caller, now)?;
                Ok((made, registry.sweep_retention(now)?))
            })
            .await?;
        self.state.metrics().note_retention_sweep(&swept);
        if swept.deleted_anything() {
            crate::serve::log_retention_sweep(&swept);
        }
        Ok(Response::new(v1::EnforceDutiesResponse {
            suspended: made.iter().map(suspension_to_wire).collect(),
            retention: Some(v1::RetentionSweep {
                members: swept.members,
                events: swept.events,
                chunks: swept.chunks,
                chunks_rewritten: swept.chunks_rewritten,
                day_counts: swept.day_counts,
                screenshots: swept.screenshots,
                release_parts: swept.release_parts,
                segments_removed: swept.segments_removed,
                bytes_freed: swept.bytes_freed,
                members_damaged: swept.members_damaged,
            }),
        }))
    }

    async fn lift_suspension(
        &self,
        request: Request<v1::LiftSuspensionRequest>,
    ) -> Result<Response<v1::LiftSuspensionResponse>, Status> {
        let now = self.state.clock().now();
        let message = request.get_ref();
        let licensee = convert::public_key(&message.licensee_public_key, "licensee_public_key")
            .map_err(status::invalid)?;
        let reason = crate::services::safety::reason(&message.reason)?;
        let signature = message.signature.clone();
        let (approval, log_index) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                datatrust_core::registry::require_role(
                    caller,
                    datatrust_core::Role::Trustee,
                    "lift suspensions",
                )?;
                if registry.suspension_of(&licensee)?.is_none() {
                    return Err(datatrust_core::registry::DomainError::FailedPrecondition(
                        "licensee_public_key: this licensee is not suspended".into(),
                    ));
                }
                let action = datatrust_core::safety::SafetyAction::LiftSuspension { licensee };
                let (status, pending) = crate::services::safety::approve(
                    registry, caller, &action, &reason, &signature, now,
                )?;
                let log_index = match pending {
                    Some(pending) => {
                        registry
                            .lift_suspension(caller, &licensee, &pending.detail, now)?
                            .log_index
                    }
                    None => None,
                };
                Ok((Some(status), log_index))
            })
            .await?;
        let (approvals, approvals_required, pending) = crate::services::safety::wire(&approval);
        Ok(Response::new(v1::LiftSuspensionResponse {
            log_index: log_index.unwrap_or_default(),
            approvals,
            approvals_required,
            pending,
        }))
    }
}
