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
