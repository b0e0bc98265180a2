"""Trainer benchmark: Fashion-MNIST, 60k train images unlabelled + 100 labels (10 per class).

Runs the trainer's own phases (SimCLR pretraining, FixMatch fine-tune, pseudo-labelling) on the
images directly (no S3; canonical images only, so every positive pair comes from the device-side
augmentations), within a wall-clock budget, then evaluates on the 10k test images:

  * kNN accuracy (k=20, cosine, weighted) with the 60k train labels as the reference set, the
    standard self-supervised protocol; raw pixels and the random-init encoder measured the same way;
  * linear probe (logistic regression on the train embeddings, all labels);
  * pseudo-label accuracy and coverage on the test images (the 100 labels are the only supervision);
  * pretraining images/s and wall time.

usage: python bench/trainer_bench.py --minutes 20 [--quick] [--out bench/results/trainer-cpu.json]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu-trainer"))

from pipeline_trainer.config import load_config  # noqa: E402
from pipeline_trainer.evaluate import embed_images, knn_accuracy, linear_probe  # noqa: E402
from pipeline_trainer.finetune import fixmatch_finetune  # noqa: E402
from pipeline_trainer.manifest import InputSpec  # noqa: E402
from pipeline_trainer.model import FitInput, ProjectionHead, build_encoder, encoder_spec  # noqa: E402
from pipeline_trainer.pseudo_label import accuracy_and_coverage, class_thresholds, predict, select, train_classifier  # noqa: E402
from pipeline_trainer.runtime import History, Runtime, SimCLRNet  # noqa: E402
from pipeline_trainer.train import pretrain  # noqa: E402

ROOT = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))


def load(split: str, count: int | None = None):
    with gzip.open(ROOT / f"{split}-images-idx3-ubyte.gz") as fh:
        x = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(ROOT / f"{split}-labels-idx1-ubyte.gz") as fh:
        y = np.frombuffer(fh.read(), np.uint8, offset=8).astype(np.int64)
    return (x[:count], y[:count]) if count else (x, y)


def canonical(x: np.ndarray) -> np.ndarray:
    """28x28 gray -> 32x32 RGB uint8 (bilinear, as a stand-in for the augment function's resize)."""
    t = torch.from_numpy(x).float()[:, None]
    t = F.interpolate(t, size=32, mode="bilinear", align_corners=False).round().clamp(0, 255).to(torch.uint8)
    return t.repeat(1, 3, 1, 1).permute(0, 2, 3, 1).contiguous().numpy()


class NullRecorder:
    def update(self, **_):
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="tiny data and a few steps: checks the benchmark runs (CI)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--preset", default=None, help="a trainer preset (default: the trainer's defaults, i.e. cpu-small)")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n_train, n_test = (2000, 1000) if args.quick else (None, None)
    xtr, ytr = load("train", n_train)
    xte, yte = load("t10k", n_test)
    train, test = canonical(xtr), canonical(xte)
    rng = np.random.default_rng(0)
    labelled = np.concatenate([rng.choice(np.flatnonzero(ytr == c), 10, replace=False) for c in range(10)])
    unlabelled = np.setdiff1d(np.arange(len(train)), labelled)
    spec = InputSpec()
    overrides = ["max_steps=3", "batch_size=64"] if args.quick else []
    cfg = load_config(None, overrides, env={}, preset=args.preset, max_minutes=args.minutes)
    size = cfg.input_size or spec.height
    spec = dataclasses.replace(spec, height=size, width=size)
    started = time.monotonic()
    print(f"[bench] device {device}, {len(train)} train images ({len(labelled)} labelled), {len(test)} test, budget {args.minutes} min", flush=True)

    torch.manual_seed(0)
    small = {"width": cfg.width, "blocks_per_stage": tuple(cfg.blocks_per_stage), "pooled_grid": cfg.pooled_grid}
    # The 32x32 canonical images are resized to the preset's input (FitInput), as a run does.
    encoder = FitInput(build_encoder(encoder_spec(cfg.arch or "small-resnet", 3, cfg.embedding_dim, (size, size), small)), (size, size)).to(device)
    random_init = copy.deepcopy(encoder)
    net = SimCLRNet(encoder, ProjectionHead(cfg.embedding_dim, 2 * cfg.embedding_dim, cfg.projection_dim)).to(device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    rt = Runtime(device=device)
    views = torch.from_numpy(train[:, None]).to(device)  # [N, 1, H, W, C]
    history = History()
    budget = args.minutes * 60
    stats = pretrain(cfg, rt, net, views, spec, budget * cfg.pretrain_share, history, "bench", NullRecorder(), print)
    label_of = {int(r): int(ytr[r]) for r in labelled}
    fixmatch_finetune(cfg, rt, encoder, views, spec, label_of, unlabelled, 10, budget * cfg.finetune_share, history, print)
    wall = time.monotonic() - started

    def evaluate(model) -> dict:
        etr = embed_images(model, train, list(spec.mean), list(spec.std), device)
        ete = embed_images(model, test, list(spec.mean), list(spec.std), device)
        ytr_t, yte_t = torch.from_numpy(ytr).to(device), torch.from_numpy(yte).to(device)
        return {
            "knnAccuracy": knn_accuracy(etr, ytr_t, ete, yte_t, k=20, num_classes=10),
            "linearProbeAccuracy": linear_probe(etr, ytr_t, ete, yte_t, 10),
            "_emb": (etr, ete),
        }

    new = evaluate(encoder)
    base = evaluate(random_init)
    raw_tr = F.normalize(torch.from_numpy(train).float().flatten(1), dim=1).to(device)
    raw_te = F.normalize(torch.from_numpy(test).float().flatten(1), dim=1).to(device)
    raw_knn = knn_accuracy(raw_tr, torch.from_numpy(ytr).to(device), raw_te, torch.from_numpy(yte).to(device), k=20, num_classes=10)
    etr, ete = new.pop("_emb")
    base.pop("_emb")
    # Pseudo-labels as a run publishes them: a fresh linear head on the final encoder and the 100 labels.
    classifier = train_classifier(etr[torch.from_numpy(labelled).to(device)], torch.from_numpy(ytr[labelled]).to(device), 10)
    probs_unl = predict(classifier, etr[torch.from_numpy(unlabelled).to(device)])
    thresholds = class_thresholds(probs_unl, cfg.pseudo_threshold, cfg.per_class_thresholds, warmup=False)
    pl_acc, pl_cov = accuracy_and_coverage(select(predict(classifier, ete), thresholds), yte)
    all_acc = float((predict(classifier, ete).argmax(1).cpu().numpy() == yte).mean())
    result = {
        "benchmark": "trainer",
        "quick": args.quick,
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "budgetMinutes": args.minutes,
        "preset": cfg.preset or "(defaults)",
        "arch": cfg.arch or "small-resnet",
        "inputSize": size,
        "trainImages": len(train),
        "labels": len(labelled),
        "testImages": len(test),
        "pretrainSteps": stats["steps"],
        "pretrainImagesPerSecond": stats["images_per_second"],
        "wallSeconds": round(wall, 1),
        "knnAccuracy": round(new["knnAccuracy"], 4),
        "linearProbeAccuracy": round(new["linearProbeAccuracy"], 4),
        "pseudoLabelAccuracy": round(pl_acc, 4),
        "pseudoLabelCoverage": round(pl_cov, 4),
        "classifierAccuracyAllTest": round(all_acc, 4),
        "rawPixelKnnAccuracy": round(raw_knn, 4),
        "randomInitKnnAccuracy": round(base["knnAccuracy"], 4),
        "randomInitLinearProbeAccuracy": round(base["linearProbeAccuracy"], 4),
        "config": cfg.to_dict(),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=2), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
