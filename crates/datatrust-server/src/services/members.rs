//! `MemberService` and `CollectorService`: collector authorisations, from each side.

use datatrust_proto::convert;
use datatrust_proto::v1::collector_service_server::CollectorService;
use datatrust_proto::v1::member_service_server::MemberService;
use datatrust_proto::v1::{
    AuthorizeCollectorRequest, AuthorizeCollectorResponse, ListMyCollectorsRequest,
    ListMyCollectorsResponse, ListMyMembersRequest, ListMyMembersResponse, RevokeCollectorRequest,
    RevokeCollectorResponse,
};
use tonic::{Request, Response, Status};

use crate::{TrustState, status};

pub struct MemberApi {
    pub state: TrustState,
}

#[tonic::async_trait]
impl MemberService for MemberApi {
    async fn authorize_collector(
        &self,
        request: Request<AuthorizeCollectorRequest>,
    ) -> Result<Response<AuthorizeCollectorResponse>, Status> {
        let now = self.state.clock().now();
        let collector = convert::public_key(
            &request.get_ref().collector_public_key,
            "collector_public_key",
        )
        .map_err(status::invalid)?;
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.authorize_collector(caller, &collector, now)
            })
            .await?;
        Ok(Response::new(AuthorizeCollectorResponse {
            authorization: Some(convert::authorization_to_wire(&logged.value)),
            log_index: logged.log_index,
        }))
    }

    async fn revoke_collector(
        &self,
        request: Request<RevokeCollectorRequest>,
    ) -> Result<Response<RevokeCollectorResponse>, Status> {
        let now = self.state.clock().now();
        let collector = convert::public_key(
            &request.get_ref().collector_public_key,
            "collector_public_key",
        )
        .map_err(status::invalid)?;
        let logged = self
            .state
            .as_caller(request.metadata(), move |registry, caller| {
                registry.revoke_collector(caller, &collector, now)
            })
            .await?;
        Ok(Response::new(RevokeCollectorResponse {
            revoked: logged.value,
            log_index: logged.log_index,
        }))
    }

    async fn list_my_collectors(
        &self,
        request: Request<ListMyCollectorsRequest>,
    ) -> Result<Response<ListMyCollectorsResponse>, Status> {
        let page =
            crate::paging::Page::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
        let mut authorizations = self
            .state
            .as_caller(request.metadata(), |registry, caller| {
                registry.my_collectors(caller)
            })
            .await?;
        authorizations.sort_by_key(|authorization| *authorization.collector.as_bytes());
        let (authorizations, next_page_token) =
            crate::paging::slice(authorizations, &page, |authorization| {
                authorization.collector.as_bytes().to_vec()
            });
        Ok(Response::new(ListMyCollectorsResponse {
            authorizations: authorizations
                .iter()
                .map(convert::authorization_to_wire)
                .collect(),
            next_page_token,
        }))
    }
}

pub struct CollectorApi {
    pub state: TrustState,
}

#[tonic::async_trait]
impl CollectorService for CollectorApi {
    async fn list_my_members(
        &self,
        request: Request<ListMyMembersRequest>,
    ) -> Result<Response<ListMyMembersResponse>, Status> {
        let page =
            crate::paging::Page::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
        let mut authorizations = self
            .state
            .as_caller(request.metadata(), |registry, caller| {
                registry.my_members(caller)
            })
            .await?;
        authorizations.sort_by_key(|authorization| *authorization.member.as_bytes());
        let (authorizations, next_page_token) =
            crate::paging::slice(authorizations, &page, |authorization| {
                authorization.member.as_bytes().to_vec()
            });
        Ok(Response::new(ListMyMembersResponse {
            authorizations: authorizations
                .iter()
                .map(convert::authorization_to_wire)
                .collect(),
            next_page_token,
        }))
    }
}
