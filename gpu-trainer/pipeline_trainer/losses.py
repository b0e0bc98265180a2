"""Contrastive loss (one loss per file, as in lightly / solo-learn)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _gather_with_grad(z: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """All ranks' rows, with gradients flowing back to each rank's own rows; (all, rank, world)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z, 0, 1
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(z), dim=0), dist.get_rank(), dist.get_world_size()


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020, Algorithm 1).

    z1, z2: [n, d] projections of two views of the same n images (row i of z1 and of z2 are a
    positive pair). With s(u, v) = u.v / (|u||v|) over all 2N views of the global batch,

        l(i, j) = -log( exp(s_ij / t) / sum_{k != i} exp(s_ik / t) )
        L = 1 / (2N) * sum_k [ l(2k-1, 2k) + l(2k, 2k-1) ]

    Under torch.distributed, negatives come from every rank (all_gather with gradients) and the
    loss is this rank's share of the global mean, so summing gradients over ranks (DDP averages)
    reproduces the single-process loss on the whole batch.
    """
    n = z1.shape[0]
    z1 = F.normalize(z1.float(), dim=1)
    z2 = F.normalize(z2.float(), dim=1)
    all1, rank, world = _gather_with_grad(z1)
    all2, _, _ = _gather_with_grad(z2)
    big_n = all1.shape[0]
    candidates = torch.cat([all1, all2], dim=0)  # [2N, d]: first views of every rank, then second views
    local = torch.cat([z1, z2], dim=0)  # [2n, d]
    logits = local @ candidates.T / temperature  # [2n, 2N]
    rows = torch.arange(n, device=z1.device)
    own = rank * n + rows
    self_index = torch.cat([own, own + big_n])
    positive_index = torch.cat([own + big_n, own])
    logits = logits.masked_fill(F.one_hot(self_index, 2 * big_n).bool(), float("-inf"))
    loss = F.cross_entropy(logits, positive_index, reduction="sum") / (2 * big_n)
    # DDP averages gradients over ranks; scale so the sum over ranks is the global mean.
    return loss * world
