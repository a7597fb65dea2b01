//! `TermsService`, `ConsentService`, `LicenseService`, `TrainingService`: the core loop.
//! Decode, call the registry as the authenticated caller, encode.

use std::sync::Arc;

use datatrust_core::governance::RequestedTerms;
use datatrust_core::{LicenseId, RequestId, TermsHash, UnixSeconds, registry::DomainError};
use datatrust_proto::convert::governance as wire;
use datatrust_proto::v1;
use datatrust_proto::v1::consent_service_server::ConsentService;
use datatrust_proto::v1::license_service_server::LicenseService;
use datatrust_proto::v1::terms_service_server::TermsService;
use datatrust_proto::v1::training_service_server::TrainingService;
use rand::RngCore as _;
use tonic::{Request, Response, Status};

use crate::services::log::receipt_for;
use crate::{TrustState, status};

pub struct TermsApi {
    pub state: TrustState,
}

fn required(text: &str, field: &str) -> Result<String, Status> {
    if text.trim().is_empty() {
        return Err(Status::invalid_argument(format!("{field}: is required")));
    }
    Ok(text.to_owned())
}

fn terms_hash(text: &str) -> Result<TermsHash, Status> {
    TermsHash::parse(text, "terms_sha256").map_err(crate::status::invalid)
}

fn signature(bytes: &[u8]) -> Result<Vec<u8>, Status> {
    if bytes.len() != 64 {
        return Err(Status::invalid_argument(format!(
            "signature: an ed25519 signature is 64 bytes, got {}",
            bytes.len()
        )));
    }
    Ok(bytes.to_vec())
}

#[tonic::async_trait]
impl TermsService for TermsApi {
    async fn propose_terms(
        &self,
        request: Request<v1::ProposeTermsRequest>,
    ) -> Result<Response<v1::TermsResponse>, Status> {
        let now = self.state.clock().now();
        let document = required(&request.get_ref().document, "document")?;
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.propose_terms(caller, &document, now)
            })
            .await?;
        Ok(Response::new(v1::TermsResponse {
            terms: Some(wire::terms(&logged.value)),
            log_index: logged.log_index,
        }))
    }

    async fn get_active_terms(
        &self,
        _request: Request<v1::GetActiveTermsRequest>,
    ) -> Result<Response<v1::TermsResponse>, Status> {
        let active = self
            .state
            .blocking(|registry| {
                registry
                    .active_terms()?
                    .ok_or_else(|| DomainError::NotFound("no terms are in force yet".into()))
            })
            .await?;
        Ok(Response::new(v1::TermsResponse {
            terms: Some(wire::terms(&active)),
            log_index: None,
        }))
    }

    async fn list_terms(
        &self,
        request: Request<v1::ListTermsRequest>,
    ) -> Result<Response<v1::ListTermsResponse>, Status> {
        // Each version carries its document (up to 256 KiB): at most ten to a page.
        let page = crate::paging::Page::parse_sized(
            request.get_ref().page_size,
            &request.get_ref().page_token,
            10,
            10,
        )?;
        let (versions, next) = self
            .state
            .blocking(move |registry| registry.terms_page(page.after, page.size))
            .await?;
        Ok(Response::new(v1::ListTermsResponse {
            terms: versions.iter().map(wire::terms).collect(),
            next_page_token: crate::paging::token(next),
        }))
    }

    async fn cast_ballot(
        &self,
        request: Request<v1::CastBallotRequest>,
    ) -> Result<Response<v1::CastBallotResponse>, Status> {
        let now = self.state.clock().now();
        let body = request.get_ref();
        let hash = terms_hash(&body.terms_sha256)?;
        let signature = signature(&body.signature)?;
        let approve = body.approve;
        let ballot = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.cast_ballot(caller, &hash, approve, &signature, now)
            })
            .await?;
        Ok(Response::new(v1::CastBallotResponse {
            approve: ballot.approve,
            cast_at: ballot.cast_at.0,
        }))
    }

    async fn get_my_ballot(
        &self,
        request: Request<v1::GetMyBallotRequest>,
    ) -> Result<Response<v1::GetMyBallotResponse>, Status> {
        let hash = terms_hash(&request.get_ref().terms_sha256)?;
        let ballot = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.my_ballot(caller, &hash)
            })
            .await?;
        Ok(Response::new(v1::GetMyBallotResponse {
            approve: ballot.as_ref().map(|ballot| ballot.approve),
            cast_at: ballot.map(|ballot| ballot.cast_at.0),
        }))
    }

    async fn close_vote(
        &self,
        request: Request<v1::CloseVoteRequest>,
    ) -> Result<Response<v1::TermsResponse>, Status> {
        let now = self.state.clock().now();
        let hash = terms_hash(&request.get_ref().terms_sha256)?;
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.close_vote(caller, &hash, now)
            })
            .await?;
        Ok(Response::new(v1::TermsResponse {
            terms: Some(wire::terms(&logged.value)),
            log_index: logged.log_index,
        }))
    }

    async fn countersign_terms(
        &self,
        request: Request<v1::CountersignTermsRequest>,
    ) -> Result<Response<v1::TermsResponse>, Status> {
        let now = self.state.clock().now();
        let body = request.get_ref();
        let hash = terms_hash(&body.terms_sha256)?;
        let signature = signature(&body.signature)?;
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.countersign_terms(caller, &hash, &signature, now)
            })
            .await?;
        Ok(Response::new(v1::TermsResponse {
            terms: Some(wire::terms(&logged.value)),
            log_index: logged.log_index,
        }))
    }
}

pub struct ConsentApi {
    pub state: TrustState,
}

#[tonic::async_trait]
impl ConsentService for ConsentApi {
    async fn set_consent(
        &self,
        request: Request<v1::SetConsentRequest>,
    ) -> Result<Response<v1::SetConsentResponse>, Status> {
        let now = self.state.clock().now();
        let purpose = required(&request.get_ref().purpose, "purpose")?;
        let granted = request.get_ref().granted;
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.set_consent(caller, &purpose, granted, now)
            })
            .await?;
        Ok(Response::new(v1::SetConsentResponse {
            consent: Some(v1::Consent {
                purpose: logged.value.purpose,
                granted: logged.value.granted,
                changed_at: logged.value.changed_at.0,
            }),
            log_index: logged.log_index,
        }))
    }

    async fn list_my_consents(
        &self,
        request: Request<v1::ListMyConsentsRequest>,
    ) -> Result<Response<v1::ListMyConsentsResponse>, Status> {
        let consents = self
            .state
            .as_caller(request.metadata(), |registry, caller| {
                registry.my_consents(caller)
            })
            .await?;
        Ok(Response::new(v1::ListMyConsentsResponse {
            consents: consents
                .into_iter()
                .map(|consent| v1::Consent {
                    purpose: consent.purpose,
                    granted: consent.granted,
                    changed_at: consent.changed_at.0,
                })
                .collect(),
        }))
    }
}

pub struct LicenseApi {
    pub state: TrustState,
}

fn license_id(text: &str) -> Result<LicenseId, Status> {
    LicenseId::parse(text, "license_id").map_err(crate::status::invalid)
}

fn request_id(text: &str) -> Result<RequestId, Status> {
    RequestId::parse(text, "request_id").map_err(crate::status::invalid)
}

#[tonic::async_trait]
impl LicenseService for LicenseApi {
    async fn request_license(
        &self,
        request: Request<v1::RequestLicenseRequest>,
    ) -> Result<Response<v1::LicenseRequestResponse>, Status> {
        let now = self.state.clock().now();
        let body = request.get_ref();
        if body.categories.len() > 16 {
            return Err(Status::invalid_argument("categories: at most 16"));
        }
        let requested = RequestedTerms {
            purpose: required(&body.purpose, "purpose")?,
            categories: body.categories.clone(),
            data_from: UnixSeconds(body.data_from),
            data_to: UnixSeconds(body.data_to),
            model_family: required(&body.model_family, "model_family")?,
            max_training_runs: body.max_training_runs,
            duration_days: body.duration_days,
        };
        let mut random = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.request_license(caller, requested, random, now)
            })
            .await?;
        Ok(Response::new(v1::LicenseRequestResponse {
            request: Some(wire::license_request(&logged.value)),
            log_index: logged.log_index,
            ..Default::default()
        }))
    }

    async fn list_license_requests(
        &self,
        request: Request<v1::ListLicenseRequestsRequest>,
    ) -> Result<Response<v1::ListLicenseRequestsResponse>, Status> {
        let page =
            crate::paging::Page::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
        let (records, next) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.license_requests_page(caller, page.after, page.size)
            })
            .await?;
        Ok(Response::new(v1::ListLicenseRequestsResponse {
            requests: records.iter().map(wire::license_request).collect(),
            next_page_token: crate::paging::token(next),
        }))
    }

    async fn approve_license_request(
        &self,
        request: Request<v1::ApproveLicenseRequestRequest>,
    ) -> Result<Response<v1::ApproveLicenseRequestResponse>, Status> {
        let now = self.state.clock().now();
        let body = request.get_ref();
        let id = request_id(&body.request_id)?;
        let signature = signature(&body.signature)?;
        let state = self.state.clone();
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                let signer = state.current_license_signer(registry)?;
                registry.approve_license_request(caller, &id, &signature, &signer, now)
            })
            .await?;
        let (request_record, license) = logged.value;
        Ok(Response::new(v1::ApproveLicenseRequestResponse {
            request: Some(wire::license_request(&request_record)),
            license: license.as_ref().map(wire::license),
            log_index: logged.log_index,
        }))
    }

    async fn deny_license_request(
        &self,
        request: Request<v1::DenyLicenseRequestRequest>,
    ) -> Result<Response<v1::LicenseRequestResponse>, Status> {
        let now = self.state.clock().now();
        let id = request_id(&request.get_ref().request_id)?;
        let reason = crate::services::safety::reason(&request.get_ref().reason)?;
        let signature = request.get_ref().signature.clone();
        let (approval, logged) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                datatrust_core::registry::require_role(
                    caller,
                    datatrust_core::Role::Trustee,
                    "deny license requests",
                )?;
                if registry
                    .store()
                    .get_record(
                        datatrust_core::store::RecordKind::LicenseRequest,
                        id.as_bytes(),
                    )?
                    .is_none()
                {
                    return Err(DomainError::NotFound(
                        "request_id: no license request has this id".into(),
                    ));
                }
                let action = datatrust_core::safety::SafetyAction::DenyRequest {
                    request_id: id.to_string(),
                };
                let (status, pending) = crate::services::safety::approve(
                    registry, caller, &action, &reason, &signature, now,
                )?;
                let logged = match pending {
                    Some(pending) => {
                        Some(registry.deny_license_request(caller, &id, &pending.detail, now)?)
                    }
                    None => None,
                };
                Ok((Some(status), logged))
            })
            .await?;
        let (approvals, approvals_required, pending) = crate::services::safety::wire(&approval);
        Ok(Response::new(v1::LicenseRequestResponse {
            request: logged
                .as_ref()
                .map(|logged| wire::license_request(&logged.value)),
            log_index: logged.and_then(|logged| logged.log_index),
            approvals,
            approvals_required,
            pending,
        }))
    }

    async fn get_license(
        &self,
        request: Request<v1::GetLicenseRequest>,
    ) -> Result<Response<v1::LicenseResponse>, Status> {
        let id = license_id(&request.get_ref().license_id)?;
        let record = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.license(caller, &id)
            })
            .await?;
        Ok(Response::new(v1::LicenseResponse {
            license: Some(wire::license(&record)),
            ..Default::default()
        }))
    }

    async fn list_licenses(
        &self,
        request: Request<v1::ListLicensesRequest>,
    ) -> Result<Response<v1::ListLicensesResponse>, Status> {
        let page =
            crate::paging::Page::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
        let (records, next) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.licenses_page(caller, page.after, page.size)
            })
            .await?;
        Ok(Response::new(v1::ListLicensesResponse {
            licenses: records.iter().map(wire::license).collect(),
            next_page_token: crate::paging::token(next),
        }))
    }

    async fn revoke_license(
        &self,
        request: Request<v1::RevokeLicenseRequest>,
    ) -> Result<Response<v1::LicenseResponse>, Status> {
        let now = self.state.clock().now();
        let id = license_id(&request.get_ref().license_id)?;
        let reason = crate::services::safety::reason(&request.get_ref().reason)?;
        let signature = request.get_ref().signature.clone();
        let (approval, logged) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                // Refusals that need no signature come first: not a trustee, no such license,
                // revoked already.
                datatrust_core::registry::require_role(
                    caller,
                    datatrust_core::Role::Trustee,
                    "revoke licenses",
                )?;
                let record = registry.license(caller, &id)?;
                if record.status != datatrust_core::governance::LicenseStatus::Active {
                    return Err(DomainError::FailedPrecondition(
                        "license_id: the license is revoked already".into(),
                    ));
                }
                let action = datatrust_core::safety::SafetyAction::RevokeLicense {
                    license_id: id.to_string(),
                };
                let (status, pending) = crate::services::safety::approve(
                    registry, caller, &action, &reason, &signature, now,
                )?;
                let logged = match pending {
                    Some(pending) => {
                        Some(registry.revoke_license(caller, &id, &pending.detail, now)?)
                    }
                    None => None,
                };
                Ok((Some(status), logged))
            })
            .await?;
        let (approvals, approvals_required, pending) = crate::services::safety::wire(&approval);
        Ok(Response::new(v1::LicenseResponse {
            license: logged.as_ref().map(|logged| wire::license(&logged.value)),
            log_index: logged.and_then(|logged| logged.log_index),
            approvals,
            approvals_required,
            pending,
        }))
    }
}

pub struct TrainingApi {
    pub state: TrustState,
}

#[tonic::async_trait]
impl TrainingService for TrainingApi {
    async fn report_training_use(
        &self,
        request: Request<v1::ReportTrainingUseRequest>,
    ) -> Result<Response<v1::ReportTrainingUseResponse>, Status> {
        let now = self.state.clock().now();
        let report = required(&request.get_ref().report, "report")?;
        let signature = signature(&request.get_ref().signature)?;
        let licensee = self.state.session(request.metadata())?.public_key;
        let refusals = self.state.refused_reports();
        if !refusals.has_token(licensee) {
            return Err(Status::resource_exhausted(format!(
                "too many refused reports from your key (at most {} an hour): each is logged; \
                 read the refusals (ListTrainingUses) and fix the reports before sending more",
                crate::state::REFUSED_REPORTS_PER_HOUR
            )));
        }
        let record = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.report_training_use(caller, &report, &signature, now)
            })
            .await
            .inspect_err(|status| {
                // A new refusal was logged (a repeat of an old one logs nothing): count it.
                if status.code() == tonic::Code::FailedPrecondition
                    && status.message().contains("this attempt is logged at index")
                {
                    refusals.take(licensee);
                }
            })?;
        // The journal returned only once the entry was committed with a signed checkpoint.
        let reader = Arc::clone(self.state.log_reader());
        let index = record.log_index;
        let receipt = tokio::task::spawn_blocking(move || receipt_for(&reader, index))
            .await
            .map_err(|error| status::internal(&error))?
            .map_err(status::from_read)?;
        Ok(Response::new(v1::ReportTrainingUseResponse {
            r#use: Some(wire::training_use(&record)),
            receipt,
        }))
    }

    async fn list_training_uses(
        &self,
        request: Request<v1::ListTrainingUsesRequest>,
    ) -> Result<Response<v1::ListTrainingUsesResponse>, Status> {
        let page =
            crate::paging::Page::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
        let (records, next) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.training_uses_page(caller, page.after, page.size)
            })
            .await?;
        Ok(Response::new(v1::ListTrainingUsesResponse {
            uses: records.iter().map(wire::training_use).collect(),
            next_page_token: crate::paging::token(next),
        }))
    }

    async fn declare_no_use(
        &self,
        request: Request<v1::DeclareNoUseRequest>,
    ) -> Result<Response<v1::DeclareNoUseResponse>, Status> {
        let now = self.state.clock().now();
        let message = request.get_ref();
        let license_id = license_id(&message.license_id)?;
        let signature = signature(&message.signature)?;
        let until = UnixSeconds(message.until);
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.declare_no_use(caller, &license_id, until, &signature, now)
            })
            .await?;
        Ok(Response::new(v1::DeclareNoUseResponse {
            accounted_until: logged.value.accounted_until.0,
            log_index: logged.log_index.unwrap_or_default(),
        }))
    }
}
