//! `TrustService`: the trust's public identity, for anyone to pin.

use datatrust_proto::v1::trust_service_server::TrustService;
use datatrust_proto::v1::{GetTrustInfoRequest, GetTrustInfoResponse};
use tonic::{Request, Response, Status};

use crate::TrustState;

pub struct TrustApi {
    pub state: TrustState,
}

#[tonic::async_trait]
impl TrustService for TrustApi {
    async fn get_trust_info(
        &self,
        _request: Request<GetTrustInfoRequest>,
    ) -> Result<Response<GetTrustInfoResponse>, Status> {
        Ok(Response::new(GetTrustInfoResponse {
            origin: self.state.origin().to_string(),
            log_vkey: self.state.log_signer().verifier().to_text(),
            license_vkey: self.state.license_signer().verifier().to_text(),
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
        }))
    }
}
