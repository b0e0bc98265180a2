"""Writing model versions and pointers into the artifacts bucket.

A version exists once its manifest exists: the ONNX file is written first, the manifest last,
so a crash in between leaves an orphan file but never a manifest without its encoder.
"""

from __future__ import annotations

import re

from . import keys
from .manifest import ENCODER_FILE, WEIGHTS_FILE, index_name_for, utc_now
from .s3io import get_json, list_keys, put_bytes, put_json

SERVING_POINTER = keys.SERVING_POINTER
CANDIDATE_POINTER = keys.CANDIDATE_POINTER
_VERSION_RE = re.compile(r"^models/v(\d+)/manifest\.json$")


def published_versions(client, bucket: str) -> list[int]:
    numbers = []
    for key in list_keys(client, bucket, keys.MODELS_PREFIX):
        m = _VERSION_RE.match(key)
        if m:
            numbers.append(int(m.group(1)))
    return sorted(numbers)


def next_version(client, bucket: str) -> str:
    versions = published_versions(client, bucket)
    return f"v{(versions[-1] + 1) if versions else 0}"


def publish_version(client, bucket: str, version: str, onnx_bytes: bytes, weights: bytes | None, manifest: dict) -> None:
    """`weights` None: a version without PyTorch weights (an imported ONNX-only encoder, an adapter on one)."""
    put_bytes(client, bucket, keys.model_file(version, ENCODER_FILE), onnx_bytes, "application/octet-stream")
    if weights is not None:
        put_bytes(client, bucket, keys.model_file(version, WEIGHTS_FILE), weights, "application/octet-stream")
    put_json(client, bucket, keys.manifest(version), manifest)


def publish_gated(client, bucket: str, version: str, onnx_bytes: bytes, weights: bytes | None, manifest: dict, job_id: str) -> str:
    """A version that is not a training run's (an import, an adapter head): the version with its
    report, and when its gate passed the candidate pointer that starts the rollout. Returns the run state."""
    publish_version(client, bucket, version, onnx_bytes, weights, manifest)
    put_json(client, bucket, keys.report(version), {"version": version, "jobId": job_id, "gate": manifest["gate"], "metrics": manifest["metrics"]})
    if manifest["gate"]["passed"]:
        set_candidate(client, bucket, version)
    return "published" if manifest["gate"]["passed"] else "rejected"


def pointer_for(version: str) -> dict:
    return {"version": version, "index": index_name_for(version), "updatedAt": utc_now()}


def read_serving(client, bucket: str) -> dict | None:
    return get_json(client, bucket, SERVING_POINTER)


def set_serving(client, bucket: str, version: str) -> dict:
    pointer = pointer_for(version)
    put_json(client, bucket, SERVING_POINTER, pointer)
    return pointer


def set_candidate(client, bucket: str, version: str) -> dict:
    pointer = pointer_for(version)
    put_json(client, bucket, CANDIDATE_POINTER, pointer)
    return pointer


def publish_pseudo_labels(client, bucket: str, version: str, items: list[dict], thresholds: dict[str, float]) -> None:
    """`pseudo-labels/<version>/pseudo-labels.json`: accepted pseudo-labels of unlabelled images, with confidence."""
    doc = {"schemaVersion": 1, "version": version, "createdAt": utc_now(), "thresholds": thresholds, "items": items}
    put_json(client, bucket, keys.pseudo_labels(version), doc)


class RunRecorder:
    """`runs/<jobId>.json`: a training run's state, visible in GET /models."""

    def __init__(self, client, bucket: str, job_id: str, enabled: bool = True) -> None:
        self.client, self.bucket, self.job_id, self.enabled = client, bucket, job_id, enabled
        self.doc = {"jobId": job_id, "state": "running", "startedAt": utc_now(), "updatedAt": utc_now()}

    def update(self, **fields) -> None:
        self.doc.update({k: v for k, v in fields.items() if v is not None}, updatedAt=utc_now())
        if fields.get("state") in ("published", "rejected", "failed"):
            self.doc["finishedAt"] = utc_now()
        if self.enabled:
            put_json(self.client, self.bucket, keys.run(self.job_id), self.doc)
