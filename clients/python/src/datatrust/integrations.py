"""Outputs for the company's own tools: MLflow (the receipt and license on the run) and an
OpenLineage run event (for its lineage system; the trust itself accepts only signed
reports, never lineage events)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any, Dict, Optional

from .training import TrainingRun

PRODUCER = "https://github.com/datatrust/datatrust/clients/python"
FACET_SCHEMA = PRODUCER + "/schemas/DatatrustRunFacet.json"


def openlineage_run_event(
    run: TrainingRun,
    *,
    job_namespace: str,
    job_name: str,
    event_time: Optional[datetime.datetime] = None,
) -> Dict[str, Any]:
    """An OpenLineage RunEvent (COMPLETE, or FAIL when the block raised) for a reported run:
    the releases it used as input datasets, and a ``datatrust`` run facet with the license,
    the logged entry's index and the checkpoint that covers it."""
    report = run.report
    origin = report.trust
    facet: Dict[str, Any] = {
        "_producer": PRODUCER,
        "_schemaURL": FACET_SCHEMA,
        "trust": origin,
        "licenseId": report.license_id,
        "runId": report.run_id,
        "model": {"id": report.model_id, "version": report.model_version, "family": report.model_family},
        "purpose": report.purpose,
    }
    if run.receipt is not None:
        facet["logIndex"] = run.receipt.index
        facet["logSize"] = run.receipt.size
        facet["receipt"] = run.receipt_text
    return {
        "eventType": "FAIL" if run.failed else "COMPLETE",
        "eventTime": (event_time or datetime.datetime.now(datetime.timezone.utc)).isoformat(),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {
            "runId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"datatrust://{origin}/{report.license_id}/{report.run_id}")),
            "facets": {"datatrust": facet},
        },
        "job": {"namespace": job_namespace, "name": job_name},
        "inputs": [{"namespace": f"datatrust://{origin}", "name": release} for release in report.data],
        "outputs": [],
    }


def log_to_mlflow(run: TrainingRun, mlflow: Any = None) -> None:
    """Records the run's license and receipt on the active MLflow run: tags
    ``datatrust.license``, ``datatrust.run``, ``datatrust.log_index``, and the receipt as
    the artifact ``datatrust/<run>.tlog-proof``. ``mlflow`` defaults to the installed one."""
    if mlflow is None:
        import mlflow  # an optional extra

    mlflow.set_tag("datatrust.trust", run.report.trust)
    mlflow.set_tag("datatrust.license", run.report.license_id)
    mlflow.set_tag("datatrust.run", run.report.run_id)
    if run.receipt is not None:
        mlflow.set_tag("datatrust.log_index", str(run.receipt.index))
        mlflow.log_text(run.receipt_text or "", f"datatrust/{run.report.run_id}.tlog-proof")
