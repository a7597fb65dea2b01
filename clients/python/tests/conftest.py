"""A real `datatrust serve` on a temporary data directory, for the whole test session, and
the CLI to set it up (the binary: DATATRUST_BINARY, or the checkout's target/debug)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def binary() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("DATATRUST_BINARY", ROOT / "target" / "debug" / "datatrust"))
    if not path.exists():
        pytest.fail(f"{path} does not exist: build it first (cargo build -p datatrust-cli)")
    return path


class Trust:
    def __init__(self, work: pathlib.Path, process: subprocess.Popen, grpc: str):
        self.work = work
        self.process = process
        self.grpc = grpc
        self.trustee_key = work / "data" / "initial-trustee.key"

    def cli(self, *arguments: str, key: "pathlib.Path | None" = None) -> str:
        command = [str(binary()), *arguments, "--server", f"http://{self.grpc}"]
        if key is not None:
            command += ["--key", str(key)]
        done = subprocess.run(command, cwd=self.work, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(arguments)} failed: {done.stderr}{done.stdout}")
        return done.stdout.strip()

    def new_key(self, name: str) -> pathlib.Path:
        path = self.work / f"{name}.key"
        subprocess.run([str(binary()), "key", "generate", "--out", str(path)], check=True, capture_output=True)
        return path

    def public(self, key: pathlib.Path) -> str:
        return subprocess.run(
            [str(binary()), "key", "show", "--key", str(key)], check=True, capture_output=True, text=True
        ).stdout.strip()


@pytest.fixture(scope="session")
def trust():
    with tempfile.TemporaryDirectory() as directory:
        work = pathlib.Path(directory)
        process = subprocess.Popen(
            [str(binary()), "serve", "--data-dir", str(work / "data"), "--grpc-addr", "127.0.0.1:0",
             "--http-addr", "127.0.0.1:0", "--origin", "python.test"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        grpc = None
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("grpc listening on "):
                grpc = line.split("//", 1)[1].strip()
            if line.startswith("http listening on "):
                break
        assert grpc, "the server printed its gRPC address"
        try:
            yield Trust(work, process, grpc)
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="session")
def licensed(trust):
    """Terms ratified, a licensee with a license and a release under it: (licensee key
    path, license id, release id)."""
    t1 = trust.trustee_key
    t2 = trust.new_key("t2")
    trust.cli("trustee", "add-trustee", "--public-key", trust.public(t2), "--name", "Second", key=t1)
    ada = trust.new_key("ada")
    trust.cli("trustee", "enrol-member", "--public-key", trust.public(ada), "--name", "Ada", key=t1)
    terms = ROOT / "terms" / "example-agreement.toml"
    digest = trust.cli("trustee", "propose-terms", str(terms), "--get", "sha256", key=t1)
    trust.cli("member", "vote", "--terms", digest, "--yes", key=ada)
    trust.cli("trustee", "close-vote", "--terms", digest, key=t1)
    for key in (t1, t2):
        trust.cli("trustee", "countersign", "--terms", digest, key=key)
    # Two members' telemetry, consented, so that a release has two parts.
    laptop = trust.new_key("laptop")
    trust.cli("trustee", "register-collector", "--public-key", trust.public(laptop), "--name", "Laptop", key=t1)
    bea = trust.new_key("bea")
    trust.cli("trustee", "enrol-member", "--public-key", trust.public(bea), "--name", "Bea", key=t1)
    for member, device in ((ada, "ada-laptop"), (bea, "bea-laptop")):
        trust.cli("member", "authorize-collector", "--collector-key", trust.public(laptop), key=member)
        trust.cli("member", "consent", "--purpose", "computer-use-agent-training", key=member)
        trust.cli(
            "collector", "upload", "--member", trust.public(member), "--device", device,
            "--file", str(ROOT / "examples" / "ada-laptop.jsonl"), "--shift-to-now", key=laptop,
        )
    acme = trust.new_key("acme")
    trust.cli("trustee", "register-licensee", "--public-key", trust.public(acme), "--name", "Acme", key=t1)
    now = int(time.time())
    request = trust.cli(
        "company", "request-license", "--purpose", "computer-use-agent-training", "--categories", "pointer",
        "--data-from", str(now - 7 * 86_400), "--data-to", str(now), "--model-family", "acme-agent",
        "--runs", "20", "--days", "30", "--get", "id", key=acme,
    )
    trust.cli("trustee", "approve", "--request", request, key=t1)
    license_id = trust.cli("trustee", "approve", "--request", request, "--get", "license_id", key=t2)
    release = trust.cli("company", "release", "--license", license_id, "--get", "id", key=acme)
    return acme, license_id, release
