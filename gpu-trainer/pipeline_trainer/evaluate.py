"""Held-out evaluation: kNN accuracy, linear probe, pseudo-label accuracy, collapse check."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .augment import normalize, to_unit_float
from .pseudo_label import predict, train_classifier
from .store import on_device


@torch.no_grad()
def embed_images(model: torch.nn.Module, images, mean: list[float], std: list[float], device: torch.device, batch: int = 512, rows=None) -> torch.Tensor:
    """uint8 [N, H, W, C] (an array, or a column of Views read `batch` rows at a time) -> L2-normalised
    embeddings [N, D] (on `device`); `rows`: only these rows, in this order."""
    model.eval()
    out = []
    count = len(images) if rows is None else len(rows)
    for i in range(0, count, batch):
        chunk = images[i : i + batch] if rows is None else images[np.asarray(rows[i : i + batch])]
        x = normalize(to_unit_float(on_device(chunk, device)), mean, std)
        out.append(F.normalize(model(x).float(), dim=1))
    return torch.cat(out) if out else torch.zeros(0, 1, device=device)


def knn_correct(
    ref: torch.Tensor, ref_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor, k: int = 20, num_classes: int | None = None, t: float = 0.07
) -> np.ndarray:
    """Per query image, whether weighted kNN (cosine similarity, weights exp(s / t)) classifies it right."""
    if len(query) == 0 or len(ref) == 0:
        return np.zeros(0, dtype=bool)
    num_classes = num_classes or int(max(ref_y.max(), query_y.max())) + 1
    k = min(k, len(ref))
    sims, idx = (query @ ref.T).topk(k, dim=1)
    votes = torch.zeros(len(query), num_classes, device=query.device)
    votes.scatter_add_(1, ref_y[idx], torch.exp(sims / t))
    return (votes.argmax(1) == query_y).cpu().numpy()


def knn_accuracy(
    ref: torch.Tensor, ref_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor, k: int = 20, num_classes: int | None = None, t: float = 0.07
) -> float:
    """Weighted kNN accuracy, as in the self-supervised literature."""
    correct = knn_correct(ref, ref_y, query, query_y, k, num_classes, t)
    return float(correct.mean()) if len(correct) else float("nan")


def probe_correct(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, num_classes: int) -> np.ndarray:
    """Per test image, whether a linear probe trained on `train` classifies it right."""
    if len(test) == 0 or len(train) == 0:
        return np.zeros(0, dtype=bool)
    head = train_classifier(train, train_y, num_classes)
    return (predict(head, test).argmax(1) == test_y).cpu().numpy()


def linear_probe(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, num_classes: int) -> float:
    correct = probe_correct(train, train_y, test, test_y, num_classes)
    return float(correct.mean()) if len(correct) else float("nan")


@torch.no_grad()
def view_stats(model: torch.nn.Module, views: np.ndarray, mean: list[float], std: list[float], device: torch.device, limit: int = 1000) -> dict[str, float]:
    """Label-free quality on two Lambda views of up to `limit` images (Wang & Isola): alignment, the
    mean squared distance between an image's two views (lower: more invariant), and uniformity,
    log E exp(-2 |z_i - z_j|^2) over different images (lower: better spread). A collapsed encoder
    has perfect alignment and the worst uniformity, so neither decides alone."""
    if views is None or len(views) < 2 or views.shape[1] < 2:
        return {}
    rows = np.linspace(0, len(views) - 1, num=min(limit, len(views))).astype(np.int64)
    z1 = embed_images(model, np.ascontiguousarray(views[rows, 0]), mean, std, device)
    z2 = embed_images(model, np.ascontiguousarray(views[rows, 1]), mean, std, device)
    alignment = float((z1 - z2).pow(2).sum(1).mean())
    sq = torch.cdist(z1, z1).pow(2)
    off = ~torch.eye(len(z1), dtype=torch.bool, device=z1.device)
    uniformity = float(torch.log(torch.exp(-2 * sq[off]).mean()))
    return {"alignment": alignment, "uniformity": uniformity}


def collapse_stats(embeddings: torch.Tensor) -> dict[str, float]:
    """Spread of L2-normalised embeddings: mean per-dimension std (about 1/sqrt(D) when spread out) and effective rank."""
    if len(embeddings) < 2:
        return {"stdMean": float("nan"), "stdExpected": float("nan"), "effectiveRank": float("nan")}
    e = embeddings.float()
    std = float(e.std(dim=0).mean())
    s = torch.linalg.svdvals(e - e.mean(0))
    p = s / s.sum()
    rank = float(torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()))
    return {"stdMean": std, "stdExpected": 1 / math.sqrt(e.shape[1]), "effectiveRank": rank}


def is_collapsed(stats: dict[str, float]) -> bool:
    """Collapse: (nearly) every image mapped to one point or onto a line. A concentrated but full-rank
    cloud (common on narrow data such as Fashion-MNIST) is not collapse."""
    return not (stats["stdMean"] > 0.05 * stats["stdExpected"] and stats["effectiveRank"] >= 2.0)


def evaluate_heldout(
    model, images, mean, std, device, train_idx, train_y, holdout_idx, holdout_y, num_classes, k
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """kNN and linear probe on the held-out labels (reference: the training labels), plus the collapse
    check; and, per metric, which held-out images were classified right (for the gate's paired test)."""
    emb = embed_images(model, images, mean, std, device)
    stats = collapse_stats(emb)
    base = {"finite": bool(torch.isfinite(emb).all()), "collapsed": is_collapsed(stats), **stats}
    if not num_classes or len(holdout_idx) == 0 or len(train_idx) == 0:
        return {"knnAccuracy": float("nan"), "linearProbeAccuracy": float("nan"), **base}, {}
    ty = torch.as_tensor(train_y, device=device)
    hy = torch.as_tensor(holdout_y, device=device)
    correct = {
        "knnAccuracy": knn_correct(emb[train_idx], ty, emb[holdout_idx], hy, k=k, num_classes=num_classes),
        "linearProbeAccuracy": probe_correct(emb[train_idx], ty, emb[holdout_idx], hy, num_classes),
    }
    return {**{m: float(c.mean()) for m, c in correct.items()}, **base}, correct
