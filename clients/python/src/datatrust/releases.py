"""Releases streamed and verified: every part's records against the part's committed root,
every part against the release root, the release root against the log (its receipt)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Iterator, List, Optional, Tuple

from .errors import VerificationError
from .receipt import _leaf_hash, _node_hash, verify_receipt
from .v1 import telemetry_pb2

if TYPE_CHECKING:
    from .client import Client


class CompactRoot:
    """The RFC 6962 root of leaves added one at a time, holding O(log n) hashes."""

    def __init__(self) -> None:
        self._peaks: List[Tuple[int, bytes]] = []

    def push(self, leaf: bytes) -> None:
        size, hash_ = 1, leaf
        while self._peaks and self._peaks[-1][0] == size:
            _, left = self._peaks.pop()
            hash_ = _node_hash(left, hash_)
            size *= 2
        self._peaks.append((size, hash_))

    def root(self) -> bytes:
        if not self._peaks:
            return hashlib.sha256(b"").digest()
        root = self._peaks[-1][1]
        for _, peak in reversed(self._peaks[:-1]):
            root = _node_hash(peak, root)
        return root


def contribution_leaf(commitment: str, count: int, records_root: str) -> bytes:
    return f"datatrust contribution v1\n{commitment}\n{count}\n{records_root}\n".encode()


def verified_metadata(client: "Client", release_id: str) -> telemetry_pb2.Release:
    """The release's metadata, checked: its parts hash to its root, and the root is the one
    logged (the receipt verifies under the log key)."""
    meta = client._call(client.releases.GetRelease, telemetry_pb2.GetReleaseRequest(release_id=release_id)).release
    if meta.state and meta.state != "ready":
        raise VerificationError(f"release {release_id} is still being built", field="release_id")
    receipt = verify_receipt(meta.receipt, client.trust_info.log_vkey)
    logged = receipt.entry_fields()
    if receipt.entry_kind != "release-published" or logged.get("root") != meta.root or logged.get("release") != meta.id:
        raise VerificationError("the release's metadata does not match its log entry")
    leaves = CompactRoot()
    for part in meta.parts:
        leaves.push(_leaf_hash(contribution_leaf(part.commitment, part.count, part.records_root)))
    if leaves.root().hex() != meta.root:
        raise VerificationError("the release's parts do not hash to its logged root")
    return meta


def stream_records(
    client: "Client",
    release_id: str,
    start: int = 0,
    shard: Optional[Tuple[int, int]] = None,
) -> Iterator[Tuple[int, bytes]]:
    """(position, record) for every record from ``start``, each part's records given once
    the whole part has verified against its committed root (so a part is held in memory
    while it is checked). ``shard=(index, count)``: only the parts ``p`` with ``p % count ==
    index``, for one of ``count`` data-loader workers; together they cover every record once.
    Parts of members erased since are skipped (their leaves still count toward the root)."""
    meta = verified_metadata(client, release_id)
    part_start = 0
    for index, part in enumerate(meta.parts):
        part_end = part_start + part.count
        mine = shard is None or index % shard[1] == shard[0]
        if mine and part_end > start and part.count > 0:
            records = _read_part(client, meta.id, index, part_start, part_end)
            if records is not None:
                if len(records) != part.count:
                    raise VerificationError(f"part {index}: {len(records)} records, {part.count} committed")
                root = CompactRoot()
                for record in records:
                    root.push(_leaf_hash(record))
                if root.root().hex() != part.records_root:
                    raise VerificationError(f"part {index}: the records do not match the committed root")
                for offset, record in enumerate(records):
                    if part_start + offset >= start:
                        yield part_start + offset, record
        part_start = part_end


def _read_part(client: "Client", release_id: str, index: int, start: int, end: int) -> Optional[List[bytes]]:
    """The part's records, or None if the part was erased."""
    call = client.releases.StreamRelease(telemetry_pb2.StreamReleaseRequest(release_id=release_id, **{"from": start}))
    records: List[bytes] = []
    try:
        for batch in call:
            if index in batch.erased_parts:
                return None
            for record in batch.records:
                if record.part != index:
                    return records
                records.append(record.record)
            if start + len(records) >= end:
                return records
        return records
    finally:
        cancel = getattr(call, "cancel", None)
        if cancel is not None:
            cancel()
