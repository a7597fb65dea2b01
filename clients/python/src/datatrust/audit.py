"""What members and auditors script: a member's audit verified offline, and a license
checked against the log. Read-only helpers, not a second CLI."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, List

from .errors import VerificationError
from .receipt import _leaf_hash, root_from_inclusion, verify_receipt
from .releases import CompactRoot, contribution_leaf
from .v1 import log_pb2, log_pb2_grpc, telemetry_pb2

if TYPE_CHECKING:
    from .client import Client


@dataclass
class AuditItem:
    """A release holding the member's records, and the training runs that used it, each
    verified against the log."""

    release_id: str
    license_id: str
    purpose: str
    my_records: int
    runs: List[str]


def my_audit(client: "Client") -> List[AuditItem]:
    """The calling member's audit, every page, each entry verified offline: her
    contribution is committed to her identity and salt, included in the release root, the
    release and each use are logged (receipts under the log key)."""
    log_vkey = client.trust_info.log_vkey
    me = client.principal.public_key  # her identity: her first key, whatever key signs now
    items: List[AuditItem] = []
    token = ""
    while True:
        page = client._call(
            client.member_data.GetMyAudit, telemetry_pb2.GetMyAuditRequest(page_size=100, page_token=token)
        )
        salt = page.commitment_salt
        for entry in page.entries:
            commitment = hashlib.sha256(
                b"datatrust release commitment v1\n" + salt + me + entry.release_id.encode()
            ).hexdigest()
            if commitment != entry.commitment:
                raise VerificationError(f"release {entry.release_id}: the contribution is not committed to you")
            leaf = _leaf_hash(contribution_leaf(commitment, entry.my_records, entry.records_root))
            root = root_from_inclusion(entry.part_index, entry.parts, leaf, list(entry.proof))
            if root.hex() != entry.release_root:
                raise VerificationError(f"release {entry.release_id}: your contribution is not in its root")
            release_receipt = verify_receipt(entry.release_receipt, log_vkey)
            logged = release_receipt.entry_fields()
            if (
                release_receipt.entry_kind != "release-published"
                or logged.get("release") != entry.release_id
                or logged.get("root") != entry.release_root
                or logged.get("license") != entry.license_id
            ):
                raise VerificationError(f"release {entry.release_id}: the logged release does not match")
            for use in entry.uses:
                use_receipt = verify_receipt(use.receipt, log_vkey)
                fields = use_receipt.entry_fields()
                if (
                    use_receipt.entry_kind != "training-use"
                    or fields.get("license") != entry.license_id
                    or entry.release_id not in fields.get("data", "").split(",")
                ):
                    raise VerificationError(f"run {use.run_id}: the logged use does not match")
            items.append(
                AuditItem(entry.release_id, entry.license_id, entry.purpose, entry.my_records,
                          [use.run_id for use in entry.uses])
            )
        if not page.next_page_token:
            return items
        token = page.next_page_token


def license_in_log(client: "Client", note: str) -> int:
    """Checks a license against the log: every entry read and the tree recomputed to the
    signed checkpoint; the license's issuance is there, signed by the key that was the
    license key then, and no revocation follows. Returns the issuance's index."""
    from .note import Verifier, open_note

    # The license's text and id, from the note under the trust's key that signed it.
    text = None
    for signer in client.license_verifiers():
        try:
            text = open_note(note, signer)
            break
        except VerificationError:
            continue
    if text is None:
        raise VerificationError("the license does not verify under any of the trust's license keys")
    text_hash = hashlib.sha256(text.encode()).hexdigest()
    license_id = next((line[4:] for line in text.split("\n") if line.startswith("id: ")), None)
    if license_id is None:
        raise VerificationError("the note is not a license (no id)")
    log_vkey = client.trust_info.log_vkey
    log = log_pb2_grpc.LogServiceStub(client._channel)
    checkpoint = client._call(log.GetCheckpoint, log_pb2.GetCheckpointRequest()).checkpoint
    body = open_note(checkpoint, Verifier.parse(log_vkey))
    _, size, root = body.split("\n")[:3]
    size = int(size)
    tree = CompactRoot()
    license_key = None
    issued = None
    key_at_issuance = None
    revoked = False
    start = 0
    while start < size:
        end = min(start + 1000, size)
        entries = client._call(log.GetEntries, log_pb2.GetEntriesRequest(start=start, end=end)).entries
        for offset, entry in enumerate(entries):
            tree.push(_leaf_hash(entry))
            lines = entry.decode(errors="replace").rstrip("\n").split("\n")
            kind = lines[0].removeprefix("datatrust/v1 ")
            fields = dict(line.partition(": ")[::2] for line in lines[1:])
            if kind == "trust-created":
                license_key = fields.get("license-vkey")
            elif kind == "license-key-rotated":
                license_key = fields.get("vkey")
            if fields.get("license") != license_id:
                continue
            if kind == "license-issued" and fields.get("license-sha256") == text_hash:
                issued = start + offset
                key_at_issuance = license_key
            elif kind == "license-revoked":
                revoked = True
        start = end
    if tree.root() != base64.b64decode(root):
        raise VerificationError("ALERT: the entries the server sent do not match its signed checkpoint")
    if issued is None:
        raise VerificationError("no issuance of this exact license is in the log")
    if key_at_issuance is None or Verifier.parse(key_at_issuance) != signer:
        raise VerificationError("the license is signed by a key that was not the license key at its issuance")
    if revoked:
        raise VerificationError("the license is revoked")
    return issued


@dataclass
class StatementLine:
    """A charge that paid the member: her share, verified."""

    charge_id: str
    currency: str
    my_records: int
    my_amount: int


def _u64(value: int) -> bytes:
    return int(value).to_bytes(8, "big")


def _sum_parent(left: tuple, right: tuple) -> tuple:
    records, amount = left[1] + right[1], left[2] + right[2]
    if records >= 1 << 64 or amount >= 1 << 64:
        raise VerificationError("the sums overflow")
    digest = hashlib.sha256(
        b"\x01" + left[0] + _u64(left[1]) + _u64(left[2]) + right[0] + _u64(right[1]) + _u64(right[2])
    ).digest()
    return digest, records, amount


def _largest_power_of_two_below(n: int) -> int:
    power = 1
    while power * 2 < n:
        power *= 2
    return power


def my_statement(client: "Client") -> List[StatementLine]:
    """The calling member's statement, every page, each share verified offline: committed to
    her identity and salt, in the charge's Merkle sum tree whose root adds up to the charge,
    and the charge logged with that root (its receipt under the log key)."""
    from .v1 import compensation_pb2, compensation_pb2_grpc

    ledger = client.ledger
    log_vkey = client.trust_info.log_vkey
    me = client.principal.public_key
    lines: List[StatementLine] = []
    token = ""
    while True:
        page = client._call(
            ledger.GetMyStatement, compensation_pb2.GetMyStatementRequest(page_size=200, page_token=token)
        )
        salt = page.commitment_salt
        for line in page.lines:
            charge = line.charge
            commitment = hashlib.sha256(
                b"datatrust share commitment v1\n" + salt + me + charge.id.encode()
            ).hexdigest()
            if commitment != line.commitment:
                raise VerificationError(f"charge {charge.id}: the share is not committed to you")
            leaf = _leaf_hash(f"datatrust share v1\n{commitment}\n{line.my_records}\n{line.my_amount}\n".encode())
            node = (leaf, line.my_records, line.my_amount)
            index, size, sides = line.leaf_index, charge.share_leaves, []
            if index >= size:
                raise VerificationError(f"charge {charge.id}: the leaf is outside the tree")
            while size > 1:
                split = _largest_power_of_two_below(size)
                if index < split:
                    sides.append(True)
                    size = split
                else:
                    sides.append(False)
                    index -= split
                    size -= split
            sides.reverse()
            if len(sides) != len(line.proof):
                raise VerificationError(f"charge {charge.id}: the proof has the wrong length")
            for left, sibling in zip(sides, line.proof):
                other = (sibling.hash, sibling.records, sibling.amount)
                node = _sum_parent(node, other) if left else _sum_parent(other, node)
            root = line.root
            if (node[0], node[1], node[2]) != (root.hash, root.records, root.amount):
                raise VerificationError(f"charge {charge.id}: your share is not in the sum tree")
            if node[2] != charge.amount:
                raise VerificationError(f"charge {charge.id}: the shares do not add up to the charge")
            charge_receipt = verify_receipt(line.receipt, log_vkey)
            fields = charge_receipt.entry_fields()
            expected = {
                "charge": charge.id, "license": charge.license_id, "amount": str(charge.amount),
                "share-root": node[0].hex(), "share-amount": str(node[2]),
                "share-records": str(node[1]), "share-leaves": str(charge.share_leaves),
                "currency": charge.currency,
            }
            if charge_receipt.entry_kind != "charge" or any(
                fields.get(key) != value for key, value in expected.items()
            ):
                raise VerificationError(f"charge {charge.id}: the logged charge does not match")
            lines.append(StatementLine(charge.id, charge.currency, line.my_records, line.my_amount))
        if not page.next_page_token:
            return lines
        token = page.next_page_token
