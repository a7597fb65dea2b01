from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TermsStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TERMS_STATUS_UNSPECIFIED: _ClassVar[TermsStatus]
    TERMS_STATUS_VOTING: _ClassVar[TermsStatus]
    TERMS_STATUS_AWAITING_COUNTERSIGNATURES: _ClassVar[TermsStatus]
    TERMS_STATUS_RATIFIED: _ClassVar[TermsStatus]
    TERMS_STATUS_SUPERSEDED: _ClassVar[TermsStatus]
    TERMS_STATUS_REJECTED: _ClassVar[TermsStatus]
TERMS_STATUS_UNSPECIFIED: TermsStatus
TERMS_STATUS_VOTING: TermsStatus
TERMS_STATUS_AWAITING_COUNTERSIGNATURES: TermsStatus
TERMS_STATUS_RATIFIED: TermsStatus
TERMS_STATUS_SUPERSEDED: TermsStatus
TERMS_STATUS_REJECTED: TermsStatus

class Terms(_message.Message):
    __slots__ = ("version", "sha256", "document", "status", "proposed_at", "votes_yes", "votes_no", "members_eligible", "countersigned_by", "ratified_at", "title", "text", "purposes", "prohibited_uses", "voting_closes_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_AT_FIELD_NUMBER: _ClassVar[int]
    VOTES_YES_FIELD_NUMBER: _ClassVar[int]
    VOTES_NO_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    COUNTERSIGNED_BY_FIELD_NUMBER: _ClassVar[int]
    RATIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    PROHIBITED_USES_FIELD_NUMBER: _ClassVar[int]
    VOTING_CLOSES_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    sha256: str
    document: str
    status: TermsStatus
    proposed_at: int
    votes_yes: int
    votes_no: int
    members_eligible: int
    countersigned_by: _containers.RepeatedScalarFieldContainer[bytes]
    ratified_at: int
    title: str
    text: str
    purposes: _containers.RepeatedScalarFieldContainer[str]
    prohibited_uses: _containers.RepeatedScalarFieldContainer[str]
    voting_closes_at: int
    def __init__(self, version: _Optional[int] = ..., sha256: _Optional[str] = ..., document: _Optional[str] = ..., status: _Optional[_Union[TermsStatus, str]] = ..., proposed_at: _Optional[int] = ..., votes_yes: _Optional[int] = ..., votes_no: _Optional[int] = ..., members_eligible: _Optional[int] = ..., countersigned_by: _Optional[_Iterable[bytes]] = ..., ratified_at: _Optional[int] = ..., title: _Optional[str] = ..., text: _Optional[str] = ..., purposes: _Optional[_Iterable[str]] = ..., prohibited_uses: _Optional[_Iterable[str]] = ..., voting_closes_at: _Optional[int] = ...) -> None: ...

class ProposeTermsRequest(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: str
    def __init__(self, document: _Optional[str] = ...) -> None: ...

class TermsResponse(_message.Message):
    __slots__ = ("terms", "log_index")
    TERMS_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    terms: Terms
    log_index: int
    def __init__(self, terms: _Optional[_Union[Terms, _Mapping]] = ..., log_index: _Optional[int] = ...) -> None: ...

class GetActiveTermsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTermsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTermsResponse(_message.Message):
    __slots__ = ("terms", "next_page_token")
    TERMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    terms: _containers.RepeatedCompositeFieldContainer[Terms]
    next_page_token: str
    def __init__(self, terms: _Optional[_Iterable[_Union[Terms, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CastBallotRequest(_message.Message):
    __slots__ = ("terms_sha256", "approve", "signature")
    TERMS_SHA256_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    terms_sha256: str
    approve: bool
    signature: bytes
    def __init__(self, terms_sha256: _Optional[str] = ..., approve: bool = ..., signature: _Optional[bytes] = ...) -> None: ...

class CastBallotResponse(_message.Message):
    __slots__ = ("approve", "cast_at")
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    CAST_AT_FIELD_NUMBER: _ClassVar[int]
    approve: bool
    cast_at: int
    def __init__(self, approve: bool = ..., cast_at: _Optional[int] = ...) -> None: ...

class GetMyBallotRequest(_message.Message):
    __slots__ = ("terms_sha256",)
    TERMS_SHA256_FIELD_NUMBER: _ClassVar[int]
    terms_sha256: str
    def __init__(self, terms_sha256: _Optional[str] = ...) -> None: ...

class GetMyBallotResponse(_message.Message):
    __slots__ = ("approve", "cast_at")
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    CAST_AT_FIELD_NUMBER: _ClassVar[int]
    approve: bool
    cast_at: int
    def __init__(self, approve: bool = ..., cast_at: _Optional[int] = ...) -> None: ...

class CloseVoteRequest(_message.Message):
    __slots__ = ("terms_sha256",)
    TERMS_SHA256_FIELD_NUMBER: _ClassVar[int]
    terms_sha256: str
    def __init__(self, terms_sha256: _Optional[str] = ...) -> None: ...

class CountersignTermsRequest(_message.Message):
    __slots__ = ("terms_sha256", "signature")
    TERMS_SHA256_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    terms_sha256: str
    signature: bytes
    def __init__(self, terms_sha256: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Consent(_message.Message):
    __slots__ = ("purpose", "granted", "changed_at")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    granted: bool
    changed_at: int
    def __init__(self, purpose: _Optional[str] = ..., granted: bool = ..., changed_at: _Optional[int] = ...) -> None: ...

class SetConsentRequest(_message.Message):
    __slots__ = ("purpose", "granted")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    granted: bool
    def __init__(self, purpose: _Optional[str] = ..., granted: bool = ...) -> None: ...

class SetConsentResponse(_message.Message):
    __slots__ = ("consent", "log_index")
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    consent: Consent
    log_index: int
    def __init__(self, consent: _Optional[_Union[Consent, _Mapping]] = ..., log_index: _Optional[int] = ...) -> None: ...

class ListMyConsentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMyConsentsResponse(_message.Message):
    __slots__ = ("consents",)
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    consents: _containers.RepeatedCompositeFieldContainer[Consent]
    def __init__(self, consents: _Optional[_Iterable[_Union[Consent, _Mapping]]] = ...) -> None: ...

class LicenseRequest(_message.Message):
    __slots__ = ("id", "licensee", "purpose", "categories", "data_from", "data_to", "model_family", "max_training_runs", "duration_days", "terms_sha256", "status", "license_id", "denial_reason", "approvals", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    DATA_FROM_FIELD_NUMBER: _ClassVar[int]
    DATA_TO_FIELD_NUMBER: _ClassVar[int]
    MODEL_FAMILY_FIELD_NUMBER: _ClassVar[int]
    MAX_TRAINING_RUNS_FIELD_NUMBER: _ClassVar[int]
    DURATION_DAYS_FIELD_NUMBER: _ClassVar[int]
    TERMS_SHA256_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LICENSE_ID_FIELD_NUMBER: _ClassVar[int]
    DENIAL_REASON_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    licensee: bytes
    purpose: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    data_from: int
    data_to: int
    model_family: str
    max_training_runs: int
    duration_days: int
    terms_sha256: str
    status: str
    license_id: str
    denial_reason: str
    approvals: int
    created_at: int
    def __init__(self, id: _Optional[str] = ..., licensee: _Optional[bytes] = ..., purpose: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., data_from: _Optional[int] = ..., data_to: _Optional[int] = ..., model_family: _Optional[str] = ..., max_training_runs: _Optional[int] = ..., duration_days: _Optional[int] = ..., terms_sha256: _Optional[str] = ..., status: _Optional[str] = ..., license_id: _Optional[str] = ..., denial_reason: _Optional[str] = ..., approvals: _Optional[int] = ..., created_at: _Optional[int] = ...) -> None: ...

class RequestLicenseRequest(_message.Message):
    __slots__ = ("purpose", "categories", "data_from", "data_to", "model_family", "max_training_runs", "duration_days")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    DATA_FROM_FIELD_NUMBER: _ClassVar[int]
    DATA_TO_FIELD_NUMBER: _ClassVar[int]
    MODEL_FAMILY_FIELD_NUMBER: _ClassVar[int]
    MAX_TRAINING_RUNS_FIELD_NUMBER: _ClassVar[int]
    DURATION_DAYS_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    data_from: int
    data_to: int
    model_family: str
    max_training_runs: int
    duration_days: int
    def __init__(self, purpose: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., data_from: _Optional[int] = ..., data_to: _Optional[int] = ..., model_family: _Optional[str] = ..., max_training_runs: _Optional[int] = ..., duration_days: _Optional[int] = ...) -> None: ...

class LicenseRequestResponse(_message.Message):
    __slots__ = ("request", "log_index", "approvals", "approvals_required", "pending")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    request: LicenseRequest
    log_index: int
    approvals: int
    approvals_required: int
    pending: bool
    def __init__(self, request: _Optional[_Union[LicenseRequest, _Mapping]] = ..., log_index: _Optional[int] = ..., approvals: _Optional[int] = ..., approvals_required: _Optional[int] = ..., pending: bool = ...) -> None: ...

class ListLicenseRequestsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLicenseRequestsResponse(_message.Message):
    __slots__ = ("requests", "next_page_token")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[LicenseRequest]
    next_page_token: str
    def __init__(self, requests: _Optional[_Iterable[_Union[LicenseRequest, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ApproveLicenseRequestRequest(_message.Message):
    __slots__ = ("request_id", "signature")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    signature: bytes
    def __init__(self, request_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ApproveLicenseRequestResponse(_message.Message):
    __slots__ = ("request", "license", "log_index")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    request: LicenseRequest
    license: License
    log_index: int
    def __init__(self, request: _Optional[_Union[LicenseRequest, _Mapping]] = ..., license: _Optional[_Union[License, _Mapping]] = ..., log_index: _Optional[int] = ...) -> None: ...

class License(_message.Message):
    __slots__ = ("id", "note", "licensee", "status", "revocation_reason", "issued_log_index", "revoked_log_index")
    ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_REASON_FIELD_NUMBER: _ClassVar[int]
    ISSUED_LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    REVOKED_LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    id: str
    note: str
    licensee: bytes
    status: str
    revocation_reason: str
    issued_log_index: int
    revoked_log_index: int
    def __init__(self, id: _Optional[str] = ..., note: _Optional[str] = ..., licensee: _Optional[bytes] = ..., status: _Optional[str] = ..., revocation_reason: _Optional[str] = ..., issued_log_index: _Optional[int] = ..., revoked_log_index: _Optional[int] = ...) -> None: ...

class GetLicenseRequest(_message.Message):
    __slots__ = ("license_id",)
    LICENSE_ID_FIELD_NUMBER: _ClassVar[int]
    license_id: str
    def __init__(self, license_id: _Optional[str] = ...) -> None: ...

class LicenseResponse(_message.Message):
    __slots__ = ("license", "log_index", "approvals", "approvals_required", "pending")
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    license: License
    log_index: int
    approvals: int
    approvals_required: int
    pending: bool
    def __init__(self, license: _Optional[_Union[License, _Mapping]] = ..., log_index: _Optional[int] = ..., approvals: _Optional[int] = ..., approvals_required: _Optional[int] = ..., pending: bool = ...) -> None: ...

class ListLicensesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLicensesResponse(_message.Message):
    __slots__ = ("licenses", "next_page_token")
    LICENSES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    licenses: _containers.RepeatedCompositeFieldContainer[License]
    next_page_token: str
    def __init__(self, licenses: _Optional[_Iterable[_Union[License, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeLicenseRequest(_message.Message):
    __slots__ = ("license_id", "reason", "signature")
    LICENSE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    license_id: str
    reason: str
    signature: bytes
    def __init__(self, license_id: _Optional[str] = ..., reason: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class DenyLicenseRequestRequest(_message.Message):
    __slots__ = ("request_id", "reason", "signature")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    reason: str
    signature: bytes
    def __init__(self, request_id: _Optional[str] = ..., reason: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class DeclareNoUseRequest(_message.Message):
    __slots__ = ("license_id", "until", "signature")
    LICENSE_ID_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    license_id: str
    until: int
    signature: bytes
    def __init__(self, license_id: _Optional[str] = ..., until: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class DeclareNoUseResponse(_message.Message):
    __slots__ = ("accounted_until", "log_index")
    ACCOUNTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    accounted_until: int
    log_index: int
    def __init__(self, accounted_until: _Optional[int] = ..., log_index: _Optional[int] = ...) -> None: ...

class ReportTrainingUseRequest(_message.Message):
    __slots__ = ("report", "signature")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    report: str
    signature: bytes
    def __init__(self, report: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class TrainingUse(_message.Message):
    __slots__ = ("license_id", "run_id", "report", "accepted", "refusal", "log_index", "reported_at")
    LICENSE_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    license_id: str
    run_id: str
    report: str
    accepted: bool
    refusal: str
    log_index: int
    reported_at: int
    def __init__(self, license_id: _Optional[str] = ..., run_id: _Optional[str] = ..., report: _Optional[str] = ..., accepted: bool = ..., refusal: _Optional[str] = ..., log_index: _Optional[int] = ..., reported_at: _Optional[int] = ...) -> None: ...

class ReportTrainingUseResponse(_message.Message):
    __slots__ = ("use", "receipt")
    USE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    use: TrainingUse
    receipt: str
    def __init__(self, use: _Optional[_Union[TrainingUse, _Mapping]] = ..., receipt: _Optional[str] = ...) -> None: ...

class ListTrainingUsesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTrainingUsesResponse(_message.Message):
    __slots__ = ("uses", "next_page_token")
    USES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    uses: _containers.RepeatedCompositeFieldContainer[TrainingUse]
    next_page_token: str
    def __init__(self, uses: _Optional[_Iterable[_Union[TrainingUse, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
