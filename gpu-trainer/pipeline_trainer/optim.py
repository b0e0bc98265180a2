"""Optimisers and the learning-rate schedule."""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, progress: float, warmup_steps: int, base_lr: float, final_fraction: float = 0.01) -> float:
    """Linear warm-up over the first warmup_steps, then cosine decay from base_lr to final_fraction * base_lr
    as `progress` (the share of the step or time budget used, 0..1) goes to 1. A pure function."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min(1.0, max(0.0, progress))
    return base_lr * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


class LARS(torch.optim.Optimizer):
    """LARS (You et al. 2017) with SGD momentum; biases and norm parameters skip weight decay and adaptation."""

    def __init__(self, params, lr: float, weight_decay: float = 1e-6, momentum: float = 0.9, trust_coefficient: float = 0.001):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, trust_coefficient=trust_coefficient))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if p.ndim > 1:
                    grad = grad.add(p, alpha=group["weight_decay"])
                    p_norm, g_norm = torch.norm(p), torch.norm(grad)
                    trust = torch.where((p_norm > 0) & (g_norm > 0), group["trust_coefficient"] * p_norm / g_norm, torch.ones_like(p_norm))
                    grad = grad.mul(trust)
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(grad)
                p.add_(buf, alpha=-group["lr"])


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    params = list(params)
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "lars":
        return LARS(groups, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
