"""SimCLR step throughput: the trainer's device-side batched augmentations against a conventional
DataLoader that augments each image on the CPU in worker processes, same model, batch and device.

Also FLOPs per image (forward + backward, counted by torch.utils.flop_counter) and the achieved
FLOP rate; on CUDA peak memory and model FLOPs utilisation against the device's bf16 dense peak.

usage: python bench/loader_bench.py --seconds 60 [--device auto|cpu|cuda] [--batch 256] [--quick]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu-trainer"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_trainer.augment import normalize, simclr_view, to_unit_float  # noqa: E402
from pipeline_trainer.losses import nt_xent  # noqa: E402
from pipeline_trainer.model import Encoder, EncoderSpec, ProjectionHead  # noqa: E402
from pipeline_trainer.runtime import SimCLRNet  # noqa: E402
from trainer_bench import canonical, load  # noqa: E402

AUG = dict(crop_scale_min=0.35, jitter_strength=0.4, grayscale_p=0.2, blur_p=0.2)
# bf16 dense peak, TFLOP/s (vendor datasheets), for MFU on the GPUs this project is lent.
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


class PerSampleViews(torch.utils.data.Dataset):
    """The conventional pipeline: each __getitem__ makes two augmented views of one image on the CPU."""

    def __init__(self, images_u8: torch.Tensor):
        self.images = images_u8

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
        x = to_unit_float(self.images[i : i + 1])
        return simclr_view(x, gen, **AUG)[0], simclr_view(x, gen, **AUG)[0]


def make_net(device) -> torch.nn.Module:
    torch.manual_seed(0)
    enc = Encoder(EncoderSpec(in_channels=3))
    return SimCLRNet(enc, ProjectionHead(enc.spec.embedding_dim, 2 * enc.spec.embedding_dim, 64)).to(device).to(memory_format=torch.channels_last)


def step(net, opt, x1, x2, device, amp: bool) -> None:
    x = normalize(torch.cat([x1, x2]), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]).contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
        z = net(x)
    z1, z2 = z.float().chunk(2)
    loss = nt_xent(z1, z2, 0.2)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(one, batch: int, seconds: float, device) -> dict:
    """Runs `one` (a training step) 3 times to warm up, then for `seconds`; throughput and peak memory."""
    for _ in range(3):
        one()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or steps < 3:
        one()
        steps += 1
    sync(device)
    dt = time.perf_counter() - t0
    out = {"steps": steps, "seconds": round(dt, 2), "imagesPerSecond": round(steps * batch / dt, 1), "stepMs": round(1000 * dt / steps, 2)}
    if device.type == "cuda":
        out["peakMemoryMiB"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def run_device_side(images_u8: torch.Tensor, batch: int, seconds: float, device, amp: bool) -> dict:
    net = make_net(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    views = images_u8.to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    n = views.shape[0]

    def one():
        idx = torch.randint(0, n, (batch,), generator=gen, device=device)
        x = to_unit_float(views[idx])
        step(net, opt, simclr_view(x, gen, **AUG), simclr_view(x, gen, **AUG), device, amp)

    return timed(one, batch, seconds, device)


def run_dataloader(images_u8: torch.Tensor, batch: int, seconds: float, device, amp: bool, workers: int) -> dict:
    net = make_net(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        PerSampleViews(images_u8),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=workers > 0,
    )
    it = iter(loader)

    def one():
        nonlocal it
        try:
            x1, x2 = next(it)
        except StopIteration:
            it = iter(loader)
            x1, x2 = next(it)
        step(net, opt, x1.to(device, non_blocking=True), x2.to(device, non_blocking=True), device, amp)

    return {**timed(one, batch, seconds, device), "workers": workers}


def flops_per_image(device, batch: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    net = make_net(device)
    x = torch.rand(2 * batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter:
        z = net(x)
        z1, z2 = z.chunk(2)
        nt_xent(z1, z2, 0.2).backward()
    return counter.get_total_flops() / batch  # per image of the batch (two views each)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if a.quick:
        a.seconds, a.batch, a.images = 1.0, 32, 512
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else ("cpu" if a.device == "auto" else a.device))
    amp = device.type == "cuda"
    x, _ = load("train", a.images)
    images = torch.from_numpy(canonical(x))  # N x 32 x 32 x 3 uint8
    workers = min(8, os.cpu_count() or 1)
    device_side = run_device_side(images, a.batch, a.seconds, device, amp)
    loader = run_dataloader(images, a.batch, a.seconds, device, amp, workers)
    fpi = flops_per_image(device, min(a.batch, 64))
    result = {
        "device": device.type if device.type == "cpu" else torch.cuda.get_device_name(0),
        "torchVersion": torch.__version__,
        "cpuThreads": torch.get_num_threads(),
        "batch": a.batch,
        "amp": "bf16" if amp else "off",
        "deviceSideAugmentation": device_side,
        "dataLoaderCpuAugmentation": loader,
        "speedup": round(device_side["imagesPerSecond"] / loader["imagesPerSecond"], 2),
        "flopsPerImage": round(fpi),
        "achievedTflops": round(device_side["imagesPerSecond"] * fpi / 1e12, 4),
    }
    if device.type == "cuda":
        name = torch.cuda.get_device_name(0)
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        if peak:
            result["mfu"] = round(result["achievedTflops"] / peak, 4)
            result["peakTflopsBf16"] = peak
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
