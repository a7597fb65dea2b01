from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SumNode(_message.Message):
    __slots__ = ("hash", "records", "amount")
    HASH_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    records: int
    amount: int
    def __init__(self, hash: _Optional[bytes] = ..., records: _Optional[int] = ..., amount: _Optional[int] = ...) -> None: ...

class Charge(_message.Message):
    __slots__ = ("id", "license_id", "licensee", "kind", "run_id", "currency", "amount", "fund", "members", "share_root", "share_records", "share_leaves", "created_at", "due_at", "log_index")
    ID_FIELD_NUMBER: _ClassVar[int]
    LICENSE_ID_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FUND_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SHARE_ROOT_FIELD_NUMBER: _ClassVar[int]
    SHARE_RECORDS_FIELD_NUMBER: _ClassVar[int]
    SHARE_LEAVES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    id: str
    license_id: str
    licensee: bytes
    kind: str
    run_id: str
    currency: str
    amount: int
    fund: int
    members: int
    share_root: str
    share_records: int
    share_leaves: int
    created_at: int
    due_at: int
    log_index: int
    def __init__(self, id: _Optional[str] = ..., license_id: _Optional[str] = ..., licensee: _Optional[bytes] = ..., kind: _Optional[str] = ..., run_id: _Optional[str] = ..., currency: _Optional[str] = ..., amount: _Optional[int] = ..., fund: _Optional[int] = ..., members: _Optional[int] = ..., share_root: _Optional[str] = ..., share_records: _Optional[int] = ..., share_leaves: _Optional[int] = ..., created_at: _Optional[int] = ..., due_at: _Optional[int] = ..., log_index: _Optional[int] = ...) -> None: ...

class Invoice(_message.Message):
    __slots__ = ("charge", "paid", "due", "overdue")
    CHARGE_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    DUE_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    charge: Charge
    paid: int
    due: int
    overdue: bool
    def __init__(self, charge: _Optional[_Union[Charge, _Mapping]] = ..., paid: _Optional[int] = ..., due: _Optional[int] = ..., overdue: bool = ...) -> None: ...

class ListInvoicesRequest(_message.Message):
    __slots__ = ("licensee_public_key", "page_size", "page_token")
    LICENSEE_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    licensee_public_key: bytes
    page_size: int
    page_token: str
    def __init__(self, licensee_public_key: _Optional[bytes] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListInvoicesResponse(_message.Message):
    __slots__ = ("invoices", "suspension", "next_page_token")
    INVOICES_FIELD_NUMBER: _ClassVar[int]
    SUSPENSION_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    invoices: _containers.RepeatedCompositeFieldContainer[Invoice]
    suspension: Suspension
    next_page_token: str
    def __init__(self, invoices: _Optional[_Iterable[_Union[Invoice, _Mapping]]] = ..., suspension: _Optional[_Union[Suspension, _Mapping]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RecordPaymentRequest(_message.Message):
    __slots__ = ("reference", "charge_id", "currency", "amount")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CHARGE_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    reference: str
    charge_id: str
    currency: str
    amount: int
    def __init__(self, reference: _Optional[str] = ..., charge_id: _Optional[str] = ..., currency: _Optional[str] = ..., amount: _Optional[int] = ...) -> None: ...

class Payment(_message.Message):
    __slots__ = ("reference", "charge_id", "licensee", "currency", "amount", "received_at", "log_index")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CHARGE_ID_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    reference: str
    charge_id: str
    licensee: bytes
    currency: str
    amount: int
    received_at: int
    log_index: int
    def __init__(self, reference: _Optional[str] = ..., charge_id: _Optional[str] = ..., licensee: _Optional[bytes] = ..., currency: _Optional[str] = ..., amount: _Optional[int] = ..., received_at: _Optional[int] = ..., log_index: _Optional[int] = ...) -> None: ...

class RecordPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: Payment
    def __init__(self, payment: _Optional[_Union[Payment, _Mapping]] = ...) -> None: ...

class RecordPayoutRequest(_message.Message):
    __slots__ = ("reference", "member_public_key", "currency", "amount")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    reference: str
    member_public_key: bytes
    currency: str
    amount: int
    def __init__(self, reference: _Optional[str] = ..., member_public_key: _Optional[bytes] = ..., currency: _Optional[str] = ..., amount: _Optional[int] = ...) -> None: ...

class Payout(_message.Message):
    __slots__ = ("reference", "currency", "amount", "paid_at", "log_index")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PAID_AT_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    reference: str
    currency: str
    amount: int
    paid_at: int
    log_index: int
    def __init__(self, reference: _Optional[str] = ..., currency: _Optional[str] = ..., amount: _Optional[int] = ..., paid_at: _Optional[int] = ..., log_index: _Optional[int] = ...) -> None: ...

class RecordPayoutResponse(_message.Message):
    __slots__ = ("payout",)
    PAYOUT_FIELD_NUMBER: _ClassVar[int]
    payout: Payout
    def __init__(self, payout: _Optional[_Union[Payout, _Mapping]] = ...) -> None: ...

class GetMyStatementRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class StatementLine(_message.Message):
    __slots__ = ("charge", "commitment", "my_records", "my_amount", "leaf_index", "proof", "root", "receipt")
    CHARGE_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    MY_RECORDS_FIELD_NUMBER: _ClassVar[int]
    MY_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    charge: Charge
    commitment: str
    my_records: int
    my_amount: int
    leaf_index: int
    proof: _containers.RepeatedCompositeFieldContainer[SumNode]
    root: SumNode
    receipt: str
    def __init__(self, charge: _Optional[_Union[Charge, _Mapping]] = ..., commitment: _Optional[str] = ..., my_records: _Optional[int] = ..., my_amount: _Optional[int] = ..., leaf_index: _Optional[int] = ..., proof: _Optional[_Iterable[_Union[SumNode, _Mapping]]] = ..., root: _Optional[_Union[SumNode, _Mapping]] = ..., receipt: _Optional[str] = ...) -> None: ...

class CurrencyTotals(_message.Message):
    __slots__ = ("currency", "earned", "paid_out", "balance")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    EARNED_FIELD_NUMBER: _ClassVar[int]
    PAID_OUT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    currency: str
    earned: int
    paid_out: int
    balance: int
    def __init__(self, currency: _Optional[str] = ..., earned: _Optional[int] = ..., paid_out: _Optional[int] = ..., balance: _Optional[int] = ...) -> None: ...

class GetMyStatementResponse(_message.Message):
    __slots__ = ("lines", "payouts", "totals", "commitment_salt", "next_page_token")
    LINES_FIELD_NUMBER: _ClassVar[int]
    PAYOUTS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_SALT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[StatementLine]
    payouts: _containers.RepeatedCompositeFieldContainer[Payout]
    totals: _containers.RepeatedCompositeFieldContainer[CurrencyTotals]
    commitment_salt: bytes
    next_page_token: str
    def __init__(self, lines: _Optional[_Iterable[_Union[StatementLine, _Mapping]]] = ..., payouts: _Optional[_Iterable[_Union[Payout, _Mapping]]] = ..., totals: _Optional[_Iterable[_Union[CurrencyTotals, _Mapping]]] = ..., commitment_salt: _Optional[bytes] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetLedgerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LedgerTotals(_message.Message):
    __slots__ = ("currency", "charged", "received", "outstanding", "fund", "members_earned", "paid_out", "owed_to_members")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_FIELD_NUMBER: _ClassVar[int]
    FUND_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_EARNED_FIELD_NUMBER: _ClassVar[int]
    PAID_OUT_FIELD_NUMBER: _ClassVar[int]
    OWED_TO_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    currency: str
    charged: int
    received: int
    outstanding: int
    fund: int
    members_earned: int
    paid_out: int
    owed_to_members: int
    def __init__(self, currency: _Optional[str] = ..., charged: _Optional[int] = ..., received: _Optional[int] = ..., outstanding: _Optional[int] = ..., fund: _Optional[int] = ..., members_earned: _Optional[int] = ..., paid_out: _Optional[int] = ..., owed_to_members: _Optional[int] = ...) -> None: ...

class Suspension(_message.Message):
    __slots__ = ("licensee", "reason", "since", "log_index")
    LICENSEE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    licensee: bytes
    reason: str
    since: int
    log_index: int
    def __init__(self, licensee: _Optional[bytes] = ..., reason: _Optional[str] = ..., since: _Optional[int] = ..., log_index: _Optional[int] = ...) -> None: ...

class GetLedgerResponse(_message.Message):
    __slots__ = ("totals", "suspensions")
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    SUSPENSIONS_FIELD_NUMBER: _ClassVar[int]
    totals: _containers.RepeatedCompositeFieldContainer[LedgerTotals]
    suspensions: _containers.RepeatedCompositeFieldContainer[Suspension]
    def __init__(self, totals: _Optional[_Iterable[_Union[LedgerTotals, _Mapping]]] = ..., suspensions: _Optional[_Iterable[_Union[Suspension, _Mapping]]] = ...) -> None: ...

class EnforceDutiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnforceDutiesResponse(_message.Message):
    __slots__ = ("suspended", "retention")
    SUSPENDED_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    suspended: _containers.RepeatedCompositeFieldContainer[Suspension]
    retention: RetentionSweep
    def __init__(self, suspended: _Optional[_Iterable[_Union[Suspension, _Mapping]]] = ..., retention: _Optional[_Union[RetentionSweep, _Mapping]] = ...) -> None: ...

class RetentionSweep(_message.Message):
    __slots__ = ("members", "events", "chunks", "chunks_rewritten", "day_counts", "screenshots", "release_parts", "segments_removed", "bytes_freed", "members_damaged")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_REWRITTEN_FIELD_NUMBER: _ClassVar[int]
    DAY_COUNTS_FIELD_NUMBER: _ClassVar[int]
    SCREENSHOTS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_PARTS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_DAMAGED_FIELD_NUMBER: _ClassVar[int]
    members: int
    events: int
    chunks: int
    chunks_rewritten: int
    day_counts: int
    screenshots: int
    release_parts: int
    segments_removed: int
    bytes_freed: int
    members_damaged: int
    def __init__(self, members: _Optional[int] = ..., events: _Optional[int] = ..., chunks: _Optional[int] = ..., chunks_rewritten: _Optional[int] = ..., day_counts: _Optional[int] = ..., screenshots: _Optional[int] = ..., release_parts: _Optional[int] = ..., segments_removed: _Optional[int] = ..., bytes_freed: _Optional[int] = ..., members_damaged: _Optional[int] = ...) -> None: ...

class LiftSuspensionRequest(_message.Message):
    __slots__ = ("licensee_public_key", "reason", "signature")
    LICENSEE_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    licensee_public_key: bytes
    reason: str
    signature: bytes
    def __init__(self, licensee_public_key: _Optional[bytes] = ..., reason: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class LiftSuspensionResponse(_message.Message):
    __slots__ = ("log_index", "approvals", "approvals_required", "pending")
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    log_index: int
    approvals: int
    approvals_required: int
    pending: bool
    def __init__(self, log_index: _Optional[int] = ..., approvals: _Optional[int] = ..., approvals_required: _Optional[int] = ..., pending: bool = ...) -> None: ...
