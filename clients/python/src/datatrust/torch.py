"""A PyTorch ``IterableDataset`` over a release (the ``torch`` extra): each data-loader
worker streams its own share of the parts, each part verified before its records are
given."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import torch.utils.data  # an optional extra: pip install 'datatrust-client[torch]'

from .client import Client


class ReleaseDataset(torch.utils.data.IterableDataset):
    """Records of ``release_id`` as dicts (the release's JSON records). ``connect`` makes a
    :class:`Client` in each worker process (a gRPC channel is not shared across forks)."""

    def __init__(self, connect: Callable[[], Client], release_id: str, start: int = 0):
        super().__init__()
        self._connect = connect
        self._release_id = release_id
        self._start = start

    def __iter__(self) -> Iterator[Any]:
        worker = torch.utils.data.get_worker_info()
        shard = None if worker is None else (worker.id, worker.num_workers)
        with self._connect() as client:
            for _, record in client.release_records(self._release_id, start=self._start, shard=shard):
                yield json.loads(record)
