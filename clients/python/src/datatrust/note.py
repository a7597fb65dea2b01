"""C2SP signed notes (c2sp.org/signed-note): what licenses and checkpoints are."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import VerificationError


@dataclass(frozen=True)
class Verifier:
    """A verifier key (vkey): ``<name>+<8 hex key id>+<base64 of 0x01 || public key>``."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, text: str) -> "Verifier":
        # The key's base64 may hold '+' too: name and id are the first two fields.
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise VerificationError("a vkey is name+id+key", field="vkey")
        name, key_id, key = parts
        typed = base64.b64decode(key)
        if len(typed) != 33 or typed[0] != 1:
            raise VerificationError("not an Ed25519 vkey", field="vkey")
        expected = hashlib.sha256(name.encode() + b"\n" + typed).digest()[:4]
        if expected.hex() != key_id:
            raise VerificationError("the vkey's id does not match its key", field="vkey")
        return cls(name, expected, typed[1:])


def open_note(note: str, *verifiers: Verifier) -> str:
    """The note's text, once a signature by one of ``verifiers`` verifies over it."""
    text, separator, signatures = note.rpartition("\n\n")
    if not separator:
        raise VerificationError("not a signed note (no blank line before the signatures)")
    text += "\n"
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            raise VerificationError("a signature line must start with an em dash")
        name, _, encoded = line[2:].partition(" ")
        signature = base64.b64decode(encoded)
        for verifier in verifiers:
            if verifier.name != name or signature[:4] != verifier.key_id:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(verifier.public_key).verify(signature[4:], text.encode())
            except InvalidSignature:
                raise VerificationError(f"the signature by {name} does not verify: the note was changed") from None
            return text
    raise VerificationError("no signature by a given key")
