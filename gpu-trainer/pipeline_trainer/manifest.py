"""The model manifest: everything the embed path needs to use an encoder without the trainer.

Its JSON Schema is generated from the TypeScript schemas (`schemas/model-manifest.schema.json`)
and the tests validate every manifest this package writes against it.
"""

from __future__ import annotations

import datetime as _dt
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST_SCHEMA_VERSION = 1
ENCODER_FILE = "encoder.onnx"
WEIGHTS_FILE = "encoder.pt"
INPUT_NAME = "pixels"
OUTPUT_NAME = "embedding"


@dataclass(frozen=True)
class InputSpec:
    """How raw RGB pixels become the encoder's input tensor.

    value = (pixel / 255 - mean[c]) / std[c], RGB channel order, NCHW layout; the image is first
    resized to height x width by sharp with the given fit (centre position) and kernel.
    """

    height: int = 32
    width: int = 32
    channels: int = 3
    fit: str = "cover"
    kernel: str = "lanczos3"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    def to_dict(self) -> dict:
        return {
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "layout": "NCHW",
            "channelOrder": "RGB",
            "resize": {"fit": self.fit, "kernel": self.kernel},
            "scale": 255,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @staticmethod
    def from_dict(d: dict) -> InputSpec:
        return InputSpec(
            height=int(d["height"]),
            width=int(d["width"]),
            channels=int(d["channels"]),
            fit=str(d["resize"]["fit"]),
            kernel=str(d["resize"]["kernel"]),
            mean=tuple(float(m) for m in d["mean"]),
            std=tuple(float(s) for s in d["std"]),
        )


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    rule: str | None = None  # which rule decided: the paired test, the label-free checks, sanity only
    comparisons: list[dict] = field(default_factory=list)  # per metric: estimate, interval, sample size, p

    def to_dict(self) -> dict:
        out: dict = {"passed": self.passed, "reasons": list(self.reasons)}
        if self.rule:
            out["rule"] = self.rule
        if self.comparisons:
            out["comparisons"] = [dict(c) for c in self.comparisons]
        return out


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def index_name_for(version: str) -> str:
    """Vector index name for a model version (S3 Vectors: 3-63 chars, lowercase, digits, '-', '.')."""
    return f"emb-{version}"


def build_manifest(
    *,
    version: str,
    parent: str | None,
    input_spec: InputSpec,
    architecture: dict,
    embedding_dim: int,
    metrics: dict,
    gate: GateDecision,
    dataset: dict,
    training: dict,
    input_name: str = INPUT_NAME,
    output_name: str = OUTPUT_NAME,
) -> dict:
    return {
        "schemaVersion": MANIFEST_SCHEMA_VERSION,
        "version": version,
        "createdAt": utc_now(),
        "parent": parent,
        "encoder": {
            "file": ENCODER_FILE,
            "format": "onnx",
            "inputName": input_name,
            "outputName": output_name,
            "embeddingDim": embedding_dim,
            "normalized": False,
            "architecture": architecture,
        },
        "input": input_spec.to_dict(),
        "metrics": metrics,
        "gate": gate.to_dict(),
        "dataset": dataset,
        "training": training,
    }
