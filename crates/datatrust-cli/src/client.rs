//! A gRPC client of the trust that signs in with a principal's key. Used by the CLI and by
//! the end-to-end tests, so both speak to the server exactly as a user would.

use std::path::Path;
use std::time::Duration;

use datatrust_core::auth::{InvitationCode, login_message, redeem_message};
use datatrust_core::{NoteSigner, Origin, PublicKey};
use datatrust_proto::v1;
use datatrust_proto::v1::auth_service_client::AuthServiceClient;
use datatrust_proto::v1::collector_service_client::CollectorServiceClient;
use datatrust_proto::v1::consent_service_client::ConsentServiceClient;
use datatrust_proto::v1::ingest_service_client::IngestServiceClient;
use datatrust_proto::v1::ledger_service_client::LedgerServiceClient;
use datatrust_proto::v1::license_service_client::LicenseServiceClient;
use datatrust_proto::v1::member_data_service_client::MemberDataServiceClient;
use datatrust_proto::v1::member_service_client::MemberServiceClient;
use datatrust_proto::v1::principal_service_client::PrincipalServiceClient;
use datatrust_proto::v1::release_service_client::ReleaseServiceClient;
use datatrust_proto::v1::terms_service_client::TermsServiceClient;
use datatrust_proto::v1::training_service_client::TrainingServiceClient;
use datatrust_proto::v1::trust_service_client::TrustServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{server}: not a valid server address ({reason}); use e.g. http://127.0.0.1:50051")]
    BadAddress { server: String, reason: String },
    #[error(
        "cannot reach the trust at {server} ({reason}); is `datatrust serve` running there? \
         Set --server or DATATRUST_SERVER"
    )]
    Unreachable { server: String, reason: String },
    #[error("reading the CA certificate {path}: {reason}")]
    CaCertificate { path: String, reason: String },
    #[error("the server's origin {0:?} is not a valid origin")]
    BadOrigin(String),
    #[error(transparent)]
    Status(#[from] Status),
}

/// Opens a channel to `server` (`http://` or `https://`); `ca_certificate` pins a private CA.
pub async fn connect(server: &str, ca_certificate: Option<&Path>) -> Result<Channel, ClientError> {
    let bad_address = |reason: String| ClientError::BadAddress {
        server: server.to_owned(),
        reason,
    };
    let mut endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|error| bad_address(error.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_webpki_roots();
        if let Some(path) = ca_certificate {
            let pem = std::fs::read(path).map_err(|error| ClientError::CaCertificate {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|error| bad_address(error.to_string()))?;
    } else if !server.starts_with("http://") {
        return Err(bad_address("it must start with http:// or https://".into()));
    }
    endpoint
        .connect()
        .await
        .map_err(|error| ClientError::Unreachable {
            server: server.to_owned(),
            reason: std::error::Error::source(&error)
                .map(ToString::to_string)
                .unwrap_or_else(|| error.to_string()),
        })
}

/// Reads the trust's public identity (no sign-in needed).
pub async fn trust_info(channel: &Channel) -> Result<v1::GetTrustInfoResponse, ClientError> {
    Ok(TrustServiceClient::new(channel.clone())
        .get_trust_info(v1::GetTrustInfoRequest {})
        .await?
        .into_inner())
}

/// Adds the bearer token to every request.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub type Authenticated = InterceptedService<Channel, BearerToken>;

/// A signed-in principal.
#[derive(Clone)]
pub struct SignedIn {
    channel: Channel,
    bearer: BearerToken,
    pub principal: v1::Principal,
    pub token: String,
    pub origin: Origin,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        formatter
            .debug_struct("SignedIn")
            .field("principal", &self.principal)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Every item of a list RPC whose request holds only the page fields, following its pages
/// of up to 1,000 (`all_pages`).
macro_rules! every_page {
    ($client:expr, $method:ident, $request:ident, $items:ident) => {
        all_pages(|page_token| async move {
            let page = $client
                .$method(v1::$request {
                    page_size: 1000,
                    page_token,
                })
                .await?
                .into_inner();
            Ok((page.$items, page.next_page_token))
        })
        .await
    };
}

impl SignedIn {
    pub fn auth(&self) -> AuthServiceClient<Authenticated> {
        AuthServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn principals(&self) -> PrincipalServiceClient<Authenticated> {
        PrincipalServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn members(&self) -> MemberServiceClient<Authenticated> {
        MemberServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn collectors(&self) -> CollectorServiceClient<Authenticated> {
        CollectorServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn terms(&self) -> TermsServiceClient<Authenticated> {
        TermsServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn consents(&self) -> ConsentServiceClient<Authenticated> {
        ConsentServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn licenses(&self) -> LicenseServiceClient<Authenticated> {
        LicenseServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn training(&self) -> TrainingServiceClient<Authenticated> {
        TrainingServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// Every invitation (trustees), page by page.
    pub async fn all_invitations(&self) -> Result<Vec<v1::Invitation>, ClientError> {
        every_page!(
            self.principals(),
            list_invitations,
            ListInvitationsRequest,
            invitations
        )
    }

    /// Every training use the caller may see, page by page.
    pub async fn all_training_uses(&self) -> Result<Vec<v1::TrainingUse>, ClientError> {
        every_page!(
            self.training(),
            list_training_uses,
            ListTrainingUsesRequest,
            uses
        )
    }

    /// Every license the caller may see, page by page.
    pub async fn all_licenses(&self) -> Result<Vec<v1::License>, ClientError> {
        every_page!(
            self.licenses(),
            list_licenses,
            ListLicensesRequest,
            licenses
        )
    }

    /// Every license request the caller may see, page by page.
    pub async fn all_license_requests(&self) -> Result<Vec<v1::LicenseRequest>, ClientError> {
        every_page!(
            self.licenses(),
            list_license_requests,
            ListLicenseRequestsRequest,
            requests
        )
    }

    /// Every invoice the caller may see (of one licensee, for a trustee who names one),
    /// page by page, and that licensee's suspension if any.
    pub async fn all_invoices(
        &self,
        licensee: Option<&PublicKey>,
    ) -> Result<(Vec<v1::Invoice>, Option<v1::Suspension>), ClientError> {
        let licensee_public_key = licensee
            .map(|key| key.as_bytes().to_vec())
            .unwrap_or_default();
        let (mut invoices, mut suspension) = (Vec::new(), None);
        let mut page_token = String::new();
        loop {
            let page = self
                .ledger()
                .list_invoices(v1::ListInvoicesRequest {
                    licensee_public_key: licensee_public_key.clone(),
                    page_size: 1000,
                    page_token,
                })
                .await?
                .into_inner();
            invoices.extend(page.invoices);
            suspension = suspension.or(page.suspension);
            if page.next_page_token.is_empty() {
                return Ok((invoices, suspension));
            }
            page_token = page.next_page_token;
        }
    }

    /// The member's whole audit, page by page: every entry, and the commitment salt.
    pub async fn whole_audit(&self) -> Result<v1::GetMyAuditResponse, ClientError> {
        let mut whole = v1::GetMyAuditResponse::default();
        let mut page_token = String::new();
        loop {
            let page = self
                .member_data()
                .get_my_audit(v1::GetMyAuditRequest {
                    page_size: 100,
                    page_token,
                })
                .await?
                .into_inner();
            whole.entries.extend(page.entries);
            whole.key_changes.extend(page.key_changes);
            whole.commitment_salt = page.commitment_salt;
            if page.next_page_token.is_empty() {
                return Ok(whole);
            }
            page_token = page.next_page_token;
        }
    }

    /// The member's whole statement, page by page: every line, the payouts, the totals.
    pub async fn whole_statement(&self) -> Result<v1::GetMyStatementResponse, ClientError> {
        let mut whole = v1::GetMyStatementResponse::default();
        let mut page_token = String::new();
        loop {
            let page = self
                .ledger()
                .get_my_statement(v1::GetMyStatementRequest {
                    page_size: 200,
                    page_token,
                })
                .await?
                .into_inner();
            whole.lines.extend(page.lines);
            whole.payouts.extend(page.payouts);
            whole.totals = page.totals;
            whole.commitment_salt = page.commitment_salt;
            if page.next_page_token.is_empty() {
                whole
                    .lines
                    .sort_by_key(|line| line.charge.as_ref().map_or(0, |charge| charge.log_index));
                return Ok(whole);
            }
            page_token = page.next_page_token;
        }
    }

    /// The member's collectors, page by page.
    pub async fn all_my_collectors(&self) -> Result<Vec<v1::CollectorAuthorization>, ClientError> {
        every_page!(
            self.members(),
            list_my_collectors,
            ListMyCollectorsRequest,
            authorizations
        )
    }

    /// The members a collector uploads for, page by page.
    pub async fn all_my_members(&self) -> Result<Vec<v1::CollectorAuthorization>, ClientError> {
        every_page!(
            self.collectors(),
            list_my_members,
            ListMyMembersRequest,
            authorizations
        )
    }

    pub fn ingest(&self) -> IngestServiceClient<Authenticated> {
        IngestServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn member_data(&self) -> MemberDataServiceClient<Authenticated> {
        MemberDataServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn releases(&self) -> ReleaseServiceClient<Authenticated> {
        ReleaseServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn ledger(&self) -> LedgerServiceClient<Authenticated> {
        LedgerServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn trust(
        &self,
    ) -> datatrust_proto::v1::trust_service_client::TrustServiceClient<Authenticated> {
        datatrust_proto::v1::trust_service_client::TrustServiceClient::with_interceptor(
            self.channel.clone(),
            self.bearer.clone(),
        )
    }

    /// Asks for a release to be built in the background and polls until it is ready
    /// (`progress` sees each answer while building), so no request outlasts a large build.
    pub async fn build_release(
        &self,
        license_id: &str,
        poll: Duration,
        mut progress: impl FnMut(&v1::Release),
    ) -> Result<v1::Release, Status> {
        let mut release = self
            .releases()
            .create_release(v1::CreateReleaseRequest {
                license_id: license_id.to_owned(),
                in_background: true,
            })
            .await?
            .into_inner()
            .release
            .unwrap_or_default();
        while release.state == "building" {
            progress(&release);
            tokio::time::sleep(poll).await;
            release = self
                .releases()
                .get_release(v1::GetReleaseRequest {
                    release_id: release.id.clone(),
                })
                .await?
                .into_inner()
                .release
                .unwrap_or_default();
        }
        Ok(release)
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }
}

/// Signs in: asks the trust for its origin and a challenge, signs the login message, and
/// exchanges it for a bearer token.
pub async fn sign_in(channel: &Channel, signer: &NoteSigner) -> Result<SignedIn, ClientError> {
    let info = trust_info(channel).await?;
    let origin =
        Origin::parse(&info.origin).map_err(|_| ClientError::BadOrigin(info.origin.clone()))?;
    let mut auth = AuthServiceClient::new(channel.clone());
    let public_key = signer.public_key();
    let challenge = auth
        .create_challenge(v1::CreateChallengeRequest {
            public_key: public_key.as_bytes().to_vec(),
        })
        .await?
        .into_inner()
        .challenge;
    let signature = signer.sign(&login_message(&origin, &public_key, &challenge));
    let login = auth
        .login(v1::LoginRequest {
            public_key: public_key.as_bytes().to_vec(),
            challenge,
            signature: signature.to_vec(),
        })
        .await?
        .into_inner();
    let header = format!("Bearer {}", login.token)
        .parse()
        .map_err(|_| Status::internal("the server sent a token that is not ASCII"))?;
    Ok(SignedIn {
        channel: channel.clone(),
        bearer: BearerToken(header),
        principal: login.principal.unwrap_or_default(),
        token: login.token,
        origin,
    })
}

/// Redeems an invitation code with `signer`'s key.
pub async fn redeem_invitation(
    channel: &Channel,
    signer: &NoteSigner,
    code: &InvitationCode,
) -> Result<v1::Principal, ClientError> {
    let info = trust_info(channel).await?;
    let origin =
        Origin::parse(&info.origin).map_err(|_| ClientError::BadOrigin(info.origin.clone()))?;
    let public_key = signer.public_key();
    let signature = signer.sign(&redeem_message(&origin, &public_key, code));
    let response = AuthServiceClient::new(channel.clone())
        .redeem_invitation(v1::RedeemInvitationRequest {
            invitation_code: code.as_str().to_owned(),
            public_key: public_key.as_bytes().to_vec(),
            signature: signature.to_vec(),
        })
        .await?
        .into_inner();
    Ok(response.principal.unwrap_or_default())
}

/// Every item of a paged list: `fetch` takes a page token (empty for the first page) and
/// answers the page's items and the next token (empty after the last page).
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, ClientError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), ClientError>>,
{
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let (page, next) = fetch(page_token).await?;
        items.extend(page);
        if next.is_empty() {
            return Ok(items);
        }
        page_token = next;
    }
}

/// Every version of the terms, oldest first, page by page (no sign-in needed).
pub async fn all_terms(channel: &Channel) -> Result<Vec<v1::Terms>, ClientError> {
    let mut terms = all_pages(|page_token| async move {
        let page = TermsServiceClient::new(channel.clone())
            .list_terms(v1::ListTermsRequest {
                page_size: 10,
                page_token,
            })
            .await?
            .into_inner();
        Ok((page.terms, page.next_page_token))
    })
    .await?;
    terms.sort_by_key(|version| version.version);
    Ok(terms)
}

/// The licensees' names by license id, from the public transparency report: what a member
/// reads instead of keys. Empty if the trust does not say.
pub async fn licensee_names(channel: &Channel) -> std::collections::HashMap<String, String> {
    TrustServiceClient::new(channel.clone())
        .get_transparency_report(v1::GetTransparencyReportRequest {})
        .await
        .map(|response| {
            response
                .into_inner()
                .licenses
                .into_iter()
                .map(|license| (license.id, license.licensee_name))
                .collect()
        })
        .unwrap_or_default()
}

/// When a call failed at the transport, says what `--server` is pointed at if that can be
/// told: the trust's HTTP listener instead of its gRPC one, or TLS on one side only.
/// Probes the address once, with short timeouts; `None` when there is nothing to add.
pub fn diagnose_connection(server: &str, error: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    if error.contains("CaUsedAsEndEntity") {
        return Some(format!(
            "the server at {server} presents a CA certificate as its own, which TLS clients refuse: the server's --tls-cert must be a certificate issued by that CA (CA:FALSE, the server's name in subjectAltName); the CA's own certificate is what clients take as --ca-cert"
        ));
    }
    if error.contains("InvalidContentType") || error.contains("corrupt message") {
        return Some(format!(
            "the server at {server} does not speak TLS: use http:// instead of https://"
        ));
    }
    // What a gRPC client reports when the other end does not speak gRPC (it varies with
    // timing: the connection reset, the stream cancelled, the h2 handshake refused).
    let transport = [
        "transport error",
        "cannot reach",
        "h2 protocol error",
        "operation was canceled",
        "connection reset",
        "connection closed",
        "broken pipe",
    ];
    if !transport.iter().any(|symptom| error.contains(symptom)) {
        return None;
    }
    let authority = server
        .strip_prefix("http://")
        .or_else(|| server.strip_prefix("https://"))?
        .trim_end_matches('/');
    let address = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()?
        .next()?;
    let timeout = std::time::Duration::from_secs(2);
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: datatrust\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = [0u8; 16];
    let read = stream.read(&mut answer).ok()?;
    let answer = &answer[..read];
    if answer.starts_with(b"HTTP/1.") {
        Some(format!(
            "{server} answers plain HTTP: it is the trust's HTTP listener (health, log, portal), not its gRPC one; point --server at the address `datatrust serve` prints as \"grpc listening on\" (port 50051 by default)"
        ))
    } else if answer.first() == Some(&0x15) || answer.first() == Some(&0x16) {
        Some(format!(
            "the server at {server} speaks TLS: use https:// (and --ca-cert FILE for a private CA)"
        ))
    } else {
        None
    }
}

/// Ratifies `terms` in one go, as scripts and load generators need it: `proposer` proposes
/// them, every voter votes yes (so the outcome is settled and the vote may close before its
/// deadline), the proposer closes the vote, and every countersigner countersigns with its
/// own key. Returns the terms' SHA-256.
pub async fn ratify(
    proposer: &SignedIn,
    terms: &str,
    voters: &[(&NoteSigner, &SignedIn)],
    countersigners: &[(&NoteSigner, &SignedIn)],
) -> Result<String, ClientError> {
    use datatrust_core::governance::{ballot_message, countersign_message};
    let hash = proposer
        .terms()
        .propose_terms(v1::ProposeTermsRequest {
            document: terms.to_owned(),
        })
        .await?
        .into_inner()
        .terms
        .unwrap_or_default()
        .sha256;
    let origin = proposer.origin.to_string();
    for (key, session) in voters {
        session
            .terms()
            .cast_ballot(v1::CastBallotRequest {
                terms_sha256: hash.clone(),
                approve: true,
                signature: key.sign(&ballot_message(&origin, &hash, true)).to_vec(),
            })
            .await?;
    }
    proposer
        .terms()
        .close_vote(v1::CloseVoteRequest {
            terms_sha256: hash.clone(),
        })
        .await?;
    for (key, session) in countersigners {
        session
            .terms()
            .countersign_terms(v1::CountersignTermsRequest {
                terms_sha256: hash.clone(),
                signature: key.sign(&countersign_message(&origin, &hash)).to_vec(),
            })
            .await?;
    }
    Ok(hash)
}
