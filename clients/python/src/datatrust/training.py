"""Reporting training runs: the signed report text, and a context manager that reports the
run when its block ends and keeps the verified receipt."""

from __future__ import annotations

import hashlib
import pathlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, List, Optional, Sequence

from .errors import VerificationError
from .receipt import Receipt, verify_receipt

if TYPE_CHECKING:
    from .client import Client


@dataclass
class TrainingReport:
    """What a licensee signs for one run (docs/API.md, "Reporting a training run")."""

    trust: str
    license_id: str
    run_id: str
    model_id: str
    model_version: str
    model_family: str
    purpose: str
    data: Sequence[str]
    started: int
    ended: int
    accelerator_seconds: int = 0

    def to_text(self) -> str:
        return (
            "datatrust training use v1\n"
            f"trust: {self.trust}\nlicense: {self.license_id}\nrun: {self.run_id}\n"
            f"model: {self.model_id}\nmodel-version: {self.model_version}\n"
            f"model-family: {self.model_family}\npurpose: {self.purpose}\n"
            f"data: {','.join(self.data)}\nstarted: {self.started}\nended: {self.ended}\n"
            f"accelerator-seconds: {self.accelerator_seconds}\n"
        )


@dataclass
class TrainingRun:
    """One run being reported: set ``accelerator_seconds`` as it goes. Once the block ends,
    ``receipt`` is the verified receipt of the logged use (and ``receipt_path`` where it was
    saved), or ``error`` says why the trust refused it."""

    report: TrainingReport
    receipt: Optional[Receipt] = None
    receipt_text: Optional[str] = None
    receipt_path: Optional[pathlib.Path] = None
    failed: bool = False
    uses: List[object] = field(default_factory=list)

    @property
    def accelerator_seconds(self) -> int:
        return self.report.accelerator_seconds

    @accelerator_seconds.setter
    def accelerator_seconds(self, value: int) -> None:
        self.report.accelerator_seconds = int(value)


class _RunContext:
    def __init__(self, client: "Client", run: TrainingRun, receipts: Optional[pathlib.Path]):
        self._client = client
        self.run = run
        self._receipts = receipts

    def __enter__(self) -> TrainingRun:
        return self.run

    def __exit__(self, kind, error, traceback) -> None:
        # Reported whatever happened in the block: a run that started is a use of the data.
        self.run.failed = kind is not None
        self.run.report.ended = max(int(time.time()), self.run.report.started)
        self._client.report_training_run(self.run, self._receipts)
        return None


def check_receipt(report: TrainingReport, receipt_text: str, log_vkey: str) -> Receipt:
    """The receipt verifies (signature, inclusion), and its logged entry is this report's
    accepted use: same license, run and report hash."""
    receipt = verify_receipt(receipt_text, log_vkey)
    fields = receipt.entry_fields()
    digest = hashlib.sha256(report.to_text().encode()).hexdigest()
    if (
        receipt.entry_kind != "training-use"
        or fields.get("license") != report.license_id
        or fields.get("run") != report.run_id
        or fields.get("report-sha256") != digest
    ):
        raise VerificationError("the logged entry is not this report's use")
    return receipt


