"""Receipts (c2sp.org/tlog-proof) verified offline: the checkpoint's signature under the
log's vkey, and the entry's RFC 6962 inclusion in the tree it signs."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import List, Optional

from .errors import VerificationError
from .note import Verifier, open_note


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: List[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162, 2.1.3.2)."""
    if index >= size:
        raise VerificationError("the entry's index is not in the tree")
    fn, sn, hash_ = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise VerificationError("the inclusion proof is too long")
        if fn % 2 == 1 or fn == sn:
            hash_ = _node_hash(sibling, hash_)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            hash_ = _node_hash(hash_, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("the inclusion proof is too short")
    return hash_


@dataclass(frozen=True)
class Receipt:
    """A verified receipt: the logged entry, its index, and the checkpoint that covers it."""

    index: int
    entry: bytes
    size: int
    checkpoint: str

    @property
    def entry_kind(self) -> str:
        """The logged entry's kind (its first line, ``datatrust/v1 <kind>``)."""
        return self.entry.decode().split("\n", 1)[0].removeprefix("datatrust/v1 ")

    def entry_fields(self) -> dict:
        """The logged entry's fields (its ``key: value`` lines)."""
        fields = {}
        for line in self.entry.decode().rstrip("\n").split("\n")[1:]:
            key, _, value = line.partition(": ")
            fields[key] = value
        return fields


def verify_receipt(text: str, log_vkey: str, entry: Optional[bytes] = None) -> Receipt:
    """Checks a ``.tlog-proof``: its checkpoint's signature by ``log_vkey``, and that its
    entry (its ``extra`` line, or ``entry``) is at its index in the signed tree."""
    verifier = Verifier.parse(log_vkey)
    head, separator, note = text.partition("\n\n")
    if not separator:
        raise VerificationError("not a tlog-proof (no blank line before the checkpoint)")
    lines = head.split("\n")
    if lines[0] != "c2sp.org/tlog-proof@v1":
        raise VerificationError("not a c2sp.org/tlog-proof@v1 receipt")
    extra, position = None, 1
    if lines[position].startswith("extra "):
        extra = base64.b64decode(lines[position][6:])
        position += 1
    if not lines[position].startswith("index "):
        raise VerificationError("the receipt has no index")
    index = int(lines[position][6:])
    proof = [base64.b64decode(line) for line in lines[position + 1 :] if line]
    body = open_note(note, verifier)
    origin, size, root = body.split("\n")[:3]
    if origin != verifier.name:
        raise VerificationError(f"the checkpoint is of {origin}, not {verifier.name}")
    logged = entry if entry is not None else extra
    if logged is None:
        raise VerificationError("the receipt carries no entry, and none was given")
    if root_from_inclusion(index, int(size), _leaf_hash(logged), proof) != base64.b64decode(root):
        raise VerificationError("the entry is not in the tree the checkpoint signs")
    return Receipt(index=index, entry=logged, size=int(size), checkpoint=note)
