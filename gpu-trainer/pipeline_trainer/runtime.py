"""Where a run executes: the device, the process's rank among `torchrun` workers, and the pieces
every phase shares (the SimCLR network wrapper, the loss and accuracy history, the error that
stops a run)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from .config import TrainConfig
from .model import Encoder, ProjectionHead


class TrainingError(RuntimeError):
    """The run cannot continue (no data, no serving model, diverged)."""


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class History:
    loss: list[tuple[float, float]] = field(default_factory=list)
    finetune_loss: list[tuple[float, float]] = field(default_factory=list)
    accuracy: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


class SimCLRNet(torch.nn.Module):
    """Encoder + projection head as one module (one DDP wrapper)."""

    def __init__(self, encoder: Encoder, head: ProjectionHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def setup_runtime(cfg: TrainConfig) -> Runtime:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if world > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
        return Runtime(device=device, rank=dist.get_rank(), world=dist.get_world_size())
    return Runtime(device=torch.device("cuda") if use_cuda else torch.device("cpu"))


def unwrap(net: torch.nn.Module) -> torch.nn.Module:
    return net.module if isinstance(net, torch.nn.parallel.DistributedDataParallel) else net


def _flag_device(rt: Runtime) -> torch.device:
    # NCCL needs CUDA tensors; gloo takes CPU ones.
    return rt.device if rt.device.type == "cuda" else torch.device("cpu")


def rank0_value(rt: Runtime, value: float) -> float:
    """Rank 0's value on every rank (its clock decides when a phase ends, for every rank alike)."""
    if rt.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_flag_device(rt))
    dist.broadcast(t, src=0)
    return float(t.item())


def any_rank(rt: Runtime, flag: bool) -> bool:
    """True on every rank when it is true on any rank."""
    if rt.world == 1:
        return flag
    t = torch.tensor([1 if flag else 0], device=_flag_device(rt))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_over_ranks(rt: Runtime, value: torch.Tensor) -> float:
    """The mean of a scalar over ranks (a logged loss is the whole batch's, not rank 0's share)."""
    if rt.world == 1:
        return float(value)
    t = value.detach().reshape(1).to(dtype=torch.float64, device=_flag_device(rt))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / rt.world


def end_distributed(rt: Runtime) -> None:
    """After pretraining: every rank arrives, then the process group goes, so nothing after it (the
    fine-tune, evaluation and export on rank 0) can wait on a collective."""
    if rt.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def revert_sync_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """SyncBatchNorm layers (DDP on CUDA) back to BatchNorm2d sharing their parameters and running
    statistics, for single-process work once the process group is gone."""
    out = module
    if isinstance(module, torch.nn.SyncBatchNorm):
        out = torch.nn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var, out.num_batches_tracked = module.running_mean, module.running_var, module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, revert_sync_batchnorm(child))
    return out
