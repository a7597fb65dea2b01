from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_TRUSTEE: _ClassVar[Role]
    ROLE_MEMBER: _ClassVar[Role]
    ROLE_LICENSEE: _ClassVar[Role]
    ROLE_COLLECTOR: _ClassVar[Role]

class PrincipalStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRINCIPAL_STATUS_UNSPECIFIED: _ClassVar[PrincipalStatus]
    PRINCIPAL_STATUS_ACTIVE: _ClassVar[PrincipalStatus]
    PRINCIPAL_STATUS_DEACTIVATED: _ClassVar[PrincipalStatus]
ROLE_UNSPECIFIED: Role
ROLE_TRUSTEE: Role
ROLE_MEMBER: Role
ROLE_LICENSEE: Role
ROLE_COLLECTOR: Role
PRINCIPAL_STATUS_UNSPECIFIED: PrincipalStatus
PRINCIPAL_STATUS_ACTIVE: PrincipalStatus
PRINCIPAL_STATUS_DEACTIVATED: PrincipalStatus

class Principal(_message.Message):
    __slots__ = ("public_key", "role", "display_name", "created_at", "status", "log_subject", "signing_key")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOG_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    role: Role
    display_name: str
    created_at: int
    status: PrincipalStatus
    log_subject: str
    signing_key: bytes
    def __init__(self, public_key: _Optional[bytes] = ..., role: _Optional[_Union[Role, str]] = ..., display_name: _Optional[str] = ..., created_at: _Optional[int] = ..., status: _Optional[_Union[PrincipalStatus, str]] = ..., log_subject: _Optional[str] = ..., signing_key: _Optional[bytes] = ...) -> None: ...

class RotateLicenseKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateLicenseKeyResponse(_message.Message):
    __slots__ = ("license_key",)
    LICENSE_KEY_FIELD_NUMBER: _ClassVar[int]
    license_key: LicenseKey
    def __init__(self, license_key: _Optional[_Union[LicenseKey, _Mapping]] = ...) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackupResponse(_message.Message):
    __slots__ = ("data_path", "keys_path", "checkpoint", "log_size")
    DATA_PATH_FIELD_NUMBER: _ClassVar[int]
    KEYS_PATH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    data_path: str
    keys_path: str
    checkpoint: str
    log_size: int
    def __init__(self, data_path: _Optional[str] = ..., keys_path: _Optional[str] = ..., checkpoint: _Optional[str] = ..., log_size: _Optional[int] = ...) -> None: ...

class GetTransparencyReportRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PublicLicense(_message.Message):
    __slots__ = ("id", "licensee", "licensee_name", "purpose", "categories", "model_family", "not_before", "expires", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_NAME_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FAMILY_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    licensee: bytes
    licensee_name: str
    purpose: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    model_family: str
    not_before: int
    expires: int
    status: str
    def __init__(self, id: _Optional[str] = ..., licensee: _Optional[bytes] = ..., licensee_name: _Optional[str] = ..., purpose: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., model_family: _Optional[str] = ..., not_before: _Optional[int] = ..., expires: _Optional[int] = ..., status: _Optional[str] = ...) -> None: ...

class MonthCount(_message.Message):
    __slots__ = ("month", "count")
    MONTH_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    month: str
    count: int
    def __init__(self, month: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class PublicMoney(_message.Message):
    __slots__ = ("currency", "charged", "members_earned", "paid_to_members")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_EARNED_FIELD_NUMBER: _ClassVar[int]
    PAID_TO_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    currency: str
    charged: int
    members_earned: int
    paid_to_members: int
    def __init__(self, currency: _Optional[str] = ..., charged: _Optional[int] = ..., members_earned: _Optional[int] = ..., paid_to_members: _Optional[int] = ...) -> None: ...

class GetTransparencyReportResponse(_message.Message):
    __slots__ = ("terms_title", "terms_sha256", "terms_version", "terms_ratified_at", "licenses", "training_uses_per_month", "money", "checkpoint", "log_size")
    TERMS_TITLE_FIELD_NUMBER: _ClassVar[int]
    TERMS_SHA256_FIELD_NUMBER: _ClassVar[int]
    TERMS_VERSION_FIELD_NUMBER: _ClassVar[int]
    TERMS_RATIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    LICENSES_FIELD_NUMBER: _ClassVar[int]
    TRAINING_USES_PER_MONTH_FIELD_NUMBER: _ClassVar[int]
    MONEY_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    terms_title: str
    terms_sha256: str
    terms_version: int
    terms_ratified_at: int
    licenses: _containers.RepeatedCompositeFieldContainer[PublicLicense]
    training_uses_per_month: _containers.RepeatedCompositeFieldContainer[MonthCount]
    money: _containers.RepeatedCompositeFieldContainer[PublicMoney]
    checkpoint: str
    log_size: int
    def __init__(self, terms_title: _Optional[str] = ..., terms_sha256: _Optional[str] = ..., terms_version: _Optional[int] = ..., terms_ratified_at: _Optional[int] = ..., licenses: _Optional[_Iterable[_Union[PublicLicense, _Mapping]]] = ..., training_uses_per_month: _Optional[_Iterable[_Union[MonthCount, _Mapping]]] = ..., money: _Optional[_Iterable[_Union[PublicMoney, _Mapping]]] = ..., checkpoint: _Optional[str] = ..., log_size: _Optional[int] = ...) -> None: ...

class GetTrustInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTrustInfoResponse(_message.Message):
    __slots__ = ("origin", "log_vkey", "license_vkey", "server_version", "log_url", "license_keys")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    LOG_VKEY_FIELD_NUMBER: _ClassVar[int]
    LICENSE_VKEY_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOG_URL_FIELD_NUMBER: _ClassVar[int]
    LICENSE_KEYS_FIELD_NUMBER: _ClassVar[int]
    origin: str
    log_vkey: str
    license_vkey: str
    server_version: str
    log_url: str
    license_keys: _containers.RepeatedCompositeFieldContainer[LicenseKey]
    def __init__(self, origin: _Optional[str] = ..., log_vkey: _Optional[str] = ..., license_vkey: _Optional[str] = ..., server_version: _Optional[str] = ..., log_url: _Optional[str] = ..., license_keys: _Optional[_Iterable[_Union[LicenseKey, _Mapping]]] = ...) -> None: ...

class LicenseKey(_message.Message):
    __slots__ = ("generation", "vkey", "valid_from", "valid_until", "log_index")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    VKEY_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    generation: int
    vkey: str
    valid_from: int
    valid_until: int
    log_index: int
    def __init__(self, generation: _Optional[int] = ..., vkey: _Optional[str] = ..., valid_from: _Optional[int] = ..., valid_until: _Optional[int] = ..., log_index: _Optional[int] = ...) -> None: ...

class RotateKeyRequest(_message.Message):
    __slots__ = ("new_public_key", "old_signature", "new_signature")
    NEW_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    OLD_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    new_public_key: bytes
    old_signature: bytes
    new_signature: bytes
    def __init__(self, new_public_key: _Optional[bytes] = ..., old_signature: _Optional[bytes] = ..., new_signature: _Optional[bytes] = ...) -> None: ...

class RotateKeyResponse(_message.Message):
    __slots__ = ("principal", "log_index")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    log_index: int
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., log_index: _Optional[int] = ...) -> None: ...

class CreateChallengeRequest(_message.Message):
    __slots__ = ("public_key",)
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    def __init__(self, public_key: _Optional[bytes] = ...) -> None: ...

class CreateChallengeResponse(_message.Message):
    __slots__ = ("challenge", "expires_at")
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    challenge: bytes
    expires_at: int
    def __init__(self, challenge: _Optional[bytes] = ..., expires_at: _Optional[int] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("public_key", "challenge", "signature")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    challenge: bytes
    signature: bytes
    def __init__(self, public_key: _Optional[bytes] = ..., challenge: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("token", "expires_at", "principal")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: int
    principal: Principal
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[int] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ...) -> None: ...

class RedeemInvitationRequest(_message.Message):
    __slots__ = ("invitation_code", "public_key", "signature")
    INVITATION_CODE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    invitation_code: str
    public_key: bytes
    signature: bytes
    def __init__(self, invitation_code: _Optional[str] = ..., public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class RedeemInvitationResponse(_message.Message):
    __slots__ = ("principal", "log_index")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    log_index: int
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., log_index: _Optional[int] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("principal", "token_expires_at")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    token_expires_at: int
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., token_expires_at: _Optional[int] = ...) -> None: ...

class ListPendingApprovalsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class PendingApproval(_message.Message):
    __slots__ = ("kind", "subject", "detail", "approved_by", "first_approved_at")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    FIRST_APPROVED_AT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    subject: str
    detail: str
    approved_by: _containers.RepeatedScalarFieldContainer[bytes]
    first_approved_at: int
    def __init__(self, kind: _Optional[str] = ..., subject: _Optional[str] = ..., detail: _Optional[str] = ..., approved_by: _Optional[_Iterable[bytes]] = ..., first_approved_at: _Optional[int] = ...) -> None: ...

class ListPendingApprovalsResponse(_message.Message):
    __slots__ = ("pending", "required", "next_page_token")
    PENDING_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    pending: _containers.RepeatedCompositeFieldContainer[PendingApproval]
    required: int
    next_page_token: str
    def __init__(self, pending: _Optional[_Iterable[_Union[PendingApproval, _Mapping]]] = ..., required: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ApproveRecoveryRequest(_message.Message):
    __slots__ = ("member_public_key", "new_public_key", "signature")
    MEMBER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NEW_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    member_public_key: bytes
    new_public_key: bytes
    signature: bytes
    def __init__(self, member_public_key: _Optional[bytes] = ..., new_public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ApproveRecoveryResponse(_message.Message):
    __slots__ = ("approvals", "required", "recovered", "log_index")
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    approvals: int
    required: int
    recovered: bool
    log_index: int
    def __init__(self, approvals: _Optional[int] = ..., required: _Optional[int] = ..., recovered: bool = ..., log_index: _Optional[int] = ...) -> None: ...

class RegisterPrincipalRequest(_message.Message):
    __slots__ = ("public_key", "role", "display_name", "signature")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    role: Role
    display_name: str
    signature: bytes
    def __init__(self, public_key: _Optional[bytes] = ..., role: _Optional[_Union[Role, str]] = ..., display_name: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class RegisterPrincipalResponse(_message.Message):
    __slots__ = ("principal", "log_index", "approvals", "approvals_required", "pending")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    log_index: int
    approvals: int
    approvals_required: int
    pending: bool
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., log_index: _Optional[int] = ..., approvals: _Optional[int] = ..., approvals_required: _Optional[int] = ..., pending: bool = ...) -> None: ...

class CreateInvitationRequest(_message.Message):
    __slots__ = ("display_name", "valid_for_seconds")
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    VALID_FOR_SECONDS_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    valid_for_seconds: int
    def __init__(self, display_name: _Optional[str] = ..., valid_for_seconds: _Optional[int] = ...) -> None: ...

class CreateInvitationResponse(_message.Message):
    __slots__ = ("invitation_code", "expires_at")
    INVITATION_CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    invitation_code: str
    expires_at: int
    def __init__(self, invitation_code: _Optional[str] = ..., expires_at: _Optional[int] = ...) -> None: ...

class ListInvitationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Invitation(_message.Message):
    __slots__ = ("id", "display_name", "created_by", "created_at", "expires_at", "status", "redeemed_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    created_by: bytes
    created_at: int
    expires_at: int
    status: str
    redeemed_by: bytes
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., created_by: _Optional[bytes] = ..., created_at: _Optional[int] = ..., expires_at: _Optional[int] = ..., status: _Optional[str] = ..., redeemed_by: _Optional[bytes] = ...) -> None: ...

class ListInvitationsResponse(_message.Message):
    __slots__ = ("invitations", "next_page_token")
    INVITATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    invitations: _containers.RepeatedCompositeFieldContainer[Invitation]
    next_page_token: str
    def __init__(self, invitations: _Optional[_Iterable[_Union[Invitation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetPrincipalRequest(_message.Message):
    __slots__ = ("public_key",)
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    def __init__(self, public_key: _Optional[bytes] = ...) -> None: ...

class GetPrincipalResponse(_message.Message):
    __slots__ = ("principal",)
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ...) -> None: ...

class ListPrincipalsRequest(_message.Message):
    __slots__ = ("role", "page_size", "page_token")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    role: Role
    page_size: int
    page_token: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPrincipalsResponse(_message.Message):
    __slots__ = ("principals", "next_page_token")
    PRINCIPALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    principals: _containers.RepeatedCompositeFieldContainer[Principal]
    next_page_token: str
    def __init__(self, principals: _Optional[_Iterable[_Union[Principal, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeactivatePrincipalRequest(_message.Message):
    __slots__ = ("public_key", "signature")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    signature: bytes
    def __init__(self, public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class DeactivatePrincipalResponse(_message.Message):
    __slots__ = ("principal", "log_index", "approvals", "approvals_required", "pending")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    log_index: int
    approvals: int
    approvals_required: int
    pending: bool
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., log_index: _Optional[int] = ..., approvals: _Optional[int] = ..., approvals_required: _Optional[int] = ..., pending: bool = ...) -> None: ...

class CollectorAuthorization(_message.Message):
    __slots__ = ("member_public_key", "collector_public_key", "authorized_at")
    MEMBER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZED_AT_FIELD_NUMBER: _ClassVar[int]
    member_public_key: bytes
    collector_public_key: bytes
    authorized_at: int
    def __init__(self, member_public_key: _Optional[bytes] = ..., collector_public_key: _Optional[bytes] = ..., authorized_at: _Optional[int] = ...) -> None: ...

class AuthorizeCollectorRequest(_message.Message):
    __slots__ = ("collector_public_key",)
    COLLECTOR_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    collector_public_key: bytes
    def __init__(self, collector_public_key: _Optional[bytes] = ...) -> None: ...

class AuthorizeCollectorResponse(_message.Message):
    __slots__ = ("authorization", "log_index")
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    authorization: CollectorAuthorization
    log_index: int
    def __init__(self, authorization: _Optional[_Union[CollectorAuthorization, _Mapping]] = ..., log_index: _Optional[int] = ...) -> None: ...

class RevokeCollectorRequest(_message.Message):
    __slots__ = ("collector_public_key",)
    COLLECTOR_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    collector_public_key: bytes
    def __init__(self, collector_public_key: _Optional[bytes] = ...) -> None: ...

class RevokeCollectorResponse(_message.Message):
    __slots__ = ("revoked", "log_index")
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    revoked: bool
    log_index: int
    def __init__(self, revoked: bool = ..., log_index: _Optional[int] = ...) -> None: ...

class ListMyCollectorsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMyCollectorsResponse(_message.Message):
    __slots__ = ("authorizations", "next_page_token")
    AUTHORIZATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    authorizations: _containers.RepeatedCompositeFieldContainer[CollectorAuthorization]
    next_page_token: str
    def __init__(self, authorizations: _Optional[_Iterable[_Union[CollectorAuthorization, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListMyMembersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMyMembersResponse(_message.Message):
    __slots__ = ("authorizations", "next_page_token")
    AUTHORIZATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    authorizations: _containers.RepeatedCompositeFieldContainer[CollectorAuthorization]
    next_page_token: str
    def __init__(self, authorizations: _Optional[_Iterable[_Union[CollectorAuthorization, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
