"""SimCLR augmentations as batched tensor ops on the training device (no torchvision).

Every function takes a float batch x [N, C, H, W] in [0, 1] on any device and a torch.Generator
on the same device, and returns a batch of the same shape and range. Parameters are drawn per
sample, so one call augments the whole batch without a Python loop over images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# RGB <-> YIQ: hue rotates the chroma plane (I, Q); a linear stand-in for HSV hue shifts.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, device=device)


def _chance(n: int, p: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) < p


def random_resized_crop(x: torch.Tensor, gen: torch.Generator, scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    """Crops a random area share in `scale` with aspect in `ratio` and resizes it back, via affine grids."""
    n, _, h, w = x.shape
    device = x.device
    area = _uniform(n, scale[0], scale[1], gen, device)
    log_ratio = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), gen, device)
    aspect = torch.exp(log_ratio)
    # Width and height as fractions of the image, clamped so the crop fits.
    cw = torch.sqrt(area * aspect).clamp(max=1.0)
    ch = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (torch.rand(n, generator=gen, device=device) * 2 - 1) * (1 - cw)
    cy = (torch.rand(n, generator=gen, device=device) * 2 - 1) * (1 - ch)
    theta = torch.zeros(n, 2, 3, device=device, dtype=x.dtype)
    theta[:, 0, 0] = cw
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = ch
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def horizontal_flip(x: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    flip = _chance(x.shape[0], p, gen, x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)


def color_jitter(x: torch.Tensor, gen: torch.Generator, strength: float = 0.4, p: float = 0.8) -> torch.Tensor:
    """Brightness, contrast, saturation (factors in [1 - s, 1 + s]) and hue (+-s/2 turns / 2), each per sample."""
    n, c, _, _ = x.shape
    device = x.device
    apply = _chance(n, p, gen, device).view(-1, 1, 1, 1)
    out = x
    brightness = _uniform(n, 1 - strength, 1 + strength, gen, device).view(-1, 1, 1, 1)
    out = out * brightness
    contrast = _uniform(n, 1 - strength, 1 + strength, gen, device).view(-1, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast + mean
    if c == 3:
        gray = (out * _LUMA.to(device, out.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
        saturation = _uniform(n, 1 - strength, 1 + strength, gen, device).view(-1, 1, 1, 1)
        out = (out - gray) * saturation + gray
        angle = _uniform(n, -math.pi * strength / 2, math.pi * strength / 2, gen, device)
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.zeros(n, 3, 3, device=device, dtype=out.dtype)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2] = cos, -sin
        rot[:, 2, 1], rot[:, 2, 2] = sin, cos
        m = _YIQ_TO_RGB.to(device, out.dtype) @ rot @ _RGB_TO_YIQ.to(device, out.dtype)  # [N, 3, 3]
        out = torch.einsum("nij,njhw->nihw", m, out)
    out = out.clamp(0, 1)
    return torch.where(apply, out, x)


def random_grayscale(x: torch.Tensor, gen: torch.Generator, p: float = 0.2) -> torch.Tensor:
    if x.shape[1] != 3:
        return x
    gray = (x * _LUMA.to(x.device, x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True).expand_as(x)
    return torch.where(_chance(x.shape[0], p, gen, x.device).view(-1, 1, 1, 1), gray, x)


def gaussian_blur(x: torch.Tensor, gen: torch.Generator, p: float = 0.2, sigma=(0.1, 1.2)) -> torch.Tensor:
    """Separable Gaussian blur with a per-sample sigma (grouped convolution, one group per image channel)."""
    n, c, h, w = x.shape
    device = x.device
    radius = max(1, math.ceil(2 * sigma[1]))
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=x.dtype)
    s = _uniform(n, sigma[0], sigma[1], gen, device).to(x.dtype).view(-1, 1)
    kernel = torch.exp(-(offsets.view(1, -1) ** 2) / (2 * s**2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # [N, K]
    k = kernel.repeat_interleave(c, 0)  # [N*C, K]
    flat = x.reshape(1, n * c, h, w)
    flat = F.pad(flat, (radius, radius, 0, 0), mode="reflect")
    flat = F.conv2d(flat, k.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.pad(flat, (0, 0, radius, radius), mode="reflect")
    flat = F.conv2d(flat, k.view(n * c, 1, -1, 1), groups=n * c)
    blurred = flat.view(n, c, h, w)
    return torch.where(_chance(n, p, gen, device).view(-1, 1, 1, 1), blurred, x)


def simclr_view(x: torch.Tensor, gen: torch.Generator, *, crop_scale_min: float, jitter_strength: float, grayscale_p: float, blur_p: float) -> torch.Tensor:
    """One augmented view of every image in the batch."""
    x = random_resized_crop(x, gen, scale=(crop_scale_min, 1.0))
    x = horizontal_flip(x, gen)
    x = color_jitter(x, gen, strength=jitter_strength)
    x = random_grayscale(x, gen, p=grayscale_p)
    return gaussian_blur(x, gen, p=blur_p)


def weak_view(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """FixMatch's weak augmentation: flip and a mild crop."""
    return horizontal_flip(random_resized_crop(x, gen, scale=(0.8, 1.0)), gen)


def to_unit_float(images_nhwc_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W, C] -> float [N, C, H, W] in [0, 1]."""
    return images_nhwc_u8.permute(0, 3, 1, 2).float().div_(255.0)


def normalize(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """The manifest's normalisation: (x - mean[c]) / std[c] on [0, 1] input."""
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s
