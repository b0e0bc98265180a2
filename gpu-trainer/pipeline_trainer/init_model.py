"""`init`: publish a randomly initialised encoder as the first model version.

The embedded stack runs this on first start (no `models/serving.json` yet) so the first upload
can be embedded before any training has happened. Running it again is a no-op while a serving
model exists.
"""

from __future__ import annotations

import torch

from .export import check_parity, export_onnx
from .manifest import GateDecision, InputSpec, build_manifest, git_sha
from .model import Encoder, EncoderSpec, encoder_to_bytes
from .publish import next_version, publish_version, read_serving, set_serving


def build_initial_encoder(spec: EncoderSpec, seed: int) -> Encoder:
    torch.manual_seed(seed)
    return Encoder(spec).eval()


def init_model(client, bucket: str, *, seed: int = 0, input_spec: InputSpec | None = None, spec: EncoderSpec | None = None) -> dict:
    """Publish v0 and point serving at it unless a serving model already exists; returns the pointer."""
    existing = read_serving(client, bucket)
    if existing is not None:
        print(f"serving model already set: {existing['version']} (nothing to do)", flush=True)
        return existing

    input_spec = input_spec or InputSpec()
    spec = spec or EncoderSpec(in_channels=input_spec.channels)
    model = build_initial_encoder(spec, seed)
    onnx_bytes = export_onnx(model, input_spec.channels, input_spec.height, input_spec.width)
    parity = check_parity(model, onnx_bytes, input_spec.channels, input_spec.height, input_spec.width)

    version = next_version(client, bucket)
    manifest = build_manifest(
        version=version,
        parent=None,
        input_spec=input_spec,
        architecture=spec.to_dict(),
        embedding_dim=spec.embedding_dim,
        metrics={"onnxParityMaxAbsDiff": parity},
        gate=GateDecision(passed=True, reasons=["initial randomly initialised encoder; no serving encoder to compare against"]),
        dataset={"snapshot": None, "images": 0, "labels": 0},
        training={"kind": "random-init", "seed": seed, "gitSha": git_sha()},
    )
    publish_version(client, bucket, version, onnx_bytes, encoder_to_bytes(model), manifest)
    pointer = set_serving(client, bucket, version)
    print(f"published {version} (random init, embedding dim {spec.embedding_dim}, ONNX parity {parity:.2e}) and set it serving", flush=True)
    return pointer
