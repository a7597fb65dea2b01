from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_CLASS_UNSPECIFIED: _ClassVar[KeyClass]
    KEY_CLASS_LETTER: _ClassVar[KeyClass]
    KEY_CLASS_DIGIT: _ClassVar[KeyClass]
    KEY_CLASS_PUNCTUATION: _ClassVar[KeyClass]
    KEY_CLASS_NAVIGATION: _ClassVar[KeyClass]
    KEY_CLASS_MODIFIER: _ClassVar[KeyClass]
    KEY_CLASS_OTHER: _ClassVar[KeyClass]
KEY_CLASS_UNSPECIFIED: KeyClass
KEY_CLASS_LETTER: KeyClass
KEY_CLASS_DIGIT: KeyClass
KEY_CLASS_PUNCTUATION: KeyClass
KEY_CLASS_NAVIGATION: KeyClass
KEY_CLASS_MODIFIER: KeyClass
KEY_CLASS_OTHER: KeyClass

class UploadScreenshotRequest(_message.Message):
    __slots__ = ("member_public_key", "image")
    MEMBER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    member_public_key: bytes
    image: bytes
    def __init__(self, member_public_key: _Optional[bytes] = ..., image: _Optional[bytes] = ...) -> None: ...

class UploadScreenshotResponse(_message.Message):
    __slots__ = ("sha256", "outcome")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    outcome: str
    def __init__(self, sha256: _Optional[str] = ..., outcome: _Optional[str] = ...) -> None: ...

class KeyEvent(_message.Message):
    __slots__ = ("key_class", "hold_ms", "character", "password_field")
    KEY_CLASS_FIELD_NUMBER: _ClassVar[int]
    HOLD_MS_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_FIELD_NUMBER: _ClassVar[int]
    key_class: KeyClass
    hold_ms: int
    character: str
    password_field: bool
    def __init__(self, key_class: _Optional[_Union[KeyClass, str]] = ..., hold_ms: _Optional[int] = ..., character: _Optional[str] = ..., password_field: bool = ...) -> None: ...

class PointerMove(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ...) -> None: ...

class Click(_message.Message):
    __slots__ = ("button", "target_role")
    BUTTON_FIELD_NUMBER: _ClassVar[int]
    TARGET_ROLE_FIELD_NUMBER: _ClassVar[int]
    button: int
    target_role: str
    def __init__(self, button: _Optional[int] = ..., target_role: _Optional[str] = ...) -> None: ...

class Scroll(_message.Message):
    __slots__ = ("dx", "dy")
    DX_FIELD_NUMBER: _ClassVar[int]
    DY_FIELD_NUMBER: _ClassVar[int]
    dx: int
    dy: int
    def __init__(self, dx: _Optional[int] = ..., dy: _Optional[int] = ...) -> None: ...

class FocusChange(_message.Message):
    __slots__ = ("window_title",)
    WINDOW_TITLE_FIELD_NUMBER: _ClassVar[int]
    window_title: str
    def __init__(self, window_title: _Optional[str] = ...) -> None: ...

class ScreenshotRef(_message.Message):
    __slots__ = ("sha256", "size_bytes")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    size_bytes: int
    def __init__(self, sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("time_ms", "application", "key", "pointer", "click", "scroll", "focus", "screenshot")
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    POINTER_FIELD_NUMBER: _ClassVar[int]
    CLICK_FIELD_NUMBER: _ClassVar[int]
    SCROLL_FIELD_NUMBER: _ClassVar[int]
    FOCUS_FIELD_NUMBER: _ClassVar[int]
    SCREENSHOT_FIELD_NUMBER: _ClassVar[int]
    time_ms: int
    application: str
    key: KeyEvent
    pointer: PointerMove
    click: Click
    scroll: Scroll
    focus: FocusChange
    screenshot: ScreenshotRef
    def __init__(self, time_ms: _Optional[int] = ..., application: _Optional[str] = ..., key: _Optional[_Union[KeyEvent, _Mapping]] = ..., pointer: _Optional[_Union[PointerMove, _Mapping]] = ..., click: _Optional[_Union[Click, _Mapping]] = ..., scroll: _Optional[_Union[Scroll, _Mapping]] = ..., focus: _Optional[_Union[FocusChange, _Mapping]] = ..., screenshot: _Optional[_Union[ScreenshotRef, _Mapping]] = ...) -> None: ...

class UploadRequest(_message.Message):
    __slots__ = ("member_public_key", "device_id", "sequence", "events")
    MEMBER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    member_public_key: bytes
    device_id: str
    sequence: int
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, member_public_key: _Optional[bytes] = ..., device_id: _Optional[str] = ..., sequence: _Optional[int] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class UploadResponse(_message.Message):
    __slots__ = ("sequence", "outcome", "stored_events", "redacted_events")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STORED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    REDACTED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    outcome: str
    stored_events: int
    redacted_events: int
    def __init__(self, sequence: _Optional[int] = ..., outcome: _Optional[str] = ..., stored_events: _Optional[int] = ..., redacted_events: _Optional[int] = ...) -> None: ...

class GetMyDataSummaryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DayCount(_message.Message):
    __slots__ = ("day", "category", "count", "kept_until")
    DAY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    KEPT_UNTIL_FIELD_NUMBER: _ClassVar[int]
    day: int
    category: str
    count: int
    kept_until: int
    def __init__(self, day: _Optional[int] = ..., category: _Optional[str] = ..., count: _Optional[int] = ..., kept_until: _Optional[int] = ...) -> None: ...

class GetMyDataSummaryResponse(_message.Message):
    __slots__ = ("counts", "retention_days")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[DayCount]
    retention_days: int
    def __init__(self, counts: _Optional[_Iterable[_Union[DayCount, _Mapping]]] = ..., retention_days: _Optional[int] = ...) -> None: ...

class ExportMyDataRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportMyDataResponse(_message.Message):
    __slots__ = ("json_lines",)
    JSON_LINES_FIELD_NUMBER: _ClassVar[int]
    json_lines: bytes
    def __init__(self, json_lines: _Optional[bytes] = ...) -> None: ...

class EraseMyDataRequest(_message.Message):
    __slots__ = ("confirm",)
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    confirm: str
    def __init__(self, confirm: _Optional[str] = ...) -> None: ...

class EraseMyDataResponse(_message.Message):
    __slots__ = ("chunks_erased", "log_index", "events_erased", "consents_withdrawn", "collectors_withdrawn")
    CHUNKS_ERASED_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    EVENTS_ERASED_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    COLLECTORS_WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    chunks_erased: int
    log_index: int
    events_erased: int
    consents_withdrawn: _containers.RepeatedScalarFieldContainer[str]
    collectors_withdrawn: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, chunks_erased: _Optional[int] = ..., log_index: _Optional[int] = ..., events_erased: _Optional[int] = ..., consents_withdrawn: _Optional[_Iterable[str]] = ..., collectors_withdrawn: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ReleasePart(_message.Message):
    __slots__ = ("commitment", "count", "records_root", "categories")
    class CategoriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ROOT_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    commitment: str
    count: int
    records_root: str
    categories: _containers.ScalarMap[str, int]
    def __init__(self, commitment: _Optional[str] = ..., count: _Optional[int] = ..., records_root: _Optional[str] = ..., categories: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Release(_message.Message):
    __slots__ = ("id", "license_id", "licensee", "parts", "root", "records", "created_at", "log_index", "receipt", "state", "members_done", "members_total")
    ID_FIELD_NUMBER: _ClassVar[int]
    LICENSE_ID_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_DONE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    id: str
    license_id: str
    licensee: bytes
    parts: _containers.RepeatedCompositeFieldContainer[ReleasePart]
    root: str
    records: int
    created_at: int
    log_index: int
    receipt: str
    state: str
    members_done: int
    members_total: int
    def __init__(self, id: _Optional[str] = ..., license_id: _Optional[str] = ..., licensee: _Optional[bytes] = ..., parts: _Optional[_Iterable[_Union[ReleasePart, _Mapping]]] = ..., root: _Optional[str] = ..., records: _Optional[int] = ..., created_at: _Optional[int] = ..., log_index: _Optional[int] = ..., receipt: _Optional[str] = ..., state: _Optional[str] = ..., members_done: _Optional[int] = ..., members_total: _Optional[int] = ...) -> None: ...

class CreateReleaseRequest(_message.Message):
    __slots__ = ("license_id", "in_background")
    LICENSE_ID_FIELD_NUMBER: _ClassVar[int]
    IN_BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    license_id: str
    in_background: bool
    def __init__(self, license_id: _Optional[str] = ..., in_background: bool = ...) -> None: ...

class GetReleaseRequest(_message.Message):
    __slots__ = ("release_id",)
    RELEASE_ID_FIELD_NUMBER: _ClassVar[int]
    release_id: str
    def __init__(self, release_id: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("release",)
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    release: Release
    def __init__(self, release: _Optional[_Union[Release, _Mapping]] = ...) -> None: ...

class StreamReleaseRequest(_message.Message):
    __slots__ = ("release_id",)
    RELEASE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    release_id: str
    def __init__(self, release_id: _Optional[str] = ..., **kwargs) -> None: ...

class ReleaseRecordBatch(_message.Message):
    __slots__ = ("records", "erased_parts")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    ERASED_PARTS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[ReleaseRecord]
    erased_parts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, records: _Optional[_Iterable[_Union[ReleaseRecord, _Mapping]]] = ..., erased_parts: _Optional[_Iterable[int]] = ...) -> None: ...

class ReleaseRecord(_message.Message):
    __slots__ = ("position", "part", "record")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    position: int
    part: int
    record: bytes
    def __init__(self, position: _Optional[int] = ..., part: _Optional[int] = ..., record: _Optional[bytes] = ...) -> None: ...

class AuditUse(_message.Message):
    __slots__ = ("run_id", "model", "model_version", "log_index", "receipt", "reported_at")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    model: str
    model_version: str
    log_index: int
    receipt: str
    reported_at: int
    def __init__(self, run_id: _Optional[str] = ..., model: _Optional[str] = ..., model_version: _Optional[str] = ..., log_index: _Optional[int] = ..., receipt: _Optional[str] = ..., reported_at: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("release_id", "license_id", "licensee", "purpose", "model_family", "categories", "released_at", "my_records", "part_index", "parts", "commitment", "records_root", "proof", "release_root", "release_receipt", "uses")
    RELEASE_ID_FIELD_NUMBER: _ClassVar[int]
    LICENSE_ID_FIELD_NUMBER: _ClassVar[int]
    LICENSEE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FAMILY_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    RELEASED_AT_FIELD_NUMBER: _ClassVar[int]
    MY_RECORDS_FIELD_NUMBER: _ClassVar[int]
    PART_INDEX_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ROOT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    RELEASE_ROOT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_RECEIPT_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    release_id: str
    license_id: str
    licensee: bytes
    purpose: str
    model_family: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    released_at: int
    my_records: int
    part_index: int
    parts: int
    commitment: str
    records_root: str
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    release_root: str
    release_receipt: str
    uses: _containers.RepeatedCompositeFieldContainer[AuditUse]
    def __init__(self, release_id: _Optional[str] = ..., license_id: _Optional[str] = ..., licensee: _Optional[bytes] = ..., purpose: _Optional[str] = ..., model_family: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., released_at: _Optional[int] = ..., my_records: _Optional[int] = ..., part_index: _Optional[int] = ..., parts: _Optional[int] = ..., commitment: _Optional[str] = ..., records_root: _Optional[str] = ..., proof: _Optional[_Iterable[bytes]] = ..., release_root: _Optional[str] = ..., release_receipt: _Optional[str] = ..., uses: _Optional[_Iterable[_Union[AuditUse, _Mapping]]] = ...) -> None: ...

class GetMyAuditRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetMyAuditResponse(_message.Message):
    __slots__ = ("entries", "commitment_salt", "next_page_token", "key_changes")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_SALT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KEY_CHANGES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    commitment_salt: bytes
    next_page_token: str
    key_changes: _containers.RepeatedCompositeFieldContainer[KeyChange]
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., commitment_salt: _Optional[bytes] = ..., next_page_token: _Optional[str] = ..., key_changes: _Optional[_Iterable[_Union[KeyChange, _Mapping]]] = ...) -> None: ...

class KeyChange(_message.Message):
    __slots__ = ("kind", "at", "log_index", "approved_by", "receipt")
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    at: int
    log_index: int
    approved_by: _containers.RepeatedScalarFieldContainer[bytes]
    receipt: str
    def __init__(self, kind: _Optional[str] = ..., at: _Optional[int] = ..., log_index: _Optional[int] = ..., approved_by: _Optional[_Iterable[bytes]] = ..., receipt: _Optional[str] = ...) -> None: ...
