"""The encoders (`arch`): a small ResNet for low-resolution inputs (`small-resnet`, <= 64 px),
ResNet-18 and ResNet-50 with the standard ImageNet stem (`resnet18`, `resnet50`), and a ViT-S/16
(`vit-s16`), each at the input size of its manifest. Written here rather than taken from timm:
timm requires torchvision, whose wheel does not load with the CPU build of torch the tests use.

The small ResNet keeps coarse spatial layout (a 4x4 pooled feature map flattened into a linear
layer) instead of a single global average: at 32x32 pixels the arrangement of parts is much of
what tells classes apart, and global pooling throws it away. The ImageNet-stem networks pool
globally, as they were designed to.
"""

from __future__ import annotations

import dataclasses
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

    arch = "small-resnet"

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
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


# ---- ResNet-18 / ResNet-50 with the ImageNet stem ----------------------------------------------------


@dataclass(frozen=True)
class ResNetSpec:
    arch: str = "resnet18"  # resnet18 | resnet50
    in_channels: int = 3
    embedding_dim: int = 256

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        nn.init.zeros_(self.bn3.weight)  # each residual branch starts as identity (Goyal et al.)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """He et al.'s ResNet: 7x7/2 convolution and 3x3/2 max-pool stem, four stages (64-512 wide),
    global average pooling, then a linear embedding."""

    LAYOUT = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet50": ("bottleneck", (3, 4, 6, 3))}

    def __init__(self, spec: ResNetSpec) -> None:
        super().__init__()
        self.spec = spec
        kind, blocks = self.LAYOUT[spec.arch]
        self.stem = nn.Sequential(nn.Conv2d(spec.in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        layers: list[nn.Module] = []
        c_in = 64
        for i, n in enumerate(blocks):
            width = 64 * 2**i
            for b in range(n):
                stride = 2 if (i > 0 and b == 0) else 1
                if kind == "basic":
                    block = BasicBlock(c_in, width, stride)
                    nn.init.zeros_(block.bn2.weight)
                    c_in = width
                else:
                    block = Bottleneck(c_in, width, stride)
                    c_in = width * Bottleneck.expansion
                layers.append(block)
        self.stages = nn.Sequential(*layers)
        self.feature_dim = c_in
        self.embed = nn.Linear(c_in, spec.embedding_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(pixels)).mean(dim=(2, 3))
        return self.embed(features)


# ---- ViT-S/16 ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViTSpec:
    arch: str = "vit-s16"
    in_channels: int = 3
    embedding_dim: int = 256
    image_size: tuple[int, int] = (224, 224)
    patch: int = 16
    dim: int = 384
    depth: int = 12
    heads: int = 6

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "image_size": list(self.image_size)}


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(n, t, d))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTEncoder(nn.Module):
    """Dosovitskiy et al.'s ViT (the S/16 size of DeiT): 16x16 patches, a class token, learned
    position embeddings for the configured image size, pre-norm blocks; the class token's final
    state, linearly embedded."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.spec = spec
        h, w = spec.image_size
        if h % spec.patch or w % spec.patch:
            raise ValueError(f"vit: input {h}x{w} is not a multiple of the {spec.patch}-pixel patch")
        tokens = (h // spec.patch) * (w // spec.patch)
        self.patch_embed = nn.Conv2d(spec.in_channels, spec.dim, spec.patch, spec.patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, spec.dim))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, spec.dim) * 0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(spec.dim, spec.heads) for _ in range(spec.depth)])
        self.norm = nn.LayerNorm(spec.dim, eps=1e-6)
        self.embed = nn.Linear(spec.dim, spec.embedding_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.embed(self.norm(self.blocks(x))[:, 0])


# ---- one entry point for every architecture ------------------------------------------------------

ARCHS = ("small-resnet", "resnet18", "resnet50", "vit-s16")


def encoder_spec(arch: str, in_channels: int, embedding_dim: int, image_size: tuple[int, int], small: dict | None = None):
    """The spec of an architecture at an input size (`small`: the small ResNet's own keys)."""
    if arch == "small-resnet":
        return EncoderSpec(in_channels=in_channels, embedding_dim=embedding_dim, **(small or {}))
    if arch in ResNetEncoder.LAYOUT:
        return ResNetSpec(arch=arch, in_channels=in_channels, embedding_dim=embedding_dim)
    if arch == "vit-s16":
        return ViTSpec(in_channels=in_channels, embedding_dim=embedding_dim, image_size=tuple(image_size))
    raise ValueError(f"unknown arch {arch!r}: one of {', '.join(ARCHS)}")


def spec_from_dict(d: dict):
    arch = d.get("arch", "small-resnet")  # versions published before there were several archs
    if arch == "small-resnet":
        return EncoderSpec.from_dict(d)
    if arch in ResNetEncoder.LAYOUT:
        return ResNetSpec(**{k: (v if k == "arch" else int(v)) for k, v in d.items()})
    if arch == "vit-s16":
        return ViTSpec(**{k: int(v) for k, v in d.items() if k not in ("arch", "image_size")}, image_size=tuple(int(x) for x in d["image_size"]))
    raise ValueError(f"unknown arch {arch!r} in a published spec")


def build_encoder(spec) -> nn.Module:
    if isinstance(spec, EncoderSpec):
        return Encoder(spec)
    if isinstance(spec, ResNetSpec):
        return ResNetEncoder(spec)
    if isinstance(spec, ViTSpec):
        return ViTEncoder(spec)
    raise TypeError(f"not an encoder spec: {spec!r}")


class FitInput(nn.Module):
    """An encoder that takes images at any size and resizes them to its input size first (the data
    a run trains on may be stored smaller or larger than the model's input). Export and publish
    `inner`, which takes exactly its input size, as the manifest says."""

    def __init__(self, inner: nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.inner, self.size = inner, tuple(size)

    @property
    def spec(self):
        return self.inner.spec

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if tuple(pixels.shape[-2:]) != self.size:
            pixels = F.interpolate(pixels, size=self.size, mode="bilinear", align_corners=False, antialias=pixels.shape[-1] > self.size[1])
        return self.inner(pixels)


def encoder_to_bytes(model: Encoder) -> bytes:
    """The published weights (`models/<version>/encoder.pt`): spec + state dict, loadable without pickled classes."""
    buffer = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"spec": model.spec.to_dict(), "state_dict": state}, buffer)
    return buffer.getvalue()


def encoder_from_bytes(data: bytes, map_location: str | torch.device = "cpu") -> nn.Module:
    payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    model = build_encoder(spec_from_dict(payload["spec"]))
    model.load_state_dict(payload["state_dict"])
    return model


class ProjectionHead(nn.Module):
    """SimCLR's MLP head g(.) on top of the embedding; only used for the contrastive loss."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)
