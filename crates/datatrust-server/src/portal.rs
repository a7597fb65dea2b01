//! The member portal over HTTP: the static page (`portal/`, compiled into the binary, so it
//! needs nothing from outside the trust) and a JSON transport to the same gRPC services the
//! CLI uses. `POST /api/<Service>/<Method>` takes the request message as JSON (proto field
//! names, bytes as arrays of numbers) with the bearer token in `Authorization`, calls the
//! service, and answers the response message as JSON, or `{"code", "message"}` with an HTTP
//! status. Only the methods a member or the public needs are exposed; the core checks roles
//! on every call, exactly as over gRPC.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use datatrust_proto::v1;
use datatrust_proto::v1::auth_service_server::AuthService as _;
use datatrust_proto::v1::consent_service_server::ConsentService as _;
use datatrust_proto::v1::ledger_service_server::LedgerService as _;
use datatrust_proto::v1::license_service_server::LicenseService as _;
use datatrust_proto::v1::member_data_service_server::MemberDataService as _;
use datatrust_proto::v1::terms_service_server::TermsService as _;
use datatrust_proto::v1::training_service_server::TrainingService as _;
use datatrust_proto::v1::trust_service_server::TrustService as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_stream::StreamExt as _;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::TrustState;
use crate::services::{
    AuthApi, ConsentApi, LedgerApi, LicenseApi, MemberDataApi, TermsApi, TrainingApi, TrustApi,
};

const INDEX: &str = include_str!("../portal/index.html");
const APP: &str = include_str!("../portal/app.js");
const VERIFY: &str = include_str!("../portal/verify.js");
const STYLE: &str = include_str!("../portal/style.css");
/// Largest JSON request body.
const MAXIMUM_BODY_BYTES: usize = 64 * 1024;
/// Everything the page loads comes from the trust itself.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; \
     base-uri 'none'";

/// What the JSON transport needs: the trust, and the admission pools gRPC uses.
#[derive(Clone)]
struct PortalState {
    trust: TrustState,
    admission: crate::admission::AdmissionLayer,
}

pub fn router(state: TrustState, admission: crate::admission::AdmissionLayer) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/transparency",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/portal/app.js",
            get(|| async { page(APP, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/portal/verify.js",
            get(|| async { page(VERIFY, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/portal/style.css",
            get(|| async { page(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/api/{service}/{method}", post(call))
        .with_state(PortalState {
            trust: state,
            admission,
        })
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn from_status(status: &Status) -> Response {
    let http = match status.code() {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let code = format!("{:?}", status.code());
    error(http, &code, status.message())
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal",
            "the answer could not be encoded",
        ),
    }
}

/// The JSON body as a request message, with the caller's bearer token carried over.
fn request<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<tonic::Request<T>, Box<Response>> {
    if body.len() > MAXIMUM_BODY_BYTES {
        return Err(Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "InvalidArgument",
            "body: at most 64 KiB",
        )));
    }
    let message: T = if body.is_empty() {
        serde_json::from_str("{}")
    } else {
        serde_json::from_slice(body)
    }
    .map_err(|problem| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            &format!("body: not the request message as JSON ({problem})"),
        ))
    })?;
    let mut request = tonic::Request::new(message);
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .ok()
            .and_then(|text| MetadataValue::try_from(text).ok())
            .ok_or_else(|| {
                Box::new(error(
                    StatusCode::UNAUTHORIZED,
                    "Unauthenticated",
                    "authorization: not a valid header value",
                ))
            })?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

macro_rules! unary {
    ($api:expr, $method:ident, $headers:expr, $body:expr) => {{
        match request(&$headers, &$body) {
            Ok(request) => match $api.$method(request).await {
                Ok(response) => json(response.get_ref()),
                Err(status) => from_status(&status),
            },
            Err(response) => *response,
        }
    }};
}

async fn call(
    State(portal): State<PortalState>,
    Path((service, method)): Path<(String, String)>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // JSON only: a cross-site form or a "simple" cross-origin request cannot send this
    // content type without a CORS preflight, which this server never grants.
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "InvalidArgument",
            "content-type: must be application/json",
        );
    }
    let source = crate::http_server::source(&extensions).map(|address| address.ip());
    let path = format!("/datatrust.v1.{service}/{method}");
    let _ticket = match portal.admission.admit(&path, &headers, source) {
        Ok(ticket) => ticket,
        Err(status) => return from_status(&status),
    };
    let state = portal.trust.clone();
    match (service.as_str(), method.as_str()) {
        ("TrustService", "GetTrustInfo") => {
            unary!(TrustApi { state }, get_trust_info, headers, body)
        }
        ("TrustService", "GetTransparencyReport") => {
            unary!(TrustApi { state }, get_transparency_report, headers, body)
        }
        ("AuthService", "CreateChallenge") => {
            unary!(AuthApi { state }, create_challenge, headers, body)
        }
        ("AuthService", "Login") => unary!(AuthApi { state }, login, headers, body),
        ("AuthService", "RedeemInvitation") => {
            unary!(AuthApi { state }, redeem_invitation, headers, body)
        }
        ("AuthService", "WhoAmI") => unary!(AuthApi { state }, who_am_i, headers, body),
        ("MemberDataService", "GetMyDataSummary") => {
            unary!(MemberDataApi { state }, get_my_data_summary, headers, body)
        }
        ("MemberDataService", "GetMyAudit") => {
            unary!(MemberDataApi { state }, get_my_audit, headers, body)
        }
        ("MemberDataService", "EraseMyData") => {
            unary!(MemberDataApi { state }, erase_my_data, headers, body)
        }
        ("MemberDataService", "ExportMyData") => export(state, headers, body).await,
        ("ConsentService", "SetConsent") => {
            unary!(ConsentApi { state }, set_consent, headers, body)
        }
        ("ConsentService", "ListMyConsents") => {
            unary!(ConsentApi { state }, list_my_consents, headers, body)
        }
        ("TermsService", "GetActiveTerms") => {
            unary!(TermsApi { state }, get_active_terms, headers, body)
        }
        ("TermsService", "ListTerms") => unary!(TermsApi { state }, list_terms, headers, body),
        ("TermsService", "CastBallot") => {
            unary!(TermsApi { state }, cast_ballot, headers, body)
        }
        ("TermsService", "GetMyBallot") => {
            unary!(TermsApi { state }, get_my_ballot, headers, body)
        }
        ("LicenseService", "ListLicenses") => {
            unary!(LicenseApi { state }, list_licenses, headers, body)
        }
        ("TrainingService", "ListTrainingUses") => {
            unary!(TrainingApi { state }, list_training_uses, headers, body)
        }
        ("LedgerService", "GetMyStatement") => {
            unary!(LedgerApi { state }, get_my_statement, headers, body)
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "Unimplemented",
            &format!("{service}/{method} is not offered over HTTP; use gRPC"),
        ),
    }
}

/// The export, concatenated: a JSON Lines file to save.
async fn export(state: TrustState, headers: HeaderMap, body: Bytes) -> Response {
    let request = match request::<v1::ExportMyDataRequest>(&headers, &body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let pieces = match (MemberDataApi { state }).export_my_data(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return from_status(&status),
    };
    // Streamed as it is read: the response's memory does not grow with the export. A
    // failure part-way ends the body early (the status line has gone out), so the browser
    // reports a failed download rather than saving a short file as complete.
    let text = axum::body::Body::from_stream(pieces.map(|piece| {
        piece
            .map(|piece| Bytes::from(piece.json_lines))
            .map_err(|status| std::io::Error::other(status.message().to_owned()))
    }));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"my-datatrust-data.jsonl\""),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        text,
    )
        .into_response()
}
