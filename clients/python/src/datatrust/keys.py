"""Keys: the key file the datatrust CLI writes, and Ed25519 signing.

A key file is one line, the private key text of Go's golang.org/x/mod/sumdb/note:
``PRIVATE+KEY+<name>+<key id, 8 hex>+<base64 of 0x01 || 32-byte Ed25519 seed>``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Union

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import DatatrustError


class Key:
    """An Ed25519 key that signs as a datatrust principal."""

    def __init__(self, seed: bytes, name: str = "datatrust"):
        if len(seed) != 32:
            raise DatatrustError("a key's seed is 32 bytes", field="key")
        self.name = name
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key: bytes = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def from_text(cls, text: str) -> "Key":
        fields = text.strip().split("+")
        if len(fields) < 5 or fields[0] != "PRIVATE" or fields[1] != "KEY":
            raise DatatrustError("not a datatrust key file (it should start with PRIVATE+KEY+)", field="key")
        try:
            typed = base64.b64decode("+".join(fields[4:]), validate=True)
        except ValueError as error:
            raise DatatrustError(f"the key is not base64: {error}", field="key") from error
        if len(typed) != 33 or typed[0] != 1:
            raise DatatrustError("the key file does not hold an Ed25519 key", field="key")
        key = cls(typed[1:], name=fields[2])
        if key.key_id().hex() != fields[3]:
            raise DatatrustError("the key file's id does not match its key", field="key")
        return key

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"]) -> "Key":
        with open(path, encoding="utf-8") as file:
            return cls.from_text(file.read())

    def key_id(self) -> bytes:
        """The 4-byte key id of signed notes: SHA-256(name || "\\n" || 0x01 || key)[:4]."""
        return hashlib.sha256(self.name.encode() + b"\n" + b"\x01" + self.public_key).digest()[:4]

    @property
    def public_key_base64(self) -> str:
        return base64.b64encode(self.public_key).decode()

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)
