"""Pseudo-labels from few human labels.

A linear classifier on the encoder's (L2-normalised) embeddings is trained on the human labels;
its predictions on unlabelled images are accepted above a per-class confidence threshold.
Per-class thresholds follow FlexMatch (Zhang et al. 2021, Eq. 6-7): a class the model is still
unsure about (few confident predictions, "learning effect" sigma_c) gets a lower threshold, so
rare or hard classes are not starved:

    sigma_c = #{u : argmax p(u) = c and max p(u) > tau}
    beta_c  = sigma_c / max(max_c' sigma_c', N_unused)
    T_c     = max(M(beta_c), floor) * tau,   M(x) = x / (2 - x)

where N_unused counts unlabelled images no class claims confidently yet (the warm-up term).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def train_classifier(
    embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int, *, steps: int = 300, lr: float = 0.05, weight_decay: float = 1e-3, seed: int = 0
) -> torch.nn.Linear:
    """Multinomial logistic regression (full batch, Adam)."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(embeddings.shape[1], num_classes).to(embeddings.device)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    x = F.normalize(embeddings.float(), dim=1)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(head(x) * 10.0, labels).backward()
        opt.step()
    return head.eval()


def predict(head: torch.nn.Linear, embeddings: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.softmax(head(F.normalize(embeddings.float(), dim=1)) * 10.0, dim=1)


def class_thresholds(probs: torch.Tensor, tau: float, per_class: bool = True, warmup: bool = True, floor: float = 0.5) -> torch.Tensor:
    """Per-class confidence thresholds [C] (FlexMatch), or tau for every class.

    `warmup` keeps FlexMatch's N_unused term, which holds every threshold low while most images
    are still unsure: right for long training, too permissive for the pseudo-labels a run publishes.
    `floor` keeps every threshold at or above floor * tau (as FreeMatch's global threshold does):
    a short fine-tune never leaves the warm-up, and near-zero thresholds there let confidently wrong
    pseudo-labels reinforce themselves until one class takes over."""
    num_classes = probs.shape[1]
    if not per_class:
        return torch.full((num_classes,), tau, device=probs.device)
    conf, pred = probs.max(dim=1)
    confident = conf > tau
    sigma = torch.bincount(pred[confident], minlength=num_classes).float()
    unused = float((~confident).sum()) if warmup else 0.0
    beta = sigma / max(float(sigma.max()), unused, 1.0)
    return torch.clamp(beta / (2.0 - beta), min=floor) * tau


@dataclass
class PseudoLabels:
    accepted: torch.Tensor  # bool [N]
    labels: torch.Tensor  # long [N], the argmax class (meaningful where accepted)
    confidence: torch.Tensor  # float [N]
    thresholds: torch.Tensor  # float [C]


def select(probs: torch.Tensor, thresholds: torch.Tensor) -> PseudoLabels:
    conf, pred = probs.max(dim=1)
    return PseudoLabels(accepted=conf >= thresholds[pred], labels=pred, confidence=conf, thresholds=thresholds)


def accuracy_and_coverage(pl: PseudoLabels, truth: np.ndarray) -> tuple[float, float]:
    """Accuracy of the accepted pseudo-labels against known labels, and the accepted share."""
    accepted = pl.accepted.cpu().numpy()
    if accepted.sum() == 0:
        return float("nan"), 0.0
    correct = pl.labels.cpu().numpy()[accepted] == truth[accepted]
    return float(correct.mean()), float(accepted.mean())
