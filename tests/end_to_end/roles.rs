//! Every RPC, called by every kind of caller: what each may do and how each is refused.
//! A new RPC without rows here fails `every_rpc_has_a_row`.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use datatrust_core::{NoteSigner, Role};
use datatrust_proto::v1;
use datatrust_proto::v1::auth_service_client::AuthServiceClient;
use datatrust_proto::v1::collector_service_client::CollectorServiceClient;
use datatrust_proto::v1::consent_service_client::ConsentServiceClient;
use datatrust_proto::v1::ingest_service_client::IngestServiceClient;
use datatrust_proto::v1::ledger_service_client::LedgerServiceClient;
use datatrust_proto::v1::license_service_client::LicenseServiceClient;
use datatrust_proto::v1::log_service_client::LogServiceClient;
use datatrust_proto::v1::member_data_service_client::MemberDataServiceClient;
use datatrust_proto::v1::member_service_client::MemberServiceClient;
use datatrust_proto::v1::principal_service_client::PrincipalServiceClient;
use datatrust_proto::v1::release_service_client::ReleaseServiceClient;
use datatrust_proto::v1::terms_service_client::TermsServiceClient;
use datatrust_proto::v1::training_service_client::TrainingServiceClient;
use datatrust_proto::v1::trust_service_client::TrustServiceClient;
use datatrust_tests::{TestTrust, new_signer};
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Trustee,
    Member,
    Licensee,
    Collector,
}

const CALLERS: [Caller; 5] = [
    Caller::Anonymous,
    Caller::Trustee,
    Caller::Member,
    Caller::Licensee,
    Caller::Collector,
];

/// What a row's call can use: the channel, the caller's token, and other principals' keys.
struct Context {
    channel: Channel,
    token: Option<String>,
    caller_key: Option<NoteSigner>,
    trustee_key: Vec<u8>,
    collector_key: Vec<u8>,
    trust: TestTrustHandle,
}

/// What rows need of the trust to set up their own targets.
struct TestTrustHandle {
    trustee_token: String,
    channel: Channel,
}

impl Context {
    fn request<T>(&self, message: T) -> Request<T> {
        with_token(message, self.token.as_deref())
    }
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

type Outcome<'a> = Pin<Box<dyn Future<Output = Result<(), Status>> + Send + 'a>>;
type Call = for<'a> fn(&'a Context) -> Outcome<'a>;

/// One RPC and the code each caller gets (`Code::Ok` for success).
struct Row {
    rpc: &'static str,
    call: Call,
    anonymous: Code,
    trustee: Code,
    member: Code,
    licensee: Code,
    collector: Code,
}

impl Row {
    fn expected(&self, caller: Caller) -> Code {
        match caller {
            Caller::Anonymous => self.anonymous,
            Caller::Trustee => self.trustee,
            Caller::Member => self.member,
            Caller::Licensee => self.licensee,
            Caller::Collector => self.collector,
        }
    }
}

const OK: Code = Code::Ok;
const UNAUTHENTICATED: Code = Code::Unauthenticated;
const DENIED: Code = Code::PermissionDenied;
const NOT_FOUND: Code = Code::NotFound;

/// Only trustees may; anyone unauthenticated is asked to sign in.
fn trustee_only(rpc: &'static str, call: Call) -> Row {
    Row {
        rpc,
        call,
        anonymous: UNAUTHENTICATED,
        trustee: OK,
        member: DENIED,
        licensee: DENIED,
        collector: DENIED,
    }
}

/// A row from the codes for anonymous, trustee, member, licensee, collector, in that order.
fn row(rpc: &'static str, call: Call, codes: [Code; 5]) -> Row {
    let [anonymous, trustee, member, licensee, collector] = codes;
    Row {
        rpc,
        call,
        anonymous,
        trustee,
        member,
        licensee,
        collector,
    }
}

const INVALID: Code = Code::InvalidArgument;
const PRECONDITION: Code = Code::FailedPrecondition;
const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const EXAMPLE_TERMS: &str = include_str!("../../terms/example-agreement.toml");

/// Anyone may, signed in or not: the log is public.
fn public(rpc: &'static str, call: Call) -> Row {
    Row {
        rpc,
        call,
        anonymous: OK,
        trustee: OK,
        member: OK,
        licensee: OK,
        collector: OK,
    }
}

fn member_only(rpc: &'static str, call: Call) -> Row {
    Row {
        rpc,
        call,
        anonymous: UNAUTHENTICATED,
        trustee: DENIED,
        member: OK,
        licensee: DENIED,
        collector: DENIED,
    }
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            rpc: "TrustService/GetTrustInfo",
            call: |context| {
                Box::pin(async move {
                    TrustServiceClient::new(context.channel.clone())
                        .get_trust_info(context.request(v1::GetTrustInfoRequest {}))
                        .await
                        .map(drop)
                })
            },
            anonymous: OK,
            trustee: OK,
            member: OK,
            licensee: OK,
            collector: OK,
        },
        Row {
            rpc: "AuthService/CreateChallenge",
            call: |context| {
                Box::pin(async move {
                    AuthServiceClient::new(context.channel.clone())
                        .create_challenge(context.request(v1::CreateChallengeRequest {
                            public_key: new_signer().public_key().as_bytes().to_vec(),
                        }))
                        .await
                        .map(drop)
                })
            },
            anonymous: OK,
            trustee: OK,
            member: OK,
            licensee: OK,
            collector: OK,
        },
        Row {
            rpc: "AuthService/WhoAmI",
            call: |context| {
                Box::pin(async move {
                    AuthServiceClient::new(context.channel.clone())
                        .who_am_i(context.request(v1::WhoAmIRequest {}))
                        .await
                        .map(drop)
                })
            },
            anonymous: UNAUTHENTICATED,
            trustee: OK,
            member: OK,
            licensee: OK,
            collector: OK,
        },
        trustee_only("PrincipalService/RegisterPrincipal", |context| {
            Box::pin(async move {
                PrincipalServiceClient::new(context.channel.clone())
                    .register_principal(context.request(v1::RegisterPrincipalRequest {
                        public_key: new_signer().public_key().as_bytes().to_vec(),
                        role: v1::Role::Member.into(),
                        display_name: "someone".into(),
                        ..Default::default()
                    }))
                    .await
                    .map(drop)
            })
        }),
        trustee_only("PrincipalService/CreateInvitation", |context| {
            Box::pin(async move {
                PrincipalServiceClient::new(context.channel.clone())
                    .create_invitation(context.request(v1::CreateInvitationRequest {
                        display_name: "someone".into(),
                        valid_for_seconds: 0,
                    }))
                    .await
                    .map(drop)
            })
        }),
        Row {
            rpc: "PrincipalService/GetPrincipal",
            // Another principal's record: existence must not leak to non-trustees.
            call: |context| {
                Box::pin(async move {
                    PrincipalServiceClient::new(context.channel.clone())
                        .get_principal(context.request(v1::GetPrincipalRequest {
                            public_key: context.trustee_key.clone(),
                        }))
                        .await
                        .map(drop)
                })
            },
            anonymous: UNAUTHENTICATED,
            trustee: OK,
            member: NOT_FOUND,
            licensee: NOT_FOUND,
            collector: NOT_FOUND,
        },
        Row {
            rpc: "PrincipalService/GetPrincipal",
            // One's own record.
            call: |context| {
                Box::pin(async move {
                    let own_key = context
                        .caller_key
                        .as_ref()
                        .map(|key| key.public_key().as_bytes().to_vec())
                        .unwrap_or_else(|| context.trustee_key.clone());
                    PrincipalServiceClient::new(context.channel.clone())
                        .get_principal(context.request(v1::GetPrincipalRequest {
                            public_key: own_key,
                        }))
                        .await
                        .map(drop)
                })
            },
            anonymous: UNAUTHENTICATED,
            trustee: OK,
            member: OK,
            licensee: OK,
            collector: OK,
        },
        trustee_only("PrincipalService/ListPrincipals", |context| {
            Box::pin(async move {
                PrincipalServiceClient::new(context.channel.clone())
                    .list_principals(context.request(v1::ListPrincipalsRequest::default()))
                    .await
                    .map(drop)
            })
        }),
        trustee_only("PrincipalService/ListInvitations", |context| {
            Box::pin(async move {
                PrincipalServiceClient::new(context.channel.clone())
                    .list_invitations(context.request(v1::ListInvitationsRequest::default()))
                    .await
                    .map(drop)
            })
        }),
        trustee_only("PrincipalService/DeactivatePrincipal", |context| {
            Box::pin(async move {
                // A fresh target each time, registered by the trustee.
                let target = new_signer().public_key().as_bytes().to_vec();
                PrincipalServiceClient::new(context.trust.channel.clone())
                    .register_principal(with_token(
                        v1::RegisterPrincipalRequest {
                            public_key: target.clone(),
                            role: v1::Role::Licensee.into(),
                            display_name: "target".into(),
                            ..Default::default()
                        },
                        Some(&context.trust.trustee_token),
                    ))
                    .await
                    .expect("the trustee registers a target");
                PrincipalServiceClient::new(context.channel.clone())
                    .deactivate_principal(context.request(v1::DeactivatePrincipalRequest {
                        public_key: target,
                        ..Default::default()
                    }))
                    .await
                    .map(drop)
            })
        }),
        member_only("MemberService/AuthorizeCollector", |context| {
            Box::pin(async move {
                MemberServiceClient::new(context.channel.clone())
                    .authorize_collector(context.request(v1::AuthorizeCollectorRequest {
                        collector_public_key: context.collector_key.clone(),
                    }))
                    .await
                    .map(drop)
            })
        }),
        member_only("MemberService/RevokeCollector", |context| {
            Box::pin(async move {
                MemberServiceClient::new(context.channel.clone())
                    .revoke_collector(context.request(v1::RevokeCollectorRequest {
                        collector_public_key: context.collector_key.clone(),
                    }))
                    .await
                    .map(drop)
            })
        }),
        member_only("MemberService/ListMyCollectors", |context| {
            Box::pin(async move {
                MemberServiceClient::new(context.channel.clone())
                    .list_my_collectors(context.request(v1::ListMyCollectorsRequest::default()))
                    .await
                    .map(drop)
            })
        }),
        Row {
            rpc: "CollectorService/ListMyMembers",
            call: |context| {
                Box::pin(async move {
                    CollectorServiceClient::new(context.channel.clone())
                        .list_my_members(context.request(v1::ListMyMembersRequest::default()))
                        .await
                        .map(drop)
                })
            },
            anonymous: UNAUTHENTICATED,
            trustee: DENIED,
            member: DENIED,
            licensee: DENIED,
            collector: OK,
        },
        public("LogService/GetCheckpoint", |context| {
            Box::pin(async move {
                LogServiceClient::new(context.channel.clone())
                    .get_checkpoint(context.request(v1::GetCheckpointRequest {}))
                    .await
                    .map(drop)
            })
        }),
        public("LogService/GetInclusionProof", |context| {
            Box::pin(async move {
                LogServiceClient::new(context.channel.clone())
                    .get_inclusion_proof(context.request(v1::GetInclusionProofRequest {
                        leaf: Some(v1::get_inclusion_proof_request::Leaf::Index(0)),
                        tree_size: 0,
                    }))
                    .await
                    .map(drop)
            })
        }),
        public("LogService/GetConsistencyProof", |context| {
            Box::pin(async move {
                LogServiceClient::new(context.channel.clone())
                    .get_consistency_proof(context.request(v1::GetConsistencyProofRequest {
                        first_size: 1,
                        second_size: 0,
                    }))
                    .await
                    .map(drop)
            })
        }),
        public("LogService/GetEntries", |context| {
            Box::pin(async move {
                LogServiceClient::new(context.channel.clone())
                    .get_entries(context.request(v1::GetEntriesRequest { start: 0, end: 1 }))
                    .await
                    .map(drop)
            })
        }),
        public("LogService/GetReceipt", |context| {
            Box::pin(async move {
                LogServiceClient::new(context.channel.clone())
                    .get_receipt(context.request(v1::GetReceiptRequest { index: 0 }))
                    .await
                    .map(drop)
            })
        }),
        // The governance rows reach each handler with well-formed input, so the codes show
        // the role check: the role that may act gets past it (to a code about the dummy
        // input, named here), every other role is refused.
        row(
            "TermsService/ProposeTerms",
            |context| {
                Box::pin(async move {
                    TermsServiceClient::new(context.channel.clone())
                        .propose_terms(context.request(v1::ProposeTermsRequest {
                            document: EXAMPLE_TERMS.into(),
                        }))
                        .await
                        .map(drop)
                })
            },
            // The example needs two trustees to countersign; this trust has one.
            [UNAUTHENTICATED, INVALID, DENIED, DENIED, DENIED],
        ),
        row(
            "TermsService/GetActiveTerms",
            |context| {
                Box::pin(async move {
                    TermsServiceClient::new(context.channel.clone())
                        .get_active_terms(context.request(v1::GetActiveTermsRequest {}))
                        .await
                        .map(drop)
                })
            },
            [NOT_FOUND; 5],
        ),
        public("TermsService/ListTerms", |context| {
            Box::pin(async move {
                TermsServiceClient::new(context.channel.clone())
                    .list_terms(context.request(v1::ListTermsRequest::default()))
                    .await
                    .map(drop)
            })
        }),
        row(
            "TermsService/CastBallot",
            |context| {
                Box::pin(async move {
                    TermsServiceClient::new(context.channel.clone())
                        .cast_ballot(context.request(v1::CastBallotRequest {
                            terms_sha256: ZERO_HASH.into(),
                            approve: true,
                            signature: vec![0; 64],
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, DENIED, INVALID, DENIED, DENIED],
        ),
        member_only("TermsService/GetMyBallot", |context| {
            Box::pin(async move {
                TermsServiceClient::new(context.channel.clone())
                    .get_my_ballot(context.request(v1::GetMyBallotRequest {
                        terms_sha256: ZERO_HASH.into(),
                    }))
                    .await
                    .map(drop)
            })
        }),
        row(
            "TermsService/CloseVote",
            |context| {
                Box::pin(async move {
                    TermsServiceClient::new(context.channel.clone())
                        .close_vote(context.request(v1::CloseVoteRequest {
                            terms_sha256: ZERO_HASH.into(),
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, NOT_FOUND, DENIED, DENIED, DENIED],
        ),
        row(
            "TermsService/CountersignTerms",
            |context| {
                Box::pin(async move {
                    TermsServiceClient::new(context.channel.clone())
                        .countersign_terms(context.request(v1::CountersignTermsRequest {
                            terms_sha256: ZERO_HASH.into(),
                            signature: vec![0; 64],
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, INVALID, DENIED, DENIED, DENIED],
        ),
        row(
            "ConsentService/SetConsent",
            |context| {
                Box::pin(async move {
                    ConsentServiceClient::new(context.channel.clone())
                        .set_consent(context.request(v1::SetConsentRequest {
                            purpose: "computer-use-agent-training".into(),
                            granted: true,
                        }))
                        .await
                        .map(drop)
                })
            },
            // No terms are in force yet, so there is nothing to consent to.
            [UNAUTHENTICATED, DENIED, PRECONDITION, DENIED, DENIED],
        ),
        member_only("ConsentService/ListMyConsents", |context| {
            Box::pin(async move {
                ConsentServiceClient::new(context.channel.clone())
                    .list_my_consents(context.request(v1::ListMyConsentsRequest {}))
                    .await
                    .map(drop)
            })
        }),
        row(
            "LicenseService/RequestLicense",
            |context| {
                Box::pin(async move {
                    LicenseServiceClient::new(context.channel.clone())
                        .request_license(context.request(v1::RequestLicenseRequest {
                            purpose: "computer-use-agent-training".into(),
                            categories: vec!["pointer".into()],
                            data_from: 1,
                            data_to: 2,
                            model_family: "acme-agent".into(),
                            max_training_runs: 1,
                            duration_days: 1,
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, DENIED, DENIED, PRECONDITION, DENIED],
        ),
        row(
            "LicenseService/ListLicenseRequests",
            |context| {
                Box::pin(async move {
                    LicenseServiceClient::new(context.channel.clone())
                        .list_license_requests(
                            context.request(v1::ListLicenseRequestsRequest::default()),
                        )
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, OK, DENIED, OK, DENIED],
        ),
        row(
            "LicenseService/ApproveLicenseRequest",
            |context| {
                Box::pin(async move {
                    LicenseServiceClient::new(context.channel.clone())
                        .approve_license_request(context.request(
                            v1::ApproveLicenseRequestRequest {
                                request_id: "0000000000000000".into(),
                                signature: vec![0; 64],
                            },
                        ))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, NOT_FOUND, DENIED, DENIED, DENIED],
        ),
        row(
            "LicenseService/DenyLicenseRequest",
            |context| {
                Box::pin(async move {
                    LicenseServiceClient::new(context.channel.clone())
                        .deny_license_request(context.request(v1::DenyLicenseRequestRequest {
                            request_id: "0000000000000000".into(),
                            reason: "no".into(),
                            ..Default::default()
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, NOT_FOUND, DENIED, DENIED, DENIED],
        ),
        row(
            "LicenseService/GetLicense",
            |context| {
                Box::pin(async move {
                    LicenseServiceClient::new(context.channel.clone())
                        .get_license(context.request(v1::GetLicenseRequest {
                            license_id: "0".repeat(32),
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, NOT_FOUND, NOT_FOUND, NOT_FOUND, DENIED],
        ),
        row(
            "LicenseService/ListLicenses",
            |context| {
                Box::pin(async move {
                    LicenseServiceClient::new(context.channel.clone())
                        .list_licenses(context.request(v1::ListLicensesRequest::default()))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, OK, OK, OK, DENIED],
        ),
        row(
            "LicenseService/RevokeLicense",
            |context| {
                Box::pin(async move {
                    LicenseServiceClient::new(context.channel.clone())
                        .revoke_license(context.request(v1::RevokeLicenseRequest {
                            license_id: "0".repeat(32),
                            reason: "test".into(),
                            ..Default::default()
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, NOT_FOUND, DENIED, DENIED, DENIED],
        ),
        row(
            "TrainingService/ReportTrainingUse",
            |context| {
                Box::pin(async move {
                    TrainingServiceClient::new(context.channel.clone())
                        .report_training_use(context.request(v1::ReportTrainingUseRequest {
                            report: "datatrust training use v1\ntrust: trust.test\nlicense: x\nrun: r\nmodel: m\nmodel-version: 1\nmodel-family: f\npurpose: p\ndata: none\nstarted: 1\nended: 2\naccelerator-seconds: 3\n".into(),
                            signature: vec![0; 64],
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, DENIED, DENIED, INVALID, DENIED],
        ),
        row(
            "TrainingService/ListTrainingUses",
            |context| {
                Box::pin(async move {
                    TrainingServiceClient::new(context.channel.clone())
                        .list_training_uses(context.request(v1::ListTrainingUsesRequest::default()))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, OK, OK, OK, DENIED],
        ),
        row(
            "IngestService/Upload",
            |context| {
                Box::pin(async move {
                    // An empty batch: the collector gets past the role check to the field check.
                    let batch = v1::UploadRequest {
                        member_public_key: context.trustee_key.clone(),
                        device_id: "laptop".into(),
                        sequence: 1,
                        events: Vec::new(),
                    };
                    let request = context.request(tokio_stream::iter(vec![batch]));
                    let mut responses = IngestServiceClient::new(context.channel.clone())
                        .upload(request)
                        .await?
                        .into_inner();
                    match responses.message().await? {
                        Some(_) => Ok(()),
                        None => Err(tonic::Status::unknown("the stream ended without an answer")),
                    }
                })
            },
            [UNAUTHENTICATED, DENIED, DENIED, DENIED, INVALID],
        ),
        member_only("MemberDataService/GetMyDataSummary", |context| {
            Box::pin(async move {
                MemberDataServiceClient::new(context.channel.clone())
                    .get_my_data_summary(context.request(v1::GetMyDataSummaryRequest {}))
                    .await
                    .map(drop)
            })
        }),
        member_only("MemberDataService/ExportMyData", |context| {
            Box::pin(async move {
                let mut stream = MemberDataServiceClient::new(context.channel.clone())
                    .export_my_data(context.request(v1::ExportMyDataRequest {}))
                    .await?
                    .into_inner();
                while stream.message().await?.is_some() {}
                Ok(())
            })
        }),
        member_only("MemberDataService/EraseMyData", |context| {
            Box::pin(async move {
                MemberDataServiceClient::new(context.channel.clone())
                    .erase_my_data(context.request(v1::EraseMyDataRequest {
                        confirm: "erase all my data".into(),
                    }))
                    .await
                    .map(drop)
            })
        }),
        member_only("MemberDataService/GetMyAudit", |context| {
            Box::pin(async move {
                MemberDataServiceClient::new(context.channel.clone())
                    .get_my_audit(context.request(v1::GetMyAuditRequest::default()))
                    .await
                    .map(drop)
            })
        }),
        row(
            "LedgerService/ListInvoices",
            |context| {
                Box::pin(async move {
                    LedgerServiceClient::new(context.channel.clone())
                        .list_invoices(context.request(v1::ListInvoicesRequest::default()))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, OK, DENIED, OK, DENIED],
        ),
        row(
            "LedgerService/RecordPayment",
            |context| {
                Box::pin(async move {
                    LedgerServiceClient::new(context.channel.clone())
                        .record_payment(context.request(v1::RecordPaymentRequest {
                            reference: "bank-1".into(),
                            charge_id: "0".repeat(32),
                            currency: "EUR".into(),
                            amount: 1,
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, NOT_FOUND, DENIED, DENIED, DENIED],
        ),
        row(
            "LedgerService/RecordPayout",
            |context| {
                Box::pin(async move {
                    LedgerServiceClient::new(context.channel.clone())
                        .record_payout(context.request(v1::RecordPayoutRequest {
                            reference: "payout-1".into(),
                            member_public_key: context.trustee_key.clone(),
                            currency: "EUR".into(),
                            amount: 1,
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, NOT_FOUND, DENIED, DENIED, DENIED],
        ),
        row(
            "LedgerService/GetMyStatement",
            |context| {
                Box::pin(async move {
                    LedgerServiceClient::new(context.channel.clone())
                        .get_my_statement(context.request(v1::GetMyStatementRequest::default()))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, DENIED, OK, DENIED, DENIED],
        ),
        row(
            "LedgerService/GetLedger",
            |context| {
                Box::pin(async move {
                    LedgerServiceClient::new(context.channel.clone())
                        .get_ledger(context.request(v1::GetLedgerRequest {}))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, OK, DENIED, DENIED, DENIED],
        ),
        row(
            "LedgerService/EnforceDuties",
            |context| {
                Box::pin(async move {
                    LedgerServiceClient::new(context.channel.clone())
                        .enforce_duties(context.request(v1::EnforceDutiesRequest {}))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, OK, DENIED, DENIED, DENIED],
        ),
        row(
            "LedgerService/LiftSuspension",
            |context| {
                Box::pin(async move {
                    LedgerServiceClient::new(context.channel.clone())
                        .lift_suspension(context.request(v1::LiftSuspensionRequest {
                            licensee_public_key: context.trustee_key.clone(),
                            reason: "paid".into(),
                            ..Default::default()
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, PRECONDITION, DENIED, DENIED, DENIED],
        ),
        row(
            "TrainingService/DeclareNoUse",
            |context| {
                Box::pin(async move {
                    TrainingServiceClient::new(context.channel.clone())
                        .declare_no_use(context.request(v1::DeclareNoUseRequest {
                            license_id: "0".repeat(32),
                            until: 0,
                            signature: vec![0; 64],
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, DENIED, DENIED, INVALID, DENIED],
        ),
        row(
            "TrustService/GetTransparencyReport",
            |context| {
                Box::pin(async move {
                    TrustServiceClient::new(context.channel.clone())
                        .get_transparency_report(
                            context.request(v1::GetTransparencyReportRequest {}),
                        )
                        .await
                        .map(drop)
                })
            },
            [OK, OK, OK, OK, OK],
        ),
        row(
            // Every role may rotate its own key; signatures that do not verify stop here,
            // past the role check (a real rotation: tests/end_to_end/keys.rs).
            "AuthService/RotateKey",
            |context| {
                Box::pin(async move {
                    AuthServiceClient::new(context.channel.clone())
                        .rotate_key(context.request(v1::RotateKeyRequest {
                            new_public_key: new_signer().public_key().as_bytes().to_vec(),
                            old_signature: vec![0; 64],
                            new_signature: vec![0; 64],
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, INVALID, INVALID, INVALID, INVALID],
        ),
        trustee_only("PrincipalService/ListPendingApprovals", |context| {
            Box::pin(async move {
                PrincipalServiceClient::new(context.channel.clone())
                    .list_pending_approvals(
                        context.request(v1::ListPendingApprovalsRequest::default()),
                    )
                    .await
                    .map(drop)
            })
        }),
        row(
            // Trustees only; a signature that does not verify stops the trustee after the
            // role check (a real recovery: tests/end_to_end/keys.rs).
            "PrincipalService/ApproveRecovery",
            |context| {
                Box::pin(async move {
                    PrincipalServiceClient::new(context.channel.clone())
                        .approve_recovery(context.request(v1::ApproveRecoveryRequest {
                            member_public_key: new_signer().public_key().as_bytes().to_vec(),
                            new_public_key: new_signer().public_key().as_bytes().to_vec(),
                            signature: vec![0; 64],
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, INVALID, DENIED, DENIED, DENIED],
        ),
        row(
            // A real rotation for the trustee (licenses approved afterwards are signed by
            // the new key); nobody else may.
            "TrustService/RotateLicenseKey",
            |context| {
                Box::pin(async move {
                    TrustServiceClient::new(context.channel.clone())
                        .rotate_license_key(context.request(v1::RotateLicenseKeyRequest {}))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, OK, DENIED, DENIED, DENIED],
        ),
        row(
            // This trust has no backup directory: the trustee gets past the role check to
            // the precondition (the backup itself: tests/end_to_end/backup.rs).
            "TrustService/Backup",
            |context| {
                Box::pin(async move {
                    TrustServiceClient::new(context.channel.clone())
                        .backup(context.request(v1::BackupRequest {}))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, PRECONDITION, DENIED, DENIED, DENIED],
        ),
        row(
            "ReleaseService/CreateRelease",
            |context| {
                Box::pin(async move {
                    ReleaseServiceClient::new(context.channel.clone())
                        .create_release(context.request(v1::CreateReleaseRequest {
                            license_id: "0".repeat(32),
                            in_background: false,
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, DENIED, DENIED, NOT_FOUND, DENIED],
        ),
        row(
            "ReleaseService/GetRelease",
            |context| {
                Box::pin(async move {
                    ReleaseServiceClient::new(context.channel.clone())
                        .get_release(context.request(v1::GetReleaseRequest {
                            release_id: "0".repeat(16),
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, NOT_FOUND, DENIED, NOT_FOUND, DENIED],
        ),
        row(
            "ReleaseService/StreamRelease",
            |context| {
                Box::pin(async move {
                    ReleaseServiceClient::new(context.channel.clone())
                        .stream_release(context.request(v1::StreamReleaseRequest {
                            release_id: "0".repeat(16),
                            from: 0,
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, NOT_FOUND, DENIED, NOT_FOUND, DENIED],
        ),
        row(
            "IngestService/UploadScreenshot",
            |context| {
                Box::pin(async move {
                    // An empty image: the collector gets past the role check to the field check.
                    IngestServiceClient::new(context.channel.clone())
                        .upload_screenshot(context.request(v1::UploadScreenshotRequest {
                            member_public_key: context.trustee_key.clone(),
                            image: Vec::new(),
                        }))
                        .await
                        .map(drop)
                })
            },
            [UNAUTHENTICATED, DENIED, DENIED, DENIED, INVALID],
        ),
    ]
}

/// RPCs that take no bearer token by design; `bad_input` and `bootstrap` cover them.
const SIGN_IN_RPCS: [&str; 2] = ["AuthService/Login", "AuthService/RedeemInvitation"];

#[tokio::test]
async fn every_role_can_do_what_it_should_and_is_refused_what_it_should_not() {
    let trust = TestTrust::start().await;
    let trustee = trust.trustee_session().await;
    let (member_key, member) = trust.new_principal(Role::Member, "Ada").await;
    let (licensee_key, licensee) = trust.new_principal(Role::Licensee, "Acme").await;
    let (collector_key, collector) = trust.new_principal(Role::Collector, "laptop").await;
    let sessions = [
        (Caller::Anonymous, None, None),
        (
            Caller::Trustee,
            Some(trustee.token.clone()),
            Some(trust.trustee.clone_signer()),
        ),
        (Caller::Member, Some(member.token.clone()), Some(member_key)),
        (
            Caller::Licensee,
            Some(licensee.token.clone()),
            Some(licensee_key),
        ),
        (
            Caller::Collector,
            Some(collector.token.clone()),
            Some(collector_key.clone_signer()),
        ),
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for row in rows() {
        for (caller, token, caller_key) in &sessions {
            let context = Context {
                channel: trust.channel.clone(),
                token: token.clone(),
                caller_key: caller_key.as_ref().map(NoteSignerClone::clone_signer),
                trustee_key: trust.trustee.public_key().as_bytes().to_vec(),
                collector_key: collector_key.public_key().as_bytes().to_vec(),
                trust: TestTrustHandle {
                    trustee_token: trustee.token.clone(),
                    channel: trust.channel.clone(),
                },
            };
            let got = match (row.call)(&context).await {
                Ok(()) => Code::Ok,
                Err(status) => status.code(),
            };
            checked += 1;
            if got != row.expected(*caller) {
                failures.push(format!(
                    "{} as {caller:?}: expected {:?}, got {got:?}",
                    row.rpc,
                    row.expected(*caller)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, rows().len() * CALLERS.len());
}

#[test]
fn every_rpc_has_a_row() {
    let descriptors =
        prost_types::FileDescriptorSet::decode(datatrust_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut declared = BTreeSet::new();
    for file in &descriptors.file {
        for service in &file.service {
            for method in &service.method {
                declared.insert(format!("{}/{}", service.name(), method.name()));
            }
        }
    }
    let mut covered: BTreeSet<String> = rows().iter().map(|row| row.rpc.to_owned()).collect();
    covered.extend(SIGN_IN_RPCS.iter().map(|rpc| (*rpc).to_owned()));
    assert_eq!(
        declared, covered,
        "every RPC in proto/ needs a row in the role table"
    );
}

/// `NoteSigner` is deliberately not `Clone` (it holds a private key); tests copy it explicitly.
trait NoteSignerClone {
    fn clone_signer(&self) -> NoteSigner;
}

impl NoteSignerClone for NoteSigner {
    fn clone_signer(&self) -> NoteSigner {
        NoteSigner::parse(&self.to_private_text()).unwrap()
    }
}
