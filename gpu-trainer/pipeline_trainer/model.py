"""The encoder: a small ResNet for low-resolution inputs.

The embedding keeps coarse spatial layout (a 4x4 pooled feature map flattened into a linear
layer) instead of a single global average: at 32x32 pixels the arrangement of parts is much of
what tells classes apart, and global pooling throws it away.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class EncoderSpec:
    """Architecture hyper-parameters; saved in every manifest and checkpoint."""

    in_channels: int = 3
    width: int = 16
    blocks_per_stage: tuple[int, ...] = (1, 1, 1)
    pooled_grid: int = 4
    embedding_dim: int = 128

    def to_dict(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "width": self.width,
            "blocks_per_stage": list(self.blocks_per_stage),
            "pooled_grid": self.pooled_grid,
            "embedding_dim": self.embedding_dim,
        }

    @staticmethod
    def from_dict(d: dict) -> EncoderSpec:
        return EncoderSpec(
            in_channels=int(d["in_channels"]),
            width=int(d["width"]),
            blocks_per_stage=tuple(int(b) for b in d["blocks_per_stage"]),
            pooled_grid=int(d["pooled_grid"]),
            embedding_dim=int(d["embedding_dim"]),
        )


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Encoder(nn.Module):
    """pixels [N, C, H, W] (normalised as the manifest says) -> embedding [N, D] (not normalised)."""

    def __init__(self, spec: EncoderSpec) -> None:
        super().__init__()
        self.spec = spec
        w = spec.width
        self.stem = nn.Sequential(nn.Conv2d(spec.in_channels, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        stages: list[nn.Module] = []
        c_in = w
        for i, n_blocks in enumerate(spec.blocks_per_stage):
            c_out = w * (2**i)
            for b in range(n_blocks):
                stride = 2 if (i > 0 and b == 0) else 1
                stages.append(BasicBlock(c_in, c_out, stride))
                c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(spec.pooled_grid)
        self.feature_dim = c_in * spec.pooled_grid * spec.pooled_grid
        self.embed = nn.Linear(self.feature_dim, spec.embedding_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.stages(self.stem(pixels)))
        return self.embed(torch.flatten(features, 1))


def encoder_to_bytes(model: Encoder) -> bytes:
    """The published weights (`models/<version>/encoder.pt`): spec + state dict, loadable without pickled classes."""
    buffer = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"spec": model.spec.to_dict(), "state_dict": state}, buffer)
    return buffer.getvalue()


def encoder_from_bytes(data: bytes, map_location: str | torch.device = "cpu") -> Encoder:
    payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    model = Encoder(EncoderSpec.from_dict(payload["spec"]))
    model.load_state_dict(payload["state_dict"])
    return model


class ProjectionHead(nn.Module):
    """SimCLR's MLP head g(.) on top of the embedding; only used for the contrastive loss."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)
