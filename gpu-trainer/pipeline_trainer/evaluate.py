"""Held-out evaluation: kNN accuracy, linear probe, pseudo-label accuracy, collapse check."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .augment import normalize, to_unit_float
from .pseudo_label import predict, train_classifier


@torch.no_grad()
def embed_images(model: torch.nn.Module, images: np.ndarray, mean: list[float], std: list[float], device: torch.device, batch: int = 512) -> torch.Tensor:
    """uint8 [N, H, W, C] -> L2-normalised embeddings [N, D] (on `device`)."""
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = normalize(to_unit_float(torch.from_numpy(images[i : i + batch]).to(device)), mean, std)
        out.append(F.normalize(model(x).float(), dim=1))
    return torch.cat(out) if out else torch.zeros(0, 1, device=device)


def knn_accuracy(
    ref: torch.Tensor, ref_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor, k: int = 20, num_classes: int | None = None, t: float = 0.07
) -> float:
    """Weighted kNN (cosine similarity, weights exp(s / t)), as in the self-supervised literature."""
    if len(query) == 0 or len(ref) == 0:
        return float("nan")
    num_classes = num_classes or int(max(ref_y.max(), query_y.max())) + 1
    k = min(k, len(ref))
    sims, idx = (query @ ref.T).topk(k, dim=1)
    votes = torch.zeros(len(query), num_classes, device=query.device)
    votes.scatter_add_(1, ref_y[idx], torch.exp(sims / t))
    return float((votes.argmax(1) == query_y).float().mean())


def linear_probe(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, num_classes: int) -> float:
    if len(test) == 0 or len(train) == 0:
        return float("nan")
    head = train_classifier(train, train_y, num_classes)
    return float((predict(head, test).argmax(1) == test_y).float().mean())


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


def evaluate_encoder(model, images, mean, std, device, train_idx, train_y, holdout_idx, holdout_y, num_classes, k) -> dict[str, float]:
    """kNN and linear probe on the held-out labels (reference: the training labels), plus the collapse check."""
    emb = embed_images(model, images, mean, std, device)
    ty = torch.as_tensor(train_y, device=device)
    hy = torch.as_tensor(holdout_y, device=device)
    stats = collapse_stats(emb)
    return {
        "knnAccuracy": knn_accuracy(emb[train_idx], ty, emb[holdout_idx], hy, k=k, num_classes=num_classes),
        "linearProbeAccuracy": linear_probe(emb[train_idx], ty, emb[holdout_idx], hy, num_classes),
        "finite": bool(torch.isfinite(emb).all()),
        "collapsed": is_collapsed(stats),
        **stats,
    }
