//! `AuthService`: challenges, logins, invitation redemption, who-am-I.

use datatrust_core::auth::{InvitationCode, login_message};
use datatrust_core::registry::DomainError;
use datatrust_proto::convert;
use datatrust_proto::v1::auth_service_server::AuthService;
use datatrust_proto::v1::{
    CreateChallengeRequest, CreateChallengeResponse, LoginRequest, LoginResponse,
    RedeemInvitationRequest, RedeemInvitationResponse, WhoAmIRequest, WhoAmIResponse,
};
use tonic::{Request, Response, Status};

use crate::state::random_salt;
use crate::{TrustState, status};

pub struct AuthApi {
    pub state: TrustState,
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn create_challenge(
        &self,
        request: Request<CreateChallengeRequest>,
    ) -> Result<Response<CreateChallengeResponse>, Status> {
        let now = self.state.clock().now();
        let public_key = convert::public_key(&request.get_ref().public_key, "public_key")
            .map_err(status::invalid)?;
        // A challenge is issued for any well-formed key: whether the key is enrolled is
        // revealed only to whoever proves they hold it.
        let (challenge, lifetime) = self.state.sessions().create_challenge(public_key, now);
        Ok(Response::new(CreateChallengeResponse {
            challenge: challenge.to_vec(),
            expires_at: now.plus_seconds(lifetime.as_secs() as i64).0,
        }))
    }

    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        let now = self.state.clock().now();
        let request = request.into_inner();
        let public_key =
            convert::public_key(&request.public_key, "public_key").map_err(status::invalid)?;
        if request.challenge.is_empty() {
            return Err(Status::invalid_argument("challenge: is required"));
        }
        let challenge = self
            .state
            .sessions()
            .check_challenge(&public_key, &request.challenge, now)
            .map_err(crate::status::from_auth)?;
        let message = login_message(self.state.origin(), &public_key, &request.challenge);
        if !public_key.verify(&message, &request.signature) {
            tracing::warn!(public_key = %public_key, "login refused: bad signature");
            return Err(Status::unauthenticated(
                "signature: does not verify over the login message for this key and challenge",
            ));
        }
        let principal = self
            .state
            .blocking(move |registry| {
                registry.principal_signing_with(&public_key)?.ok_or_else(|| {
                    DomainError::Unauthenticated(
                        "public_key: not the key of an active principal of this trust (never enrolled, deactivated, or replaced by a rotation or recovery); ask a trustee".into(),
                    )
                })
            })
            .await?;
        // Only now, with a good signature by an active principal, is the challenge spent.
        self.state
            .sessions()
            .consume_challenge(&public_key, challenge, now)
            .map_err(crate::status::from_auth)?;
        let (token, session) = self
            .state
            .sessions()
            .start_session(public_key, principal.role, now.0)
            .map_err(crate::status::from_auth)?;
        tracing::info!(public_key = %principal.public_key, role = %principal.role, "signed in");
        Ok(Response::new(LoginResponse {
            token,
            expires_at: session.expires_at_unix,
            principal: Some(convert::principal_to_wire(&principal)),
        }))
    }

    async fn redeem_invitation(
        &self,
        request: Request<RedeemInvitationRequest>,
    ) -> Result<Response<RedeemInvitationResponse>, Status> {
        let now = self.state.clock().now();
        let request = request.into_inner();
        let code = InvitationCode::parse(&request.invitation_code).map_err(status::invalid)?;
        let public_key =
            convert::public_key(&request.public_key, "public_key").map_err(status::invalid)?;
        let signature = request.signature;
        let salt = random_salt();
        let logged = self
            .state
            .blocking(move |registry| {
                refuse_bound_key(registry, &public_key)?;
                registry.redeem_invitation(&code, public_key, &signature, salt, now)
            })
            .await?;
        tracing::info!(public_key = %logged.value.public_key, "invitation redeemed");
        Ok(Response::new(RedeemInvitationResponse {
            principal: Some(convert::principal_to_wire(&logged.value)),
            log_index: logged.log_index,
        }))
    }

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let (session, principal) = self.state.caller_inline(request.metadata())?;
        Ok(Response::new(WhoAmIResponse {
            principal: Some(convert::principal_to_wire(&principal)),
            token_expires_at: session.expires_at_unix,
        }))
    }

    async fn rotate_key(
        &self,
        request: Request<datatrust_proto::v1::RotateKeyRequest>,
    ) -> Result<Response<datatrust_proto::v1::RotateKeyResponse>, Status> {
        let now = self.state.clock().now();
        let message = request.get_ref();
        let new_key = convert::public_key(&message.new_public_key, "new_public_key")
            .map_err(status::invalid)?;
        for (field, signature) in [
            ("old_signature", &message.old_signature),
            ("new_signature", &message.new_signature),
        ] {
            if signature.is_empty() {
                return Err(Status::invalid_argument(format!("{field}: is required")));
            }
        }
        let (old_signature, new_signature) =
            (message.old_signature.clone(), message.new_signature.clone());
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.rotate_key(caller, new_key, &old_signature, &new_signature, now)
            })
            .await?;
        tracing::info!(principal = %logged.value.public_key, "key rotated");
        Ok(Response::new(datatrust_proto::v1::RotateKeyResponse {
            principal: Some(convert::principal_to_wire(&logged.value)),
            log_index: logged.log_index.unwrap_or_default(),
        }))
    }
}

/// A key some principal signs with after a rotation or a recovery is taken, as a first key
/// would be.
pub(crate) fn refuse_bound_key(
    registry: &crate::state::TrustRegistry,
    key: &datatrust_core::PublicKey,
) -> Result<(), DomainError> {
    if registry.store().principal(key)?.is_none() && registry.key_in_use(key)? {
        return Err(DomainError::refused(
            datatrust_core::registry::Refusal::AlreadyExists,
            datatrust_core::registry::Subject::Principal,
            "this key is already a principal's (after a rotation or a recovery); generate a new key",
        ));
    }
    Ok(())
}
