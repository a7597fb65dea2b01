"""Against a real `datatrust serve`: sign-in from a key file with token refresh, licenses
verified offline (and a tampered one refused), errors carrying the trust's field."""

from __future__ import annotations

import pathlib
import time

import pytest

import datatrust
from datatrust.v1 import principals_pb2


def test_signs_in_from_the_cli_key_file_and_refreshes_its_token(trust):
    with datatrust.Client(trust.grpc, str(trust.trustee_key)) as client:
        me = client.whoami()
        assert me.role == principals_pb2.ROLE_TRUSTEE
        assert me.public_key == client.key.public_key
        first = client.token()
        # A token about to expire is renewed before the next call.
        client._expires_at = int(time.time()) + 5
        assert client.token() != first
        assert client.whoami().public_key == me.public_key


def test_an_unknown_key_is_refused_with_the_field_named(trust):
    stranger = trust.new_key("stranger")
    with pytest.raises(datatrust.DatatrustError) as refused:
        datatrust.Client(trust.grpc, str(stranger))
    assert refused.value.code == "UNAUTHENTICATED"
    assert refused.value.field == "public_key"


def test_a_license_verifies_offline_and_a_tampered_one_does_not(trust, licensed):
    acme, license_id, _ = licensed
    with datatrust.Client(trust.grpc, str(acme)) as client:
        note = client.license_note(license_id)
        text = datatrust.verify_license(note, *client.license_verifiers())
        assert f"id {license_id}" in text or license_id in text
        tampered = note.replace("acme-agent", "acme-agenz")
        assert tampered != note
        with pytest.raises(datatrust.VerificationError):
            datatrust.verify_license(tampered, *client.license_verifiers())
        # Under the log key (not a license key) it does not verify either.
        with pytest.raises(datatrust.VerificationError):
            datatrust.verify_license(note, client.trust_info.log_vkey)


def test_a_vkey_whose_base64_holds_a_plus_parses():
    # Keys until one's base64 holds a '+': the vkey format's separator.
    import base64
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    while True:
        public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        encoded = base64.b64encode(b"\x01" + public).decode()
        if "+" in encoded:
            break
    key_id = hashlib.sha256(b"trust.test/license\n\x01" + public).digest()[:4].hex()
    verifier = datatrust.Verifier.parse(f"trust.test/license+{key_id}+{encoded}")
    assert verifier.public_key == public


def _run(client, license_id, release, run_id, receipts, family="acme-agent"):
    return client.training_run(
        license_id,
        run_id=run_id,
        model="acme-operator",
        model_version="0.3",
        model_family=family,
        purpose="computer-use-agent-training",
        data=[release],
        receipts=receipts,
    )


def test_a_training_run_is_reported_with_a_verified_receipt(trust, licensed, tmp_path):
    acme, license_id, release = licensed
    with datatrust.Client(trust.grpc, str(acme)) as client:
        with _run(client, license_id, release, "run-1", tmp_path) as run:
            run.accelerator_seconds = 3600
        fields = run.receipt.entry_fields()
        assert run.receipt.entry_kind == "training-use" and fields["run"] == "run-1"
        saved = tmp_path / "run-1.tlog-proof"
        assert saved.read_text() == run.receipt_text
        # A tool we did not write agrees: the CLI verifies the saved receipt.
        trust.cli("receipt", "verify", str(saved), "--vkey", client.trust_info.log_vkey)
        # A tampered receipt does not verify.
        with pytest.raises(datatrust.VerificationError):
            datatrust.verify_receipt(
                run.receipt_text.replace("index ", "index 1", 1), client.trust_info.log_vkey
            )

        # A block that raises is reported too, marked failed.
        with pytest.raises(RuntimeError):
            with _run(client, license_id, release, "run-2", tmp_path) as failed:
                raise RuntimeError("out of memory")
        assert failed.failed and failed.receipt is not None


def test_a_refused_report_is_corrected_and_retried_under_the_same_run_id(trust, licensed, tmp_path):
    acme, license_id, release = licensed
    with datatrust.Client(trust.grpc, str(acme)) as client:
        with pytest.raises(datatrust.DatatrustError) as refused:
            with _run(client, license_id, release, "run-3", tmp_path, family="other-family"):
                pass
        assert refused.value.code == "FAILED_PRECONDITION"
        with _run(client, license_id, release, "run-3", tmp_path) as run:
            pass
        assert run.receipt.entry_fields()["run"] == "run-3"


def test_a_release_streams_verified_resumes_and_shards(trust, licensed):
    acme, license_id, release = licensed
    with datatrust.Client(trust.grpc, str(acme)) as client:
        whole = list(client.release_records(release))
        assert len(whole) > 2 and [position for position, _ in whole] == list(range(len(whole)))
        # Resume from a position: the rest, the same.
        assert list(client.release_records(release, start=5)) == whole[5:]
        # Two data-loader workers: every record exactly once.
        first = list(client.release_records(release, shard=(0, 2)))
        second = list(client.release_records(release, shard=(1, 2)))
        assert first and second
        assert sorted(first + second) == whole


def test_a_tampered_part_is_detected(trust, licensed, monkeypatch):
    acme, license_id, release = licensed
    with datatrust.Client(trust.grpc, str(acme)) as client:
        genuine = client.releases.StreamRelease

        # A test double between client and server: it changes one record in flight.
        def tampering(request, *args, **kwargs):
            for batch in genuine(request, *args, **kwargs):
                if batch.records:
                    batch.records[0].record = batch.records[0].record.replace(b"pointer", b"pointer ")
                yield batch

        monkeypatch.setattr(client.releases, "StreamRelease", tampering)
        with pytest.raises(datatrust.VerificationError):
            list(client.release_records(release))


def test_the_openlineage_event_describes_the_reported_run(trust, licensed, tmp_path):
    from datatrust.integrations import openlineage_run_event

    acme, license_id, release = licensed
    with datatrust.Client(trust.grpc, str(acme)) as client:
        with _run(client, license_id, release, "run-lineage", tmp_path) as run:
            pass
    event = openlineage_run_event(run, job_namespace="acme", job_name="train-operator")
    assert event["eventType"] == "COMPLETE"
    facet = event["run"]["facets"]["datatrust"]
    assert facet["licenseId"] == license_id and facet["logIndex"] == run.receipt.index
    assert event["inputs"] == [{"namespace": f"datatrust://{client.origin}", "name": release}]
    # A receipt in the facet verifies by itself.
    datatrust.verify_receipt(facet["receipt"], client.trust_info.log_vkey)


def test_mlflow_gets_the_license_and_the_receipt(trust, licensed, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="SKIPPED: the mlflow extra is not installed")
    from datatrust.integrations import log_to_mlflow

    acme, license_id, release = licensed
    # A local file store: nothing leaves this machine.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(f"file://{tmp_path / 'mlruns'}")
    with datatrust.Client(trust.grpc, str(acme)) as client:
        with mlflow.start_run() as active:
            with _run(client, license_id, release, "run-mlflow", tmp_path) as run:
                pass
            log_to_mlflow(run)
        logged = mlflow.get_run(active.info.run_id)
        assert logged.data.tags["datatrust.license"] == license_id
        assert logged.data.tags["datatrust.log_index"] == str(run.receipt.index)
        artifacts = pathlib.Path(logged.info.artifact_uri.removeprefix("file://"))
        receipt = (artifacts / "datatrust" / "run-mlflow.tlog-proof").read_text()
        datatrust.verify_receipt(receipt, client.trust_info.log_vkey)


def test_the_torch_dataset_shards_across_workers(trust, licensed):
    pytest.importorskip("torch", reason="SKIPPED: the torch extra is not installed")
    from datatrust.torch import ReleaseDataset

    acme, _, release = licensed
    dataset = ReleaseDataset(lambda: datatrust.Client(trust.grpc, str(acme)), release)
    assert len(list(dataset)) > 2


def test_a_license_is_checked_against_the_log(trust, licensed):
    acme, license_id, _ = licensed
    with datatrust.Client(trust.grpc, str(acme)) as client:
        index = client.license_in_log(client.license_note(license_id))
        assert index > 0


def test_a_members_audit_verifies_offline(trust, licensed, tmp_path):
    acme, license_id, release = licensed
    with datatrust.Client(trust.grpc, str(acme)) as client:
        with _run(client, license_id, release, "run-audited", tmp_path):
            pass
    with datatrust.Client(trust.grpc, str(trust.work / "ada.key")) as ada:
        audit = ada.my_audit()
    mine = [item for item in audit if item.release_id == release]
    assert mine and mine[0].my_records > 0
    assert "run-audited" in mine[0].runs
    # Her statement: the run charges shared with her, each share verified in its sum tree.
    with datatrust.Client(trust.grpc, str(trust.work / "ada.key")) as ada:
        statement = ada.my_statement()
    assert statement and all(line.my_amount >= 0 for line in statement)


def test_a_retry_of_the_same_report_is_the_same_logged_use(trust, licensed, tmp_path):
    acme, license_id, release = licensed
    with datatrust.Client(trust.grpc, str(acme)) as client:
        with _run(client, license_id, release, "run-retried", tmp_path) as run:
            pass
        first = run.receipt.index
        # A pipeline that lost the answer reports the same run again: logged once.
        assert client.report_training_run(run).receipt.index == first
