//! `PrincipalService`: trustees administer who belongs to the trust.

use datatrust_core::{DisplayName, PublicKey};
use datatrust_proto::convert;
use datatrust_proto::v1::principal_service_server::PrincipalService;
use datatrust_proto::v1::{
    CreateInvitationRequest, CreateInvitationResponse, DeactivatePrincipalRequest,
    DeactivatePrincipalResponse, GetPrincipalRequest, GetPrincipalResponse, Invitation,
    ListInvitationsRequest, ListInvitationsResponse, ListPrincipalsRequest, ListPrincipalsResponse,
    RegisterPrincipalRequest, RegisterPrincipalResponse,
};
use rand::RngCore as _;
use tonic::{Request, Response, Status};

use datatrust_core::safety::SafetyAction;

use crate::state::random_salt;
use crate::{TrustState, status};

pub struct PrincipalApi {
    pub state: TrustState,
}

#[tonic::async_trait]
impl PrincipalService for PrincipalApi {
    async fn register_principal(
        &self,
        request: Request<RegisterPrincipalRequest>,
    ) -> Result<Response<RegisterPrincipalResponse>, Status> {
        let now = self.state.clock().now();
        let body = request.get_ref();
        let public_key =
            convert::public_key(&body.public_key, "public_key").map_err(status::invalid)?;
        let role = convert::role(body.role, "role").map_err(status::invalid)?;
        let display_name =
            DisplayName::parse(&body.display_name, "display_name").map_err(status::invalid)?;
        let salt = random_salt();
        let signature = body.signature.clone();
        let (approval, logged) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                crate::services::auth::refuse_bound_key(registry, &public_key)?;
                if role != datatrust_core::Role::Trustee {
                    let logged = registry.register_principal(
                        caller,
                        public_key,
                        role,
                        display_name,
                        salt,
                        now,
                    )?;
                    return Ok((None, Some(logged)));
                }
                // A trustee: the trustee quorum's signed approvals.
                if registry.store().principal(&public_key)?.is_some() {
                    return Err(datatrust_core::membership::key_taken_error());
                }
                let action = SafetyAction::RegisterTrustee { public_key };
                let (status, pending) = crate::services::safety::approve(
                    registry,
                    caller,
                    &action,
                    display_name.as_str(),
                    &signature,
                    now,
                )?;
                let logged = match pending {
                    Some(pending) => {
                        let name = DisplayName::parse(&pending.detail, "display_name")?;
                        Some(
                            registry
                                .register_principal(caller, public_key, role, name, salt, now)?,
                        )
                    }
                    None => None,
                };
                Ok((Some(status), logged))
            })
            .await?;
        if let Some(logged) = &logged {
            tracing::info!(public_key = %logged.value.public_key, role = %logged.value.role, "principal registered");
        }
        let (approvals, approvals_required, pending) = crate::services::safety::wire(&approval);
        Ok(Response::new(RegisterPrincipalResponse {
            principal: logged
                .as_ref()
                .map(|logged| convert::principal_to_wire(&logged.value)),
            log_index: logged.and_then(|logged| logged.log_index),
            approvals,
            approvals_required,
            pending,
        }))
    }

    async fn create_invitation(
        &self,
        request: Request<CreateInvitationRequest>,
    ) -> Result<Response<CreateInvitationResponse>, Status> {
        let now = self.state.clock().now();
        let body = request.get_ref();
        let display_name =
            DisplayName::parse(&body.display_name, "display_name").map_err(status::invalid)?;
        let valid_for_seconds = body.valid_for_seconds;
        let mut random = [0u8; 13];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let (code, invitation) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.create_invitation(caller, display_name, valid_for_seconds, random, now)
            })
            .await?;
        Ok(Response::new(CreateInvitationResponse {
            invitation_code: code.as_str().to_owned(),
            expires_at: invitation.expires_at.0,
        }))
    }

    async fn get_principal(
        &self,
        request: Request<GetPrincipalRequest>,
    ) -> Result<Response<GetPrincipalResponse>, Status> {
        let public_key = convert::public_key(&request.get_ref().public_key, "public_key")
            .map_err(status::invalid)?;
        let principal = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.get_principal(caller, &public_key)
            })
            .await?;
        Ok(Response::new(GetPrincipalResponse {
            principal: Some(convert::principal_to_wire(&principal)),
        }))
    }

    async fn list_principals(
        &self,
        request: Request<ListPrincipalsRequest>,
    ) -> Result<Response<ListPrincipalsResponse>, Status> {
        let body = request.get_ref();
        let role = convert::optional_role(body.role, "role").map_err(status::invalid)?;
        let after = match body.page_token.as_str() {
            "" => None,
            token => Some(PublicKey::from_base64(token, "page_token").map_err(|_| {
                Status::invalid_argument("page_token: not a token this server issued")
            })?),
        };
        let page_size = body.page_size as usize;
        let (principals, next) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.list_principals(caller, role, after.as_ref(), page_size)
            })
            .await?;
        Ok(Response::new(ListPrincipalsResponse {
            principals: principals.iter().map(convert::principal_to_wire).collect(),
            next_page_token: next.map(|key| key.to_base64()).unwrap_or_default(),
        }))
    }

    async fn list_invitations(
        &self,
        request: Request<ListInvitationsRequest>,
    ) -> Result<Response<ListInvitationsResponse>, Status> {
        let now = self.state.clock().now();
        let body = request.get_ref();
        let after = match body.page_token.as_str() {
            "" => None,
            token => Some(
                hex::decode(token)
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .ok_or_else(|| {
                        Status::invalid_argument("page_token: not a token this server issued")
                    })?,
            ),
        };
        let page_size = body.page_size as usize;
        let (invitations, next) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.list_invitations(caller, after.as_ref(), page_size)
            })
            .await?;
        let invitations = invitations
            .iter()
            .map(|invitation| Invitation {
                id: hex::encode(invitation.code_hash),
                display_name: invitation.display_name.as_str().to_owned(),
                created_by: invitation.created_by.as_bytes().to_vec(),
                created_at: invitation.created_at.0,
                expires_at: invitation.expires_at.0,
                status: match (&invitation.redeemed_by, now > invitation.expires_at) {
                    (Some(_), _) => "redeemed",
                    (None, true) => "expired",
                    (None, false) => "open",
                }
                .to_owned(),
                redeemed_by: invitation
                    .redeemed_by
                    .map(|key| key.as_bytes().to_vec())
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(ListInvitationsResponse {
            invitations,
            next_page_token: next.map(hex::encode).unwrap_or_default(),
        }))
    }

    async fn deactivate_principal(
        &self,
        request: Request<DeactivatePrincipalRequest>,
    ) -> Result<Response<DeactivatePrincipalResponse>, Status> {
        let now = self.state.clock().now();
        let public_key = convert::public_key(&request.get_ref().public_key, "public_key")
            .map_err(status::invalid)?;
        let signature = request.get_ref().signature.clone();
        let (approval, logged) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                let target = registry.store().principal(&public_key)?;
                if target.is_none_or(|target| target.role != datatrust_core::Role::Trustee)
                    || public_key == caller.public_key
                {
                    return Ok((
                        None,
                        Some(registry.deactivate_principal(caller, &public_key, now)?),
                    ));
                }
                // A trustee: the trustee quorum's signed approvals.
                let action = SafetyAction::DeactivateTrustee { public_key };
                let (status, pending) = crate::services::safety::approve(
                    registry, caller, &action, "", &signature, now,
                )?;
                let logged = match pending {
                    Some(_) => Some(registry.deactivate_principal(caller, &public_key, now)?),
                    None => None,
                };
                Ok((Some(status), logged))
            })
            .await?;
        if let Some(logged) = &logged {
            tracing::info!(public_key = %logged.value.public_key, "principal deactivated");
        }
        let (approvals, approvals_required, pending) = crate::services::safety::wire(&approval);
        Ok(Response::new(DeactivatePrincipalResponse {
            principal: logged
                .as_ref()
                .map(|logged| convert::principal_to_wire(&logged.value)),
            log_index: logged.and_then(|logged| logged.log_index),
            approvals,
            approvals_required,
            pending,
        }))
    }

    async fn list_pending_approvals(
        &self,
        request: Request<datatrust_proto::v1::ListPendingApprovalsRequest>,
    ) -> Result<Response<datatrust_proto::v1::ListPendingApprovalsResponse>, Status> {
        let now = self.state.clock().now();
        let page =
            crate::paging::Page::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
        let ((waiting, next), required) = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                Ok((
                    registry.pending_approvals(caller, now, page.after.as_deref(), page.size)?,
                    registry.safety_quorum()?,
                ))
            })
            .await?;
        Ok(Response::new(
            datatrust_proto::v1::ListPendingApprovalsResponse {
                pending: waiting
                    .into_iter()
                    .map(|waiting| datatrust_proto::v1::PendingApproval {
                        kind: waiting.kind,
                        subject: waiting.subject,
                        detail: waiting.detail,
                        approved_by: waiting
                            .approved_by
                            .iter()
                            .map(|trustee| trustee.as_bytes().to_vec())
                            .collect(),
                        first_approved_at: waiting.first_approved_at.0,
                    })
                    .collect(),
                required,
                next_page_token: crate::paging::token(next),
            },
        ))
    }

    async fn approve_recovery(
        &self,
        request: Request<datatrust_proto::v1::ApproveRecoveryRequest>,
    ) -> Result<Response<datatrust_proto::v1::ApproveRecoveryResponse>, Status> {
        let now = self.state.clock().now();
        let message = request.get_ref();
        let member = convert::public_key(&message.member_public_key, "member_public_key")
            .map_err(status::invalid)?;
        let new_key = convert::public_key(&message.new_public_key, "new_public_key")
            .map_err(status::invalid)?;
        if message.signature.is_empty() {
            return Err(Status::invalid_argument("signature: is required"));
        }
        let signature = message.signature.clone();
        let recovery = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.approve_recovery(caller, &member, new_key, &signature, now)
            })
            .await?;
        tracing::warn!(
            approvals = recovery.approvals,
            required = recovery.required,
            recovered = recovery.log_index.is_some(),
            "member recovery approved"
        );
        Ok(Response::new(
            datatrust_proto::v1::ApproveRecoveryResponse {
                approvals: recovery.approvals,
                required: recovery.required,
                recovered: recovery.log_index.is_some(),
                log_index: recovery.log_index.unwrap_or_default(),
            },
        ))
    }
}
