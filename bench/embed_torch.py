"""Embedding benchmark, PyTorch side: writes the encoder (ONNX + manifest) the Node side loads,
then times PyTorch eager inference of the same encoder on CPU at each batch size.

usage: python bench/embed_torch.py --out-dir DIR --batches 1,8,32,128 --seconds 3
Prints one JSON object: {"torch": {...per batch...}, "threads": n, "coldStartMs": [...]}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu-trainer"))

from pipeline_trainer.export import export_onnx  # noqa: E402
from pipeline_trainer.init_model import build_initial_encoder  # noqa: E402
from pipeline_trainer.manifest import GateDecision, InputSpec, build_manifest  # noqa: E402
from pipeline_trainer.model import EncoderSpec, encoder_to_bytes  # noqa: E402


def time_batches(model, spec: InputSpec, batches: list[int], seconds: float, channels_last: bool) -> dict:
    out = {}
    with torch.inference_mode():
        for b in batches:
            x = torch.rand(b, spec.channels, spec.height, spec.width)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            for _ in range(3):
                model(x)
            times = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline or len(times) < 5:
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
            mean = statistics.fmean(times)
            out[str(b)] = {
                "imagesPerSecond": round(b / mean, 1),
                "p50LatencyMs": round(statistics.median(times) * 1000, 3),
                "p99LatencyMs": round(sorted(times)[int(0.99 * (len(times) - 1))] * 1000, 3),
                "calls": len(times),
            }
    return out


COLD = """
import time, sys
t0 = time.perf_counter()
import torch
sys.path.insert(0, {trainer!r})
from pipeline_trainer.model import Encoder, encoder_from_bytes
model = encoder_from_bytes(open({weights!r}, 'rb').read()).eval()
with torch.inference_mode():
    model(torch.zeros(1, {c}, {h}, {w}))
print('first-embedding-ms', (time.perf_counter() - t0) * 1000)
"""


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out-dir", required=True)
    p.add_argument("--batches", default="1,8,32,128")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--cold-runs", type=int, default=5)
    a = p.parse_args()
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    spec = InputSpec()
    enc_spec = EncoderSpec(in_channels=spec.channels)
    model = build_initial_encoder(enc_spec, seed=0)
    (out_dir / "encoder.onnx").write_bytes(export_onnx(model, spec.channels, spec.height, spec.width))
    (out_dir / "encoder.pt").write_bytes(encoder_to_bytes(model))
    manifest = build_manifest(
        version="v0",
        parent=None,
        input_spec=spec,
        architecture=enc_spec.to_dict(),
        embedding_dim=enc_spec.embedding_dim,
        metrics={},
        gate=GateDecision(passed=True, reasons=["benchmark"]),
        dataset={"snapshot": None, "images": 0, "labels": 0},
        training={"kind": "random-init", "seed": 0},
    )
    (out_dir / "manifest.json").write_text(json.dumps(manifest))

    batches = [int(b) for b in a.batches.split(",")]
    model = model.eval()
    eager = time_batches(model, spec, batches, a.seconds, channels_last=False)
    cl = time_batches(model.to(memory_format=torch.channels_last), spec, batches, a.seconds, channels_last=True)

    code = COLD.format(
        trainer=str(Path(__file__).resolve().parents[1] / "gpu-trainer"), weights=str(out_dir / "encoder.pt"), c=spec.channels, h=spec.height, w=spec.width
    )
    cold_wall, cold_inside = [], []
    for _ in range(a.cold_runs):
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        cold_wall.append((time.perf_counter() - t0) * 1000)
        cold_inside.append(float(res.stdout.split()[-1]))
    print(
        json.dumps(
            {
                "threads": torch.get_num_threads(),
                "torchVersion": torch.__version__,
                "input": [spec.channels, spec.height, spec.width],
                "torchEager": eager,
                "torchEagerChannelsLast": cl,
                "coldStartMs": {"processToFirstEmbedding": [round(x, 1) for x in cold_wall], "importToFirstEmbedding": [round(x, 1) for x in cold_inside]},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
