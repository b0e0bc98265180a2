"""Writing model versions and pointers into the artifacts bucket.

A version exists once its manifest exists: the ONNX file is written first, the manifest last,
so a crash in between leaves an orphan file but never a manifest without its encoder.
"""

from __future__ import annotations

import re

from .manifest import ENCODER_FILE, WEIGHTS_FILE, index_name_for, utc_now
from .s3io import get_json, list_keys, put_bytes, put_json

SERVING_POINTER = "models/serving.json"
CANDIDATE_POINTER = "models/candidate.json"
_VERSION_RE = re.compile(r"^models/v(\d+)/manifest\.json$")


def published_versions(client, bucket: str) -> list[int]:
    numbers = []
    for key in list_keys(client, bucket, "models/"):
        m = _VERSION_RE.match(key)
        if m:
            numbers.append(int(m.group(1)))
    return sorted(numbers)


def next_version(client, bucket: str) -> str:
    versions = published_versions(client, bucket)
    return f"v{(versions[-1] + 1) if versions else 0}"


def publish_version(client, bucket: str, version: str, onnx_bytes: bytes, weights: bytes, manifest: dict) -> None:
    put_bytes(client, bucket, f"models/{version}/{ENCODER_FILE}", onnx_bytes, "application/octet-stream")
    put_bytes(client, bucket, f"models/{version}/{WEIGHTS_FILE}", weights, "application/octet-stream")
    put_json(client, bucket, f"models/{version}/manifest.json", manifest)


def pointer_for(version: str) -> dict:
    return {"version": version, "index": index_name_for(version), "updatedAt": utc_now()}


def read_serving(client, bucket: str) -> dict | None:
    return get_json(client, bucket, SERVING_POINTER)


def set_serving(client, bucket: str, version: str) -> dict:
    pointer = pointer_for(version)
    put_json(client, bucket, SERVING_POINTER, pointer)
    return pointer
