"""datatrust: a Python client for a union's data trust.

Sign in with the key file the ``datatrust`` CLI writes, verify licenses offline (signed
notes under the trust's license key), and call any of the trust's gRPC services through the
generated stubs in :mod:`datatrust.v1`.
"""

from .client import Client, login_message, verify_license
from .errors import DatatrustError, VerificationError
from .keys import Key
from .note import Verifier, open_note
from .receipt import Receipt, verify_receipt
from .training import TrainingReport, TrainingRun

__all__ = [
    "Client",
    "DatatrustError",
    "Key",
    "Receipt",
    "TrainingReport",
    "TrainingRun",
    "VerificationError",
    "Verifier",
    "login_message",
    "open_note",
    "verify_license",
    "verify_receipt",
]
