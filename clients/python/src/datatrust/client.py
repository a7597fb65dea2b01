"""A signed-in connection to a datatrust: sign-in from a key file, with token refresh."""

from __future__ import annotations

import base64
import os
import pathlib
import threading
import time
from typing import Any, Callable, Optional, Sequence, Union

import grpc

from .errors import DatatrustError
from .keys import Key
from .note import Verifier, open_note
from .v1 import (
    compensation_pb2_grpc,
    governance_pb2,
    governance_pb2_grpc,
    principals_pb2,
    principals_pb2_grpc,
    telemetry_pb2_grpc,
)

# Sign in again when the token has less than this left (seconds).
REFRESH_MARGIN = 60


def login_message(origin: str, public_key: bytes, challenge: bytes) -> bytes:
    """What a principal signs to sign in (docs/API.md, "Signing in")."""
    return (
        f"datatrust login v1\n{origin}\n{base64.b64encode(public_key).decode()}\n"
        f"{base64.b64encode(challenge).decode()}\n"
    ).encode()


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call, the token fetched fresh."""

    def __init__(self, token: Callable[[], str]):
        self._token = token

    def _details(self, details: Any) -> Any:
        metadata = list(details.metadata or []) + [("authorization", f"Bearer {self._token()}")]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


class Client:
    """Signs in to the trust at ``target`` (``host:port``) as ``key``.

    ``key`` is a :class:`Key`, or the path of a key file the CLI wrote. Calls go through the
    generated stubs (``client.licenses``, ``client.releases``, ...) with the bearer token
    added; the token is renewed before it expires. Use it as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        target: str,
        key: Union[Key, str],
        *,
        root_certificates: Optional[bytes] = None,
    ):
        self.key = key if isinstance(key, Key) else Key.from_file(key)
        target = target.removeprefix("http://").removeprefix("https://")
        if root_certificates is not None:
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates))
        else:
            self._channel = grpc.insecure_channel(target)
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._expires_at = 0
        self.trust_info = self._call(
            principals_pb2_grpc.TrustServiceStub(self._channel).GetTrustInfo,
            principals_pb2.GetTrustInfoRequest(),
        )
        self.origin: str = self.trust_info.origin
        self.principal = self.sign_in()
        authed = grpc.intercept_channel(self._channel, _Bearer(self.token))
        self.auth = principals_pb2_grpc.AuthServiceStub(authed)
        self.principals = principals_pb2_grpc.PrincipalServiceStub(authed)
        self.licenses = governance_pb2_grpc.LicenseServiceStub(authed)
        self.training = governance_pb2_grpc.TrainingServiceStub(authed)
        self.releases = telemetry_pb2_grpc.ReleaseServiceStub(authed)
        self.member_data = telemetry_pb2_grpc.MemberDataServiceStub(authed)
        self.ledger = compensation_pb2_grpc.LedgerServiceStub(authed)

    @staticmethod
    def _call(method: Callable[..., Any], request: Any) -> Any:
        try:
            return method(request)
        except grpc.RpcError as error:
            raise DatatrustError.from_rpc(error) from None

    def sign_in(self) -> principals_pb2.Principal:
        """Signs in (a challenge signed with the key); returns who the key is."""
        auth = principals_pb2_grpc.AuthServiceStub(self._channel)
        challenge = self._call(
            auth.CreateChallenge, principals_pb2.CreateChallengeRequest(public_key=self.key.public_key)
        ).challenge
        signature = self.key.sign(login_message(self.origin, self.key.public_key, challenge))
        response = self._call(
            auth.Login,
            principals_pb2.LoginRequest(public_key=self.key.public_key, challenge=challenge, signature=signature),
        )
        with self._lock:
            self._token, self._expires_at = response.token, response.expires_at
        return response.principal

    def token(self) -> str:
        """A bearer token with more than a minute left, signing in again if needed."""
        with self._lock:
            fresh = self._token is not None and self._expires_at - time.time() > REFRESH_MARGIN
            token = self._token
        if fresh and token is not None:
            return token
        self.sign_in()
        assert self._token is not None
        return self._token

    def whoami(self) -> principals_pb2.Principal:
        return self._call(self.auth.WhoAmI, principals_pb2.WhoAmIRequest()).principal

    def license_note(self, license_id: str) -> str:
        """The signed license note (datatrust license v1) of one of the caller's licenses."""
        return self._call(self.licenses.GetLicense, governance_pb2.GetLicenseRequest(license_id=license_id)).license.note

    def license_verifiers(self) -> Sequence[Verifier]:
        """Every license key the trust has had (a license verifies under the one valid at
        its issuance)."""
        keys = [key.vkey for key in self.trust_info.license_keys] or [self.trust_info.license_vkey]
        return [Verifier.parse(key) for key in keys]

    def release_records(
        self,
        release_id: str,
        *,
        start: int = 0,
        shard: Optional[tuple] = None,
    ):
        """The release's records as ``(position, bytes)``, each part verified against the
        logged root before its records are given; resume with ``start`` (a position), split
        across data-loader workers with ``shard=(index, count)``."""
        from .releases import stream_records

        return stream_records(self, release_id, start=start, shard=shard)

    def training_run(
        self,
        license_id: str,
        *,
        run_id: str,
        model: str,
        model_version: str,
        model_family: str,
        purpose: str,
        data: Sequence[str],
        receipts: Optional[Union[str, "os.PathLike[str]"]] = None,
    ):
        """A context manager for one training run: the run is reported when the block ends
        (also when it raises), signed with this client's key; the receipt is verified
        (checkpoint signature under the log key, inclusion, the logged entry is this
        report's) and saved as ``<receipts>/<run_id>.tlog-proof``. Reporting the same run
        again (a retry) with the same report is answered with the same logged use."""
        from .training import TrainingReport, TrainingRun, _RunContext

        report = TrainingReport(
            trust=self.origin, license_id=license_id, run_id=run_id, model_id=model,
            model_version=model_version, model_family=model_family, purpose=purpose,
            data=list(data), started=int(time.time()), ended=int(time.time()),
        )
        directory = pathlib.Path(receipts) if receipts is not None else None
        return _RunContext(self, TrainingRun(report), directory)

    def report_training_run(self, run: Any, receipts: Optional[pathlib.Path] = None) -> Any:
        """Reports ``run`` (a :class:`datatrust.training.TrainingRun`), verifies and keeps
        its receipt. Raises :class:`DatatrustError` when the trust refuses the report."""
        from .training import check_receipt

        text = run.report.to_text()
        response = self._call(
            self.training.ReportTrainingUse,
            governance_pb2.ReportTrainingUseRequest(report=text, signature=self.key.sign(text.encode())),
        )
        run.receipt = check_receipt(run.report, response.receipt, self.trust_info.log_vkey)
        run.receipt_text = response.receipt
        if receipts is not None:
            receipts.mkdir(parents=True, exist_ok=True)
            run.receipt_path = receipts / f"{run.report.run_id}.tlog-proof"
            run.receipt_path.write_text(response.receipt)
        return run

    def my_audit(self):
        """The calling member's audit, every entry verified offline (see
        :func:`datatrust.audit.my_audit`)."""
        from .audit import my_audit

        return my_audit(self)

    def my_statement(self):
        """The calling member's statement, every share verified offline (see
        :func:`datatrust.audit.my_statement`)."""
        from .audit import my_statement

        return my_statement(self)

    def license_in_log(self, note: str) -> int:
        """Checks a license note against the log (see :func:`datatrust.audit.license_in_log`);
        returns the index of its issuance."""
        from .audit import license_in_log

        return license_in_log(self, note)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verify_license(note: str, *license_vkeys: Union[str, Verifier]) -> str:
    """The license text, once its signature verifies offline under one of the vkeys."""
    verifiers = [key if isinstance(key, Verifier) else Verifier.parse(key) for key in license_vkeys]
    text = open_note(note, *verifiers)
    if not text.startswith("datatrust license v1\n"):
        from .errors import VerificationError

        raise VerificationError("the note is not a datatrust license")
    return text
