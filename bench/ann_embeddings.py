"""Real-encoder embeddings of real images for `npm run bench -- ann`: Fashion-MNIST's 70,000 images and
augmented views of them, through an encoder trained on them, not synthetic clusters.

The encoder is an MLP (784-512-128, L2-normalised output) trained with labels on the train split for
--seconds (a cosine classifier on the embedding, with the same augmentations). Every image then gets
--views augmented views (shift up to 2 px, horizontal flip, contrast and brightness jitter, Gaussian
noise), view-major: the first N vectors are every image's first views, so any prefix is a corpus.
Queries are fresh views (another seed) of random images: their nearest neighbours are other views of
the same image and its look-alikes, as when a user searches with a photo of something already stored.

    .venv/bin/python bench/ann_embeddings.py --count 1000000 --queries 1000 --out .cache/ann

Writes vectors.f32 ([count, 128] float32), labels.u8 (class per vector), queries.f32, meta.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

FM = Path("/usr/share/datasets/fashion-mnist")
DIM = 128


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(FM / f"{split}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FM / f"{split}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """x: [B, 1, 28, 28] in 0..1 -> a random view of each."""
    b = x.shape[0]
    shift = (torch.randint(-2, 3, (b, 2), generator=g).float() * 2 / 28).to(x)
    theta = torch.zeros(b, 2, 3).to(x)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
    flip = torch.rand(b, generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    contrast = 0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=g)
    brightness = 0.1 * (torch.rand(b, 1, 1, 1, generator=g) - 0.5)
    noise = 0.03 * torch.randn(x.shape, generator=g)
    return (x * contrast + brightness + noise).clamp(0, 1)


class Encoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.body(x), dim=1)


def train(images: np.ndarray, labels: np.ndarray, seconds: float) -> Encoder:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = Encoder()
    head = torch.nn.Linear(DIM, 10, bias=False)
    opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-3)
    x_all = torch.from_numpy(images).float().div(255).unsqueeze(1)
    y_all = torch.from_numpy(labels.astype(np.int64))
    start, steps = time.time(), 0
    while time.time() - start < seconds:
        idx = torch.randint(0, len(x_all), (256,), generator=g)
        z = model(augment(x_all[idx], g))
        loss = F.cross_entropy(16 * F.linear(z, F.normalize(head.weight, dim=1)), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    print(f"[ann] encoder trained for {steps} steps ({seconds:.0f} s), last loss {loss.item():.3f}", flush=True)
    return model.eval()


@torch.no_grad()
def embed_views(model: Encoder, images: np.ndarray, count: int, seed: int, out) -> int:
    g = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(images).float().div(255).unsqueeze(1)
    written = 0
    while written < count:
        for start in range(0, len(x_all), 4096):
            batch = x_all[start : start + 4096][: count - written]
            z = model(augment(batch, g)).numpy().astype(np.float32)
            out.write(z.tobytes())
            written += len(z)
            if written >= count:
                return written
        print(f"[ann] {written:,} vectors", flush=True)
    return written


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--out", default=".cache/ann")
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    images = np.concatenate([train_x, test_x])
    labels = np.concatenate([train_y, test_y])
    t0 = time.time()
    model = train(train_x, train_y, args.seconds)
    with open(out / "vectors.f32", "wb") as f:
        n = embed_views(model, images, args.count, seed=1, out=f)
    views = np.resize(labels, n).astype(np.uint8)  # view-major: vector i is image i % 70,000
    (out / "labels.u8").write_bytes(views.tobytes())
    rng = np.random.default_rng(2)
    picks = rng.integers(0, len(images), args.queries)
    with open(out / "queries.f32", "wb") as f:
        embed_views(model, images[picks], args.queries, seed=3, out=f)
    meta = {
        "count": n,
        "queries": args.queries,
        "dimension": DIM,
        "images": len(images),
        "encoder": "MLP 784-512-128 (cosine classifier, labels)",
        "trainSeconds": args.seconds,
        "seconds": round(time.time() - t0, 1),
    }
    (out / "meta.json").write_text(json.dumps(meta))
    print(f"[ann] wrote {n:,} vectors and {args.queries} queries to {out} in {meta['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
