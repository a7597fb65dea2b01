"""The committed stubs are those proto/ generates now (scripts/generate.py)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parents[1]


def test_the_committed_stubs_are_not_stale(tmp_path):
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.fail("grpc_tools is missing: install the dev extra (pip install -e 'clients/python[dev]')")
    sys.path.insert(0, str(HERE / "scripts"))
    import generate

    generate.generate(tmp_path)
    committed = HERE / "src" / "datatrust" / "v1"
    fresh = tmp_path / "datatrust" / "v1"
    names = sorted(path.name for path in fresh.iterdir())
    assert names == sorted(path.name for path in committed.iterdir() if path.name != "__pycache__")
    for name in names:
        assert (fresh / name).read_bytes() == (committed / name).read_bytes(), (
            f"{name} is stale: run python clients/python/scripts/generate.py"
        )
