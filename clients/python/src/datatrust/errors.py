"""Errors as exceptions that carry the trust's message and the field it names."""

from __future__ import annotations

from typing import Optional

import grpc


class DatatrustError(Exception):
    """A refusal or failure from the trust, or a check that did not hold.

    ``code`` is the gRPC status code name (``"INVALID_ARGUMENT"``, ...) when the trust
    answered; ``field`` the request field its message names ("field: reason"), if any.
    """

    def __init__(self, message: str, code: Optional[str] = None, field: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> "DatatrustError":
        details = error.details() or ""
        field = None
        head, sep, _ = details.partition(": ")
        if sep and " " not in head:
            field = head
        return cls(details, code=error.code().name, field=field)


class VerificationError(DatatrustError):
    """Something that should verify offline did not: a signature, a proof, a root."""
