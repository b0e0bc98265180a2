"""Encoders to import (`npm run pipeline -- models import`), made here without any download, for the
tests and benchmarks of bringing your own encoder.

    detail   a fixed random network with a 128x128 input that is sensitive to fine detail (4x4 patches,
             no pooling before a dense projection): input `image`, output `features`, ONNX only
    fashion  a stand-in "pretrained" encoder: the trainer's small ResNet at 64x64, trained with labels on
             Fashion-MNIST's train split for --seconds, exported as ONNX (`pixels` -> `embedding`) with
             its weights (`encoder.pt` format, for --weights/--arch small-resnet)

    python scripts/make-encoder.py detail --out /tmp/detail.onnx
    python scripts/make-encoder.py fashion --seconds 60 --out /tmp/fashion.onnx --weights-out /tmp/fashion.pt
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu-trainer"))

from pipeline_trainer.export import check_parity, export_onnx  # noqa: E402
from pipeline_trainer.model import EncoderSpec, build_encoder, encoder_to_bytes  # noqa: E402


class DetailNet(torch.nn.Module):
    """Zero-mean 4x4 patch filters (they see edges and texture, not brightness), an odd nonlinearity and a
    dense random projection of every patch: embeddings centred on zero that move with fine detail."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 8, kernel_size=4, stride=4, bias=False)
        with torch.no_grad():
            self.patch.weight -= self.patch.weight.mean(dim=(1, 2, 3), keepdim=True)
            self.patch.weight *= 8
        self.proj = torch.nn.Linear(8 * (size // 4) ** 2, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.tanh(self.patch(x)).flatten(1))


def make_detail(size: int, dim: int, out: str) -> dict:
    torch.manual_seed(7)
    model = DetailNet(size, dim).eval()
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (torch.zeros(2, 3, size, size),),
        buffer,
        input_names=["image"],
        output_names=["features"],
        dynamic_axes={"image": {0: "batch"}, "features": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    Path(out).write_bytes(buffer.getvalue())
    return {"onnx": out, "inputSize": size, "embeddingDim": dim}


def fashion_train(count: int) -> tuple[np.ndarray, np.ndarray]:
    root = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    with gzip.open(root / "train-images-idx3-ubyte.gz") as fh:
        images = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:count]
    with gzip.open(root / "train-labels-idx1-ubyte.gz") as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)[:count]
    return images, labels


def make_fashion(size: int, seconds: float, count: int, out: str, weights_out: str, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    images, labels = fashion_train(count)
    # As the stack feeds it: grey pixels as RGB, resized to the input, pixel / 255 (mean 0, std 1).
    x_all = torch.from_numpy(images).float().div(255).unsqueeze(1).repeat(1, 3, 1, 1)
    x_all = F.interpolate(x_all, size=(size, size), mode="bilinear", align_corners=False)
    y_all = torch.from_numpy(labels.astype(np.int64))
    encoder = build_encoder(EncoderSpec(in_channels=3, embedding_dim=128))
    head = torch.nn.Linear(128, 10)
    opt = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=2e-3, weight_decay=1e-4)
    encoder.train()
    start, steps = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        idx = torch.randint(0, len(x_all), (64,))
        x = x_all[idx]
        flip = torch.rand(len(x)) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        loss = F.cross_entropy(head(encoder(x)), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    encoder.eval()
    onnx_bytes = export_onnx(encoder, 3, size, size)
    parity = check_parity(encoder, onnx_bytes, 3, size, size)
    Path(out).write_bytes(onnx_bytes)
    Path(weights_out).write_bytes(encoder_to_bytes(encoder))
    return {"onnx": out, "weights": weights_out, "arch": "small-resnet", "inputSize": size, "steps": steps, "trainImages": len(x_all), "parity": parity}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    d = sub.add_parser("detail")
    d.add_argument("--size", type=int, default=128)
    d.add_argument("--dim", type=int, default=64)
    d.add_argument("--out", required=True)
    f = sub.add_parser("fashion")
    f.add_argument("--size", type=int, default=64)
    f.add_argument("--seconds", type=float, default=60)
    f.add_argument("--count", type=int, default=60000)
    f.add_argument("--out", required=True)
    f.add_argument("--weights-out", required=True)
    args = parser.parse_args()
    if args.kind == "detail":
        result = make_detail(args.size, args.dim, args.out)
    else:
        result = make_fashion(args.size, args.seconds, args.count, args.out, args.weights_out)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
